"""The ticket sensor's cursor (JSON): the tickets handled, by the label event they were handled for, and the
end of a rate limit. It only moves past a ticket once its comment is posted and its run requested."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, ValidationError


class HandledTicket(BaseModel):
    model_config = ConfigDict(frozen=True)

    label_event: int
    updated_at: str  # unchanged since: nothing to look at, not even its events
    asked: tuple[
        str, ...
    ]  # what it said of its organization: a refused ticket that says more is looked at again
    accepted: bool


class TicketCursor(BaseModel):
    model_config = ConfigDict(frozen=True)

    tickets: dict[str, HandledTicket] = {}
    rate_limited_until: float = 0.0

    @classmethod
    def parse(cls, text: str | None) -> TicketCursor:
        """The cursor the last tick wrote; none (a new sensor, or one reset in the UI) starts empty."""
        if not text:
            return cls()
        try:
            return cls.model_validate_json(text)
        except ValidationError:
            return cls()

    def dump(self) -> str:
        return self.model_dump_json()
