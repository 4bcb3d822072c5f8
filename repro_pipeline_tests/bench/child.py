"""Each measure runs in a freshly spawned process, so the peak resident set it reports is its own."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from repro_pipeline_tests.bench.figures import PhaseMemory

Measure = Callable[..., dict[str, Any]]


def run_in_child(measure: Measure, *arguments: Any) -> dict[str, Any]:
    """``measure(*arguments)`` in a new process, with its peak RSS in MB as ``peak_rss_mb`` and the process's
    whole life (start, imports, the measure, exit) as ``process_seconds``; its exception, if it raises, is
    raised here."""
    began = time.perf_counter()
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        figures = pool.submit(_measured, measure, *arguments).result()
    return {**figures, "process_seconds": time.perf_counter() - began}


def _measured(measure: Measure, *arguments: Any) -> dict[str, Any]:
    figures = measure(*arguments)
    # A measure that split its peak by phase (``PhasePeaks``) started the kernel's peak over at each phase:
    # it reports the largest of its phases' peaks, which this process's own peak no longer covers.
    return {**figures, "peak_rss_mb": max(peak_rss_mb(), figures.get("peak_rss_mb", 0.0))}


class PhasePeaks:
    """The peak RSS of each phase of a measure, in its own process: the kernel's peak (``VmHWM``) is started
    over from the current resident set when a phase begins (``/proc/self/clear_refs``), and read when it ends.
    ``overall_mb`` is the process's peak over every phase and what came before them."""

    def __init__(self) -> None:
        self.phases: dict[str, PhaseMemory] = {}
        self.overall_mb = 0.0

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self.overall_mb = max(self.overall_mb, peak_rss_mb())
        reset_peak_rss()
        start = _status_mb("VmRSS")
        yield
        peak = peak_rss_mb()
        self.phases[name] = PhaseMemory(start, peak)
        self.overall_mb = max(self.overall_mb, peak)


def reset_peak_rss() -> None:
    """Start this process's peak RSS over from its resident set now (Linux 4.0 and later)."""
    Path("/proc/self/clear_refs").write_text("5")


def peak_rss_mb() -> float:
    """This process's peak resident set size (``VmHWM``), in MB."""
    return _status_mb("VmHWM")


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field} line: peak RSS is measured on Linux only")
