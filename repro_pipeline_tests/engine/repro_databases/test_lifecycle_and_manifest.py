"""Repro databases on the real target server: created with their record, found by it, marked, retired,
and the manifest's planned row counts read back as the load wrote them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from repro_pipeline.embedded.stack import Stack
from repro_pipeline.engine.dsn import with_database
from repro_pipeline.engine.errors import TargetError
from repro_pipeline.engine.repro_databases import lifecycle
from repro_pipeline.engine.repro_databases.manifest import (
    PlannedRows,
    TableRecord,
    planned_row_counts,
    write_manifest,
)
from repro_pipeline.engine.source.catalog import TableName
from repro_pipeline_tests.repro_databases import new_repro_database
from repro_pipeline_tests.run_records import run_record


@pytest.fixture
def database(target_admin: psycopg.Connection[tuple[object, ...]]) -> Iterator[lifecycle.ReproDatabase]:
    made = new_repro_database(target_admin, ttl=timedelta(hours=1), now=datetime.now(UTC))
    yield made
    lifecycle.drop_repro_database(target_admin, made.name)


def test_the_name_derives_from_the_organization_and_the_run(database: lifecycle.ReproDatabase) -> None:
    assert database.name == lifecycle.repro_database_name(451, database.run_id)
    assert database.name == f"repro_org451_{database.run_id[:8]}"


def test_a_database_is_found_by_its_record_and_retired_for_the_sweep(
    target_admin: psycopg.Connection[tuple[object, ...]], database: lifecycle.ReproDatabase
) -> None:
    (found,) = [db for db in lifecycle.list_repro_databases(target_admin) if db.name == database.name]
    assert found == database and found.status == "loading"
    now = datetime.now(UTC)
    lifecycle.retire(target_admin, database, now)
    (retired,) = [db for db in lifecycle.list_repro_databases(target_admin) if db.name == database.name]
    assert retired.status == "failed" and retired.expires_at == now


@pytest.mark.parametrize("name", ["billing", "postgres", "repro_org451_DEADBEEF", "repro_org451_dead; DROP"])
def test_only_a_repro_database_name_is_ever_dropped(
    target_admin: psycopg.Connection[tuple[object, ...]], name: str
) -> None:
    with pytest.raises(TargetError, match="is not a repro database name"):
        lifecycle.drop_repro_database(target_admin, name)


def test_the_planned_row_counts_are_read_back_as_the_load_wrote_them(
    stack: Stack, database: lifecycle.ReproDatabase
) -> None:
    invoices, notes = TableName("public", "invoices"), TableName("billing", "notes")
    with psycopg.connect(with_database(stack.target_admin_dsn, database.name), autocommit=True) as conn:
        conn.execute(
            "CREATE SCHEMA billing; CREATE TABLE public.invoices (id int); CREATE TABLE billing.notes ()"
        )
        tables = [
            TableRecord(
                invoices, "transform", closure_rows=12, source_rows=12, loaded_rows=11, column_actions={}
            ),
            TableRecord(notes, "empty", closure_rows=0, source_rows=0, loaded_rows=0, column_actions={}),
        ]
        write_manifest(conn, run_record(database.run_id, tables))
        assert planned_row_counts(conn) == {invoices: PlannedRows(12, 12), notes: PlannedRows(0, 0)}


def _record(
    target_admin: psycopg.Connection[tuple[object, ...]], name: str, record: dict[str, object]
) -> None:
    target_admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    comment = json.dumps({"created_by": "repro_pipeline", **record})
    target_admin.execute(
        sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name), sql.Literal(comment))
    )


def test_a_record_the_sweep_cannot_read_is_reported_and_skipped_and_a_naive_expiry_is_utc(
    target_admin: psycopg.Connection[tuple[object, ...]],
) -> None:
    naive, broken = "repro_org451_aaaaaaaa", "repro_org451_bbbbbbbb"
    a_day_ago = (datetime.now(UTC) - timedelta(days=1)).replace(tzinfo=None).isoformat()
    fields = {"organization_id": 451, "created_at": a_day_ago, "status": "loaded"}
    _record(target_admin, naive, {**fields, "run_id": "aaaaaaaa", "expires_at": a_day_ago})
    _record(target_admin, broken, {**fields, "run_id": "bbbbbbbb", "expires_at": "soon"})
    try:
        sweep = lifecycle.drop_expired(target_admin, datetime.now(UTC))
        dropped = [database.name for database in sweep.databases]
        assert naive in dropped and broken not in dropped  # the shared server may hold others' databases
        assert f"{broken}: its record cannot be read (Invalid isoformat string: 'soon')" in sweep.skipped
        assert broken in {str(name) for (name,) in target_admin.execute("SELECT datname FROM pg_database")}
    finally:
        for name in (naive, broken):
            target_admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


def test_a_read_only_target_is_one_clear_error(stack: Stack) -> None:
    read_only = make_conninfo(stack.target_admin_dsn, options="-c default_transaction_read_only=on")
    with psycopg.connect(read_only, autocommit=True) as target_admin, pytest.raises(TargetError) as raised:
        new_repro_database(target_admin, ttl=timedelta(hours=1), now=datetime.now(UTC))
    assert "the target server is read-only" in str(raised.value)
    assert "REPRO_TARGET_DSN" in raised.value.remedy
