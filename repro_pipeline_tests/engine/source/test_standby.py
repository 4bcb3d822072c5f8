"""Standby health on real servers: a primary is refused, a paused or lagging standby is refused."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from repro_pipeline.embedded.stack import Stack, wait_for_standby_replay
from repro_pipeline.embedded.synthetic import SourceSummary
from repro_pipeline.engine.config import ReproConfig, load_config
from repro_pipeline.engine.errors import StandbyNotReady
from repro_pipeline.engine.load.plan import plan_subset
from repro_pipeline.engine.secrets import Secret
from repro_pipeline.engine.source.snapshot import open_source_snapshot
from repro_pipeline.engine.source.standby import (
    LagLimits,
    StandbyHealth,
    read_standby_health,
    require_ready_standby,
)
from repro_pipeline_tests.conftest import PROJECT_ROOT


def _health(dsn: str) -> StandbyHealth:
    with psycopg.connect(dsn) as conn:
        return read_standby_health(conn)


def test_a_caught_up_standby_is_ready_even_when_the_primary_is_idle(
    stack: Stack, source: SourceSummary
) -> None:
    wait_for_standby_replay(stack, timeout=30)
    time.sleep(1.5)  # an idle primary: the last replayed transaction gets older, yet nothing is behind
    health = _health(stack.standby_dsn)
    assert health.in_recovery and health.receiver_status == "streaming"
    assert health.replay_lag_seconds == 0 and health.replay_lag_bytes == 0
    require_ready_standby(health, LagLimits(max_replay_lag_seconds=1), source="standby")


def test_the_primary_is_refused(stack: Stack) -> None:
    health = _health(stack.primary_dsn)
    with pytest.raises(StandbyNotReady, match="not in recovery"):
        require_ready_standby(health, LagLimits(), source="primary")


@pytest.fixture
def paused_standby(stack: Stack, source: SourceSummary) -> Iterator[None]:
    with psycopg.connect(stack.standby_dsn, autocommit=True) as standby:
        standby.execute("SELECT pg_wal_replay_pause()")
        try:
            yield
        finally:
            standby.execute("SELECT pg_wal_replay_resume()")
    wait_for_standby_replay(stack, timeout=30)


def test_a_paused_standby_with_unreplayed_wal_is_refused_with_both_lag_figures(
    stack: Stack, paused_standby: None
) -> None:
    with psycopg.connect(stack.primary_dsn, autocommit=True) as primary:
        primary.execute("CREATE TABLE IF NOT EXISTS lag_probe (id int)")
        primary.execute("INSERT INTO lag_probe SELECT generate_series(1, 20000)")
        primary.execute("DROP TABLE lag_probe")
    deadline = time.monotonic() + 20
    health = _health(stack.standby_dsn)
    while health.replay_lag_bytes < 100_000 and time.monotonic() < deadline:
        time.sleep(0.2)
        health = _health(stack.standby_dsn)
    assert health.replay_paused
    assert health.replay_lag_bytes >= 100_000
    assert health.replay_lag_seconds > 0
    with pytest.raises(StandbyNotReady) as error:
        require_ready_standby(
            health, LagLimits(max_replay_lag_seconds=3600, max_replay_lag_bytes=1000), source="s"
        )
    message = str(error.value)
    assert "paused" in message and "bytes of received WAL are not replayed" in message
    with pytest.raises(
        StandbyNotReady, match=r"replay lags [0-9.]+ s behind, more than the 0\.001 s allowed"
    ):
        require_ready_standby(
            health, LagLimits(max_replay_lag_seconds=0.001, max_replay_lag_bytes=10**12), source="s"
        )


@pytest.fixture
def reader(stack: Stack, source: SourceSummary) -> Iterator[str]:
    """A least-privilege source role: it may read the tables and nothing else."""
    password = "reader-" + "7" * 20
    with psycopg.connect(stack.primary_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE repro_reader LOGIN PASSWORD '{password}'")
        conn.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO repro_reader")
    wait_for_standby_replay(stack, timeout=30)
    try:
        yield make_conninfo(stack.standby_dsn, user="repro_reader", password=password)
    finally:
        with psycopg.connect(stack.primary_dsn, autocommit=True) as conn:
            conn.execute("DROP OWNED BY repro_reader")
            conn.execute("DROP ROLE repro_reader")
        wait_for_standby_replay(stack, timeout=30)


def test_a_role_that_cannot_see_the_wal_receiver_is_told_to_get_pg_monitor(stack: Stack, reader: str) -> None:
    health = _health(reader)
    assert not health.superuser and health.warnings() == []
    assert health.problems(LagLimits()) == [
        "its WAL receiver is hidden from the role repro_reader: grant pg_monitor to repro_reader"
    ]
    with psycopg.connect(stack.primary_dsn, autocommit=True) as conn:
        conn.execute("GRANT pg_monitor TO repro_reader")
    wait_for_standby_replay(stack, timeout=30)
    assert _health(reader).problems(LagLimits()) == []


def test_a_superuser_source_role_is_warned_about(stack: Stack, source: SourceSummary) -> None:
    health = _health(stack.standby_dsn)
    assert health.superuser
    (warning,) = health.warnings()
    assert warning.startswith(f"the source role {health.role} is a superuser") and "pg_monitor" in warning


def _config(tmp_path: Path, extra: str = "") -> ReproConfig:
    (tmp_path / "mask-rules.yaml").write_text(
        (PROJECT_ROOT / "config" / "mask-rules.yaml").read_text() + extra
    )
    return load_config(tmp_path / "mask-rules.yaml", PROJECT_ROOT / "config" / "commercial-extensions.yaml")


def test_a_plan_as_superuser_is_warned_about_or_refused_when_least_privilege_is_required(
    stack: Stack, reader: str, tmp_path: Path
) -> None:
    salt = Secret("s" * 32)
    with open_source_snapshot(stack.standby_dsn) as snapshot:
        warned = plan_subset(snapshot, _config(tmp_path), salt, 451)
    assert warned.warnings[0].startswith("the source role postgres is a superuser")
    strict = _config(tmp_path, "\nrequire_least_privilege: true\n")
    with open_source_snapshot(stack.standby_dsn) as snapshot, pytest.raises(StandbyNotReady) as refused:
        plan_subset(snapshot, strict, salt, 451)
    assert "the source role postgres is a superuser, and mask-rules.yaml sets require_least_privilege" in str(
        refused.value
    )
    with open_source_snapshot(reader) as snapshot:
        least = plan_subset(snapshot, strict, salt, 451)
    assert least.closure.total_rows == warned.closure.total_rows
    assert not any("superuser" in warning for warning in least.warnings)
