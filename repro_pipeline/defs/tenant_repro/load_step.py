"""The load's step: the closure, the masked repro database, one asset per table of the catalog snapshot, and
their checks, all from one snapshot of the standby."""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg

from repro_pipeline.defs.failures import reported_as_failure
from repro_pipeline.defs.resources import MaskingConfig, ReproSecretSink, SourceStandby, TargetServer
from repro_pipeline.defs.tenant_repro.checks import CHECK_SPECS, check_results
from repro_pipeline.defs.tenant_repro.existing_database import (
    databases_to_replace,
    drop_replaced_when_checked,
)
from repro_pipeline.defs.tenant_repro.load_metadata import LOAD_BY_TABLE, load_by_table
from repro_pipeline.defs.tenant_repro.partitions import (
    OWNERS,
    PARTITION_KEY_HELP,
    organization_of,
    organizations,
)
from repro_pipeline.defs.tenant_repro.repro_database import (
    REPRO_DATABASE,
    STANDBY_HEALTH,
    TENANT_CLOSURE,
    repro_database_of,
)
from repro_pipeline.defs.tenant_repro.repro_query import (
    REPRO_DATABASE_STEP,
    REPRO_QUERY_CHECK,
    REPRO_QUERY_SPEC,
    repro_query_result,
)
from repro_pipeline.defs.tenant_repro.run_config import ReproDatabaseConfig, run_lag_limits
from repro_pipeline.defs.tenant_repro.table_assets import (
    CopiedTable,
    load_keys,
    table_check_specs,
    table_materializations,
    table_specs,
)
from repro_pipeline.engine import dsn
from repro_pipeline.engine.errors import ConfigError
from repro_pipeline.engine.load.loader import LoadReport, ReplicatedSchema, load_repro, replicated_schema
from repro_pipeline.engine.load.plan import SubsetPlan, plan_subset
from repro_pipeline.engine.load.report import plan_summary
from repro_pipeline.engine.load.target_fit import read_target_server
from repro_pipeline.engine.repro_databases import lifecycle
from repro_pipeline.engine.source.catalog_snapshot import REFRESH_COMMAND
from repro_pipeline.engine.source.snapshot import open_source_snapshot
from repro_pipeline.engine.source.standby import read_standby_health, require_ready_standby
from repro_pipeline.engine.verify.by_table import table_bytes
from repro_pipeline.engine.verify.checks import originals_read_meanwhile, read_originals

GROUP = "tenant_repro"


