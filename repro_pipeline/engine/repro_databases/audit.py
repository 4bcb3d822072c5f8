"""The run's audit log inside each repro database (PrivaCI's ``audit_log``), next to the run's record.

One row per event, in the order written: the run started, each table loaded (rows, seconds), each check
evaluated (its verdict), the database handed off (with its expiry). Every column is typed (names of tables
and checks, counts, times, verdicts): there is no free-text or JSON column a row value, a DSN or the salt
could land in. ``audit_log: false`` (or ``load --no-audit-table``) leaves the table out; later events then
have nowhere to go and are not written, while the run's record (manifest.py) is written either way.

No ``expired`` event: the sweep drops the database with its table, so an event written there just before
would never be read; the drop is recorded where it outlives the database (the sweep's observation, the
expiry notice in Slack and on the ticket).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import psycopg
from psycopg.rows import TupleRow

from repro_pipeline.engine.source.catalog import MANIFEST_SCHEMA, TableName

TABLE = f"{MANIFEST_SCHEMA}.audit_log"

EventType = Literal["run.started", "table.loaded", "check.evaluated", "run.handed_off"]

# run_id is the run that wrote the event (a later run may check or hand off the database again), so it
# references no manifest row.
_DDL = f"""
CREATE TABLE {TABLE} (
    event_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id text NOT NULL,
    event_at timestamptz NOT NULL,
    event_type text NOT NULL
        CHECK (event_type IN ('run.started', 'table.loaded', 'check.evaluated', 'run.handed_off')),
    table_name text,
    check_name text,
    passed boolean,
    rows bigint,
    seconds double precision,
    expires_at timestamptz,
    CHECK ((event_type = 'table.loaded') = (table_name IS NOT NULL AND rows IS NOT NULL AND seconds IS NOT NULL)),
    CHECK ((event_type = 'check.evaluated') = (check_name IS NOT NULL AND passed IS NOT NULL)),
    CHECK ((event_type = 'run.handed_off') = (expires_at IS NOT NULL))
)
"""


@dataclass(frozen=True)
class AuditEvent:
    run_id: str
    event_at: datetime
    event_type: EventType
    table: TableName | None = None
    check_name: str | None = None
    passed: bool | None = None
    rows: int | None = None
    seconds: float | None = None
    expires_at: datetime | None = None


def run_started(run_id: str, at: datetime) -> AuditEvent:
    return AuditEvent(run_id, at, "run.started")


def table_loaded(run_id: str, at: datetime, table: TableName, rows: int, seconds: float) -> AuditEvent:
    return AuditEvent(run_id, at, "table.loaded", table=table, rows=rows, seconds=seconds)


def check_evaluated(run_id: str, at: datetime, check_name: str, *, passed: bool) -> AuditEvent:
    return AuditEvent(run_id, at, "check.evaluated", check_name=check_name, passed=passed)


def handed_off(run_id: str, at: datetime, expires_at: datetime) -> AuditEvent:
    return AuditEvent(run_id, at, "run.handed_off", expires_at=expires_at)


def create_audit_log(conn: psycopg.Connection[TupleRow], events: Sequence[AuditEvent]) -> None:
    """The audit table, in the run record's schema (which must exist), holding ``events`` in this order."""
    conn.execute(_DDL)
    _insert(conn, events)


def record_events(conn: psycopg.Connection[TupleRow], events: Sequence[AuditEvent]) -> bool:
    """Append ``events`` to the database's audit log; False, and nothing written, when its load left the
    audit log out (``audit_log: false``)."""
    if not has_audit_log(conn):
        return False
    _insert(conn, events)
    return True


def has_audit_log(conn: psycopg.Connection[TupleRow]) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (TABLE,)).fetchone()
    return bool(row and row[0])


def _insert(conn: psycopg.Connection[TupleRow], events: Sequence[AuditEvent]) -> None:
    conn.cursor().executemany(
        f"INSERT INTO {TABLE} (run_id, event_at, event_type, table_name, check_name, passed, rows, seconds,"
        " expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        [
            (
                event.run_id,
                event.event_at,
                event.event_type,
                None if event.table is None else str(event.table),
                event.check_name,
                event.passed,
                event.rows,
                event.seconds,
                event.expires_at,
            )
            for event in events
        ],
    )
