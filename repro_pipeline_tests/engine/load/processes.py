"""This machine's processes, as psutil reads them: the multiprocessing fork server a process started."""

from __future__ import annotations

import time

import psutil

_WAIT_SECONDS = 30.0


def children(pid: int) -> set[int]:
    """The processes ``pid`` started that still run."""
    return {child.pid for child in psutil.Process(pid).children()}


def command_line(pid: int) -> str:
    try:
        return " ".join(psutil.Process(pid).cmdline())
    except psutil.NoSuchProcess:
        return ""


def fork_server_of(pid: int) -> int:
    """The multiprocessing fork server ``pid`` started, once its command line shows (a process just started
    may not show it yet)."""
    deadline = time.monotonic() + _WAIT_SECONDS
    while time.monotonic() < deadline:
        servers = [child for child in children(pid) if "multiprocessing.forkserver" in command_line(child)]
        if servers:
            (server,) = servers
            return server
        time.sleep(0.05)
    raise AssertionError(f"process {pid} started no fork server within {_WAIT_SECONDS:g} s")
