"""The bug query's run config: checked before any database is touched."""

from __future__ import annotations

import math

import pytest

from repro_pipeline.defs.tenant_repro.repro_query import ReproDatabaseConfig
from repro_pipeline.engine.errors import ConfigError


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
