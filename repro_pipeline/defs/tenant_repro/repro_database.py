"""Which repro database a step works on: the one its run made, or the partition's latest."""

import dagster as dg

from repro_pipeline.defs.resources import TargetServer
from repro_pipeline.defs.tenant_repro.partitions import organization_of
from repro_pipeline.engine.errors import TargetError
from repro_pipeline.engine.repro_databases import lifecycle

STANDBY_HEALTH = dg.AssetKey("standby_health")
TENANT_CLOSURE = dg.AssetKey("tenant_closure")
REPRO_DATABASE = dg.AssetKey("repro_database")
REPRO_HANDOFF = dg.AssetKey("repro_handoff")


def repro_database_of(
    context: dg.AssetExecutionContext, target: TargetServer, named: str = ""
) -> lifecycle.ReproDatabase:
    """The partition's repro database ``named``, if given; else the one this run made (its name derives
    from the run id, and the target's record says which run made it); in a run that made none, such as
    the checks or the handoff launched on their own, the one named by the partition's latest
    ``repro_database`` materialization."""
    organization_id = organization_of(context)
    run_id = context.run.run_id
    with target.admin() as admin:
        databases = {database.name: database for database in lifecycle.list_repro_databases(admin)}
    if named:
        database = databases.get(named)
        if database is None or database.organization_id != organization_id:
            raise TargetError(
                f"the target server has no repro database {named!r} of organization {organization_id}",
                "name a database of this partition's organization (its repro_database materializations say which)",
            )
        return database
    own = databases.get(lifecycle.repro_database_name(organization_id, run_id))
    if own is not None and own.run_id == run_id:
        return own
    name = _latest_materialized_database(context.instance, context.partition_key)
    if name not in databases:
        raise TargetError(
            f"the repro database {name} of organization {organization_id} is gone from the target server",
            "materialize repro_database for this partition again",
        )
    return databases[name]


def _latest_materialized_database(instance: dg.DagsterInstance, partition_key: str) -> str:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=REPRO_DATABASE, asset_partitions=[partition_key]), limit=1
    ).records
    materialization = records[0].asset_materialization if records else None
    if materialization is None:
        raise TargetError(
            f"organization {partition_key} has no materialized {REPRO_DATABASE.to_user_string()}",
            f"materialize {REPRO_DATABASE.to_user_string()} for this partition first",
        )
    return str(materialization.metadata["database"].value)
