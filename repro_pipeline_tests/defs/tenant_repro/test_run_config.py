"""A run's config (TTL, lag limits, bug query): each value checked before any database is touched."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from repro_pipeline.defs.resources import MAX_TTL_HOURS
from repro_pipeline.defs.tenant_repro.run_config import (
    ReproDatabaseConfig,
    StandbyHealthConfig,
    run_lag_limits,
)
from repro_pipeline.engine.errors import ConfigError
from repro_pipeline.engine.source.standby import LagLimits


def test_no_query_is_no_check() -> None:
    assert ReproDatabaseConfig().query() is None
    assert ReproDatabaseConfig(repro_query="  \n").query() is None


def test_a_query_is_checked_and_named_as_the_run_configs() -> None:
    query = ReproDatabaseConfig(repro_query="SELECT 1;").query()
    assert query is not None and query.text == "SELECT 1"
    with pytest.raises(
        ConfigError, match="the run config's repro_query is refused: it is UPDATE, not a SELECT"
    ):
        ReproDatabaseConfig(repro_query="UPDATE invoices SET total_cents = 0").query()


# inf and nan passed "<= 0" and ended the step with a traceback (OverflowError, ValueError) when the
# timeout was turned into milliseconds; past 2^31 ms the server refused the setting with a confusing error.
@pytest.mark.parametrize(
    ("seconds", "shown"), [(0, "0"), (-1, "-1"), (math.inf, "inf"), (math.nan, "nan"), (3e6, "3e+06")]
)
def test_a_timeout_that_is_not_a_positive_finite_number_the_server_takes_is_refused(
    seconds: float, shown: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        ReproDatabaseConfig(repro_query="SELECT 1", repro_query_timeout_seconds=seconds).query()
    assert refused.value.problem == (
        f"repro_query_timeout_seconds is {shown}: it must be a positive number of seconds, at most 2.14748e+06"
    )


def test_no_ttl_is_the_deployments_and_one_within_the_longest_is_the_runs() -> None:
    deployment = timedelta(hours=48)
    assert ReproDatabaseConfig().ttl(deployment) == deployment
    assert ReproDatabaseConfig(ttl_hours=2).ttl(deployment) == timedelta(hours=2)
    assert ReproDatabaseConfig(ttl_hours=MAX_TTL_HOURS).ttl(deployment) == timedelta(hours=MAX_TTL_HOURS)


@pytest.mark.parametrize(
    ("hours", "shown"), [(0, "0"), (-3, "-3"), (math.nan, "nan"), (math.inf, "inf"), (2161, "2161")]
)
def test_a_ttl_that_is_not_positive_or_past_the_longest_is_refused(hours: float, shown: str) -> None:
    with pytest.raises(ConfigError) as refused:
        ReproDatabaseConfig(ttl_hours=hours).ttl(timedelta(hours=48))
    assert refused.value.problem == (
        f"ttl_hours in the run config is {shown}: it must be more than 0 and at most 2160 hours (90 days)"
    )


DEPLOYMENT_LAG = LagLimits(max_replay_lag_seconds=300, max_replay_lag_bytes=64 * 1024 * 1024)


def test_no_lag_limit_is_the_deployments_and_a_tighter_one_is_the_runs() -> None:
    assert StandbyHealthConfig().lag_limits(DEPLOYMENT_LAG) == DEPLOYMENT_LAG
    assert StandbyHealthConfig(max_replay_lag_seconds=5, max_replay_lag_bytes=1024).lag_limits(
        DEPLOYMENT_LAG
    ) == LagLimits(5, 1024)
    assert StandbyHealthConfig(max_replay_lag_seconds=300).lag_limits(DEPLOYMENT_LAG) == DEPLOYMENT_LAG


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        (
            {"max_replay_lag_seconds": 301},
            "max_replay_lag_seconds in the run config of standby_health is 301, looser than the deployment's "
            "limit of 300: a run may only ask for a fresher standby",
        ),
        (
            {"max_replay_lag_bytes": 64 * 1024 * 1024 + 1},
            "max_replay_lag_bytes in the run config of standby_health is 67108865, looser than the "
            "deployment's limit of 67108864: a run may only ask for a fresher standby",
        ),
        (
            {"max_replay_lag_seconds": 0},
            "max_replay_lag_seconds in the run config of standby_health is 0: it must be a positive number",
        ),
        (
            {"max_replay_lag_seconds": math.nan},
            "max_replay_lag_seconds in the run config of standby_health is nan: it must be a positive number",
        ),
        (
            {"max_replay_lag_bytes": -1},
            "max_replay_lag_bytes in the run config of standby_health is -1: it must be a positive number",
        ),
    ],
)
def test_a_looser_or_meaningless_lag_limit_is_refused(config: dict[str, float], problem: str) -> None:
    with pytest.raises(ConfigError) as refused:
        StandbyHealthConfig(**config).lag_limits(DEPLOYMENT_LAG)
    assert refused.value.problem == problem


def test_the_load_step_applies_the_lag_limits_of_the_runs_standby_health_config() -> None:
    assert run_lag_limits({}, DEPLOYMENT_LAG) == DEPLOYMENT_LAG
    assert run_lag_limits({"ops": {"standby_health": {}}}, DEPLOYMENT_LAG) == DEPLOYMENT_LAG
    run_config = {"ops": {"standby_health": {"config": {"max_replay_lag_seconds": 5}}}}
    assert run_lag_limits(run_config, DEPLOYMENT_LAG) == LagLimits(5, DEPLOYMENT_LAG.max_replay_lag_bytes)
    with pytest.raises(ConfigError, match="looser than the deployment's limit"):
        run_lag_limits(
            {"ops": {"standby_health": {"config": {"max_replay_lag_seconds": 900}}}}, DEPLOYMENT_LAG
        )
