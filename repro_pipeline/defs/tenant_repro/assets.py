"""The tenant repro assets: standby health, closure, masked repro database, Slack handoff."""

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from repro_pipeline.defs.failures import reported_as_failure
from repro_pipeline.defs.resources import MaskingConfig, SlackHandoff, SourceStandby, TargetServer
from repro_pipeline.defs.tenant_repro.partitions import organizations
from repro_pipeline.engine.errors import TargetError
from repro_pipeline.engine.load.loader import load_repro
from repro_pipeline.engine.load.plan import SubsetPlan, plan_subset
from repro_pipeline.engine.load.report import plan_summary
from repro_pipeline.engine.repro_databases import lifecycle
from repro_pipeline.engine.repro_databases.manifest import REQUIRED_CHECKS, finish_run, unpassed_checks
from repro_pipeline.engine.source.snapshot import open_source_snapshot
from repro_pipeline.engine.source.standby import read_standby_health, require_ready_standby
from repro_pipeline.engine.subset.tenant import parse_organization_id

GROUP = "tenant_repro"
TENANT_CLOSURE = dg.AssetKey("tenant_closure")
REPRO_DATABASE = dg.AssetKey("repro_database")


@dg.asset(partitions_def=organizations, group_name=GROUP, kinds={"postgres"})
def standby_health(context: dg.AssetExecutionContext, standby: SourceStandby) -> dg.MaterializeResult:  # type: ignore[type-arg]
    """The source is a hot standby in recovery, replaying, and within the configured lag."""
    with reported_as_failure():
        parse_organization_id(context.partition_key)
        with standby.connect() as conn:
            health = read_standby_health(conn)
        require_ready_standby(health, standby.lag_limits, source=standby.description)
        for warning in health.warnings():
            context.log.warning(warning)
        if not health.hot_standby_feedback:
            context.log.warning(
                f"{standby.description} runs with hot_standby_feedback off: a long repro read holds back its "
                "replay, and is cancelled after max_standby_streaming_delay"
            )
    return dg.MaterializeResult(
        metadata={
            "source": standby.description,
            "replay_lag_seconds": health.replay_lag_seconds,
            "replay_lag_bytes": health.replay_lag_bytes,
            "replay_lsn": health.replay_lsn or "",
            "wal_receiver": health.receiver_status or "",
            "hot_standby_feedback": health.hot_standby_feedback,
            "source_role": health.role,
            "source_role_is_superuser": health.superuser,
        }
    )


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            TENANT_CLOSURE, deps=[standby_health], description="The tenant's FK closure on the standby"
        ),
        dg.AssetSpec(REPRO_DATABASE, deps=[TENANT_CLOSURE], description="The masked repro database"),
    ],
    partitions_def=organizations,
    group_name=GROUP,
)
def tenant_closure_and_repro_database(
    context: dg.AssetExecutionContext,
    standby: SourceStandby,
    target: TargetServer,
    masking: MaskingConfig,
) -> Iterator[dg.MaterializeResult]:  # type: ignore[type-arg]
    """Closure and load read one snapshot of the standby, so they run as one step."""
    with reported_as_failure():
        organization_id = parse_organization_id(context.partition_key)
        config, salt = masking.load()
        started_at = datetime.now(UTC)
        with open_source_snapshot(standby.dsn, standby.session_limits) as snapshot:
            # Again inside the snapshot: the standby may have fallen behind since standby_health ran.
            require_ready_standby(
                read_standby_health(snapshot.conn), standby.lag_limits, source=snapshot.source
            )
            plan = plan_subset(snapshot, config, salt, organization_id)
            context.log.info(f"closure: {plan.closure.total_rows} rows in {plan.closure.passes} passes")
            yield dg.MaterializeResult(
                asset_key=TENANT_CLOSURE, metadata=_closure_metadata(plan, snapshot.source)
            )
            with target.admin() as admin:
                database = lifecycle.create_repro_database(
                    admin,
                    organization_id=organization_id,
                    run_id=context.run.run_id,
                    ttl=target.ttl,
                    now=started_at,
                )
            try:
                report = load_repro(
                    snapshot,
                    target.database_dsn(database.name),
                    plan,
                    run_id=context.run.run_id,
                    started_at=started_at,
                    batch_size=config.mask_rules.batch_size,
                )
            except BaseException:
                with target.admin() as admin:
                    lifecycle.drop_repro_database(admin, database.name)
                raise
        with target.admin() as admin:
            lifecycle.mark(admin, database, "loaded")
    yield dg.MaterializeResult(
        asset_key=REPRO_DATABASE,
        metadata={
            "database": database.name,
            "expires_at": dg.MetadataValue.timestamp(database.expires_at),
            "dagster/row_count": sum(report.loaded_rows.values()),
            "rows_by_table": dg.MetadataValue.md(
                _table_markdown(
                    ["table", "rows"], [[str(t), str(n)] for t, n in sorted(report.loaded_rows.items())]
                )
            ),
            "load_seconds": round(report.seconds, 3),
        },
    )


