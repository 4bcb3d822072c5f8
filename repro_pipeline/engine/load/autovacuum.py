"""Autovacuum held off the load's tables from the pre-data's commit to the end of the post-data section, when
workers write the rows in their own transactions.

A table a worker has committed is new to autovacuum, which soon vacuums or analyzes it, holding a lock that
the post-data's ``ALTER TABLE ... ADD CONSTRAINT`` waits for until the server cancels the autovacuum after
``deadlock_timeout``: the bench's whale lost 1.1 to 1.2 s so, now and then (post-data 1.55-1.65 s instead of
0.42 s). A table (or its TOAST table) whose source sets ``autovacuum_enabled`` itself keeps its own setting;
the others get the server's default back in the post-data's transaction, so the repro database's schema is
the source's and autovacuum analyzes the tables once they are complete.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from repro_pipeline.engine.source.catalog import TableName

# Of the given ordinary tables (partitioned ones hold no rows), whether the table and its TOAST table (if
# any) leave autovacuum_enabled unset.
_UNSET = """
SELECT n.nspname, c.relname,
       NOT EXISTS (SELECT FROM unnest(c.reloptions) option WHERE option LIKE 'autovacuum\\_enabled=%%'),
       toast.oid IS NOT NULL
       AND NOT EXISTS (SELECT FROM unnest(toast.reloptions) option WHERE option LIKE 'autovacuum\\_enabled=%%')
FROM unnest(%s::text[], %s::text[]) AS wanted(schema, name)
JOIN pg_namespace n ON n.nspname = wanted.schema
JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = wanted.name AND c.relkind = 'r'
LEFT JOIN pg_class toast ON toast.oid = c.reltoastrelid
ORDER BY 1, 2
"""


_TABLE_OPTION, _TOAST_OPTION = "autovacuum_enabled", "toast.autovacuum_enabled"


@dataclass(frozen=True)
class HeldOff:
    table: TableName
    options: tuple[str, ...]  # autovacuum_enabled, toast.autovacuum_enabled, or both


def hold_off_autovacuum(conn: psycopg.Connection[TupleRow], tables: Collection[TableName]) -> list[HeldOff]:
    """Turn autovacuum off on ``tables``, and their TOAST tables, where they do not set it themselves, in
    ``conn``'s transaction; what was turned off."""
    rows = conn.execute(
        _UNSET, ([table.schema for table in tables], [table.name for table in tables])
    ).fetchall()
    held = [
        HeldOff(
            TableName(str(schema), str(name)),
            (*([_TABLE_OPTION] if table_unset else []), *([_TOAST_OPTION] if toast_unset else [])),
        )
        for schema, name, table_unset, toast_unset in rows
        if table_unset or toast_unset
    ]
    _alter(conn, held, "SET", " = false")
    return held


def let_autovacuum_in(conn: psycopg.Connection[TupleRow], held: list[HeldOff]) -> None:
    """Give what ``hold_off_autovacuum`` turned off its default back (the source's: unset)."""
    _alter(conn, held, "RESET", "")


def _alter(conn: psycopg.Connection[TupleRow], held: list[HeldOff], action: str, value: str) -> None:
    """One statement per table, sent at once (a schema of thousands of partitions is one round trip); the
    action, options and value are this module's constants."""
    if held:
        conn.execute(
            sql.SQL("; ").join(
                sql.SQL("ALTER TABLE {} {}").format(
                    entry.table.identifier,
                    sql.SQL(f"{action} ({', '.join(option + value for option in entry.options)})"),
                )
                for entry in held
            )
        )
