"""The bug query's run config: checked before any database is touched."""

from __future__ import annotations

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


@pytest.mark.parametrize("seconds", [0, -1])
def test_a_timeout_that_is_not_positive_is_refused(seconds: float) -> None:
    with pytest.raises(ConfigError, match=f"repro_query_timeout_seconds is {seconds}: it must be positive"):
        ReproDatabaseConfig(repro_query="SELECT 1", repro_query_timeout_seconds=seconds).query()
