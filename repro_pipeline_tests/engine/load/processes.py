"""This machine's processes as /proc shows them: a process's children, and the fork server among them."""

from __future__ import annotations

import time
from pathlib import Path

_WAIT_SECONDS = 30.0


def children(pid: int) -> set[int]:
    """The processes ``pid`` started that still run (a thread that ends meanwhile has none)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found.update(int(child) for child in (task / "children").read_text().split())
        except FileNotFoundError:
            continue
    return found


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except FileNotFoundError:
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
