"""Launch one tenant's run through the Dagster instance, on the same executor path as the UI."""

from dataclasses import dataclass

import dagster as dg

from repro_pipeline.definitions import tenant_repro_job_def, ttl_sweep_job_def
from repro_pipeline.defs.tenant_repro.partitions import ORGANIZATIONS
from repro_pipeline.engine.subset.tenant import parse_organization_id


def materialize_tenant(
    organization_id: str | int, instance: dg.DagsterInstance, *, console_log_level: str = "INFO"
) -> dg.JobExecutionResult:
    """Add the organization's partition (validated first) and run the tenant job for it."""
    key = str(parse_organization_id(organization_id))
    instance.add_dynamic_partitions(ORGANIZATIONS, [key])
    return dg.execute_job(
        dg.reconstructable(tenant_repro_job_def),
        instance=instance,
        tags={"dagster/partition": key},
        run_config=_console(console_log_level),
    )


def hand_off_again(
    organization_id: int, database: str, instance: dg.DagsterInstance, *, console_log_level: str = "INFO"
) -> dg.JobExecutionResult:
    """Run the organization's handoff alone, for the named repro database."""
    return dg.execute_job(
        dg.reconstructable(tenant_repro_job_def),
        instance=instance,
        tags={"dagster/partition": str(organization_id)},
        asset_selection=[dg.AssetKey("repro_handoff")],
        run_config={
            **_console(console_log_level),
            "ops": {"repro_handoff": {"config": {"database": database}}},
        },
    )


@dataclass(frozen=True)
class SweepOutcome:
    success: bool
    dropped: tuple[str, ...]


def run_ttl_sweep(instance: dg.DagsterInstance, *, console_log_level: str = "INFO") -> SweepOutcome:
    with dg.execute_job(
        dg.reconstructable(ttl_sweep_job_def), instance=instance, run_config=_console(console_log_level)
    ) as result:
        if not result.success:
            return SweepOutcome(False, ())
        return SweepOutcome(True, tuple(result.output_for_node("drop_expired_repro_databases")))


def _console(level: str) -> dict[str, object]:
    return {"loggers": {"console": {"config": {"log_level": level}}}}
