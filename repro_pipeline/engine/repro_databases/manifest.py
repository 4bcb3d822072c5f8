"""The run's record inside each repro database, in its own schema that application code never reads.

It holds what was done and from where (run, organization, config and salt fingerprints, the standby's
replay position and snapshot time, per table the closure's and the loaded row counts, per column the
action applied), never a value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from repro_pipeline.engine.errors import TargetError
from repro_pipeline.engine.source.catalog import MANIFEST_SCHEMA, TableName

SCHEMA = MANIFEST_SCHEMA
REQUIRED_CHECKS = ("zero_fk_orphans", "row_counts_match_closure", "no_original_pii", "schema_matches_source")

_DDL = f"""
CREATE SCHEMA {SCHEMA};
CREATE TABLE {SCHEMA}.runs (
    run_id text PRIMARY KEY,
    organization_id bigint NOT NULL,
    config_hash text NOT NULL,
    salt_fingerprint text NOT NULL,
    source text NOT NULL,
    source_replay_lsn text,
    snapshot_at timestamptz NOT NULL,
    closure_passes int NOT NULL,
    started_at timestamptz NOT NULL,
    loaded_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    status text NOT NULL DEFAULT 'loaded' CHECK (status IN ('loaded', 'ready', 'failed'))
);
CREATE TABLE {SCHEMA}.tables (
    run_id text NOT NULL REFERENCES {SCHEMA}.runs,
    table_name text NOT NULL,
    strategy text NOT NULL,
    closure_rows bigint NOT NULL,
    source_rows bigint NOT NULL,
    loaded_rows bigint NOT NULL,
    PRIMARY KEY (run_id, table_name)
);
CREATE TABLE {SCHEMA}.checks (
    check_name text PRIMARY KEY,
    passed boolean NOT NULL,
    checked_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE {SCHEMA}.columns (
    run_id text NOT NULL REFERENCES {SCHEMA}.runs,
    table_name text NOT NULL,
    column_name text NOT NULL,
    action text NOT NULL,
    masked_values bigint NOT NULL,
    PRIMARY KEY (run_id, table_name, column_name)
);
"""


@dataclass(frozen=True)
class TableRecord:
    table: TableName
    strategy: str
    closure_rows: int
    source_rows: int  # the source server's count of the rows it sent, in the load's snapshot
    loaded_rows: int
    column_actions: Mapping[str, str]


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    organization_id: int
    config_hash: str
    salt_fingerprint: str
    source: str
    source_replay_lsn: str | None
    snapshot_at: datetime
    closure_passes: int
    started_at: datetime
    tables: Sequence[TableRecord]


def write_manifest(conn: psycopg.Connection[TupleRow], record: RunRecord) -> None:
    cur = conn.cursor()
    cur.execute(_DDL)
    cur.execute(
        f"INSERT INTO {SCHEMA}.runs (run_id, organization_id, config_hash, salt_fingerprint, source,"
        " source_replay_lsn, snapshot_at, closure_passes, started_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            record.run_id,
            record.organization_id,
            record.config_hash,
            record.salt_fingerprint,
            record.source,
            record.source_replay_lsn,
            record.snapshot_at,
            record.closure_passes,
            record.started_at,
        ),
    )
    cur.executemany(
        f"INSERT INTO {SCHEMA}.tables VALUES (%s, %s, %s, %s, %s, %s)",
        [
            (record.run_id, str(t.table), t.strategy, t.closure_rows, t.source_rows, t.loaded_rows)
            for t in record.tables
        ],
    )
    for table in record.tables:
        for column, action in table.column_actions.items():
            # How many values the action changed: the non-NULL ones (masks keep NULL as NULL).
            cur.execute(
                sql.SQL(
                    "INSERT INTO {manifest}.columns SELECT %s, %s, %s, %s, count({column}) FROM {table}"
                ).format(
                    manifest=sql.Identifier(SCHEMA),
                    column=sql.Identifier(column),
                    table=table.table.identifier,
                ),
                (record.run_id, str(table.table), column, action),
            )


def finish_run(conn: psycopg.Connection[TupleRow], status: str) -> None:
    """The run's outcome after the checks: ``ready`` (handed off) or ``failed``."""
    conn.execute(f"UPDATE {SCHEMA}.runs SET status = %s, finished_at = now()", (status,))


def record_check(conn: psycopg.Connection[TupleRow], check_name: str, *, passed: bool) -> None:
    """The check's verdict; a failed check also marks the run failed."""
    conn.execute(
        f"INSERT INTO {SCHEMA}.checks (check_name, passed) VALUES (%s, %s) "
        "ON CONFLICT (check_name) DO UPDATE SET passed = excluded.passed, checked_at = now()",
        (check_name, passed),
    )
    if not passed:
        finish_run(conn, "failed")


def recorded_organization(conn: psycopg.Connection[TupleRow]) -> int:
    """The organization the run's record says this database holds."""
    try:
        row = conn.execute(f"SELECT organization_id FROM {SCHEMA}.runs").fetchone()
    except psycopg.errors.UndefinedTable:
        row = None
    if row is None:
        raise TargetError(
            f"the target database has no repro_pipeline record (schema {SCHEMA}): it was not loaded by "
            "repro_pipeline",
            "verify a database made by `repro-pipeline load` or a tenant run",
        )
    return int(str(row[0]))


@dataclass(frozen=True)
class PlannedRows:
    closure: int  # the closure's own count
    source: int  # the source server's count of the rows the load selected, in its snapshot


def planned_row_counts(conn: psycopg.Connection[TupleRow]) -> dict[TableName, PlannedRows]:
    """Per table the load created, the rows it was to copy, as the load recorded them."""
    try:
        rows = conn.execute(f"SELECT table_name, closure_rows, source_rows FROM {SCHEMA}.tables").fetchall()
    except psycopg.errors.UndefinedColumn:
        raise TargetError(
            "the repro database was recorded by an older repro_pipeline (its record has no source counts)",
            "materialize it again (or load it again) to check it",
        ) from None
    return {
        TableName.parse(str(table)): PlannedRows(int(str(closure)), int(str(source)))
        for table, closure, source in rows
    }


def loaded_row_total(conn: psycopg.Connection[TupleRow]) -> int:
    """The rows the load copied, all tables together, as the load recorded them."""
    row = conn.execute(f"SELECT coalesce(sum(loaded_rows), 0) FROM {SCHEMA}.tables").fetchone()
    return int(str(row[0])) if row else 0


def unpassed_checks(conn: psycopg.Connection[TupleRow], required: tuple[str, ...]) -> list[str]:
    """The required checks that have not run on this database, or failed."""
    passed = {str(name) for (name,) in conn.execute(f"SELECT check_name FROM {SCHEMA}.checks WHERE passed")}
    return [name for name in required if name not in passed]
