"""Stream the closure's rows from the source to the target through the masks, table by table.

Rows go from ``COPY ... TO STDOUT`` on the source to ``COPY ... FROM STDIN`` on the target one batch of
keys (or, for a table without a primary key, one selecting condition) at a time, so memory holds one batch whatever the tenant's size. A table without masks is copied as raw
COPY data, without parsing rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from repro_pipeline.engine.masking.plan import TableMasking
from repro_pipeline.engine.subset.keyset import column_list


@dataclass(frozen=True)
class CopiedRows:
    read: int  # the source server's own count (COPY's command tag), in the load's snapshot
    written: int  # the target server's count of rows it stored


def copy_table(
    source: psycopg.Connection[TupleRow],
    target: psycopg.Connection[TupleRow],
    masking: TableMasking,
    batches: Iterable[tuple[sql.Composed, dict[str, Any]]],
) -> CopiedRows:
    """Copy the rows each ``(condition, params)`` batch selects into the target table."""
    table = masking.table
    columns = [column.name for column in table.copy_columns]
    source_cur, target_cur = source.cursor(), target.cursor()
    # FREEZE: the table was created in this transaction, so its rows can be written already frozen
    # (PostgreSQL allows it on ordinary tables only; a partitioned table routes rows to its partitions).
    copy_in = sql.SQL("COPY {table} ({columns}) FROM STDIN{freeze}").format(
        table=table.name.identifier,
        columns=column_list(columns),
        freeze=sql.SQL("" if table.partition_by else " WITH (FREEZE)"),
    )
    read = 0
    with target_cur.copy(copy_in) as sink:
        for condition, params in batches:
            copy_out = sql.SQL("COPY (SELECT {columns} FROM {table} WHERE {condition}) TO STDOUT").format(
                columns=column_list(columns), table=table.name.identifier, condition=condition
            )
            with source_cur.copy(copy_out, params) as stream:
                if masking.is_passthrough:
                    for block in stream:
                        sink.write(block)
                else:
                    for row in stream.rows():
                        sink.write_row(masking.mask_row(row))
            read += source_cur.rowcount
    return CopiedRows(read=read, written=target_cur.rowcount)
