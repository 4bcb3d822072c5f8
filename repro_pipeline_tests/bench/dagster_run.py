"""The whole partition through Dagster, in a child process of its own (dagster is imported there only, so
the other measures' peak RSS does not carry it): the ``tenant_repro`` job run for the organization on a real
instance in a temporary ``DAGSTER_HOME``, and its time split per step from the run's event log."""

from __future__ import annotations

import os
import time
from typing import Any

import dagster as dg

from repro_pipeline.cli.launch import materialize_tenant
from repro_pipeline.engine import dsn
from repro_pipeline.engine.repro_databases.lifecycle import drop_repro_database
from repro_pipeline_tests.bench.measures import EXTENSIONS, MASK_RULES, BenchFailure
from repro_pipeline_tests.bench.source import BenchTenant

# Settings of the deployment that would reach other systems: the bench posts nowhere.
_UNSET = ("SLACK_BOT_TOKEN", "GITHUB_TOKEN", "REPRO_GITHUB_REPOSITORY", "REPRO_SECRET_DIR")
_STEP_ENDS = {"STEP_SUCCESS", "STEP_FAILURE"}


def measure_dagster(tenant: BenchTenant, dagster_home: str) -> dict[str, Any]:
    """Seconds from launching the run to its result, and within it: launch (until the first step starts),
    each step, and teardown (after the last step ended)."""
    os.environ.update(
        {
            "DAGSTER_HOME": dagster_home,
            "REPRO_STANDBY_DSN": tenant.standby_dsn,
            "REPRO_TARGET_DSN": tenant.target_admin_dsn,
            "ANONYMIZATION_SALT": tenant.salt,
            "REPRO_MASK_RULES": str(MASK_RULES),
            "REPRO_COMMERCIAL_EXTENSIONS": str(EXTENSIONS),
        }
    )
    for variable in _UNSET:
        os.environ.pop(variable, None)
    instance = dg.DagsterInstance.get()
    began = time.time()
    result = materialize_tenant(tenant.organization, instance, console_log_level="ERROR")
    ended = time.time()
    database = _materialized_database(result)
    try:
        failed = [check.check_name for check in result.get_asset_check_evaluations() if not check.passed]
        if not result.success or failed:
            raise BenchFailure(
                f"{tenant.label}: the Dagster run {result.run_id} did not succeed (failed checks: {failed or 'none'})"
            )
        steps = _step_seconds(instance, result.run_id)
    finally:
        if database is not None:
            with dsn.connect(tenant.target_admin_dsn, role="target server", autocommit=True) as admin:
                drop_repro_database(admin, database)
    first_start = min(start for start, _ in steps.values())
    last_end = max(end for _, end in steps.values())
    return {
        "seconds": ended - began,
        "launch_seconds": first_start - began,
        "step_seconds": {step: end - start for step, (start, end) in steps.items()},
        "teardown_seconds": ended - last_end,
    }


def _step_seconds(instance: dg.DagsterInstance, run_id: str) -> dict[str, tuple[float, float]]:
    """Each step's start and end timestamps, from the run's event log."""
    starts: dict[str, float] = {}
    ends: dict[str, float] = {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or entry.step_key is None:
            continue
        if event.event_type_value == "STEP_START":
            starts[entry.step_key] = entry.timestamp
        elif event.event_type_value in _STEP_ENDS:
            ends[entry.step_key] = entry.timestamp
    return {
        step: (start, ends[step])
        for step, start in sorted(starts.items(), key=lambda item: item[1])
        if step in ends
    }


def _materialized_database(result: dg.ExecuteInProcessResult) -> str | None:
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        if materialization.asset_key == dg.AssetKey("repro_database"):
            return str(materialization.metadata["database"].value)
    return None
