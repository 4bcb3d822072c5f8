"""Seeing, in ``pg_locks``, a thread wait for a repro database's advisory lock: how tests force an
interleaving without sleeping for it."""

from __future__ import annotations

import threading
import time

import psycopg

from repro_pipeline.engine.repro_databases import lifecycle


def wait_until_blocked_on_the_lock(
    observer: psycopg.Connection[tuple[object, ...]], name: str, worker: threading.Thread, timeout: float
) -> None:
    """Until ``worker`` waits for the lock of the repro database ``name``, or has finished without waiting."""
    key = lifecycle.record_lock_key(name) & 0xFFFF_FFFF_FFFF_FFFF  # pg_locks shows it as two unsigned halves
    deadline = time.monotonic() + timeout
    while worker.is_alive():
        if observer.execute(
            "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
            "AND classid = %s::bigint::oid AND objid = %s::bigint::oid AND objsubid = 1",
            (key >> 32, key & 0xFFFF_FFFF),
        ).fetchone():
            return
        assert time.monotonic() < deadline, f"the worker neither waited for the lock of {name} nor finished"
        worker.join(0.02)
