"""What must stop a run early: a bad partition key before any database is touched, and a source that is
not a standby before anything is read. Real Dagster instance and executor."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import dagster as dg
import psycopg
import pytest

from repro_pipeline.cli.launch import materialize_tenant
from repro_pipeline.defs.tenant_repro.partitions import organizations
from repro_pipeline.embedded.stack import Stack
from repro_pipeline.engine.errors import TenantError
from repro_pipeline_tests.defs.run_results import step_failure_messages

UNREACHABLE = "postgresql://nobody:secret-password@127.0.0.1:1/none"


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("ANONYMIZATION_SALT", "s" * 64)
    yield


@pytest.mark.parametrize("key", ["abc", "-5", "0", "451; DROP DATABASE x", "4 51"])
def test_a_bad_partition_key_is_refused_before_any_database_is_touched(
    key: str, instance: dg.DagsterInstance, environment: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(TenantError, match="not a positive integer"):
        materialize_tenant(key, instance)
    assert instance.get_dynamic_partitions(organizations.name) == []

    # A key added behind the CLI's back (e.g. in the UI) is refused by the first asset, before it
    # connects: with unreachable DSNs the failure is the key, not a connection error.
    monkeypatch.setenv("REPRO_STANDBY_DSN", UNREACHABLE)
    monkeypatch.setenv("REPRO_TARGET_DSN", UNREACHABLE)
    instance.add_dynamic_partitions(organizations.name, [key])
    from repro_pipeline.definitions import tenant_repro_job_def

    result = dg.execute_job(
        dg.reconstructable(tenant_repro_job_def), instance=instance, tags={"dagster/partition": key}
    )
    assert not result.success
    messages = step_failure_messages(result)
    assert "not a positive integer" in messages
    assert "connect" not in messages and "secret-password" not in messages


def test_a_primary_as_source_fails_the_run_before_any_repro_database_exists(
    stack: Stack,
    source: object,
    instance: dg.DagsterInstance,
    environment: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REPRO_STANDBY_DSN", stack.primary_dsn)
    monkeypatch.setenv("REPRO_TARGET_DSN", stack.target_admin_dsn)
    with psycopg.connect(stack.target_admin_dsn) as admin:
        before = admin.execute("SELECT count(*) FROM pg_database").fetchone()
    result = materialize_tenant("451", instance)
    assert not result.success
    assert "not in recovery" in step_failure_messages(result)
    logs = "\n".join(repr(record) for record in instance.all_logs(result.run_id))
    assert stack.password not in logs and "s" * 64 not in logs
    materialized = [event.asset_key for event in result.get_asset_materialization_events()]
    assert materialized == []
    with psycopg.connect(stack.target_admin_dsn) as admin:
        assert admin.execute("SELECT count(*) FROM pg_database").fetchone() == before
    assert os.environ["REPRO_STANDBY_DSN"] == stack.primary_dsn


def test_a_missing_organization_fails_the_first_step_in_one_message_without_a_traceback(
    pipeline_environment: dict[str, str], instance: dg.DagsterInstance
) -> None:
    result = materialize_tenant("99999", instance)
    assert not result.success
    failures = [event for event in result.all_events if event.is_step_failure]
    assert [event.step_key for event in failures] == ["standby_health"]
    (failure,) = failures
    error = failure.step_failure_data.error
    assert error is not None
    assert error.message.splitlines()[0] == (
        "dagster._core.definitions.events.Failure: organization 99999 does not exist on the source: "
        "public.organizations has no row with id = 99999"
    )
    # Dagster keeps the frames of the step's own Failure; what it never holds is the engine's error as a
    # second, chained traceback.
    assert error.cause is None and error.context is None
    assert result.get_asset_materialization_events() == []


def _run_with_config(instance: dg.DagsterInstance, run_config: dict[str, Any]) -> dg.JobExecutionResult:
    from repro_pipeline.definitions import tenant_repro_job_def

    instance.add_dynamic_partitions(organizations.name, ["451"])
    return dg.execute_job(
        dg.reconstructable(tenant_repro_job_def),
        instance=instance,
        tags={"dagster/partition": "451"},
        run_config=run_config,
    )


@pytest.mark.parametrize(
    ("step", "config", "failed_step", "problem"),
    [
        (
            "standby_health",
            {"max_replay_lag_seconds": 301.0},
            "standby_health",
            "max_replay_lag_seconds in the run config of standby_health is 301, looser than the deployment's "
            "limit of 300",
        ),
        (
            "tenant_closure_and_repro_database",
            {"ttl_hours": 2161.0},
            "tenant_closure_and_repro_database",
            "ttl_hours in the run config is 2161: it must be more than 0 and at most 2160 hours (90 days)",
        ),
    ],
)
def test_run_config_past_its_bounds_fails_its_step_before_any_repro_database_exists(
    pipeline_environment: dict[str, str],
    instance: dg.DagsterInstance,
    stack: Stack,
    monkeypatch: pytest.MonkeyPatch,
    step: str,
    config: dict[str, float],
    failed_step: str,
    problem: str,
) -> None:
    monkeypatch.delenv("REPRO_MAX_REPLAY_LAG_SECONDS", raising=False)
    with psycopg.connect(stack.target_admin_dsn) as admin:
        before = admin.execute("SELECT count(*) FROM pg_database").fetchone()
    result = _run_with_config(instance, {"ops": {step: {"config": config}}})
    assert not result.success
    (failure,) = [event for event in result.all_events if event.is_step_failure]
    assert failure.step_key == failed_step
    assert failure.step_failure_data.error is not None
    assert failure.step_failure_data.error.cls_name == "Failure"  # a user mistake: no traceback, no retry
    assert problem in step_failure_messages(result)
    with psycopg.connect(stack.target_admin_dsn) as admin:
        assert admin.execute("SELECT count(*) FROM pg_database").fetchone() == before


def test_a_run_without_a_partition_is_told_to_choose_one_without_a_traceback(
    instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the UI's "Execute all" on repro_database's checks launches: the checks, and no partition."""
    monkeypatch.setenv("REPRO_STANDBY_DSN", UNREACHABLE)
    monkeypatch.setenv("REPRO_TARGET_DSN", UNREACHABLE)
    from repro_pipeline.definitions import tenant_repro_job_def

    result = dg.execute_job(dg.reconstructable(tenant_repro_job_def), instance=instance)
    assert not result.success
    failures = [event for event in result.all_events if event.is_step_failure]
    assert failures
    for failure in failures:
        error = failure.step_failure_data.error
        assert error is not None and error.cls_name == "Failure"
        assert error.message.startswith("dagster._core.definitions.events.Failure: this run has no partition")
    assert "connect" not in step_failure_messages(result)
