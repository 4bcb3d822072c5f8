"""What a ticket asks for: the organization named by a label ``org:451`` or a body line
``organization_id: 451``, validated like every partition key, or why the ticket is refused."""

from __future__ import annotations

import re
from dataclasses import dataclass

from repro_pipeline.defs.tickets.github_api import Ticket
from repro_pipeline.engine.errors import TenantError
from repro_pipeline.engine.subset.tenant import parse_organization_id

ORG_LABEL_PREFIX = "org:"
_BODY_LINE = re.compile(r"^[ \t]*organization_id[ \t]*:[ \t]*(\S*)[ \t]*$", re.IGNORECASE | re.MULTILINE)
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


def ticket_request(ticket: Ticket) -> TicketRequest:
    from_labels = [
        label[len(ORG_LABEL_PREFIX) :].strip()
        for label in ticket.labels
        if label.lower().startswith(ORG_LABEL_PREFIX)
    ]
    from_body = _BODY_LINE.findall(ticket.body)
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
