"""What a ticket is told, in Markdown: never a DSN, a password or a token."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote, urlencode

from repro_pipeline.defs.tickets.settings import READY_LABEL

REQUEST_TAG = "repro/ticket_request"  # one value per ticket and label event: the run's filter in the UI


def runs_link(ui_base_url: str, request: str) -> str:
    """The UI's runs list filtered on the request's tag: the run's page once it is launched."""
    return f"{ui_base_url}/runs?{urlencode({'q[0]': f'tag:{REQUEST_TAG}={request}'})}"


def run_link(ui_base_url: str, run_id: str) -> str:
    return f"{ui_base_url}/runs/{quote(run_id)}"


def accepted(organization_id: int, request: str, ui_base_url: str) -> str:
    text = (
        f"**Accepted:** building a masked repro database of organization {organization_id}. "
        f"This ticket hears back when it is ready (or why it failed)."
    )
    if ui_base_url:
        text += f"\n\nFollow the run: {runs_link(ui_base_url, request)}"
    return text


def refused(reason: str, label: str) -> str:
    return (
        f"**Not started:** {reason}.\n\n"
        f"Once the ticket says it, the next poll picks it up (the label `{label}` can stay)."
    )


def ready(
    organization_id: int,
    database: str,
    where_the_dsn_is: str,
    expires_at: datetime,
    link: str,
    repro_query: str = "",
) -> str:
    """``repro_query``: what the ticket's bug query found ("the query returns 12 rows: ..."), if it gave one."""
    text = (
        f"**Ready:** repro database `{database}` of organization {organization_id}. "
        f"DSN in {where_the_dsn_is}. Expires {expires_at:%Y-%m-%d %H:%M} UTC, when it is dropped. "
        f"The label is now `{READY_LABEL}`."
    )
    if repro_query:
        text += f"\n\nBug query: {repro_query}."
    return f"{text}\n\nRun: {link}" if link else text


def failed(organization_id: int, reason: str, label: str, link: str) -> str:
    text = (
        f"**Failed:** the repro database of organization {organization_id} was not built: {reason}\n\n"
        f"Remove and add the label `{label}` again to retry."
    )
    return f"{text}\n\nRun: {link}" if link else text


def expired(organization_id: int, database: str, expires_at: datetime, label: str) -> str:
    return (
        f"**Expired:** repro database `{database}` of organization {organization_id} expired "
        f"({expires_at:%Y-%m-%d %H:%M} UTC) and was dropped, with its login.\n\n"
        f"Remove and add the label `{label}` again for a new one."
    )
