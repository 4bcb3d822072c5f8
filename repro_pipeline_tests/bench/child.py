"""Each measure runs in a freshly spawned process, so the peak resident set it reports is its own."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

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
    return {**figures, "peak_rss_mb": peak_rss_mb()}


def peak_rss_mb() -> float:
    """This process's peak resident set size (``VmHWM``), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("/proc/self/status has no VmHWM line: peak RSS is measured on Linux only")
