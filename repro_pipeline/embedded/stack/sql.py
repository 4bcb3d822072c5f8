"""Checks and set-up done over SQL connections: readiness, the source database, replication progress."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from repro_pipeline.embedded.stack.errors import StackError, one_line, redact
from repro_pipeline.embedded.stack.model import ADMIN_DATABASE, SOURCE_DATABASE, Server, Stack

POLL_SECONDS = 0.05
CONNECT_TIMEOUT_SECONDS = 5


def admin_connection(stack: Stack, server: Server) -> psycopg.Connection[tuple[Any, ...]]:
    return psycopg.connect(
        stack.dsn(server.name, ADMIN_DATABASE), autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS
    )


def wait_until_accepting_connections(stack: Stack, server: Server, timeout: float) -> None:
    def accepts() -> bool:
        with admin_connection(stack, server):
            return True

    _wait_for(accepts, stack, server, timeout, f"to accept connections on port {server.port}")


def create_source_database(stack: Stack) -> None:
    with (
        _as_stack_error(stack, stack.primary, f"create database {SOURCE_DATABASE}"),
        admin_connection(stack, stack.primary) as connection,
    ):
        exists = connection.execute(
            "select 1 from pg_database where datname = %s", [SOURCE_DATABASE]
        ).fetchone()
        if exists is None:
            connection.execute(f'create database "{SOURCE_DATABASE}"')


def close_target_maintenance_databases(stack: Stack) -> None:
    """The target's own databases are closed to PUBLIC: a repro login may then connect to its repro database
    only (PostgreSQL lets PUBLIC connect to ``postgres`` and ``template1`` by default)."""
    with (
        _as_stack_error(stack, stack.target, "close postgres and template1 to PUBLIC"),
        admin_connection(stack, stack.target) as connection,
    ):
        connection.execute("revoke connect, temporary on database postgres, template1 from public")


def wait_until_streaming(stack: Stack, timeout: float) -> None:
    def streaming() -> bool:
        with admin_connection(stack, stack.standby) as connection:
            row = connection.execute("select status from pg_stat_wal_receiver").fetchone()
            return row is not None and row[0] == "streaming"

    _wait_for(streaming, stack, stack.standby, timeout, "to stream WAL from the primary")


def wait_for_standby_replay(stack: Stack, timeout: float = 30) -> None:
    """Wait until the standby has replayed everything the primary had written when this was called."""
    with (
        _as_stack_error(stack, stack.primary, "read pg_current_wal_lsn()"),
        admin_connection(stack, stack.primary) as connection,
    ):
        row = connection.execute("select pg_current_wal_lsn()::text").fetchone()
    primary_lsn = str(row[0]) if row else "0/0"

    def replayed() -> bool:
        with admin_connection(stack, stack.standby) as connection:
            done = connection.execute(
                "select pg_last_wal_replay_lsn() >= %s::pg_lsn", [primary_lsn]
            ).fetchone()
            return done is not None and done[0] is True

    _wait_for(replayed, stack, stack.standby, timeout, f"to replay the primary's WAL up to {primary_lsn}")


@contextmanager
def _as_stack_error(stack: Stack, server: Server, action: str) -> Iterator[None]:
    try:
        yield
    except psycopg.Error as error:
        message = f"{server.name}: could not {action}: {one_line(str(error))}; see {server.log_file}"
        raise StackError(redact(message, stack.password)) from error


def _wait_for(check: Callable[[], bool], stack: Stack, server: Server, timeout: float, goal: str) -> None:
    deadline = time.monotonic() + timeout
    last_problem = "it never did"
    while True:
        try:
            if check():
                return
        except psycopg.OperationalError as error:
            last_problem = one_line(str(error)) or repr(error)
            if "authentication failed" in last_problem:
                break
        if time.monotonic() >= deadline:
            break
        time.sleep(POLL_SECONDS)
    message = f"{server.name}: waited {timeout:g}s for it {goal}: {last_problem}; see {server.log_file}"
    raise StackError(redact(message, stack.password))
