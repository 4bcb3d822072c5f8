"""Op jobs (operations, no data product) to list the repro databases, extend one's TTL and drop one now,
from the launchpad or ``repro-pipeline list|extend|drop``. Only a database with repro_pipeline's record is
ever extended or dropped."""

from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
from pydantic import Field

from repro_pipeline.defs.failures import reported_as_failure
from repro_pipeline.defs.repro_databases.observations import repro_database_observation
from repro_pipeline.defs.resources import MAX_TTL_HOURS, ReproSecretSink, TargetServer
from repro_pipeline.engine.repro_databases import lifecycle

LONGEST_LIFE = timedelta(hours=MAX_TTL_HOURS)


class ListConfig(dg.Config):
    organization_id: int | None = Field(default=None, description="only this organization's; unset: all")


@dg.op
def read_repro_databases(
    context: dg.OpExecutionContext, config: ListConfig, target: TargetServer
) -> dg.Output[list[dict[str, Any]]]:
    with reported_as_failure(), target.admin() as admin:
        registry = lifecycle.read_registry(admin)
    for problem in registry.unreadable:
        context.log.warning(f"skipped {problem}")
    databases = [
        database
        for database in registry.databases
        if config.organization_id is None or database.organization_id == config.organization_id
    ]
    listed = [listing(database) for database in databases]
    rows = [
        f"| {row['organization_id']} | {row['database']} | {row['status']} | {row['expires_at']} |"
        for row in listed
    ]
    table = "\n".join(["| organization | database | status | expires (UTC) |", "|---|---|---|---|", *rows])
    return dg.Output(listed, metadata={"databases": len(listed), "listing": dg.MetadataValue.md(table)})


def listing(database: lifecycle.ReproDatabase) -> dict[str, Any]:
    """One database as the list shows it: what it is, and whether its TTL has already run out."""
    return {
        "organization_id": database.organization_id,
        "database": database.name,
        "status": database.status,
        "created_at": database.created_at.isoformat(),
        "expires_at": database.expires_at.isoformat(),
        "expired": database.expires_at <= datetime.now(UTC),
    }


@dg.job(description="List the repro databases on the target server: organization, status, expiry")
def list_repro_databases() -> None:
    read_repro_databases()


class ExtendConfig(dg.Config):
    database: str = Field(description="the repro database, e.g. repro_org451_0123abcd")
    hours: float = Field(
        gt=0,
        allow_inf_nan=False,
        description=f"how much longer it lives, from its current expiry (from now, if that has passed); "
        f"at most {MAX_TTL_HOURS} hours from its creation in all",
    )


@dg.op
def extend_repro_database_ttl(
    context: dg.OpExecutionContext, config: ExtendConfig, target: TargetServer
) -> str:
    with reported_as_failure(), target.admin() as admin:
        extended = lifecycle.extend_ttl(
            admin, config.database, timedelta(hours=config.hours), LONGEST_LIFE, datetime.now(UTC)
        )
    context.log.info(f"{extended.name} now expires {extended.expires_at:%Y-%m-%d %H:%M} UTC")
    context.log_event(
        repro_database_observation(extended, extended.status, f"TTL extended by {config.hours:g} hours")
    )
    return extended.expires_at.isoformat()


@dg.job(description="Give one repro database more time to live, within the longest a repro database may live")
def extend_repro_database() -> None:
    extend_repro_database_ttl()


class DropConfig(dg.Config):
    database: str = Field(description="the repro database, e.g. repro_org451_0123abcd")
    reason: str = Field(default="dropped on request", description="said on its organization's partition")


@dg.op
def drop_repro_database_now(
    context: dg.OpExecutionContext, config: DropConfig, target: TargetServer, secret_sink: ReproSecretSink
) -> str:
    with reported_as_failure(), target.admin() as admin:
        dropped = lifecycle.drop_now(admin, config.database)
    with reported_as_failure():
        secret_sink.sink(context.instance).remove(dropped.name)  # its login went with it
    context.log.info(f"dropped {dropped.name} (org {dropped.organization_id})")
    context.log_event(repro_database_observation(dropped, "dropped", config.reason))
    return dropped.name


@dg.job(description="Drop one repro database now, before its TTL runs out")
def drop_repro_database() -> None:
    drop_repro_database_now()
