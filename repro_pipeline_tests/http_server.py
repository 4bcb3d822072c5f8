"""A real HTTP server on 127.0.0.1, in a thread, for the tests' fake APIs (Slack, GitHub): it hands every
request to the API's ``answer`` and sends back the reply it returns."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType


@dataclass(frozen=True)
class ScriptedReply:
    """An HTTP answer: the API's own, or one scripted in its place (a rate limit, a server error, a garbled or
    a late body)."""

    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    delay_seconds: float = 0.0


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # with its query string
    headers: dict[str, str]
    body: str

    def header(self, name: str) -> str | None:
        """A header's value, its name matched case-insensitively as HTTP's are."""
        wanted = name.lower()
        return next((value for key, value in self.headers.items() if key.lower() == wanted), None)


def json_reply(status: int, payload: object, headers: tuple[tuple[str, str], ...] = ()) -> ScriptedReply:
    return ScriptedReply(
        status,
        json.dumps(payload).encode(),
        (("Content-Type", "application/json; charset=utf-8"), *headers),
    )


class LocalServer:
    def __init__(self, answer: Callable[[Request], ScriptedReply]) -> None:
        self._answer = answer
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "the server is not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> LocalServer:
        answer = self._answer

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def do_PUT(self) -> None:
                self._serve("PUT")

            def do_DELETE(self) -> None:
                self._serve("DELETE")

            def _serve(self, method: str) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                reply = answer(Request(method, self.path, dict(self.headers), body))
                if reply.delay_seconds:
                    time.sleep(reply.delay_seconds)
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers:
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except OSError:
                    pass  # a client that timed out has gone

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()
