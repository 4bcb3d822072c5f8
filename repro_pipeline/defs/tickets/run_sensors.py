"""The ticket hears how its run ended: ready (database, where its DSN is kept, expiry; the label swapped for
``repro-db-ready``) or failed (the one-line reason). Runs without a ticket's tags are left alone.

A run-status sensor's cursor moves past a run even when its tick fails, so a comment the tracker refused is
logged and named in the skip reason, not retried.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import dagster as dg

from repro_pipeline.defs.failure_reasons import known_secrets, one_line_reason, without
from repro_pipeline.defs.tenant_repro.jobs import tenant_repro_job
from repro_pipeline.defs.tenant_repro.repro_database import REPRO_DATABASE, REPRO_HANDOFF
from repro_pipeline.defs.tickets import comments
from repro_pipeline.defs.tickets.github_api import TicketApi, TicketApiError
from repro_pipeline.defs.tickets.settings import READY_LABEL, TicketSettings
from repro_pipeline.defs.tickets.tags import TICKET_NUMBER_TAG, TICKET_REPOSITORY_TAG
from repro_pipeline.engine.errors import ReproError

PARTITION_TAG = "dagster/partition"


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[tenant_repro_job],
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Tells a ticket its repro database is ready, and swaps its label for repro-db-ready",
)
def ticket_ready_comment(context: dg.RunStatusSensorContext) -> dg.SkipReason | None:
    run = context.dagster_run
    ticket = ticket_of(run)
    if isinstance(ticket, str):
        # None, not a SkipReason: any other return ends the tick, and the runs after this one would wait.
        context.log.debug(ticket)
        return None
    settings, number = ticket
    try:
        handed_off = _handed_off(context.instance, run.run_id)
    except ReproError as error:
        context.log.warning(str(error))
        return dg.SkipReason(error.problem)
    database = handed_off.database
    text = comments.ready(
        int(run.tags[PARTITION_TAG]),
        database,
        handed_off.dsn_reference,
        handed_off.expires_at,
        _run_link(settings, run.run_id),
        handed_off.repro_query,
    )
    try:
        with TicketApi(settings) as api:
            api.comment(number, text)
            api.swap_label(number, settings.label, READY_LABEL)
    except TicketApiError as error:
        context.log.warning(f"ticket #{number} was not told {database} is ready: {error}")
        return dg.SkipReason(f"ticket #{number} was not told {database} is ready: {error.problem}")
    return None


@dg.run_failure_sensor(
    monitored_jobs=[tenant_repro_job],
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Tells a ticket why its repro run failed, in one line without secrets",
)
def ticket_failure_comment(context: dg.RunFailureSensorContext) -> dg.SkipReason | None:
    run = context.dagster_run
    ticket = ticket_of(run)
    if isinstance(ticket, str):
        # None, not a SkipReason: any other return ends the tick, and the runs after this one would wait.
        context.log.debug(ticket)
        return None
    settings, number = ticket
    reason = without(one_line_reason(context), [settings.token, *known_secrets()])
    text = comments.failed(
        int(run.tags[PARTITION_TAG]), reason, settings.label, _run_link(settings, run.run_id)
    )
    try:
        with TicketApi(settings) as api:
            api.comment(number, text)
    except TicketApiError as error:
        context.log.warning(f"ticket #{number} was not told its run failed: {error}")
        return dg.SkipReason(f"ticket #{number} was not told its run failed: {error.problem}")
    return None


def ticket_of(run: dg.DagsterRun) -> tuple[TicketSettings, int] | str:
    """The ticket a run was launched for, or why it has none. Tags can be set by hand on the launchpad: only
    a ticket number of the configured repository is acted on, so the token never writes elsewhere."""
    number = run.tags.get(TICKET_NUMBER_TAG)
    if number is None or PARTITION_TAG not in run.tags:
        return f"run {run.run_id} was not launched for a ticket"
    try:
        settings = TicketSettings.from_environment()
    except ReproError as error:
        return str(error)
    if settings is None:
        return f"run {run.run_id} is for ticket #{number}, but REPRO_GITHUB_REPOSITORY is unset: set it"
    repository = run.tags.get(TICKET_REPOSITORY_TAG, settings.repository)
    if not number.isdigit() or repository != settings.repository:
        return (
            f"run {run.run_id} names ticket {repository}#{number}, not one of {settings.repository}: ignored"
        )
    return settings, int(number)


@dataclasses.dataclass(frozen=True)
class _HandedOff:
    database: str
    expires_at: datetime
    dsn_reference: str  # where the secret sink keeps the login's DSN: never the DSN
    repro_query: str  # what the run's bug query found, or empty when it had none


def _handed_off(instance: dg.DagsterInstance, run_id: str) -> _HandedOff:
    """The database the run materialized and its expiry (its ``repro_database`` materialization), and where
    its DSN is kept (its ``repro_handoff`` materialization)."""
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records
    metadata = {
        record.asset_materialization.asset_key: record.asset_materialization.metadata
        for record in records
        if record.asset_materialization is not None
    }
    for key in (REPRO_DATABASE, REPRO_HANDOFF):
        if key not in metadata:
            raise ReproError(
                f"run {run_id} succeeded without a {key.to_user_string()} materialization",
                "look at the run in the UI",
            )
    database, handoff = metadata[REPRO_DATABASE], metadata[REPRO_HANDOFF]
    return _HandedOff(
        database=str(database["database"].value),
        expires_at=datetime.fromtimestamp(float(str(database["expires_at"].value)), UTC),
        dsn_reference=str(handoff["dsn_reference"].value),
        repro_query=str(handoff["repro_query"].value) if "repro_query" in handoff else "",
    )


def _run_link(settings: TicketSettings, run_id: str) -> str:
    return comments.run_link(settings.ui_base_url, run_id) if settings.ui_base_url else ""
