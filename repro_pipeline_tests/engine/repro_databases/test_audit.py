"""The audit log on the real target server: its events in the order written, none where the load left it
out, only typed fields (no event can carry a value), and readable by the database's login."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from repro_pipeline.embedded.stack import Stack
from repro_pipeline.engine.dsn import with_database
from repro_pipeline.engine.repro_databases import audit, lifecycle, logins
from repro_pipeline.engine.repro_databases.manifest import write_manifest
from repro_pipeline.engine.source.catalog import TableName
from repro_pipeline_tests.repro_databases import new_repro_database
from repro_pipeline_tests.run_records import run_record

Admin = psycopg.Connection[tuple[object, ...]]
USERS = TableName("public", "users")


@pytest.fixture
def database(stack: Stack, target_admin: Admin) -> Iterator[lifecycle.ReproDatabase]:
    """A repro database with its run's record, as a load leaves it before its audit log."""
    made = new_repro_database(target_admin, ttl=timedelta(hours=1), now=datetime.now(UTC))
    with psycopg.connect(with_database(stack.target_admin_dsn, made.name), autocommit=True) as conn:
        write_manifest(conn, run_record(made.run_id))
    yield made
    lifecycle.drop_repro_database(target_admin, made.name)


def _connect(stack: Stack, database: lifecycle.ReproDatabase) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(with_database(stack.target_admin_dsn, database.name), autocommit=True)


def test_events_are_kept_in_the_order_written_with_their_run_and_time(
    stack: Stack, database: lifecycle.ReproDatabase
) -> None:
    began = datetime.now(UTC)
    expires = began + timedelta(hours=48)
    with _connect(stack, database) as conn:
        audit.create_audit_log(
            conn,
            [
                audit.run_started("run-1", began),
                audit.table_loaded("run-1", began + timedelta(seconds=2), USERS, 60, 1.5),
            ],
        )
        assert audit.record_events(
            conn,
            [audit.check_evaluated("run-1", began + timedelta(seconds=3), "zero_fk_orphans", passed=True)],
        )
        assert audit.record_events(conn, [audit.handed_off("run-2", began + timedelta(seconds=4), expires)])
        rows = conn.execute(
            "SELECT run_id, event_at, event_type, table_name, check_name, passed, rows, seconds, expires_at "
            f"FROM {audit.TABLE} ORDER BY event_id"
        ).fetchall()
    assert rows == [
        ("run-1", began, "run.started", None, None, None, None, None, None),
        ("run-1", began + timedelta(seconds=2), "table.loaded", "public.users", None, None, 60, 1.5, None),
        (
            "run-1",
            began + timedelta(seconds=3),
            "check.evaluated",
            None,
            "zero_fk_orphans",
            True,
            None,
            None,
            None,
        ),
        ("run-2", began + timedelta(seconds=4), "run.handed_off", None, None, None, None, None, expires),
    ]


def test_without_an_audit_log_later_events_are_not_written_and_no_table_is_made(
    stack: Stack, database: lifecycle.ReproDatabase
) -> None:
    with _connect(stack, database) as conn:
        assert not audit.has_audit_log(conn)
        written = audit.record_events(
            conn, [audit.check_evaluated("run-1", datetime.now(UTC), "zero_fk_orphans", passed=False)]
        )
        assert written is False
        assert conn.execute("SELECT to_regclass(%s)", (audit.TABLE,)).fetchone() == (None,)
        assert conn.execute("SELECT count(*) FROM _repro_pipeline.runs").fetchone() == (1,)


def test_an_event_without_its_own_fields_or_of_an_unknown_type_is_refused(
    stack: Stack, database: lifecycle.ReproDatabase
) -> None:
    now = datetime.now(UTC)
    with _connect(stack, database) as conn:
        audit.create_audit_log(conn, [])
        for event in (
            audit.AuditEvent("run-1", now, "table.loaded", table=USERS),  # no rows, no seconds
            audit.AuditEvent("run-1", now, "check.evaluated", check_name="zero_fk_orphans"),  # no verdict
            audit.AuditEvent("run-1", now, "run.started", expires_at=now),  # another event's field
            audit.AuditEvent("run-1", now, "run.expired"),  # type: ignore[arg-type]
        ):
            with pytest.raises(psycopg.errors.CheckViolation):
                audit.record_events(conn, [event])


def test_the_audit_log_has_no_column_a_value_could_be_written_to(
    stack: Stack, database: lifecycle.ReproDatabase
) -> None:
    """Only names (of a table, a check), counts, times and verdicts: no free text or JSON field."""
    with _connect(stack, database) as conn:
        audit.create_audit_log(conn, [])
        columns = dict(
            conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = '_repro_pipeline' AND table_name = 'audit_log'"
            ).fetchall()
        )
    assert {name for name, kind in columns.items() if kind in ("text", "jsonb", "json", "bytea")} == {
        "run_id",
        "event_type",
        "table_name",
        "check_name",
    }


def test_the_databases_login_reads_its_audit_log_and_cannot_write_it(
    stack: Stack, target_admin: Admin, database: lifecycle.ReproDatabase
) -> None:
    with _connect(stack, database) as conn:
        audit.create_audit_log(conn, [audit.run_started(database.run_id, datetime.now(UTC))])
        login = logins.issue_login(target_admin, conn, database.name, database.expires_at)
    with psycopg.connect(login.dsn(stack.target_admin_dsn).reveal(), autocommit=True) as reader:
        assert reader.execute(f"SELECT event_type FROM {audit.TABLE}").fetchall() == [("run.started",)]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            reader.execute(
                f"INSERT INTO {audit.TABLE} (run_id, event_at, event_type) VALUES ('x', now(), 'run.started')"
            )
