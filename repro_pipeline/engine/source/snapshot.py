"""One consistent read of the standby: the closure and the load both read this transaction, so the copy
matches a single snapshot even while the primary keeps writing."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

import psycopg
from psycopg import IsolationLevel, sql
from psycopg.rows import TupleRow

from repro_pipeline.engine import dsn
from repro_pipeline.engine.errors import StandbyNotReady


@dataclass(frozen=True)
class SessionLimits:
    """How long a source read may run or idle: a read never outlives its client by more than these, so a
    killed worker leaves no backend holding its snapshot (and replay) on the standby."""

    statement_timeout_seconds: float = 900.0
    idle_in_transaction_seconds: float = 300.0
    keepalive_idle_seconds: int = 30  # then 3 probes 10 s apart: a vanished client is noticed in a minute

    def connect(
        self, source_dsn: str, *, role: str, autocommit: bool = False
    ) -> psycopg.Connection[TupleRow]:
        """A read-only session under these limits; ``autocommit`` for reads that need no one snapshot, so no
        transaction sits idle while the caller works elsewhere."""
        settings = {
            # Rounded up: 0 would switch the limit off.
            "statement_timeout": math.ceil(self.statement_timeout_seconds * 1000),
            "idle_in_transaction_session_timeout": math.ceil(self.idle_in_transaction_seconds * 1000),
            "default_transaction_read_only": "on",
        }
        given = dsn.parameter(source_dsn, "options")
        options = " ".join(
            [*([given] if given else []), *(f"-c {name}={value}" for name, value in settings.items())]
        )
        return dsn.connect(
            source_dsn,
            role=role,
            autocommit=autocommit,
            options=options,
            keepalives=1,
            keepalives_idle=self.keepalive_idle_seconds,
            keepalives_interval=10,
            keepalives_count=3,
        )


@dataclass(frozen=True)
class SourceSnapshot:
    conn: psycopg.Connection[TupleRow]
    source: str  # host:port/dbname
    snapshot_at: datetime
    replay_lsn: str | None
    dsn: str = field(
        repr=False
    )  # for pg_dump and load workers, which read this snapshot in their own sessions
    limits: SessionLimits = SessionLimits()  # the session's, for those other sessions too


@contextmanager
def open_source_snapshot(
    source_dsn: str, limits: SessionLimits = SessionLimits()
) -> Iterator[SourceSnapshot]:
    source = dsn.describe(source_dsn)
    with limits.connect(source_dsn, role="standby") as conn:
        conn.isolation_level = IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        row = conn.execute("SELECT now(), pg_last_wal_replay_lsn()::text").fetchone()
        assert row is not None
        try:
            yield SourceSnapshot(conn, source, row[0], row[1], source_dsn, limits)
        except psycopg.errors.SerializationFailure as exc:
            raise replay_conflict(source, exc) from None
        conn.rollback()


@contextmanager
def snapshot_session(snapshot: SourceSnapshot) -> Iterator[psycopg.Connection[TupleRow]]:
    """Another session reading ``snapshot``: its transaction imports the snapshot (``export_snapshot``), here,
    before the caller goes on; for a read beside the snapshot's own."""
    exported = export_snapshot(snapshot.conn)
    with snapshot.limits.connect(snapshot.dsn, role="standby") as conn:
        try:
            import_snapshot(conn, exported)
            yield conn
        except psycopg.errors.SerializationFailure as exc:
            raise replay_conflict(snapshot.source, exc) from None
        conn.rollback()


def export_snapshot(conn: psycopg.Connection[TupleRow]) -> str:
    """The id under which other sessions (load workers, pg_dump) may import ``conn``'s snapshot, as long as
    its transaction stays open (``pg_export_snapshot()``, which a hot standby allows)."""
    row = conn.execute("SELECT pg_export_snapshot()").fetchone()
    assert row is not None
    return str(row[0])


def import_snapshot(conn: psycopg.Connection[TupleRow], snapshot_id: str) -> None:
    """Begin ``conn``'s transaction in the snapshot another session exported as ``snapshot_id``, REPEATABLE
    READ and READ ONLY as that session's."""
    conn.isolation_level = IsolationLevel.REPEATABLE_READ
    conn.read_only = True
    conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot_id)))


def replay_conflict(source: str, exc: psycopg.errors.SerializationFailure) -> StandbyNotReady:
    """The standby cancelled a read of the snapshot to go on replaying: what happened and what helps."""
    return StandbyNotReady(
        f"the standby {source} cancelled the read: {exc.diag.message_primary}",
        "WAL replay removed rows this snapshot still needed; set hot_standby_feedback = on on the "
        "standby (or raise max_standby_streaming_delay) and launch again",
    )
