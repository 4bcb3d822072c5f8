"""An expired database's notices: the support channel, and the ticket it was made for (the run that made
it carries the ticket's tags). A notice that cannot be given is a warning: the sweep goes on."""

from __future__ import annotations

import dagster as dg

from repro_pipeline.defs.resources import SlackHandoff
from repro_pipeline.defs.slack_messages import expiry_message
from repro_pipeline.defs.tickets import comments
from repro_pipeline.defs.tickets.github_api import TicketApi
from repro_pipeline.defs.tickets.run_sensors import ticket_of
from repro_pipeline.engine.errors import ReproError
from repro_pipeline.engine.repro_databases.lifecycle import ReproDatabase


def post_expiry_notices(context: dg.OpExecutionContext, slack: SlackHandoff, database: ReproDatabase) -> None:
    if slack.enabled:
        try:
            slack.post(
                expiry_message(database.organization_id, database.name, database.expires_at),
                what=f"the expiry notice of {database.name}",
            )
        except ReproError as error:
            context.log.warning(f"{database.name}: the expiry notice was not posted to Slack: {error}")
    run = context.instance.get_run_by_id(database.run_id)
    ticket = ticket_of(run) if run is not None else None
    if ticket is None or isinstance(ticket, str):
        return
    settings, number = ticket
    text = comments.expired(database.organization_id, database.name, database.expires_at, settings.label)
    try:
        with TicketApi(settings) as api:
            api.comment(number, text)
    except ReproError as error:
        context.log.warning(f"{database.name}: ticket #{number} was not told it expired: {error}")
