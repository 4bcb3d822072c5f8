"""Launch one tenant's run through the Dagster instance, in this process, as the job's own executor runs
its steps (the in-process executor). The job is resolved once: ``execute_job`` reconstructs it from its code
pointer several times a run, and each loads every definition again (0.1 s each)."""

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import dagster as dg

from repro_pipeline.definitions import defs, tenant_repro_job_def, ttl_sweep_job_def
from repro_pipeline.defs.tenant_repro.partitions import ORGANIZATIONS
from repro_pipeline.defs.tenant_repro.repro_query import repro_query_run_config
from repro_pipeline.engine.subset.tenant import parse_organization_id


def materialize_tenant(
    organization_id: str | int,
    instance: dg.DagsterInstance,
    *,
    console_log_level: str = "INFO",
    repro_query: str = "",
) -> dg.ExecuteInProcessResult:
    """Add the organization's partition (validated first) and run the tenant job for it, with the bug query
    ``repro_query`` if one is given."""
    key = str(parse_organization_id(organization_id))
    instance.add_dynamic_partitions(ORGANIZATIONS, [key])
    return tenant_repro_job_def().execute_in_process(
        instance=instance,
        partition_key=key,
        run_config={
            **_console(console_log_level),
            **(repro_query_run_config(repro_query) if repro_query else {}),
        },
        raise_on_error=False,
    )


def hand_off_again(
    organization_id: int, database: str, instance: dg.DagsterInstance, *, console_log_level: str = "INFO"
) -> dg.ExecuteInProcessResult:
    """Run the organization's handoff alone, for the named repro database."""
    return tenant_repro_job_def().execute_in_process(
        instance=instance,
        partition_key=str(organization_id),
        asset_selection=[dg.AssetKey("repro_handoff")],
        run_config={
            **_console(console_log_level),
            "ops": {"repro_handoff": {"config": {"database": database}}},
        },
        raise_on_error=False,
    )


@dataclass(frozen=True)
class SweepOutcome:
    success: bool
    dropped: tuple[str, ...]
    run_id: str
    failures: tuple[str, ...]
    warnings: tuple[str, ...]
    leftovers: dict[str, list[str]]  # what else it removed, by its metadata key


_SWEEP_LEFTOVERS = ("leftover_logins_dropped", "leftover_secrets_removed", "invalid_partitions_removed")


def run_ttl_sweep(instance: dg.DagsterInstance, *, console_log_level: str = "INFO") -> SweepOutcome:
    with dg.execute_job(
        dg.reconstructable(ttl_sweep_job_def), instance=instance, run_config=_console(console_log_level)
    ) as result:
        warnings = tuple(
            entry.user_message
            for entry in instance.all_logs(result.run_id)
            if entry.level == logging.WARNING and not entry.is_dagster_event
        )
        if not result.success:
            return SweepOutcome(False, (), result.run_id, step_failures(result), warnings, {})
        dropped = tuple(result.output_for_node("drop_expired_repro_databases"))
        metadata = {
            key: value
            for event in result.all_events
            if event.is_successful_output
            for key, value in event.step_output_data.metadata.items()
        }
        leftovers = {
            key: [str(name) for name in value]
            for key in _SWEEP_LEFTOVERS
            if key in metadata and isinstance(value := metadata[key].value, list)
        }
        return SweepOutcome(True, dropped, result.run_id, (), warnings, leftovers)


def step_failures(result: dg.JobExecutionResult | dg.ExecuteInProcessResult) -> tuple[str, ...]:
    """Each failed step's message: a ``dg.Failure``'s description as raised, else the error's message."""
    messages = []
    for event in result.all_events:
        if not event.is_step_failure:
            continue
        data = event.step_failure_data
        if data.user_failure_data is not None and data.user_failure_data.description:
            messages.append(data.user_failure_data.description.strip())
        elif data.error is not None:
            messages.append(data.error.message.strip())
    return tuple(messages)


def extend_repro_database(
    database: str, hours: float, instance: dg.DagsterInstance, *, console_log_level: str = "INFO"
) -> dg.ExecuteInProcessResult:
    return _run_op_job(
        "extend_repro_database",
        "extend_repro_database_ttl",
        {"database": database, "hours": hours},
        instance,
        console_log_level,
    )


def drop_repro_database(
    database: str, instance: dg.DagsterInstance, *, console_log_level: str = "INFO"
) -> dg.ExecuteInProcessResult:
    return _run_op_job(
        "drop_repro_database", "drop_repro_database_now", {"database": database}, instance, console_log_level
    )


def _run_op_job(
    job: str, op: str, config: Mapping[str, object], instance: dg.DagsterInstance, console_log_level: str
) -> dg.ExecuteInProcessResult:
    """One op job in this process, recorded on the instance like a run from the launchpad."""
    return (
        defs()
        .resolve_job_def(job)
        .execute_in_process(
            run_config={**_console(console_log_level), "ops": {op: {"config": dict(config)}}},
            instance=instance,
            raise_on_error=False,
        )
    )


def _console(level: str) -> dict[str, object]:
    return {"loggers": {"console": {"config": {"log_level": level}}}}
