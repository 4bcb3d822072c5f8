"""What a ticket asks for: the organization named by a label ``org:451`` or a body line
``organization_id: 451``, validated like every partition key, and optionally a bug query (a line
``repro_query:`` followed by a fenced code block), validated like any repro query; or why the ticket is
refused."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from markdown_it import MarkdownIt
from markdown_it.token import Token

from repro_pipeline.defs.tickets.github_api import Ticket
from repro_pipeline.engine.errors import ConfigError, TenantError
from repro_pipeline.engine.subset.tenant import parse_organization_id
from repro_pipeline.engine.verify.repro_query import parse_repro_query

ORG_LABEL_PREFIX = "org:"
_BODY_LINE = re.compile(r"^[ \t]*organization_id[ \t]*:[ \t]*(\S*)[ \t]*$", re.IGNORECASE | re.MULTILINE)
# The body is read as CommonMark (markdown-it-py), as the tracker shows it: the query is the fenced code block
# (``` or ~~~, any info string such as sql) right after a text line "repro_query:". A "repro_query:" inside a
# code block, or a code block elsewhere (a log, a trace), is not one.
_MARKDOWN = MarkdownIt("commonmark")
_QUERY_LINE = re.compile(r"repro_query[ \t]*:(?P<rest>.*)", re.IGNORECASE)
_HOW_TO_QUERY = "put the query in a fenced ```sql block right after a line `repro_query:`"
_HOW_TO_NAME = (
    f"add the label `{ORG_LABEL_PREFIX}451` or a body line `organization_id: 451` (with its numeric id)"
)


@dataclass(frozen=True)
class TicketRequest:
    """Either an organization id or the reason there is none; ``asked`` is what the ticket said, so that a
    refused ticket is looked at again once it says something else."""

    asked: tuple[str, ...]
    organization_id: int | None = None
    refusal: str = ""
    repro_query: str = ""  # the bug query, checked; empty when the ticket gives none


def ticket_request(ticket: Ticket) -> TicketRequest:
    # A body edited in a browser has CRLF line ends: the body lines are found the same either way.
    body = ticket.body.replace("\r\n", "\n")
    request = _organization_request(ticket.labels, body)
    query, refusal = _repro_query(body)
    if query:  # a changed query is something else asked: a refused ticket is looked at again
        digest = hashlib.sha256(query.encode()).hexdigest()[:16]
        request = TicketRequest((*request.asked, f"query {digest}"), request.organization_id, request.refusal)
    if request.organization_id is None or not (refusal or query):
        return request
    if refusal:
        return TicketRequest(request.asked, refusal=refusal)
    return TicketRequest(request.asked, request.organization_id, repro_query=query)


def _repro_query(body: str) -> tuple[str, str]:
    """The ticket's bug query and the refusal of it: ("", "") when it gives none."""
    tokens = _MARKDOWN.parse(body)
    found = _query_lines(tokens)
    if not found:
        return "", ""
    if len(found) > 1:
        return "", f"the ticket has {len(found)} lines `repro_query:`: keep one, with one query"
    ((index, is_last_line, match),) = found
    if match.group("rest").strip():
        return "", f"the query is on the line `repro_query:` itself: {_HOW_TO_QUERY}"
    block = tokens[index + 2] if is_last_line and index + 2 < len(tokens) else None
    if block is None or block.type != "fence":
        return "", f"the line `repro_query:` is not followed by a fenced code block: {_HOW_TO_QUERY}"
    query = block.content.strip()
    try:
        parse_repro_query(query, where="the ticket's repro_query")
    except ConfigError as error:
        return query, f"{error.problem} ({error.remedy})"
    return query, ""


def _query_lines(tokens: list[Token]) -> list[tuple[int, bool, re.Match[str]]]:
    """Each text line ``repro_query:...``: its inline token's index, whether it ends its paragraph (so the
    token after that paragraph is what follows it), and the match."""
    found = []
    for index, token in enumerate(tokens):
        if token.type != "inline":
            continue
        lines = token.content.split("\n")
        for number, line in enumerate(lines):
            match = _QUERY_LINE.fullmatch(line.strip())
            if match:
                found.append((index, number == len(lines) - 1, match))
    return found


def _organization_request(labels: tuple[str, ...], body: str) -> TicketRequest:
    from_labels = [
        label[len(ORG_LABEL_PREFIX) :].strip()
        for label in labels
        if label.lower().startswith(ORG_LABEL_PREFIX)
    ]
    from_body = _BODY_LINE.findall(body)
    asked = tuple([f"label {value}" for value in from_labels] + [f"body {value}" for value in from_body])
    named = sorted(set(from_labels + from_body))
    if not named:
        return TicketRequest(asked, refusal=f"the ticket names no organization: {_HOW_TO_NAME}")
    if len(named) > 1:
        shown = ", ".join(repr(value) for value in named[:5])
        return TicketRequest(
            asked,
            refusal=f"the ticket names more than one organization ({shown}): keep one label "
            f"`{ORG_LABEL_PREFIX}...` or one body line `organization_id: ...`, for one organization",
        )
    try:
        return TicketRequest(asked, organization_id=parse_organization_id(named[0]))
    except TenantError as error:
        return TicketRequest(asked, refusal=f"{error.problem}: {_HOW_TO_NAME}")
