"""The source read's session limits on a real standby: a statement or an idle snapshot past its limit is
ended by the server, so a vanished client leaves nothing holding the standby."""

from __future__ import annotations

import socket
import time
from urllib.parse import quote

import psycopg
import pytest

from repro_pipeline.embedded.stack import Stack, wait_for_standby_replay
from repro_pipeline.embedded.synthetic import SourceSummary
from repro_pipeline.engine.errors import ConnectionFailed
from repro_pipeline.engine.source.snapshot import SessionLimits, open_source_snapshot, snapshot_session


def test_a_statement_past_its_limit_is_cancelled(stack: Stack, source: SourceSummary) -> None:
    with (
        pytest.raises(psycopg.errors.QueryCanceled, match="statement timeout"),
        open_source_snapshot(stack.standby_dsn, SessionLimits(statement_timeout_seconds=0.3)) as snapshot,
    ):
        snapshot.conn.execute("SELECT pg_sleep(3)")


def test_an_idle_snapshot_past_its_limit_is_ended_on_the_standby(stack: Stack, source: SourceSummary) -> None:
    limits = SessionLimits(idle_in_transaction_seconds=0.5)
    with (
        pytest.raises(psycopg.errors.IdleInTransactionSessionTimeout),
        open_source_snapshot(stack.standby_dsn, limits) as snapshot,
    ):
        (backend,) = snapshot.conn.execute("SELECT pg_backend_pid()").fetchone() or (0,)
        time.sleep(2)
        snapshot.conn.execute("SELECT 1")
    with psycopg.connect(stack.standby_dsn) as conn:
        assert conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (backend,)
        ).fetchone() == (0,)


def test_the_limits_and_keepalives_are_set_and_the_dsn_options_kept(
    stack: Stack, source: SourceSummary
) -> None:
    given = (
        stack.standby_dsn + ("&" if "?" in stack.standby_dsn else "?") + "options=" + quote("-c work_mem=7MB")
    )
    with open_source_snapshot(given) as snapshot:
        settings = dict(
            snapshot.conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name IN "
                "('statement_timeout', 'idle_in_transaction_session_timeout', 'work_mem')"
            ).fetchall()
        )
        parameters = snapshot.conn.info.get_parameters()
    assert settings == {
        "statement_timeout": "900000",
        "idle_in_transaction_session_timeout": "300000",
        "work_mem": str(7 * 1024),
    }
    assert parameters["keepalives"] == "1" and parameters["keepalives_idle"] == "30"


def test_a_refused_connection_keeps_libpqs_reason() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with (
        pytest.raises(ConnectionFailed) as raised,
        open_source_snapshot(f"postgresql://u:secret@127.0.0.1:{port}/db"),
    ):
        pass
    message = str(raised.value)
    assert f"port {port} failed: Connection refused" in message and "Is the server running" in message
    assert "secret" not in message and "\n" not in raised.value.problem


def test_a_second_session_reads_the_snapshot_and_not_the_standby_now(
    stack: Stack, source: SourceSummary
) -> None:
    current = "SELECT pg_current_snapshot()::text"
    with open_source_snapshot(stack.standby_dsn) as snapshot:
        (taken,) = snapshot.conn.execute(current).fetchone() or ("",)
        with psycopg.connect(stack.primary_dsn, autocommit=True) as primary:
            # A transaction committed after the snapshot, its commit record sent at once (no DDL: the
            # catalogs' churn would have autovacuum truncate them, a lock the standby replays).
            primary.execute("SELECT txid_current()")
            primary.execute("SELECT pg_switch_wal()")
        wait_for_standby_replay(stack)
        with psycopg.connect(stack.standby_dsn) as now:
            assert now.execute(current).fetchone() != (taken,)
        with snapshot_session(snapshot) as session:
            assert session.execute(current).fetchone() == (taken,)
            assert session.execute("SHOW transaction_read_only").fetchone() == ("on",)
