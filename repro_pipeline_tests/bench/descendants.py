"""The largest peak RSS among a process's descendants while a measure runs, sampled from ``/proc``.

``getrusage(RUSAGE_CHILDREN).ru_maxrss`` cannot give it: Linux carries a process's peak through fork and exec
into the child's, so a pg_dump started by a step at 160 MB reports 160 MB, and the children's figure repeats
the step's own. A child's ``VmHWM`` after its exec is its own; until then (a fork not yet replaced by its
program) the child is a copy of this process, with its command line, and is not counted.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

SAMPLE_SECONDS = 0.05


@contextmanager
def descendants_peak_rss_mb(every_seconds: float = SAMPLE_SECONDS) -> Iterator[Callable[[], float]]:
    """Within the block, a background thread samples the ``VmHWM`` of each descendant started in it; the
    function yielded returns the largest seen so far, in MB (0 without descendants)."""
    me = psutil.Process()
    own_command = me.cmdline()
    # Those running already are not the measure's (a load workers' fork server an earlier load started).
    earlier = {child.pid for child in me.children(recursive=True)}
    peak = 0.0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while True:
            for child in me.children(recursive=True):
                try:
                    if child.pid not in earlier and child.cmdline() != own_command:
                        peak = max(peak, _peak_rss_mb(child.pid))
                except (psutil.Error, OSError, ValueError):
                    continue  # it ended between the listing and the reading
            if stop.wait(every_seconds):
                return

    sampler = threading.Thread(target=sample, name="descendants-peak-rss", daemon=True)
    sampler.start()
    try:
        yield lambda: peak
    finally:
        stop.set()
        sampler.join()


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0  # a zombie has no memory left
