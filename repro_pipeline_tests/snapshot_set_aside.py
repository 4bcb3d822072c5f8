"""The checkout's catalog snapshot set aside while a test session runs, and put back after, never lost.

Two sessions may run in one checkout (``make test`` beside ``make test-ui``), and a session may be killed
before it puts the snapshot back (SIGTERM or SIGKILL run no ``finally``). The session that sets the snapshot
aside holds a lock on its folder until it puts it back; a session that finds the lock taken leaves both files
alone, and a session that finds a set-aside snapshot with no lock held puts that one back, as it is the
user's (what its path holds then was written by the killed session's tests).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SET_ASIDE_NAME = "state.set-aside-by-tests"


@contextmanager
def snapshot_set_aside(path: Path) -> Iterator[Path]:
    """No snapshot at ``path`` inside the block (unless another session's block is still running), the
    user's put back after it."""
    kept = path.with_name(SET_ASIDE_NAME)
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        try:
            fcntl.flock(folder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # another session set it aside, and puts it back when it ends
            yield path
            return
        if kept.exists():  # a killed session's: the user's snapshot
            path.unlink(missing_ok=True)
        elif path.exists():
            path.replace(kept)
        try:
            yield path
        finally:
            path.unlink(missing_ok=True)
            if kept.exists():
                kept.replace(path)
    finally:
        os.close(folder)  # releases the lock
