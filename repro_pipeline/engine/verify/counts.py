"""Row counts of a loaded repro database's tables."""

from __future__ import annotations

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from repro_pipeline.engine.source.catalog import TableName


def count_rows(conn: psycopg.Connection[TupleRow], tables: list[TableName]) -> dict[TableName, int]:
    """Rows of each table the target has (a table it lacks is left out, and so reported as missing).

    pg_tables lists partitioned tables as well as ordinary ones.
    """
    present = {
        TableName(str(schema), str(name))
        for schema, name in conn.execute("SELECT schemaname, tablename FROM pg_tables")
    }
    counts = {}
    for table in tables:
        if table in present:
            row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(table.identifier)).fetchone()
            counts[table] = int(str(row[0])) if row else 0
    return counts
