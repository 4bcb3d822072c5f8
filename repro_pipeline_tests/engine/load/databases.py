"""Source and target databases of the engine's tests on the embedded stack."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql

from repro_pipeline.embedded.stack import Stack, wait_for_standby_replay
from repro_pipeline.engine import dsn
from repro_pipeline.engine.dsn import with_database


@contextmanager
def source_database(stack: Stack, name: str, schema: str) -> Iterator[str]:
    """A database made on the primary with ``schema`` (DDL and rows); yields its DSN on the standby."""
    with psycopg.connect(stack.primary_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        with psycopg.connect(stack.dsn("primary", name), autocommit=True) as conn:
            conn.execute(schema.encode())
        wait_for_standby_replay(stack, timeout=30)
        yield stack.dsn("standby", name)
    finally:
        with psycopg.connect(stack.primary_dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@contextmanager
def empty_target(stack: Stack, prefix: str) -> Iterator[str]:
    """An empty database on the target server, dropped afterwards."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(stack.target_admin_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield with_database(stack.target_admin_dsn, name)
        finally:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@contextmanager
def copy_of(stack: Stack, database_dsn: str) -> Iterator[str]:
    """A copy of a database on the target server (which no session may use meanwhile), dropped afterwards."""
    original = dsn.parameter(database_dsn, "dbname") or ""
    name = f"{original[:40]}_copy_{secrets.token_hex(4)}"
    with psycopg.connect(stack.target_admin_dsn, autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(original))
        )
        try:
            yield with_database(stack.target_admin_dsn, name)
        finally:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
