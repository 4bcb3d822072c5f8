"""Where a stack lives on disk, and its saved description (``stack.json`` and ``credentials``)."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repro_pipeline.embedded.stack.accounts import blocking_folder, server_user
from repro_pipeline.embedded.stack.binaries import ORIGINS, PgBinaries, missing_tools
from repro_pipeline.embedded.stack.errors import StackError
from repro_pipeline.embedded.stack.model import SERVER_NAMES, Server, Stack

STACK_DIR_ENV = "REPRO_STACK_DIR"
STATE_FORMAT = 1
# A Unix socket path must fit in sockaddr_un.sun_path (108 bytes with its NUL).
MAX_SOCKET_PATH = 107


@dataclass(frozen=True)
class StackPaths:
    root: Path

    @property
    def state_file(self) -> Path:
        return self.root / "stack.json"

    @property
    def credentials_file(self) -> Path:
        return self.root / "credentials"

    @property
    def initdb_password_file(self) -> Path:
        return self.root / "initdb-password"

    @property
    def lock_file(self) -> Path:
        return self.root / "stack.lock"

    def data_dir(self, name: str) -> Path:
        return self.root / name

    def log_file(self, name: str) -> Path:
        return self.root / f"{name}.log"

    def server(self, name: str, port: int) -> Server:
        return Server(name=name, port=port, data_dir=self.data_dir(name), log_file=self.log_file(name))

    def looks_like_a_stack(self) -> bool:
        """True for a folder this module made (or an empty one): the only kind it will chown or delete."""
        if not self.root.exists():
            return True
        return self.lock_file.exists() or self.state_file.exists() or not any(self.root.iterdir())


def resolve_stack_root(root: Path | None = None) -> Path:
    """``root`` if given, else ``$REPRO_STACK_DIR``, else ``default_stack_root()``."""
    if root is not None:
        return Path(root).expanduser().resolve()
    from_env = os.environ.get(STACK_DIR_ENV, "").strip()
    if from_env:
        return Path(from_env).expanduser().resolve()
    return default_stack_root()


def default_stack_root(checkout: Path | None = None) -> Path:
    """``<checkout>/.stack``, or, when the server account cannot reach the checkout (a clone under /root
    run by root), a folder under the temp dir named after the checkout, so every call finds the same one.

    ``checkout`` defaults to this repository (or the working directory when installed from a wheel).
    """
    checkout = _this_checkout() if checkout is None else checkout
    if blocking_folder(checkout / ".stack", server_user()) is None:
        return checkout / ".stack"
    digest = hashlib.sha256(os.fsencode(checkout)).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"repro-pipeline-stack-{digest}"


def _this_checkout() -> Path:
    repo_root = Path(__file__).resolve().parents[3]
    if (repo_root / "pyproject.toml").exists():
        return repo_root
    return Path.cwd().resolve()


def check_socket_path_fits(root: Path) -> None:
    socket_path = root / ".s.PGSQL.65535.lock"
    if len(os.fsencode(socket_path)) > MAX_SOCKET_PATH:
        raise StackError(
            f"the stack folder {root} is too deep for PostgreSQL's Unix sockets "
            f"(max {MAX_SOCKET_PATH} bytes); set {STACK_DIR_ENV} (or --dir) to a shorter path"
        )


def save_state(paths: StackPaths, stack: Stack) -> None:
    state = {
        "format": STATE_FORMAT,
        "binaries": {
            "bin_dir": str(stack.binaries.bin_dir),
            "major_version": stack.binaries.major_version,
            "origin": stack.binaries.origin,
            "copied_from": str(stack.binaries.copied_from) if stack.binaries.copied_from else None,
        },
        "ports": {server.name: server.port for server in stack.servers},
    }
    partial = paths.state_file.with_suffix(".json.tmp")
    partial.write_text(json.dumps(state, indent=2) + "\n")
    partial.replace(paths.state_file)


def load_state(paths: StackPaths) -> Stack | None:
    """The saved stack, or None when this folder holds no complete stack."""
    if not paths.state_file.exists():
        return None
    state = _read_json(paths.state_file)
    try:
        copied_from = state["binaries"].get("copied_from")  # absent in stacks made before copies existed
        binaries = PgBinaries(
            bin_dir=Path(state["binaries"]["bin_dir"]),
            major_version=int(state["binaries"]["major_version"]),
            origin=state["binaries"]["origin"],
            copied_from=Path(copied_from) if copied_from else None,
        )
        ports = {name: int(state["ports"][name]) for name in SERVER_NAMES}
        if binaries.origin not in ORIGINS:
            raise ValueError(f"unknown binaries origin {binaries.origin!r}")
    except (AttributeError, KeyError, TypeError, ValueError) as error:
        raise StackError(
            f"{paths.state_file} is not a valid stack description ({error!r}); run destroy"
        ) from error
    return Stack(
        root=paths.root,
        binaries=binaries,
        password=read_password(paths),
        primary=paths.server("primary", ports["primary"]),
        standby=paths.server("standby", ports["standby"]),
        target=paths.server("target", ports["target"]),
    )


def check_binaries_still_there(stack: Stack) -> None:
    missing = missing_tools(stack.binaries.bin_dir)
    if missing:
        raise StackError(
            f"the stack in {stack.root} was created with {stack.binaries.describe()}, which now lacks "
            f"{', '.join(missing)}; reinstall those binaries or run destroy to start afresh"
        )


def write_password(paths: StackPaths, password: str) -> None:
    descriptor = os.open(paths.credentials_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as credentials:
        os.fchmod(credentials.fileno(), 0o600)
        credentials.write(password + "\n")


def read_password(paths: StackPaths) -> str:
    try:
        password = paths.credentials_file.read_text().strip()
    except OSError as error:
        raise StackError(f"cannot read {paths.credentials_file} ({error.strerror}); run destroy") from error
    if not password:
        raise StackError(f"{paths.credentials_file} is empty; run destroy to start afresh")
    return password


def _read_json(path: Path) -> dict[str, Any]:
    try:
        loaded = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise StackError(f"cannot read {path} ({error}); run destroy to start afresh") from error
    if not isinstance(loaded, dict):
        raise StackError(f"{path} is not a valid stack description; run destroy to start afresh")
    return loaded
