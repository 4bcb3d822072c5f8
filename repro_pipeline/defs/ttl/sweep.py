"""The TTL sweep: an op job (cleanup, no asset) that drops expired repro databases, and those a run that no
longer runs left half-built, on an hourly schedule; an expired one's drop is posted to Slack and its ticket.
Then it removes what dropped databases left behind: their logins and kept DSNs, and the partitions whose key names no organization."""

from datetime import UTC, datetime

import dagster as dg
import psycopg

from repro_pipeline.defs.failures import reported_as_failure
from repro_pipeline.defs.repro_databases.observations import repro_database_observation
from repro_pipeline.defs.resources import ReproSecretSink, SlackHandoff, TargetServer
from repro_pipeline.defs.ttl.expiry_notices import post_expiry_notices
from repro_pipeline.defs.ttl.invalid_partitions import prune_invalid_partitions
from repro_pipeline.engine.errors import ReproError
from repro_pipeline.engine.repro_databases import lifecycle
from repro_pipeline.engine.repro_databases.leftovers import remove_leftovers
from repro_pipeline.engine.repro_databases.manifest import REQUIRED_CHECKS, unpassed_checks


@dg.op
def drop_expired_repro_databases(
    context: dg.OpExecutionContext, target: TargetServer, secret_sink: ReproSecretSink, slack: SlackHandoff
) -> dg.Output[list[str]]:
    def run_state(run_id: str) -> lifecycle.RunState:
        run = context.instance.get_run_by_id(run_id)
        if run is None:
            return "unknown"
        return "finished" if run.is_finished else "running"

    def passed_every_check(database: lifecycle.ReproDatabase) -> bool:
        try:
            with target.connect_database(database.name) as conn:
                return not unpassed_checks(conn, REQUIRED_CHECKS)
        except (ReproError, psycopg.Error):
            return False  # no record to read (a load cut short), or no database to connect to

    with reported_as_failure(), target.admin() as admin:
        now = datetime.now(UTC)
        abandoned = lifecycle.retire_abandoned(admin, run_state, passed_every_check, now)
        for database in abandoned.databases:
            reason = f"its run {database.run_id} no longer runs"
            context.log.warning(f"retired {database.name}: {reason}")
            context.log_event(repro_database_observation(database, "retired", reason))
        sweep = lifecycle.drop_expired(admin, now)
    sink = secret_sink.sink(context.instance)
    for database in sweep.databases:
        context.log.info(
            f"dropped {database.name} (org {database.organization_id}, expired {database.expires_at})"
        )
        why = (
            "retired" if database.status == "failed" else f"expired {database.expires_at:%Y-%m-%d %H:%M} UTC"
        )
        context.log_event(repro_database_observation(database, "dropped", f"the TTL sweep: {why}"))
        try:
            sink.remove(database.name)  # its login went with it: the DSN kept for it is of no use
        except ReproError as error:
            context.log.warning(f"{database.name}: {error.problem}")
        if database.status != "failed":  # a retired database's run failed, and said so when it did
            post_expiry_notices(context, slack, database)
    with reported_as_failure(), target.admin() as admin:
        leftovers = remove_leftovers(admin, sink)
    for role in leftovers.logins:
        context.log.info(f"dropped the login {role}: its database is gone")
    for name in leftovers.secrets:
        context.log.info(f"removed the DSN kept for {name}: its database is gone")
    for skipped in (*abandoned.skipped, *sweep.skipped, *leftovers.skipped):
        context.log.warning(f"skipped {skipped}")
    if not sweep.databases:
        context.log.info("no repro database has expired")
    pruned = prune_invalid_partitions(context.instance)
    if pruned:
        context.log.info(
            f"removed the partitions {', '.join(map(repr, pruned))}: not organization ids, never materialized"
        )
    dropped = [database.name for database in sweep.databases]
    return dg.Output(
        dropped,
        metadata={
            "dropped": dg.MetadataValue.json(dropped),
            "leftover_logins_dropped": dg.MetadataValue.json(leftovers.logins),
            "leftover_secrets_removed": dg.MetadataValue.json(leftovers.secrets),
            "invalid_partitions_removed": dg.MetadataValue.json(pruned),
        },
    )


@dg.job(
    description="Drop every repro database whose TTL has run out, and remove the partitions whose key is not "
    "an organization id and was never materialized"
)
def ttl_sweep() -> None:
    drop_expired_repro_databases()


ttl_sweep_schedule = dg.ScheduleDefinition(
    job=ttl_sweep,
    cron_schedule="0 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
