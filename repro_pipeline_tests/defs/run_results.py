"""Reading a Dagster run's outcome in tests."""

from __future__ import annotations

import dagster as dg


def step_failure_messages(result: dg.JobExecutionResult | dg.ExecuteInProcessResult) -> str:
    """The error messages of the run's failed steps, one a line."""
    return "\n".join(
        event.step_failure_data.error.message
        for event in result.all_events
        if event.is_step_failure and event.step_failure_data.error is not None
    )


def materialized_database(result: dg.JobExecutionResult | dg.ExecuteInProcessResult) -> str:
    """The repro database the run materialized (its ``repro_database`` metadata)."""
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        if materialization.asset_key == dg.AssetKey("repro_database"):
            return str(materialization.metadata["database"].value)
    raise AssertionError("repro_database was not materialized")
