"""The TTL sweep: an op job (cleanup, no asset) that drops expired repro databases, and those a run that no
longer runs left half-built, on an hourly schedule."""

from datetime import UTC, datetime

import dagster as dg

from repro_pipeline.defs.failures import reported_as_failure
from repro_pipeline.defs.resources import TargetServer
from repro_pipeline.engine.repro_databases import lifecycle


@dg.op
def drop_expired_repro_databases(context: dg.OpExecutionContext, target: TargetServer) -> list[str]:
    def run_state(run_id: str) -> lifecycle.RunState:
        run = context.instance.get_run_by_id(run_id)
        if run is None:
            return "unknown"
        return "finished" if run.is_finished else "running"

    with reported_as_failure(), target.admin() as admin:
        now = datetime.now(UTC)
        for database in lifecycle.retire_abandoned(admin, run_state, now):
            context.log.warning(f"retired {database.name}: its run {database.run_id} no longer runs")
        sweep = lifecycle.drop_expired(admin, now)
    for database in sweep.dropped:
        context.log.info(
            f"dropped {database.name} (org {database.organization_id}, expired {database.expires_at})"
        )
    for skipped in sweep.skipped:
        context.log.warning(f"skipped {skipped}")
    if not sweep.dropped:
        context.log.info("no repro database has expired")
    return [database.name for database in sweep.dropped]


@dg.job(description="Drop every repro database whose TTL has run out")
def ttl_sweep() -> None:
    drop_expired_repro_databases()


ttl_sweep_schedule = dg.ScheduleDefinition(
    job=ttl_sweep,
    cron_schedule="0 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
