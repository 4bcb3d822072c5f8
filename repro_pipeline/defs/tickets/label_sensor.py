"""The ticket-label sensor: each open ticket with the label becomes its organization's partition and a run of
``tenant_repro`` in the same tick, or a refusal comment saying how to fix the ticket.

A ticket triggers once per label event: the run key holds the id of the ticket's latest ``labeled`` event, so
removing the label and adding it again runs it again, and nothing else does. When the standby lags, or the
tracker fails, nothing is launched and the cursor stays where it was, so the next tick does it all.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import dagster as dg

from repro_pipeline.defs.resources import SourceStandby
from repro_pipeline.defs.tenant_repro.jobs import tenant_repro_job
from repro_pipeline.defs.tenant_repro.partitions import organizations
from repro_pipeline.defs.tenant_repro.repro_query import repro_query_run_config
from repro_pipeline.defs.tickets import comments
from repro_pipeline.defs.tickets.cursor import HandledTicket, TicketCursor
from repro_pipeline.defs.tickets.github_api import (
    Ticket,
    TicketApi,
    TicketApiError,
    TicketApiRateLimited,
)
from repro_pipeline.defs.tickets.settings import TicketSettings
from repro_pipeline.defs.tickets.tags import (
    TICKET_AUTHOR_TAG,
    TICKET_NUMBER_TAG,
    TICKET_REPOSITORY_TAG,
    TICKET_URL_TAG,
)
from repro_pipeline.defs.tickets.ticket_request import TicketRequest, ticket_request
from repro_pipeline.engine.errors import ReproError
from repro_pipeline.engine.source.standby import read_standby_health

# The daemon gives one sensor evaluation 60 s; a tick that runs past it is failed and its cursor lost, while
# its comments stay posted. Past this budget the tick stops taking tickets and saves what it did.
TICK_BUDGET_SECONDS = 40
RUN_KEY_TAG = "dagster/run_key"  # the tag Dagster puts on a sensor's run with its run_key
NO_REPOSITORY = (
    "no ticket repository is configured: set REPRO_GITHUB_REPOSITORY to owner/name, GITHUB_TOKEN to a token "
    "that may read its issues and comment, and REPRO_GITHUB_API_URL for GitHub Enterprise"
)


@dataclass(frozen=True)
class Pending:
    """A ticket whose label event is not handled yet."""

    ticket: Ticket
    label_event: int
    request: TicketRequest
    run_key: str

    def handled(self) -> HandledTicket:
        return HandledTicket(
            label_event=self.label_event,
            updated_at=self.ticket.updated_at,
            asked=self.request.asked,
            accepted=self.request.organization_id is not None,
        )


@dg.sensor(
    job=tenant_repro_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Open tickets labelled for a repro (REPRO_TICKET_LABEL, default needs-repro-db) launch "
    "their organization's tenant_repro run",
)
def ticket_label_sensor(
    context: dg.SensorEvaluationContext, standby: SourceStandby
) -> dg.SensorResult | dg.SkipReason:
    try:
        settings = TicketSettings.from_environment()
    except ReproError as error:
        return dg.SkipReason(str(error))
    if settings is None:
        return dg.SkipReason(NO_REPOSITORY)
    cursor = TicketCursor.parse(context.cursor)
    if cursor.rate_limited_until > time.time():
        return dg.SkipReason(f"the ticket API is rate-limiting until {_utc(cursor.rate_limited_until)}")
    deadline = time.monotonic() + TICK_BUDGET_SECONDS
    with TicketApi(settings) as api:
        try:
            tickets = api.open_tickets()
            remembered, pending = _pending(api, tickets, cursor, deadline)
        except TicketApiError as error:
            return _skipped(error, cursor)
        if any(p.request.organization_id is not None for p in pending):
            lag = _standby_not_ready(standby)
            if lag:
                return dg.SkipReason(f"deferred, nothing launched: {lag}")
        return _handle(context, api, settings, pending, remembered, deadline)


def _pending(
    api: TicketApi, tickets: list[Ticket], cursor: TicketCursor, deadline: float
) -> tuple[dict[str, HandledTicket], list[Pending]]:
    """The remembered tickets still listed (the others left the label: forgotten), and those to handle,
    oldest first; those not looked at before ``deadline`` wait for the next tick as they were."""
    remembered: dict[str, HandledTicket] = {}
    pending = []
    for ticket in sorted(tickets, key=lambda t: t.number):
        key = str(ticket.number)
        known = cursor.tickets.get(key)
        if time.monotonic() > deadline:
            if known is not None:
                remembered[key] = known
            continue
        if known is not None and known.updated_at == ticket.updated_at:
            remembered[key] = known
            continue
        event = api.latest_label_event(ticket.number)
        label_event = event.id if event is not None else 0
        request = ticket_request(ticket)
        if (
            known is not None
            and known.label_event == label_event
            and (known.accepted or known.asked == request.asked)
        ):
            remembered[key] = known.model_copy(update={"updated_at": ticket.updated_at})
            continue
        run_key = f"{api.settings.repository}#{ticket.number}@labeled-{label_event}"
        if known is not None:
            remembered[key] = known  # until this event is handled
        pending.append(Pending(ticket, label_event, request, run_key))
    return remembered, pending


def _handle(
    context: dg.SensorEvaluationContext,
    api: TicketApi,
    settings: TicketSettings,
    pending: list[Pending],
    remembered: dict[str, HandledTicket],
    deadline: float,
) -> dg.SensorResult | dg.SkipReason:
    """Comment on each pending ticket and request its run; a failing comment, or the tick's time running
    out, stops the tick there, and the tickets after it wait for the next one. A ticket whose label event
    already has its run (the ticket left the listing and came back) is not told again."""
    run_requests = []
    rate_limited_until = 0.0
    stopped = ""
    for item in pending:
        if time.monotonic() > deadline:
            stopped = f"the tick's {TICK_BUDGET_SECONDS} s were used: the other tickets wait for the next one"
            break
        organization_id = item.request.organization_id
        if organization_id is not None and _has_run(context.instance, item.run_key):
            remembered[str(item.ticket.number)] = item.handled()
            continue
        try:
            if organization_id is None:
                api.comment(item.ticket.number, comments.refused(item.request.refusal, settings.label))
            else:
                api.comment(
                    item.ticket.number, comments.accepted(organization_id, item.run_key, settings.ui_base_url)
                )
        except TicketApiError as error:
            stopped = str(error)
            if isinstance(error, TicketApiRateLimited):
                rate_limited_until = error.retry_at
            context.log.warning(f"ticket #{item.ticket.number} waits for the next tick: {error.problem}")
            break
        remembered[str(item.ticket.number)] = item.handled()
        if organization_id is None:
            context.log.info(f"ticket #{item.ticket.number} refused: {item.request.refusal}")
            continue
        run_requests.append(_run_request(item, organization_id, settings))
    moved = TicketCursor(tickets=remembered, rate_limited_until=rate_limited_until)
    if not run_requests:
        return dg.SensorResult(
            skip_reason=dg.SkipReason(stopped or _nothing_new(pending)), cursor=moved.dump()
        )
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=[
            organizations.build_add_request(sorted({str(r.partition_key) for r in run_requests}))
        ],
        cursor=moved.dump(),
    )


def _has_run(instance: dg.DagsterInstance, run_key: str) -> bool:
    return bool(instance.get_run_ids(dg.RunsFilter(tags={RUN_KEY_TAG: run_key}), limit=1))


def _run_request(item: Pending, organization_id: int, settings: TicketSettings) -> dg.RunRequest:
    # The bug query goes in the run config, not a tag: tags are size-limited and meant as labels.
    return dg.RunRequest(
        run_key=item.run_key,
        partition_key=str(organization_id),
        run_config=repro_query_run_config(item.request.repro_query) if item.request.repro_query else None,
        tags={
            TICKET_URL_TAG: item.ticket.url,
            TICKET_NUMBER_TAG: str(item.ticket.number),
            TICKET_AUTHOR_TAG: item.ticket.author,
            TICKET_REPOSITORY_TAG: settings.repository,
            comments.REQUEST_TAG: item.run_key,
        },
    )


def _nothing_new(pending: list[Pending]) -> str:
    if pending:
        return f"{len(pending)} ticket(s) refused, no run to launch"
    return "no ticket with the label has a new label event"


def _skipped(error: TicketApiError, cursor: TicketCursor) -> dg.SensorResult | dg.SkipReason:
    """Nothing handled: the cursor stays, remembering only when a rate limit ends."""
    if isinstance(error, TicketApiRateLimited):
        waiting = cursor.model_copy(update={"rate_limited_until": error.retry_at})
        return dg.SensorResult(skip_reason=dg.SkipReason(str(error)), cursor=waiting.dump())
    return dg.SkipReason(str(error))


def _standby_not_ready(standby: SourceStandby) -> str:
    """Why runs launched now would fail at ``standby_health``, or empty when the standby is ready."""
    try:
        with standby.connect() as conn:
            health = read_standby_health(conn)
    except ReproError as error:
        return error.problem
    problems = health.problems(standby.lag_limits)
    if not problems:
        return ""
    return f"the standby {standby.description} is not ready: " + "; ".join(problems)


def _utc(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))
