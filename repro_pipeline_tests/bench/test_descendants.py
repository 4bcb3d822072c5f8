"""The bench's peak RSS of a step's child processes is theirs, not the step's own carried into them."""

from __future__ import annotations

import resource
import subprocess
import sys
import time

from repro_pipeline_tests.bench.descendants import descendants_peak_rss_mb

ALLOCATE_80_MB = "import time; b = bytearray(80 << 20); b[::4096] = b'1' * len(b[::4096]); time.sleep(0.5)"


def test_a_child_that_grows_is_measured_at_its_own_peak() -> None:
    with descendants_peak_rss_mb() as peak:
        subprocess.run([sys.executable, "-c", ALLOCATE_80_MB], check=True)
    assert peak() >= 80


def test_a_small_child_of_a_big_process_is_not_measured_at_the_parents_peak() -> None:
    big = bytearray(200 << 20)
    big[::4096] = b"1" * len(big[::4096])
    del big  # this process's peak is now above 200 MB
    with descendants_peak_rss_mb() as peak:
        subprocess.run(["sleep", "0.5"], check=True)
    assert 0 < peak() < 50
    # What getrusage reports for the same child: the parent's peak, carried through fork and exec.
    assert resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024 >= 200


def test_a_child_started_before_the_measure_is_not_measured() -> None:
    with subprocess.Popen([sys.executable, "-c", ALLOCATE_80_MB.replace("0.5", "5")]) as earlier:
        time.sleep(1)  # it has grown to 80 MB
        with descendants_peak_rss_mb() as peak:
            subprocess.run(["sleep", "0.5"], check=True)
        earlier.kill()
    assert 0 < peak() < 50
