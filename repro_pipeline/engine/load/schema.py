"""Sequence positions after the load: pg_dump (``schema_dump.py``) replicates the schema, and each sequence
is then set past the largest value the load wrote, so the next insert does not collide."""

from __future__ import annotations

import re
from collections.abc import Iterable

from psycopg import sql

from repro_pipeline.engine.source.catalog import Column, Table

Statement = sql.SQL | sql.Composed
_NEXTVAL = re.compile(r"nextval\('(?P<sequence>.+)'::regclass\)")


def sequence_positions(tables: Iterable[Table]) -> list[Statement]:
    """Each serial or identity column's sequence set past the largest loaded value."""
    return [
        _reset_sequence(table, column)
        for table in tables
        for column in table.columns
        if _has_sequence(column)
    ]


def _serial_sequence(column: Column) -> str | None:
    match = _NEXTVAL.fullmatch(column.default or "") if not column.generated else None
    return match.group("sequence") if match else None


def _has_sequence(column: Column) -> bool:
    return bool(column.identity) or _serial_sequence(column) is not None


def _reset_sequence(table: Table, column: Column) -> sql.Composed:
    """Point the column's sequence past the largest loaded value, so the next insert does not collide."""
    return sql.SQL(
        "SELECT setval(pg_get_serial_sequence(quote_ident({schema}) || '.' || quote_ident({name}), {column_text}),"
        " coalesce(max({column}), 1), max({column}) IS NOT NULL) FROM {table}"
    ).format(
        schema=sql.Literal(table.name.schema),
        name=sql.Literal(table.name.name),
        column_text=sql.Literal(column.name),
        column=sql.Identifier(column.name),
        table=table.name.identifier,
    )
