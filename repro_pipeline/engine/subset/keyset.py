"""Rows by key: the ``WHERE`` condition that matches a batch of key values sent as array parameters.

A term is a column, or the value at a JSON path (a reference held in JSON), read as its key's type.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
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
    integers = [_holds_integers(table, column) for column in columns]
    placeholders = [sql.Placeholder(f"{name}_{index}") for index in range(len(columns))]
    if len(columns) == 1:
        condition = sql.SQL("{column} = ANY({values}::{type}[])").format(
            column=term_sql(columns[0]), values=placeholders[0], type=sql.SQL(types[0])
        )
        return condition, {f"{name}_0": array_parameter(values, integers=integers[0])}
    condition = sql.SQL("({columns}) IN (SELECT * FROM unnest({arrays}))").format(
        columns=column_list(columns),
        arrays=sql.SQL(", ").join(
            sql.SQL("{}::{}[]").format(placeholder, sql.SQL(type_))
            for placeholder, type_ in zip(placeholders, types, strict=True)
        ),
    )
    return condition, {
        f"{name}_{i}": array_parameter((value[i] for value in values), integers=integers[i])
        for i in range(len(columns))
    }


def array_parameter(values: Iterable[Any], *, integers: bool) -> str | list[Any]:
    """An array parameter: integers as one text literal (``{1,2,3}``), which the server parses in a fraction
    of the time psycopg takes to dump a list of ints one by one; other values as a list."""
    if integers:
        return "{" + ",".join(map(str, values)) + "}"
    return list(values)


def batches(values: Sequence[Any], size: int = KEY_BATCH) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def column_list(columns: Sequence[Term]) -> sql.Composed:
    return sql.SQL(", ").join(term_sql(column) for column in columns)


def term_sql(term: Term, qualifier: str | None = None) -> sql.Composable:
    if isinstance(term, JsonPath):
        return json_value(term, qualifier)
    return sql.Identifier(qualifier, term) if qualifier else sql.Identifier(term)


_INTEGER_TYPES = frozenset({"smallint", "integer", "bigint"})


def _holds_integers(table: Table, name: Term) -> bool:
    if isinstance(name, JsonPath):
        return name.key_type in _INTEGER_TYPES
    column = table.column(name)
    return column is not None and (column.type in _INTEGER_TYPES or column.base_type in _INTEGER_TYPES)


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
