"""A real HTTP server on 127.0.0.1 that speaks the part of HashiCorp Vault's API a KV v2 read uses:
``GET /v1/<mount>/data/<path>`` with the token in ``X-Vault-Token``, answered as Vault answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import TracebackType

from repro_pipeline_tests.http_server import LocalServer, Request, ScriptedReply, json_reply


@dataclass
class VaultApi:
    token: str
    secrets: dict[str, dict[str, object]] = field(default_factory=dict)  # "mount/path" -> fields
    kv_mounts: tuple[str, ...] = ("secret",)
    answer_status: int | None = None  # answer every request with this status (a sealed or failing Vault)
    requests: list[str] = field(default_factory=list)  # the paths asked for
    server: LocalServer | None = None

    @property
    def address(self) -> str:
        assert self.server is not None
        return self.server.url

    def answer(self, request: Request) -> ScriptedReply:
        self.requests.append(request.path)
        if self.answer_status is not None:
            return json_reply(self.answer_status, {"errors": ["Vault is sealed"]})
        if request.header("X-Vault-Token") != self.token:
            return json_reply(403, {"errors": ["permission denied"]})
        mount, _, rest = request.path.removeprefix("/v1/").partition("/")
        fields = self.secrets.get(f"{mount}/{rest.removeprefix('data/').split('?', 1)[0]}")
        if (
            request.method != "GET"
            or mount not in self.kv_mounts
            or not rest.startswith("data/")
            or fields is None
        ):
            return json_reply(404, {"errors": []})
        metadata = {"version": 1, "deletion_time": "", "destroyed": False}
        return json_reply(200, {"data": {"data": fields, "metadata": metadata}, "lease_duration": 0})

    def __enter__(self) -> VaultApi:
        self.server = LocalServer(self.answer).__enter__()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        assert self.server is not None
        self.server.__exit__(kind, error, trace)
