"""Autovacuum held off the load's tables from the pre-data's commit to the end of the post-data section, when
workers write the rows in their own transactions.

A table a worker has committed is new to autovacuum, which soon vacuums or analyzes it, holding a lock that
the post-data's ``ALTER TABLE ... ADD CONSTRAINT`` waits for until the server cancels the autovacuum after
``deadlock_timeout``: the bench's whale lost 1.1 to 1.2 s so, now and then (post-data 1.55-1.65 s instead of
0.42 s). A table whose source sets ``autovacuum_enabled`` itself keeps its own setting; the others get the
server's default back in the post-data's transaction, so the repro database's schema is the source's and
autovacuum analyzes the tables once they are complete.
"""

from __future__ import annotations

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from repro_pipeline.engine.source.catalog import MANIFEST_SCHEMA, TableName

# The database's ordinary tables, but those that set autovacuum_enabled (or their TOAST table does), and
# whether they have a TOAST table.
_TABLES_TO_HOLD = """
SELECT n.nspname, c.relname, c.reltoastrelid <> 0
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_class toast ON toast.oid = c.reltoastrelid
WHERE c.relkind = 'r'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', %s)
  AND NOT EXISTS (SELECT FROM unnest(c.reloptions) option WHERE option LIKE 'autovacuum\\_enabled=%%')
  AND NOT EXISTS (SELECT FROM unnest(toast.reloptions) option WHERE option LIKE 'autovacuum\\_enabled=%%')
ORDER BY 1, 2
"""


def hold_off_autovacuum(conn: psycopg.Connection[TupleRow]) -> list[tuple[TableName, bool]]:
    """Turn autovacuum off on the database's tables that do not set it themselves, in ``conn``'s transaction;
    those tables, and whether each has a TOAST table."""
    held = [
        (TableName(str(schema), str(name)), bool(toast))
        for schema, name, toast in conn.execute(_TABLES_TO_HOLD, (MANIFEST_SCHEMA,))
    ]
    for table, toast in held:
        conn.execute(
            sql.SQL("ALTER TABLE {} SET ({})").format(table.identifier, _options(toast, sql.SQL(" = false")))
        )
    return held


def let_autovacuum_in(conn: psycopg.Connection[TupleRow], held: list[tuple[TableName, bool]]) -> None:
    """Give the tables ``hold_off_autovacuum`` held their default back (the source's: none set)."""
    for table, toast in held:
        conn.execute(
            sql.SQL("ALTER TABLE {} RESET ({})").format(table.identifier, _options(toast, sql.SQL("")))
        )


def _options(toast: bool, value: sql.Composable) -> sql.Composable:
    names = ["autovacuum_enabled", *(["toast.autovacuum_enabled"] if toast else [])]
    return sql.SQL(", ").join(sql.SQL(name) + value for name in names)
