"""One consistent read of the standby: the closure and the load both read this transaction, so the copy
matches a single snapshot even while the primary keeps writing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import IsolationLevel
from psycopg.rows import TupleRow

from repro_pipeline.engine import dsn
from repro_pipeline.engine.errors import StandbyNotReady


@dataclass(frozen=True)
class SourceSnapshot:
    conn: psycopg.Connection[TupleRow]
    source: str  # host:port/dbname
    snapshot_at: datetime
    replay_lsn: str | None


@contextmanager
def open_source_snapshot(source_dsn: str) -> Iterator[SourceSnapshot]:
    source = dsn.describe(source_dsn)
    with dsn.connect(source_dsn, role="standby") as conn:
        conn.isolation_level = IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        row = conn.execute("SELECT now(), pg_last_wal_replay_lsn()::text").fetchone()
        assert row is not None
        try:
            yield SourceSnapshot(conn, source, row[0], row[1])
        except psycopg.errors.SerializationFailure as exc:
            raise StandbyNotReady(
                f"the standby {source} cancelled the read: {exc.diag.message_primary}",
                "WAL replay removed rows this snapshot still needed; set hot_standby_feedback = on on the "
                "standby (or raise max_standby_streaming_delay) and launch again",
            ) from None
        conn.rollback()
