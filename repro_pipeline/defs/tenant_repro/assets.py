"""The tenant repro assets around the load's step (load_step.py, built from the catalog snapshot by
copied_tables.py): the standby's health before it, the Slack handoff after it."""

from datetime import UTC, datetime

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
from repro_pipeline.defs.tenant_repro.load_step import GROUP, connection_metadata
from repro_pipeline.defs.tenant_repro.partitions import (
    OWNERS,
    PARTITION_KEY_HELP,
    organization_of,
    organizations,
)
from repro_pipeline.defs.tenant_repro.repro_database import REPRO_DATABASE, repro_database_of
from repro_pipeline.defs.tenant_repro.run_config import StandbyHealthConfig
from repro_pipeline.defs.tickets.tags import TICKET_URL_TAG
from repro_pipeline.engine import dsn
from repro_pipeline.engine.errors import ReproError, TargetError
from repro_pipeline.engine.repro_databases import audit, lifecycle, logins
from repro_pipeline.engine.repro_databases.manifest import (
    REQUIRED_CHECKS,
    finish_run,
    loaded_row_total,
    unpassed_checks,
)
from repro_pipeline.engine.source.standby import read_standby_health, require_ready_standby
from repro_pipeline.engine.subset.tenant import require_organization_exists
from repro_pipeline.engine.verify.repro_query import recorded_repro_query


@dg.asset(
    partitions_def=organizations,
    group_name=GROUP,
    kinds={"postgres"},
    owners=OWNERS,
    description="The source is a hot standby in recovery, replaying, within the configured lag, and holds "
    f"the organization. {PARTITION_KEY_HELP}",
)
def standby_health(
    context: dg.AssetExecutionContext,
    config: StandbyHealthConfig,
    standby: SourceStandby,
    masking: MaskingConfig,
) -> dg.MaterializeResult:  # type: ignore[type-arg]
    with reported_as_failure():
        organization_id = organization_of(context)
        lag_limits = config.lag_limits(standby.lag_limits)
        repro_config = masking.load_config()
        with standby.connect() as conn:
            health = read_standby_health(conn)
            require_ready_standby(health, lag_limits, source=standby.description)
            # Here, in a second, rather than after the closure's planning reads the whole catalog.
            require_organization_exists(conn, repro_config, organization_id)
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
            "max_replay_lag_seconds": lag_limits.max_replay_lag_seconds,
            "max_replay_lag_bytes": lag_limits.max_replay_lag_bytes,
            "replay_lsn": health.replay_lsn or "",
            "wal_receiver": health.receiver_status or "",
            "hot_standby_feedback": health.hot_standby_feedback,
            "source_role": health.role,
            "source_role_is_superuser": health.superuser,
        }
    )


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
        organization_id = organization_of(context)
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
            audit.record_events(
                conn, [audit.handed_off(context.run.run_id, datetime.now(UTC), database.expires_at)]
            )
    return dg.MaterializeResult(
        metadata={
            "message": message.text,
            "channel": slack.destination,
            "posted": slack.enabled,
            "database": name,
            "login": login.role,
            "dsn_reference": where_the_dsn_is,
            **connection_metadata(dsn.where_to_connect(target.database_dsn(name), role=login.role)),
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
