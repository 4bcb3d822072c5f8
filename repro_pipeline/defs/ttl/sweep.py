"""The TTL sweep: an op job (cleanup, no asset) that drops expired repro databases, on an hourly schedule."""

from datetime import UTC, datetime

import dagster as dg

from repro_pipeline.defs.failures import reported_as_failure
from repro_pipeline.defs.resources import TargetServer
from repro_pipeline.engine.repro_databases import lifecycle


@dg.op
def drop_expired_repro_databases(context: dg.OpExecutionContext, target: TargetServer) -> list[str]:
    with reported_as_failure(), target.admin() as admin:
        sweep = lifecycle.drop_expired(admin, datetime.now(UTC))
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
