"""The true floor of a load: the closure's rows copied unmasked with binary COPY into bare tables (columns
only), then their primary keys, unique constraints and foreign keys added, in one transaction."""

from __future__ import annotations

import time
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from repro_pipeline.engine import dsn
from repro_pipeline.engine.load.plan import SubsetPlan
from repro_pipeline.engine.source.catalog import Table, TableName

# Keys and unique constraints before the foreign keys that need them.
_CONSTRAINTS = """
SELECT con.conname, pg_get_constraintdef(con.oid)
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relname = %s AND con.contype = %s
ORDER BY con.conname
"""


def copy_floor(
    source: psycopg.Connection[TupleRow], target_dsn: str, plan: SubsetPlan, batch_size: int
) -> dict[str, Any]:
    """Copy the plan's rows to the empty database ``target_dsn`` the fastest way PostgreSQL allows, reading
    ``source`` in the plan's snapshot; seconds spent creating and copying, adding constraints, and in all."""
    tables = [plan.catalog.tables[name] for name in plan.created_tables]
    constraints = _constraints(source, tables)
    began = time.perf_counter()
    rows = 0
    with dsn.connect(target_dsn, role="floor database") as target:
        for table in tables:
            target.execute(_bare_table(table))
        for table in tables:
            rows += _copy_binary(source, target, plan, table, batch_size)
        copied = time.perf_counter()
        for statement in constraints:
            target.execute(statement)
    ended = time.perf_counter()
    return {
        "rows": rows,
        "seconds": ended - began,
        "copy_seconds": copied - began,
        "constraint_seconds": ended - copied,
    }


def _bare_table(table: Table) -> sql.Composed:
    # The column types are the source catalog's own format_type() text.
    return sql.SQL("CREATE TABLE {} ({})").format(
        table.name.identifier,
        sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(column.name), sql.SQL(column.type))
            for column in table.copy_columns
        ),
    )


def _copy_binary(
    source: psycopg.Connection[TupleRow],
    target: psycopg.Connection[TupleRow],
    plan: SubsetPlan,
    table: Table,
    batch_size: int,
) -> int:
    columns = sql.SQL(", ").join(sql.Identifier(column.name) for column in table.copy_columns)
    copy_in = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT binary, FREEZE)").format(
        table.name.identifier, columns
    )
    source_cur, target_cur = source.cursor(), target.cursor()
    rows = 0
    # A binary COPY stream has its own header and trailer: one COPY in per batch read.
    for condition, params in plan.closure.row_conditions(table, plan.organization_id, batch_size):
        copy_out = sql.SQL("COPY (SELECT {} FROM {} WHERE {}) TO STDOUT (FORMAT binary)").format(
            columns, table.name.identifier, condition
        )
        with target_cur.copy(copy_in) as sink, source_cur.copy(copy_out, params) as stream:
            for block in stream:
                sink.write(block)
        rows += target_cur.rowcount
    return rows


def _constraints(source: psycopg.Connection[TupleRow], tables: list[Table]) -> list[sql.Composed]:
    copied = {table.name for table in tables}
    statements: list[sql.Composed] = []
    for kind in ("p", "u", "f"):
        for table in tables:
            for name, definition in source.execute(_CONSTRAINTS, [table.name.schema, table.name.name, kind]):
                if kind == "f" and _referenced(str(definition)) not in copied:
                    continue
                statements.append(
                    sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                        table.name.identifier, sql.Identifier(str(name)), sql.SQL(str(definition))
                    )
                )
    return statements


def _referenced(definition: str) -> TableName:
    """The table a ``FOREIGN KEY (...) REFERENCES table(...)`` definition points at."""
    referenced = definition.split(" REFERENCES ", 1)[1].split("(", 1)[0].strip()
    return TableName.parse(referenced.replace('"', ""))
