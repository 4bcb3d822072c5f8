"""The database's orphan and leak verdicts told per copied table, and each table's size on the target.

Split from the database-level verdicts rather than computed again, so a table's check costs no second scan
and can never disagree with the database's: a table fails when the database's check found its FKs' orphans,
a missing FK of its own, or an original in one of its columns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import psycopg
from psycopg.rows import TupleRow

from repro_pipeline.engine.source.catalog import Catalog, TableName
from repro_pipeline.engine.verify.checks import NO_ORIGINAL_PII, ZERO_FK_ORPHANS, Verdict

TABLE_ZERO_FK_ORPHANS = "table_zero_fk_orphans"
TABLE_NO_ORIGINAL_PII = "table_no_original_pii"


@dataclass(frozen=True)
class TableVerdicts:
    orphans: Verdict
    leaks: Verdict


def verdicts_by_table(
    catalog: Catalog, tables: Iterable[TableName], database_verdicts: Iterable[Verdict]
) -> dict[TableName, TableVerdicts]:
    """Each of ``tables``' share of the database's ``zero_fk_orphans`` and ``no_original_pii`` verdicts
    (both must be among ``database_verdicts``); a table the source's ``catalog`` lacks has none of either."""
    by_check = {verdict.check: verdict for verdict in database_verdicts}
    orphans, leaks = by_check[ZERO_FK_ORPHANS], by_check[NO_ORIGINAL_PII]
    return {
        table: TableVerdicts(_orphans_of(catalog, table, orphans), _leaks_of(catalog, table, leaks))
        for table in tables
    }


def _orphans_of(catalog: Catalog, table: TableName, database: Verdict) -> Verdict:
    own = [str(fk) for fk in catalog.referenced_by(table)] if table in catalog.tables else []
    failing: Mapping[str, int] = database.found.get("failing_foreign_keys", {})
    missing = set(database.found.get("missing_foreign_keys", []))
    table_failing = {fk: failing[fk] for fk in own if fk in failing}
    table_missing = [fk for fk in own if fk in missing]
    return Verdict(
        TABLE_ZERO_FK_ORPHANS,
        passed=not table_failing and not table_missing,
        found={
            "foreign_keys_checked": len(own),
            "orphans": sum(table_failing.values()),
            "failing_foreign_keys": table_failing,
            "missing_foreign_keys": table_missing,
        },
    )


def _leaks_of(catalog: Catalog, table: TableName, database: Verdict) -> Verdict:
    columns = (
        [f"{table}.{column.name}" for column in catalog.tables[table].columns]
        if table in catalog.tables
        else []
    )

    def of_table(key: str) -> dict[str, int]:
        found: Mapping[str, int] = database.found.get(key, {})
        return {column: found[column] for column in columns if column in found}

    leaking = of_table("leaking_columns")
    return Verdict(
        TABLE_NO_ORIGINAL_PII,
        passed=not leaking,
        found={
            "columns_searched": len(columns),
            "leaking_columns": leaking,
            "one_word_originals_found": of_table("one_word_originals_found"),
        },
    )


def table_bytes(target: psycopg.Connection[TupleRow], tables: Iterable[TableName]) -> dict[TableName, int]:
    """Each table's size on the target with its indexes and TOAST, and its partitions' (0 when absent)."""
    names = list(tables)
    # pg_partition_tree lists a partitioned table's partitions (itself without storage), and nothing for a
    # plain table on some versions (15): the table's own size, plus its partitions'.
    rows = target.execute(
        """
        SELECT t.name,
               coalesce(pg_total_relation_size(t.rel), 0)
               + coalesce((SELECT sum(pg_total_relation_size(p.relid)) FROM pg_partition_tree(t.rel) AS p
                           WHERE p.relid <> t.rel), 0)
        FROM (SELECT name, to_regclass(name) AS rel FROM unnest(%s::text[]) AS name) AS t
        """,
        [[name.identifier.as_string() for name in names]],
    ).fetchall()
    sizes: dict[str, int] = {str(name): int(size) for name, size in rows}
    return {name: sizes.get(name.identifier.as_string(), 0) for name in names}
