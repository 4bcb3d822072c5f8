"""Settings are read when a run uses them: a bad value fails that run with a clear message, and the code
location still loads. Real Dagster instance and executor, on the embedded stack."""

from __future__ import annotations

import math
import os

import dagster as dg
import psycopg
import pytest
from pydantic import ValidationError

from repro_pipeline.cli.launch import materialize_tenant
from repro_pipeline.definitions import defs
from repro_pipeline.defs.resources import SourceStandby, TargetServer
from repro_pipeline.defs.settings import positive_count, positive_setting, text_setting
from repro_pipeline.embedded.stack import Stack
from repro_pipeline.engine.config import load_config
from repro_pipeline.engine.errors import ConfigError, SecretError
from repro_pipeline.engine.secrets import Secret
from repro_pipeline_tests.conftest import PROJECT_ROOT
from repro_pipeline_tests.defs.run_results import step_failure_messages


def _databases(stack: Stack) -> set[str]:
    with psycopg.connect(stack.target_admin_dsn) as admin:
        return {str(name) for (name,) in admin.execute("SELECT datname FROM pg_database")}


@pytest.mark.parametrize(
    ("variable", "value", "failed_step"),
    [
        ("REPRO_MAX_REPLAY_LAG_SECONDS", "-5", "standby_health"),
        ("REPRO_MAX_REPLAY_LAG_BYTES", "lots", "standby_health"),
        ("REPRO_TTL_HOURS", "forty-eight", "tenant_closure_and_repro_database"),
    ],
)
def test_a_bad_setting_fails_the_run_that_uses_it_not_the_code_location(
    variable: str,
    value: str,
    failed_step: str,
    stack: Stack,
    pipeline_environment: dict[str, str],
    instance: dg.DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(variable, value)
    dg.Definitions.validate_loadable(defs())
    before = _databases(stack)
    result = materialize_tenant("451", instance)
    assert not result.success
    (failure,) = [event for event in result.all_events if event.is_step_failure]
    assert failure.step_key == failed_step
    assert f"{variable}={value!r} is not a positive number" in step_failure_messages(result)
    assert failure.step_failure_data.error is not None
    assert failure.step_failure_data.error.cls_name == "Failure"  # a user mistake: no traceback, no retry
    assert _databases(stack) == before


def test_a_configured_value_wins_over_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPRO_TTL_HOURS", "not a number")
    assert TargetServer(ttl_hours=2).ttl.total_seconds() == 7200
    with pytest.raises(ConfigError, match="REPRO_TTL_HOURS='not a number' is not a positive number"):
        _ = TargetServer().ttl
    monkeypatch.delenv("REPRO_TTL_HOURS")
    assert TargetServer().ttl.total_seconds() == 48 * 3600
    monkeypatch.setenv("REPRO_MAX_REPLAY_LAG_BYTES", "1024")
    monkeypatch.delenv("REPRO_MAX_REPLAY_LAG_SECONDS", raising=False)
    limits = SourceStandby().lag_limits
    assert (limits.max_replay_lag_seconds, limits.max_replay_lag_bytes) == (300, 1024)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (0, "greater than 0"),
        (-1, "greater than 0"),
        (math.inf, "finite"),
        (2161, "less than or equal to 2160"),
    ],
)
def test_a_configured_value_must_be_positive_and_finite(value: float, says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        TargetServer(ttl_hours=value)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("inf", "REPRO_TTL_HOURS='inf' is not a positive number"),
        ("nan", "REPRO_TTL_HOURS='nan' is not a positive number"),
        ("1e12", "a TTL of 1e+12 hours is longer than repro databases may live (2160 hours)"),
    ],
)
def test_an_endless_ttl_is_refused(monkeypatch: pytest.MonkeyPatch, value: str, says: str) -> None:
    monkeypatch.setenv("REPRO_TTL_HOURS", value)
    with pytest.raises(ConfigError) as raised:
        _ = TargetServer().ttl
    assert says in str(raised.value)


def test_settings_fall_back_to_the_variable_then_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REPRO_TEST_UNSET_VARIABLE", raising=False)
    assert text_setting(None, "REPRO_TEST_UNSET_VARIABLE", "fallback") == "fallback"
    assert positive_setting(None, "REPRO_TEST_UNSET_VARIABLE", 7) == 7
    monkeypatch.setenv("REPRO_TEST_SETTING", "2.5")
    assert text_setting(None, "REPRO_TEST_SETTING", "fallback") == "2.5"
    assert positive_setting(None, "REPRO_TEST_SETTING", 7) == 2.5
    assert text_setting("configured", "REPRO_TEST_SETTING", "fallback") == "configured"
    monkeypatch.setenv("REPRO_TEST_SETTING", "")
    with pytest.raises(ConfigError, match=r"set REPRO_TEST_SETTING to e\.g\. 7"):
        positive_setting(None, "REPRO_TEST_SETTING", 7)


@pytest.mark.parametrize("value", ["0", "-2", "2.5", "two", ""])
def test_a_load_worker_count_that_is_no_whole_number_of_at_least_one_is_refused(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("REPRO_LOAD_WORKERS", value)
    with pytest.raises(ConfigError, match=r"REPRO_LOAD_WORKERS=.* is not a whole number of at least 1"):
        _ = TargetServer().workers


def test_load_workers_default_to_the_core_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REPRO_LOAD_WORKERS", raising=False)
    assert TargetServer().workers == (os.cpu_count() or 1)
    monkeypatch.setenv("REPRO_LOAD_WORKERS", "3")
    assert TargetServer().workers == 3
    assert TargetServer(load_workers=1).workers == 1
    assert positive_count(None, "REPRO_TEST_UNSET_VARIABLE", 4) == 4


def test_the_load_workers_rows_each_default_to_50000_and_refuse_less_than_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REPRO_LOAD_WORKERS", "4")
    target = TargetServer()
    salt = Secret("s" * 64)
    config = load_config(
        PROJECT_ROOT / "config" / "mask-rules.yaml", PROJECT_ROOT / "config" / "commercial-extensions.yaml"
    )
    assert target.load_workers_for(config, salt).for_rows(120_000) == 2
    small = TargetServer(load_rows_per_worker=1_000)
    assert small.load_workers_for(config, salt).for_rows(120_000) == 4
    with pytest.raises(ValidationError, match="load_rows_per_worker"):
        TargetServer(load_rows_per_worker=0)


@pytest.mark.parametrize(
    ("variable", "read"), [("REPRO_STANDBY_DSN", "standby"), ("REPRO_TARGET_DSN", "target")]
)
def test_a_dsn_is_read_from_its_variable_only_and_an_unset_one_is_named(
    monkeypatch: pytest.MonkeyPatch, variable: str, read: str
) -> None:
    def dsn() -> str:
        return SourceStandby().dsn if read == "standby" else TargetServer().admin_dsn

    monkeypatch.setenv(variable, "postgresql://reader@standby.internal/app")
    assert dsn() == "postgresql://reader@standby.internal/app"
    monkeypatch.setenv(variable, " ")
    with pytest.raises(SecretError) as refused:
        dsn()
    assert refused.value.problem == f"{variable} is not set"
    monkeypatch.delenv(variable)
    with pytest.raises(SecretError, match=f"set {variable} to the libpq URL of "):
        dsn()
