"""The tenant repro assets: standby health, closure, masked repro database, Slack handoff."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import dagster as dg
from pydantic import Field

from repro_pipeline.defs.failures import reported_as_failure
from repro_pipeline.defs.resources import (
    MaskingConfig,
    ReproSecretSink,
    SlackHandoff,
    SourceStandby,
    TargetServer,
)
from repro_pipeline.defs.slack_messages import Handoff, handoff_message
from repro_pipeline.defs.tenant_repro.checks import CHECK_SPECS, check_results
from repro_pipeline.defs.tenant_repro.partitions import OWNERS, PARTITION_KEY_HELP, organizations
from repro_pipeline.defs.tenant_repro.repro_database import REPRO_DATABASE, TENANT_CLOSURE, repro_database_of
from repro_pipeline.defs.tenant_repro.repro_query import (
    REPRO_QUERY_CHECK,
    REPRO_QUERY_SPEC,
    ReproDatabaseConfig,
    repro_query_result,
)
from repro_pipeline.defs.tickets.tags import TICKET_URL_TAG
from repro_pipeline.engine import dsn
from repro_pipeline.engine.errors import ReproError, TargetError
from repro_pipeline.engine.load.loader import LoadReport, ReplicatedSchema, load_repro, replicated_schema
from repro_pipeline.engine.load.plan import SubsetPlan, plan_subset
from repro_pipeline.engine.load.report import plan_summary
from repro_pipeline.engine.load.target_fit import read_target_server
from repro_pipeline.engine.repro_databases import lifecycle, logins
from repro_pipeline.engine.repro_databases.manifest import (
    REQUIRED_CHECKS,
    finish_run,
    loaded_row_total,
    unpassed_checks,
)
from repro_pipeline.engine.source.snapshot import open_source_snapshot
from repro_pipeline.engine.source.standby import read_standby_health, require_ready_standby
from repro_pipeline.engine.subset.tenant import parse_organization_id, require_organization_exists
from repro_pipeline.engine.verify.checks import read_originals
from repro_pipeline.engine.verify.repro_query import recorded_repro_query

GROUP = "tenant_repro"


@dg.asset(
    partitions_def=organizations,
    group_name=GROUP,
    kinds={"postgres"},
    owners=OWNERS,
    description="The source is a hot standby in recovery, replaying, within the configured lag, and holds "
    f"the organization. {PARTITION_KEY_HELP}",
)
def standby_health(
    context: dg.AssetExecutionContext, standby: SourceStandby, masking: MaskingConfig
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    with reported_as_failure():
        organization_id = parse_organization_id(context.partition_key)
        config = masking.load_config()
        with standby.connect() as conn:
            health = read_standby_health(conn)
            require_ready_standby(health, standby.lag_limits, source=standby.description)
            # Here, in a second, rather than after the closure's planning reads the whole catalog.
            require_organization_exists(conn, config, organization_id)
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
            TENANT_CLOSURE,
            deps=[standby_health],
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
    ],
    check_specs=[*CHECK_SPECS, REPRO_QUERY_SPEC],
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
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:  # type: ignore[type-arg]
    """Closure, load and checks read one snapshot of the standby, so they run as one step; then the run's
    bug query, if it has one, on the repro database.

    Launched for the checks alone, the step checks the partition's latest repro database against a closure
    computed in a fresh snapshot (the bug query alone needs no snapshot).
    """
    loads = REPRO_DATABASE in context.selected_asset_keys
    selected_checks = {key.name for key in context.selected_asset_check_keys}
    checks = bool(selected_checks - {REPRO_QUERY_CHECK})
    with reported_as_failure():
        organization_id = parse_organization_id(context.partition_key)
        query = config.query() if REPRO_QUERY_CHECK in selected_checks else None
        if REPRO_QUERY_CHECK in selected_checks and query is None:
            context.log.info("the run has no repro_query: the repro_query check is not evaluated")
        rules, salt = masking.load()
        started_at = datetime.now(UTC)
        checked = None if loads or not (checks or query) else repro_database_of(context, target)
        loaded: tuple[lifecycle.ReproDatabase, LoadReport] | None = None
        target_server = None
        if loads:  # the plan refuses a schema the target server cannot take, before anything is written
            with target.admin() as admin:
                target_server = read_target_server(admin)
        schema: ReplicatedSchema | None = None
        plan: SubsetPlan | None = None
        originals = None
        if loads or checks or TENANT_CLOSURE in context.selected_asset_keys:
            with open_source_snapshot(standby.dsn, standby.session_limits) as snapshot:
                # Again inside the snapshot: the standby may have fallen behind since standby_health ran.
                require_ready_standby(
                    read_standby_health(snapshot.conn), standby.lag_limits, source=snapshot.source
                )
                plan = plan_subset(snapshot, rules, salt, organization_id, target_server)
                context.log.info(f"closure: {plan.closure.total_rows} rows in {plan.closure.passes} passes")
                if TENANT_CLOSURE in context.selected_asset_keys:
                    yield dg.MaterializeResult(
                        asset_key=TENANT_CLOSURE, metadata=_closure_metadata(plan, snapshot.source)
                    )
                originals = read_originals(snapshot.conn, plan, rules) if checks else None
                if (
                    checked is not None and checks
                ):  # the checks alone: the source's schema now, as a load would apply it
                    with target.admin() as admin:
                        schema = replicated_schema(snapshot, plan, admin.info.server_version)
                if loads:
                    database = _new_repro_database(context, target, organization_id, started_at)
                    with _dropped_on_failure(target, database):
                        report = load_repro(
                            snapshot,
                            target.database_dsn(database.name),
                            plan,
                            run_id=context.run.run_id,
                            started_at=started_at,
                            batch_size=rules.mask_rules.batch_size,
                            workers=target.load_workers_for(rules, salt),
                            on_progress=lambda progress: context.log.info(progress.line()),
                        )
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
        if plan is not None and originals is not None and checked is not None and schema is not None:
            yield from check_results(context, target, checked, plan, originals, schema)
        if query is not None and checked is not None:
            yield repro_query_result(
                target, checked, query, organization_id, config.repro_query_timeout_seconds
            )


def _new_repro_database(
    context: dg.AssetExecutionContext, target: TargetServer, organization_id: int, started_at: datetime
) -> lifecycle.ReproDatabase:
    with target.admin() as admin:
        return lifecycle.create_repro_database(
            admin,
            organization_id=organization_id,
            run_id=context.run.run_id,
            ttl=target.ttl,
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
        **_connection_metadata(dsn.where_to_connect(database_dsn)),
        "expires_at": dg.MetadataValue.timestamp(database.expires_at),
        "dagster/row_count": sum(report.loaded_rows.values()),
        "rows_by_table": dg.MetadataValue.md(
            _table_markdown(
                ["table", "rows"], [[str(t), str(n)] for t, n in sorted(report.loaded_rows.items())]
            )
        ),
        "load_seconds": round(report.seconds, 3),
        "load_workers": report.workers,
        **{
            f"{phase}_seconds".replace("-", "_"): round(seconds, 3)
            for phase, seconds in report.phase_seconds.items()
        },
    }


def _connection_metadata(where: dict[str, str]) -> dict[str, Any]:
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


class HandoffConfig(dg.Config):
    database: str = Field(
        default="",
        description="A repro database of this organization to hand off again (after Slack was down, say); "
        "empty: the one this run made, or the partition's latest",
    )


@dg.asset(
    partitions_def=organizations,
    group_name=GROUP,
    deps=[REPRO_DATABASE],
    kinds={"slack"},
    owners=OWNERS,
    description="A read-only login for the repro database, its DSN kept in the secret sink, and the "
    f"support channel told where. {PARTITION_KEY_HELP}",
)
def repro_handoff(
    context: dg.AssetExecutionContext,
    config: HandoffConfig,
    target: TargetServer,
    slack: SlackHandoff,
    secret_sink: ReproSecretSink,
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    """Gives the repro database its own read-only login, keeps the login's DSN in the secret sink, and
    tells the support channel the database is ready: where its DSN is kept, never the DSN.

    Only a database on which every check passed is handed off, even when this asset runs on its own.
    Handed off again, the login gets a new password.
    """
    with reported_as_failure():
        organization_id = parse_organization_id(context.partition_key)
        listed = repro_database_of(context, target, named=config.database)
        _refuse_retired_or_expired(listed)
        name = listed.name
        with target.connect_database(name) as conn:
            unpassed = unpassed_checks(conn, REQUIRED_CHECKS)
            rows = loaded_row_total(conn)
            repro_query = recorded_repro_query(conn)
        if unpassed:
            raise TargetError(
                f"{name} is not handed off: the checks {', '.join(unpassed)} have not passed on it",
                "run the checks of repro_database for this partition, or materialize it again",
            )
        # Under the database's lock, its record as it is now: the login's VALID UNTIL is its current expiry,
        # and a retirement or an extension made meanwhile is seen.
        with (
            target.admin() as admin,
            lifecycle.record_lock(admin, name),
            target.connect_database(name) as conn,
        ):
            database = lifecycle.find_repro_database(admin, name)
            _refuse_retired_or_expired(database)
            login = logins.issue_login(admin, conn, name, database.expires_at)
        where_the_dsn_is = secret_sink.sink(context.instance).store(name, login.dsn(target.admin_dsn))
        message = handoff_message(
            Handoff(
                organization_id=organization_id,
                database=name,
                host=dsn.server_address(target.admin_dsn),
                where_the_dsn_is=where_the_dsn_is,
                expires_at=database.expires_at,
                ticket_url=context.run.tags.get(TICKET_URL_TAG, ""),
                rows=rows,
                checks=REQUIRED_CHECKS,
                repro_query=repro_query.sentence() if repro_query is not None else "",
            )
        )
        if slack.enabled:
            try:
                slack.post(message)
            except ReproError as error:
                raise ReproError(
                    f"{name} is checked but was not handed off: {error.problem}",
                    f"{error.remedy}; then post it again with `repro-pipeline handoff {name}`",
                ) from None
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
        metadata={
            "message": message.text,
            "channel": slack.destination,
            "posted": slack.enabled,
            "database": name,
            "login": login.role,
            "dsn_reference": where_the_dsn_is,
            **_connection_metadata(dsn.where_to_connect(target.database_dsn(name), role=login.role)),
            **({"repro_query": repro_query.sentence()} if repro_query is not None else {}),
        }
    )


def _refuse_retired_or_expired(database: lifecycle.ReproDatabase) -> None:
    if database.status == "failed" or database.expires_at <= datetime.now(UTC):
        raise TargetError(
            f"{database.name} is not handed off: it is "
            f"{'retired' if database.status == 'failed' else 'expired'} "
            f"(since {database.expires_at:%Y-%m-%d %H:%M} UTC) and waits for the sweep to drop it",
            "materialize repro_database for this partition again",
        )
