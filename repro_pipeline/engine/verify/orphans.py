"""Foreign-key orphans of a loaded repro database, read from the target alone: every FK of the source
between copied tables must be on the target, and no row may point at a missing parent."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from repro_pipeline.engine.source.catalog import Catalog, ForeignKey


@dataclass(frozen=True)
class OrphanCount:
    foreign_key: ForeignKey
    orphans: int


@dataclass(frozen=True)
class ExpectedForeignKeys:
    present: tuple[ForeignKey, ...]  # source FKs between copied tables that the target has
    missing: tuple[ForeignKey, ...]  # source FKs between copied tables that the target lacks


def expected_foreign_keys(source: Catalog, target: Catalog) -> ExpectedForeignKeys:
    """Every FK of the source whose two tables are in the target should be in the target too; a virtual one
    is no constraint anywhere, and is checked for orphans all the same."""
    on_target = {(fk.child, fk.name) for fk in target.foreign_keys}
    expected = [fk for fk in source.foreign_keys if fk.child in target.tables and fk.parent in target.tables]
    return ExpectedForeignKeys(
        present=tuple(fk for fk in expected if fk.virtual or (fk.child, fk.name) in on_target),
        missing=tuple(fk for fk in expected if not fk.virtual and (fk.child, fk.name) not in on_target),
    )


def count_orphans(
    conn: psycopg.Connection[TupleRow], foreign_keys: Iterable[ForeignKey]
) -> list[OrphanCount]:
    """Rows whose (non-NULL) key has no parent row, for each FK, whether or not the target enforces it."""
    return [OrphanCount(fk, _orphans(conn, fk)) for fk in foreign_keys]


def _orphans(conn: psycopg.Connection[TupleRow], fk: ForeignKey) -> int:
    not_null = sql.SQL(" AND ").join(
        sql.SQL("c.{} IS NOT NULL").format(sql.Identifier(column)) for column in fk.child_columns
    )
    matches = sql.SQL(" AND ").join(
        sql.SQL("p.{} = c.{}").format(sql.Identifier(parent), sql.Identifier(child))
        for parent, child in zip(fk.parent_columns, fk.child_columns, strict=True)
    )
    query = sql.SQL(
        "SELECT count(*) FROM {child} c WHERE {not_null} AND NOT EXISTS (SELECT 1 FROM {parent} p WHERE {matches})"
    ).format(child=fk.child.identifier, parent=fk.parent.identifier, not_null=not_null, matches=matches)
    row = conn.execute(query).fetchone()
    return int(str(row[0])) if row else 0
