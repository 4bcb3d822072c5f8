"""Rows by key: the ``WHERE`` condition that matches a batch of key values sent as array parameters."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from psycopg import sql

from repro_pipeline.engine.catalog import Table

KEY_BATCH = 20_000


def match_keys(table: Table, columns: Sequence[str], values: Sequence[Any]) -> tuple[sql.Composed, list[Any]]:
    """``columns`` equal one of ``values`` (scalars for one column, tuples for several)."""
    types = [_column_type(table, column) for column in columns]
    if len(columns) == 1:
        condition = sql.SQL("{column} = ANY({values}::{type}[])").format(
            column=sql.Identifier(columns[0]), values=sql.Placeholder(), type=sql.SQL(types[0])
        )
        return condition, [list(values)]
    condition = sql.SQL("({columns}) IN (SELECT * FROM unnest({arrays}))").format(
        columns=column_list(columns),
        arrays=sql.SQL(", ").join(
            sql.SQL("{}::{}[]").format(sql.Placeholder(), sql.SQL(type_)) for type_ in types
        ),
    )
    return condition, [[value[i] for value in values] for i in range(len(columns))]


def batches(values: Sequence[Any], size: int = KEY_BATCH) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def column_list(columns: Sequence[str]) -> sql.Composed:
    return sql.SQL(", ").join(sql.Identifier(column) for column in columns)


def _column_type(table: Table, name: str) -> str:
    column = table.column(name)
    if column is None:
        raise KeyError(f"{table.name} has no column {name}")
    return column.type
