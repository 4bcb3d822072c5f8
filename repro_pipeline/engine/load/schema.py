"""What follows pg_dump's post-data section (``schema_dump.py``): each sequence set past the largest value the
load wrote, so the next insert does not collide, and the materialized views refreshed over the loaded rows
(a schema-only dump creates them empty)."""

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


# In creation order, which pg_dump made the order of their dependencies.
MATERIALIZED_VIEWS = sql.SQL(
    "SELECT oid::regclass::text FROM pg_class WHERE relkind = 'm' "
    "AND relnamespace <> 'pg_catalog'::regnamespace ORDER BY oid"
)


def refresh(materialized_view: str) -> sql.Composed:
    """``materialized_view`` as ``regclass`` writes it: already quoted and schema-qualified."""
    return sql.SQL("REFRESH MATERIALIZED VIEW {}").format(sql.SQL(materialized_view))


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
