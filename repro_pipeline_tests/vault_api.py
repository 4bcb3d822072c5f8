"""A real HTTP server on 127.0.0.1 that speaks the part of HashiCorp Vault's API a KV v2 read uses:
``GET /v1/<mount>/data/<path>`` with the token in ``X-Vault-Token``, answered as Vault answers."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class VaultApi:
    token: str
    secrets: dict[str, dict[str, object]] = field(default_factory=dict)  # "mount/path" -> fields
    kv_mounts: tuple[str, ...] = ("secret",)
    answer_status: int | None = None  # answer every request with this status (a sealed or failing Vault)
    requests: list[str] = field(default_factory=list)  # the paths asked for
    server: ThreadingHTTPServer | None = None

    @property
    def address(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> VaultApi:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                api.requests.append(self.path)
                if api.answer_status is not None:
                    self._reply(api.answer_status, {"errors": ["Vault is sealed"]})
                    return
                if self.headers.get("X-Vault-Token") != api.token:
                    self._reply(403, {"errors": ["permission denied"]})
                    return
                mount, _, rest = self.path.removeprefix("/v1/").partition("/")
                secret_path = rest.removeprefix("data/").split("?", 1)[0]
                fields = api.secrets.get(f"{mount}/{secret_path}")
                if mount not in api.kv_mounts or not rest.startswith("data/") or fields is None:
                    self._reply(404, {"errors": []})
                    return
                metadata = {"version": 1, "deletion_time": "", "destroyed": False}
                self._reply(200, {"data": {"data": fields, "metadata": metadata}, "lease_duration": 0})

            def _reply(self, status: int, payload: object) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()