def closure_and_repro_database(tables: Sequence[CopiedTable] = ()) -> dg.AssetsDefinition:
    """The load's step, with an asset and two checks per table of ``tables`` beside ``repro_database`` (none:
    ``repro_database`` alone, as before any catalog snapshot was taken)."""

    @dg.multi_asset(
        name=REPRO_DATABASE_STEP,
        specs=[
            dg.AssetSpec(
                TENANT_CLOSURE,
                deps=[STANDBY_HEALTH],
                description=f"The organization's FK closure on the standby: the rows a repro copies. {PARTITION_KEY_HELP}",
                kinds={"postgres"},
                owners=OWNERS,
            ),
            dg.AssetSpec(
                REPRO_DATABASE,
                deps=[TENANT_CLOSURE],
                description="The organization's masked repro database on the target server; its metadata says "
                f"how to connect. {PARTITION_KEY_HELP}",
                kinds={"postgres"},
                owners=OWNERS,
            ),
            *table_specs(tables),
        ],
        check_specs=[*CHECK_SPECS, REPRO_QUERY_SPEC, *table_check_specs(tables)],
        # The closure alone, the checks alone or the bug query alone are subsets; the database and its
        # tables are not (refused below): they are one load.
        can_subset=True,
        partitions_def=organizations,
        group_name=GROUP,
    )
    def tenant_closure_and_repro_database(
        context: dg.AssetExecutionContext,
        config: ReproDatabaseConfig,
        standby: SourceStandby,
        target: TargetServer,
        masking: MaskingConfig,
        secret_sink: ReproSecretSink,
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:  # type: ignore[type-arg]
        """Closure, load and checks read one snapshot of the standby, so they run as one step; then the run's
        bug query, if it has one, on the repro database.

        Launched for the checks alone, the step checks the partition's latest repro database against a closure
        computed in a fresh snapshot (the bug query alone needs no snapshot).
        """
        selected_load = load_keys(tables) & context.selected_asset_keys
        loads = bool(selected_load)
        selected_checks = {key.name for key in context.selected_asset_check_keys}
        checks = bool(selected_checks - {REPRO_QUERY_CHECK})
        with reported_as_failure():
            if loads and selected_load != load_keys(tables):
                raise ConfigError(
                    "repro_database and its tables' assets are one load: this run selects "
                    f"{len(selected_load)} of its {len(load_keys(tables))} assets",
                    "materialize them together: launch the tenant_repro job (its launchpad in the UI, or "
                    "`repro-pipeline materialize ORGANIZATION_ID`), or select repro_database with every "
                    "repro/<schema>/<table> asset",
                )
            organization_id = organization_of(context)
            ttl = config.ttl(target.ttl) if loads else None
            lag_limits = run_lag_limits(context.run.run_config, standby.lag_limits)
            query = config.query() if REPRO_QUERY_CHECK in selected_checks else None
            if REPRO_QUERY_CHECK in selected_checks and query is None:
                context.log.info("the run has no repro_query: the repro_query check is not evaluated")
            rules, salt = masking.load()
            started_at = datetime.now(UTC)
            checked = None if loads or not (checks or query) else repro_database_of(context, target)
            loaded: tuple[lifecycle.ReproDatabase, LoadReport] | None = None
            target_server = None
            replaced: list[lifecycle.ReproDatabase] = []
            if loads:  # the plan refuses a schema the target server cannot take, before anything is written
                with target.admin() as admin:
                    target_server = read_target_server(admin)
                    replaced = databases_to_replace(
                        admin, rules.mask_rules.on_existing_data, organization_id, started_at
                    )
            schema: ReplicatedSchema | None = None
            plan: SubsetPlan | None = None
            originals = None
            if loads or checks or TENANT_CLOSURE in context.selected_asset_keys:
                workers = target.load_workers_for(rules, salt) if loads else None
                if workers is not None:
                    workers.start_server()  # its imports run while the closure runs on the standby
                with open_source_snapshot(standby.dsn, standby.session_limits) as snapshot:
                    # Again inside the snapshot: the standby may have fallen behind since standby_health ran.
                    require_ready_standby(
                        read_standby_health(snapshot.conn), lag_limits, source=snapshot.source
                    )
                    plan = plan_subset(snapshot, rules, salt, organization_id, target_server)
                    context.log.info(
                        f"closure: {plan.closure.total_rows} rows in {plan.closure.passes} passes"
                    )
                    if TENANT_CLOSURE in context.selected_asset_keys:
                        yield dg.MaterializeResult(
                            asset_key=TENANT_CLOSURE, metadata=_closure_metadata(plan, snapshot.source)
                        )
                    if ttl is None:
                        originals = read_originals(snapshot.conn, plan, rules) if checks else None
                        if checked is not None and checks:
                            # the checks alone: the source's schema now, as a load would apply it
                            with target.admin() as admin:
                                schema = replicated_schema(snapshot, plan, admin.info.server_version)
                    else:
                        with (
                            originals_read_meanwhile(snapshot, plan, rules) if checks else nullcontext()
                        ) as reading:
                            database = _new_repro_database(context, target, organization_id, started_at, ttl)
                            with _dropped_on_failure(target, database):
                                report = load_repro(
                                    snapshot,
                                    target.database_dsn(database.name),
                                    plan,
                                    run_id=context.run.run_id,
                                    started_at=started_at,
                                    batch_size=rules.mask_rules.batch_size,
                                    workers=workers,
                                    on_progress=lambda progress: context.log.info(progress.line()),
                                    audit_log=rules.mask_rules.audit_log,
                                )
                                # A failure to read them leaves no database, as a failed load does.
                                originals = reading.result() if reading is not None else None
                        loaded = database, report
            if loaded is not None:
                checked, report = loaded
                schema = report.schema
                with target.admin() as admin:
                    lifecycle.mark(admin, checked, "loaded")
                yield dg.MaterializeResult(
                    asset_key=REPRO_DATABASE,
                    metadata=_repro_metadata(checked, report, target.database_dsn(checked.name)),
                )
                if plan is not None and tables:
                    yield from _table_results(context, target, checked, tables, plan, report)
            if plan is not None and originals is not None and checked is not None and schema is not None:
                results = list(check_results(context, target, checked, plan, originals, schema, tables))
                yield from results
                if loaded is not None:
                    drop_replaced_when_checked(context, target, secret_sink, checked, replaced, results)
            if query is not None and checked is not None:
                yield repro_query_result(
                    target,
                    checked,
                    query,
                    organization_id,
                    config.repro_query_timeout_seconds,
                    context.run.run_id,
                )

    return tenant_closure_and_repro_database


def _table_results(
    context: dg.AssetExecutionContext,
    target: TargetServer,
    database: lifecycle.ReproDatabase,
    tables: Sequence[CopiedTable],
    plan: SubsetPlan,
    report: LoadReport,
) -> list[dg.MaterializeResult]:  # type: ignore[type-arg]
    """Each snapshot table's materialization; the tables copied that the snapshot lacks are named, as they
    have no asset of their own until the snapshot is refreshed."""
    known = {copied.table for copied in tables}
    unknown = sorted(set(plan.created_tables) - known)
    if unknown:
        context.log.warning(
            f"{len(unknown)} copied table(s) have no asset of their own, as the catalog snapshot predates them: "
            f"{', '.join(str(table) for table in unknown)}; run `{REFRESH_COMMAND}` to add them"
        )
    with target.connect_database(database.name) as conn:
        sizes = table_bytes(conn, known)
    return table_materializations(tables, plan, report, sizes)


def _new_repro_database(
    context: dg.AssetExecutionContext,
    target: TargetServer,
    organization_id: int,
    started_at: datetime,
    ttl: timedelta,
) -> lifecycle.ReproDatabase:
    with target.admin() as admin:
        return lifecycle.create_repro_database(
            admin,
            organization_id=organization_id,
            run_id=context.run.run_id,
            ttl=ttl,
            now=started_at,
        )


@contextmanager
def _dropped_on_failure(target: TargetServer, database: lifecycle.ReproDatabase) -> Iterator[None]:
    """On any error the half-built database is dropped and the load's own error raised, with a failure to
    drop it added (the database then stays ``loading``, and the next TTL sweep retires it)."""
    try:
        yield
    except BaseException as load_error:
        try:
            with target.admin() as admin:
                lifecycle.drop_repro_database(admin, database.name)
        except Exception as cleanup_error:
            reason = str(cleanup_error).split("\n", 1)[0]
            load_error.add_note(
                f"{database.name} could not be dropped after the failed load ({reason}); "
                "the next TTL sweep retires it"
            )
        raise


def _repro_metadata(
    database: lifecycle.ReproDatabase, report: LoadReport, database_dsn: str
) -> dict[str, Any]:
    return {
        "database": database.name,
        **connection_metadata(dsn.where_to_connect(database_dsn)),
        "expires_at": dg.MetadataValue.timestamp(database.expires_at),
        "dagster/row_count": sum(report.loaded_rows.values()),
        LOAD_BY_TABLE: load_by_table(report),
        "load_seconds": round(report.seconds, 3),
        "load_workers": report.workers,
        **{
            f"{phase}_seconds".replace("-", "_"): round(seconds, 3)
            for phase, seconds in report.phase_seconds.items()
        },
    }


def connection_metadata(where: dict[str, str]) -> dict[str, Any]:
    """Host, port, role and a ``psql`` command (its password is asked for, never shown)."""
    return {
        "host": where["host"],
        "port": where["port"],
        "role": where["role"],
        "psql": dg.MetadataValue.md(f"```\n{where['psql']}\n```"),
    }


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
