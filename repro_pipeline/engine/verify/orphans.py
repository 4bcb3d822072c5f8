"""Foreign-key orphans of a loaded repro database, read from the target alone: every FK of the source
between copied tables must be on the target, and no row may point at a missing parent."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from repro_pipeline.engine.source.catalog import Catalog, ForeignKey, JsonPath, TableName
from repro_pipeline.engine.subset.json_references import not_fitting_the_key
from repro_pipeline.engine.subset.keyset import term_sql


@dataclass(frozen=True)
class OrphanCount:
    foreign_key: ForeignKey
    orphans: int  # rows pointing at a missing parent that the source's parent has (or that the closure
    # did not find dangling there): a broken copy
    dangling_on_source: int = 0  # rows whose reference has no parent on the source either, copied as is
    not_fitting_the_key: int = 0  # rows of a JSON reference whose value is no key of the referenced type


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
    conn: psycopg.Connection[TupleRow],
    foreign_keys: Iterable[ForeignKey],
    dangling: Mapping[tuple[TableName, str], frozenset[Any]] | None = None,
) -> list[OrphanCount]:
    """Rows whose (non-NULL) key has no parent row, for each FK, whether or not the target enforces it;
    those whose key is among the references ``dangling`` on the source (the closure's) are counted apart."""
    counts = []
    for fk in foreign_keys:
        expected = (dangling or {}).get((fk.child, fk.name), frozenset())
        orphaned = _orphans(conn, fk)
        on_source = sum(rows for value, rows in orphaned.items() if value in expected)
        unfit = _not_fitting(conn, fk.child, fk.json_path) if fk.json_path else 0
        counts.append(OrphanCount(fk, sum(orphaned.values()) - on_source, on_source, unfit))
    return counts


def _orphans(conn: psycopg.Connection[TupleRow], fk: ForeignKey) -> Counter[Any]:
    """The rows of each key value that has no parent row (a value at a JSON path that is no key of the
    referenced type references nothing, and is counted by ``_not_fitting`` instead)."""
    terms = [term_sql(term, "c") for term in fk.child_terms]
    not_null = sql.SQL(" AND ").join(sql.SQL("{} IS NOT NULL").format(term) for term in terms)
    matches = sql.SQL(" AND ").join(
        sql.SQL("p.{} = {}").format(sql.Identifier(parent), child)
        for parent, child in zip(fk.parent_columns, terms, strict=True)
    )
    values = sql.SQL(", ").join(terms)
    query = sql.SQL(
        "SELECT {values}, count(*) FROM {child} c WHERE {not_null} "
        "AND NOT EXISTS (SELECT 1 FROM {parent} p WHERE {matches}) GROUP BY {values}"
    ).format(
        values=values,
        child=fk.child.identifier,
        parent=fk.parent.identifier,
        not_null=not_null,
        matches=matches,
    )
    orphaned: Counter[Any] = Counter()
    for *key, rows in conn.execute(query):
        orphaned[key[0] if len(key) == 1 else tuple(key)] += int(rows)
    return orphaned


def _not_fitting(conn: psycopg.Connection[TupleRow], child: TableName, path: JsonPath) -> int:
    query = sql.SQL("SELECT count(*) FROM {} c WHERE {}").format(
        child.identifier, not_fitting_the_key(path, "c")
    )
    row = conn.execute(query).fetchone()
    return int(row[0]) if row else 0
