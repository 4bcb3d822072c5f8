"""Source and target databases of the engine's tests on the embedded stack."""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql

from repro_pipeline.embedded.stack import Stack, wait_for_standby_replay
from repro_pipeline.engine import dsn
from repro_pipeline.engine.config import ReproConfig
from repro_pipeline.engine.dsn import with_database
from repro_pipeline.engine.load.loader import LoadReport, load_repro
from repro_pipeline.engine.load.plan import SubsetPlan
from repro_pipeline.engine.source.snapshot import open_source_snapshot
from repro_pipeline.engine.verify.checks import Verdict, read_originals, verify_repro


@contextmanager
def source_database(stack: Stack, name: str, schema: str, encoding: str | None = None) -> Iterator[str]:
    """A database made on the primary with ``schema`` (DDL and rows), in ``encoding`` (the server's default
    if None); yields its DSN on the standby."""
    create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if encoding is not None:
        create += sql.SQL(" ENCODING {} TEMPLATE template0").format(sql.Literal(encoding))
    with psycopg.connect(stack.primary_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        admin.execute(create)
    try:
        with psycopg.connect(stack.dsn("primary", name), autocommit=True) as conn:
            conn.execute(schema.encode(conn.info.encoding))
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


def load_and_verify(
    source: str, target: str, plan: SubsetPlan, config: ReproConfig, batch_size: int
) -> tuple[LoadReport, tuple[Verdict, ...]]:
    """Load ``plan`` into ``target`` as the load's step does (the originals read in the load's snapshot), then
    the four verdicts."""
    with open_source_snapshot(source) as snapshot:
        originals = read_originals(snapshot.conn, plan, config)
        report = load_repro(
            snapshot, target, plan, run_id="test", started_at=datetime.now(UTC), batch_size=batch_size
        )
    with psycopg.connect(target, autocommit=True) as conn:
        return report, verify_repro(
            plan, originals, report.schema, conn, target, lambda: psycopg.connect(target, autocommit=True)
        )


def storage_options(
    conn: psycopg.Connection[Any], schemas: Sequence[str] = ("public",)
) -> dict[str, tuple[list[str] | None, list[str] | None]]:
    """Each table's, partitioned table's and materialized view's storage options (``reloptions``) and its
    TOAST table's, by schema.table (as ``format('%I.%I')`` writes it), in ``schemas``."""
    return {
        str(name): (options, toast_options)
        for name, options, toast_options in conn.execute(
            "SELECT format('%%I.%%I', n.nspname, c.relname), c.reloptions, t.reloptions FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_class t ON t.oid = c.reltoastrelid "
            "WHERE n.nspname = ANY(%s) AND c.relkind IN ('r', 'p', 'm')",
            (list(schemas),),
        )
    }
