"""Rows by key: the ``WHERE`` condition that matches a batch of key values sent as array parameters.

A term is a column, or the value at a JSON path (a reference held in JSON), read as its key's type.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from psycopg import sql

from repro_pipeline.engine.source.catalog import JsonPath, Table
from repro_pipeline.engine.subset.json_references import json_value

KEY_BATCH = 20_000
Term = str | JsonPath


def match_keys(
    table: Table, columns: Sequence[Term], values: Sequence[Any], *, name: str = "keys"
) -> tuple[sql.Composed, dict[str, Any]]:
    """``columns`` equal one of ``values`` (scalars for one column, tuples for several).

    Parameters are named ``<name>_<i>``, so several conditions (and a predicate) can share one query.
    """
    types = [_column_type(table, column) for column in columns]
    placeholders = [sql.Placeholder(f"{name}_{index}") for index in range(len(columns))]
    if len(columns) == 1:
        condition = sql.SQL("{column} = ANY({values}::{type}[])").format(
            column=term_sql(columns[0]), values=placeholders[0], type=sql.SQL(types[0])
        )
        return condition, {f"{name}_0": list(values)}
    condition = sql.SQL("({columns}) IN (SELECT * FROM unnest({arrays}))").format(
        columns=column_list(columns),
        arrays=sql.SQL(", ").join(
            sql.SQL("{}::{}[]").format(placeholder, sql.SQL(type_))
            for placeholder, type_ in zip(placeholders, types, strict=True)
        ),
    )
    return condition, {f"{name}_{i}": [value[i] for value in values] for i in range(len(columns))}


def batches(values: Sequence[Any], size: int = KEY_BATCH) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def column_list(columns: Sequence[Term]) -> sql.Composed:
    return sql.SQL(", ").join(term_sql(column) for column in columns)


def term_sql(term: Term, qualifier: str | None = None) -> sql.Composable:
    if isinstance(term, JsonPath):
        return json_value(term, qualifier)
    return sql.Identifier(qualifier, term) if qualifier else sql.Identifier(term)


def _column_type(table: Table, name: Term) -> str:
    if isinstance(name, JsonPath):
        return name.key_type
    column = table.column(name)
    if column is None:
        raise KeyError(f"{table.name} has no column {name}")
    return column.type


def key_getter(columns: Sequence[Term], key: Sequence[Term]) -> Callable[[Sequence[Any]], Any]:
    """A row's ``key`` from a row of ``columns``: a value for one column, a tuple for several, None for none."""
    positions = [list(columns).index(column) for column in key]
    if not positions:
        return lambda row: None
    if len(positions) == 1:
        (only,) = positions
        return lambda row: row[only]
    return lambda row: tuple(row[position] for position in positions)
