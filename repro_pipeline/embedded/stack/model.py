"""What a running stack is: three servers on 127.0.0.1 sharing one superuser password."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from repro_pipeline.embedded.stack.binaries import PgBinaries

HOST = "127.0.0.1"
SUPERUSER = "postgres"
SOURCE_DATABASE = "billing"
ADMIN_DATABASE = "postgres"
SERVER_NAMES = ("primary", "standby", "target")


@dataclass(frozen=True)
class Server:
    name: str
    port: int
    data_dir: Path
    log_file: Path


@dataclass(frozen=True)
class ServerStatus:
    running: bool
    pid: int | None = None


@dataclass(frozen=True)
class Stack:
    """The primary (source ``billing``), its hot standby, and the target server for repro databases."""

    root: Path
    binaries: PgBinaries
    password: str = field(repr=False)
    primary: Server
    standby: Server
    target: Server

    @property
    def servers(self) -> tuple[Server, Server, Server]:
        return (self.primary, self.standby, self.target)

    def server(self, name: str) -> Server:
        for server in self.servers:
            if server.name == name:
                return server
        raise ValueError(f"unknown server {name!r}; the stack has {', '.join(SERVER_NAMES)}")

    def dsn(self, server_name: str, dbname: str) -> str:
        port = self.server(server_name).port
        return (
            f"postgresql://{SUPERUSER}:{quote(self.password, safe='')}@{HOST}:{port}/{quote(dbname, safe='')}"
        )

    @property
    def primary_dsn(self) -> str:
        return self.dsn("primary", SOURCE_DATABASE)

    @property
    def standby_dsn(self) -> str:
        return self.dsn("standby", SOURCE_DATABASE)

    @property
    def target_admin_dsn(self) -> str:
        return self.dsn("target", ADMIN_DATABASE)
