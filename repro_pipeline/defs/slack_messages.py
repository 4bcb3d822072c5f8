"""What Slack is told, as Block Kit with a plain-text fallback (notifications, screen readers, old clients):
the handoff, a failed run, an expired database. Never a DSN, a password or a token: the callers pass where
the DSN is kept, and a failure's reason already scrubbed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

Block = dict[str, Any]


@dataclass(frozen=True)
class SlackMessage:
    text: str  # the fallback, and the whole message where blocks are not shown
    blocks: tuple[Block, ...]


@dataclass(frozen=True)
class Handoff:
    organization_id: int
    database: str
    host: str  # host:port of the target server, never its credentials
    where_the_dsn_is: str  # the secret sink's reference
    expires_at: datetime
    ticket_url: str  # empty when the run was not launched for a ticket
    rows: int
    checks: Sequence[str]  # the checks that passed
    repro_query: str = ""  # what the run's bug query found ("the query returns 12 rows: ..."), if it had one


def handoff_message(handoff: Handoff) -> SlackMessage:
    expires = f"{handoff.expires_at:%Y-%m-%d %H:%M} UTC"
    text = (
        f"Repro DB ready for org {handoff.organization_id}: database `{handoff.database}`. "
        f"DSN in {handoff.where_the_dsn_is}. TTL: expires {expires}. "
        f"Host {handoff.host}, {handoff.rows} rows, checks passed: {', '.join(handoff.checks)}."
    )
    if handoff.repro_query:
        text += f" Bug query: {handoff.repro_query}."
    if handoff.ticket_url:
        text += f" Ticket: {handoff.ticket_url}"
    ticket = f"<{_escaped(handoff.ticket_url)}>" if handoff.ticket_url else "none"
    fields = [
        ("Organization", str(handoff.organization_id)),
        ("Database", f"`{_escaped(handoff.database)}`"),
        ("Host", f"`{_escaped(handoff.host)}`"),
        ("DSN kept in", f"`{_escaped(handoff.where_the_dsn_is)}`"),
        ("Expires", expires),
        ("Rows", f"{handoff.rows:,}"),
        ("Ticket", ticket),
    ]
    blocks = (
        _section(
            f":white_check_mark: *Repro database ready* for organization {handoff.organization_id}: "
            f"`{_escaped(handoff.database)}`"
        ),
        {"type": "section", "fields": [_mrkdwn(f"*{name}*\n{value}") for name, value in fields]},
        *([_section(f"*Bug query:* {_escaped(handoff.repro_query)}")] if handoff.repro_query else []),
        _context(f"Checks passed: {', '.join(_escaped(check) for check in handoff.checks)}"),
    )
    return SlackMessage(text, blocks)


def failure_message(organization: str, run_id: str, step: str, reason: str, run_link: str) -> SlackMessage:
    """``reason``: one line, already without secrets; ``run_link`` empty when no UI base URL is set."""
    where = f"step {step}" if step else "before any step"
    text = f"Repro run for org {organization} failed ({where}): {reason}"
    if run_link:
        text += f"\nRun: {run_link}"
    fields = [
        ("Organization", _escaped(organization)),
        ("Failed step", f"`{_escaped(step)}`" if step else "none (the run failed before any step)"),
        ("Run", f"<{_escaped(run_link)}|{_escaped(run_id)}>" if run_link else f"`{_escaped(run_id)}`"),
    ]
    blocks = (
        _section(f":x: *Repro run failed* for organization {_escaped(organization)}"),
        {"type": "section", "fields": [_mrkdwn(f"*{name}*\n{value}") for name, value in fields]},
        _section(f"*Reason:* {_escaped(reason)}"),
    )
    return SlackMessage(text, blocks)


def expiry_message(organization_id: int, database: str, expired_at: datetime) -> SlackMessage:
    text = (
        f"repro database {database} of organization {organization_id} expired "
        f"({expired_at:%Y-%m-%d %H:%M} UTC) and was dropped"
    )
    blocks = (
        _section(
            f":hourglass: Repro database `{_escaped(database)}` of organization {organization_id} "
            "expired and was dropped"
        ),
        _context(f"Expired {expired_at:%Y-%m-%d %H:%M} UTC; its login went with it"),
    )
    return SlackMessage(text, blocks)


def _section(text: str) -> Block:
    return {"type": "section", "text": _mrkdwn(text)}


def _context(text: str) -> Block:
    return {"type": "context", "elements": [_mrkdwn(text)]}


def _mrkdwn(text: str) -> Block:
    return {"type": "mrkdwn", "text": text}


def _escaped(text: str) -> str:
    """Slack's mrkdwn reads &, < and > as markup: a value shows as itself."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