def repro_database_of(
    context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext, target: TargetServer
) -> lifecycle.ReproDatabase:
    """The partition's repro database that this run made (its name derives from the run id, and the
    target's record says which run made it); in a run that made none, such as a check or the handoff
    launched on its own, the one named by the partition's latest ``repro_database`` materialization."""
    organization_id = parse_organization_id(context.partition_key)
    run_id = context.run.run_id
    with target.admin() as admin:
        databases = {database.name: database for database in lifecycle.list_repro_databases(admin)}
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


def _closure_metadata(plan: SubsetPlan, source: str) -> dict[str, Any]:
    summary = plan_summary(plan)
    rows = [
        [table["table"], str(table["rows"]), "; ".join(f"{r}: {n}" for r, n in table["brought_by"].items())]
        for table in summary["tables"]
    ]
    return {
        "organization_id": plan.organization_id,
        "source": source,
        "passes": summary["passes"],
        "dagster/row_count": summary["total_rows"],
        "rows_by_table": dg.MetadataValue.md(_table_markdown(["table", "rows", "brought by"], rows)),
        "row_counts": dg.MetadataValue.json(
            {table["table"]: table["rows"] for table in summary["tables"] if table["strategy"] != "exclude"}
        ),
        "plan": dg.MetadataValue.json(summary),
        "config_hash": plan.config_hash,
        "warnings": dg.MetadataValue.md("\n".join(f"- {w}" for w in plan.warnings) or "none"),
    }


def _table_markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return "\n".join(lines)


@dg.asset(partitions_def=organizations, group_name=GROUP, deps=[REPRO_DATABASE], kinds={"slack"})
def repro_handoff(
    context: dg.AssetExecutionContext, target: TargetServer, slack: SlackHandoff
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    """Tells the support channel the repro database is ready: where its DSN is kept, never the DSN.

    Only a database on which every check passed is handed off, even when this asset runs on its own.
    """
    with reported_as_failure():
        organization_id = parse_organization_id(context.partition_key)
        database = repro_database_of(context, target)
        name = database.name
        if database.status == "failed" or database.expires_at <= datetime.now(UTC):
            raise TargetError(
                f"{name} is not handed off: it is {'retired' if database.status == 'failed' else 'expired'} "
                f"(since {database.expires_at:%Y-%m-%d %H:%M} UTC) and waits for the sweep to drop it",
                "materialize repro_database for this partition again",
            )
        with target.connect_database(name) as conn:
            unpassed = unpassed_checks(conn, REQUIRED_CHECKS)
        if unpassed:
            raise TargetError(
                f"{name} is not handed off: the checks {', '.join(unpassed)} have not passed on it",
                "run the checks of repro_database for this partition, or materialize it again",
            )
        text = (
            f"Repro DB ready for org {organization_id}: database `{name}`. "
            f"DSN in {slack.where_the_dsn_is}. TTL: expires {database.expires_at:%Y-%m-%d %H:%M} UTC."
        )
        if slack.enabled:
            slack.post(text)
            context.log.info(f"posted the handoff to {slack.destination}")
        else:
            context.log.warning(
                "Slack is not configured (SLACK_BOT_TOKEN is unset): the handoff was not posted"
            )
        with target.admin() as admin:
            lifecycle.mark(admin, database, "ready")
        with target.connect_database(name) as conn:
            finish_run(conn, "ready")
    return dg.MaterializeResult(
        metadata={"message": text, "channel": slack.destination, "posted": slack.enabled, "database": name}
    )
