"""A real HTTP server on 127.0.0.1 that speaks the part of the Slack Web API the handoff uses."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs


@dataclass
class SlackMessage:
    channel: str
    text: str
    raw_body: str
    headers: dict[str, str]
    blocks: list[dict[str, object]] = field(default_factory=list)  # Block Kit, as Slack received it


@dataclass(frozen=True)
class ScriptedReply:
    """One answer given instead of the real one: a rate limit, a server error, a garbled body."""

    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


@dataclass
class SlackApi:
    token: str
    messages: list[SlackMessage] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None
    scripted: list[ScriptedReply] = field(default_factory=list)  # answered first, in order
    requests: int = 0
    # Run once a message is taken, before Slack answers: what happens while the poster waits for Slack.
    while_posting: Callable[[SlackMessage], None] | None = None

    def answer_next(self, *replies: ScriptedReply) -> None:
        self.scripted.extend(replies)

    @property
    def base_url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/api/"

    def __enter__(self) -> SlackApi:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                api.requests += 1
                if api.scripted:
                    self._send(api.scripted.pop(0))
                    return
                if self.headers.get("Authorization") != f"Bearer {api.token}":
                    self._reply({"ok": False, "error": "invalid_auth"})
                    return
                if self.path != "/api/chat.postMessage":
                    self._reply({"ok": False, "error": "unknown_method"})
                    return
                if self.headers.get("Content-Type", "").startswith("application/json"):
                    fields = json.loads(body)
                else:
                    fields = {key: values[0] for key, values in parse_qs(body).items()}
                if not fields.get("channel"):
                    self._reply({"ok": False, "error": "channel_not_found"})
                    return
                blocks = fields.get("blocks") or []
                if isinstance(blocks, str):  # form-encoded: Slack takes the blocks as a JSON string
                    blocks = json.loads(blocks)
                message = SlackMessage(
                    fields["channel"], fields.get("text", ""), body, dict(self.headers), blocks
                )
                api.messages.append(message)
                if api.while_posting is not None:
                    api.while_posting(message)
                self._reply({"ok": True, "channel": "C0REPRO", "ts": f"1700000000.{len(api.messages):06d}"})

            def _reply(self, payload: dict[str, object]) -> None:
                self._send(
                    ScriptedReply(
                        200,
                        json.dumps(payload).encode(),
                        (("Content-Type", "application/json; charset=utf-8"),),
                    )
                )

            def _send(self, reply: ScriptedReply) -> None:
                self.send_response(reply.status)
                for name, value in reply.headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()
