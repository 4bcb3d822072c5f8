"""A real HTTP server on 127.0.0.1 that speaks the part of the Slack Web API the handoff uses."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from repro_pipeline_tests.http_server import LocalServer, Request, ScriptedReply, json_reply


@dataclass
class SlackMessage:
    channel: str
    text: str
    raw_body: str
    headers: dict[str, str]
    blocks: list[dict[str, object]] = field(default_factory=list)  # Block Kit, as Slack received it


@dataclass
class SlackApi:
    token: str
    messages: list[SlackMessage] = field(default_factory=list)
    server: LocalServer | None = None
    scripted: list[ScriptedReply] = field(default_factory=list)  # answered first, in order
    requests: int = 0
    # Run once a message is taken, before Slack answers: what happens while the poster waits for Slack.
    while_posting: Callable[[SlackMessage], None] | None = None

    def answer_next(self, *replies: ScriptedReply) -> None:
        self.scripted.extend(replies)

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return f"{self.server.url}/api/"

    def __enter__(self) -> SlackApi:
        self.server = LocalServer(self._answer).__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.__exit__(None, None, None)

    def _answer(self, request: Request) -> ScriptedReply:
        self.requests += 1
        if self.scripted:
            return self.scripted.pop(0)
        if request.header("Authorization") != f"Bearer {self.token}":
            return json_reply(200, {"ok": False, "error": "invalid_auth"})
        if request.path != "/api/chat.postMessage":
            return json_reply(200, {"ok": False, "error": "unknown_method"})
        if (request.header("Content-Type") or "").startswith("application/json"):
            fields = json.loads(request.body)
        else:
            fields = {key: values[0] for key, values in parse_qs(request.body).items()}
        if not fields.get("channel"):
            return json_reply(200, {"ok": False, "error": "channel_not_found"})
        blocks = fields.get("blocks") or []
        if isinstance(blocks, str):  # form-encoded: Slack takes the blocks as a JSON string
            blocks = json.loads(blocks)
        message = SlackMessage(
            fields["channel"], fields.get("text", ""), request.body, request.headers, blocks
        )
        self.messages.append(message)
        if self.while_posting is not None:
            self.while_posting(message)
        return json_reply(
            200, {"ok": True, "channel": "C0REPRO", "ts": f"1700000000.{len(self.messages):06d}"}
        )
