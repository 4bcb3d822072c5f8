"""One asset per table of the catalog snapshot (``repro/<schema>/<table>``), materialized by the load's step.

Each holds the table's rows, bytes, seconds and masked columns in the run's repro database, and carries the
table's share of the orphan and leak checks. A table of the snapshot that a run does not copy (excluded by
``mask-rules.yaml``, or gone from the source since the snapshot) is materialized with 0 rows and says why:
the asset's latest materialization then always describes the latest repro database, never an older one.
"""

import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg

from repro_pipeline.defs.tenant_repro.partitions import OWNERS, PARTITION_KEY_HELP, organizations
from repro_pipeline.defs.tenant_repro.repro_database import REPRO_DATABASE, TENANT_CLOSURE
from repro_pipeline.engine.load.loader import LoadReport
from repro_pipeline.engine.load.plan import SubsetPlan
from repro_pipeline.engine.source.catalog import TableName
from repro_pipeline.engine.verify.by_table import TABLE_NO_ORIGINAL_PII, TABLE_ZERO_FK_ORPHANS, TableVerdicts

TABLE_KEY_PREFIX = "repro"

_TABLE_CHECK_DESCRIPTIONS = {
    TABLE_ZERO_FK_ORPHANS: "Every foreign key of this table is on the target, and none of its rows points at "
    "a missing parent (its share of zero_fk_orphans)",
    TABLE_NO_ORIGINAL_PII: "No column of this table holds an original value of a masked column or JSON path "
    "(its share of no_original_pii)",
}


@dataclass(frozen=True)
class CopiedTable:
    table: TableName
    key: dg.AssetKey


def copied_tables(tables: Iterable[TableName]) -> tuple[CopiedTable, ...]:
    """The tables' assets, keyed ``repro/<schema>/<table>``; a character Dagster refuses in a key (a space,
    a hyphen) becomes ``_``, and of two tables that then share a key the first in name order keeps it (the
    other is still copied, and counted by ``repro_database``)."""
    by_key: dict[dg.AssetKey, TableName] = {}
    for table in sorted(tables):
        key = dg.AssetKey([TABLE_KEY_PREFIX, _key_part(table.schema), _key_part(table.name)])
        by_key.setdefault(key, table)
    return tuple(CopiedTable(table, key) for key, table in by_key.items())


def _key_part(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def table_specs(tables: Sequence[CopiedTable]) -> list[dg.AssetSpec]:
    return [
        dg.AssetSpec(
            copied.key,
            deps=[TENANT_CLOSURE],
            description=f"Table {copied.table} in the organization's repro database: its rows, bytes, seconds "
            f"and masked columns, loaded with every other table from one snapshot. {PARTITION_KEY_HELP}",
            kinds={"postgres"},
            owners=OWNERS,
            metadata={"table": str(copied.table)},
        )
        for copied in tables
    ]


def table_check_specs(tables: Sequence[CopiedTable]) -> list[dg.AssetCheckSpec]:
    # Partitioned like the database's checks (checks.py says why the preview warning is silenced).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return [
            dg.AssetCheckSpec(
                name, asset=copied.key, blocking=True, description=description, partitions_def=organizations
            )
            for copied in tables
            for name, description in _TABLE_CHECK_DESCRIPTIONS.items()
        ]


def load_keys(tables: Sequence[CopiedTable]) -> frozenset[dg.AssetKey]:
    """What one load materializes: the database and its tables, together or not at all."""
    return frozenset({REPRO_DATABASE, *(copied.key for copied in tables)})


def table_materializations(
    tables: Sequence[CopiedTable], plan: SubsetPlan, report: LoadReport, sizes: Mapping[TableName, int]
) -> list[dg.MaterializeResult]:  # type: ignore[type-arg]
    created = set(plan.created_tables)
    return [
        dg.MaterializeResult(
            asset_key=copied.key, metadata=_table_metadata(copied.table, plan, report, sizes, created)
        )
        for copied in tables
    ]


def _table_metadata(
    table: TableName,
    plan: SubsetPlan,
    report: LoadReport,
    sizes: Mapping[TableName, int],
    created: set[TableName],
) -> dict[str, Any]:
    masking = plan.mask_plan.tables.get(table)
    masked = {c.column: c.action for c in masking.columns if c.action != "passthrough"} if masking else {}
    if table in created:
        status = "copied"
    elif masking is not None:
        status = f"not copied: strategy {masking.strategy} in mask-rules.yaml"
    else:
        status = "not copied: no longer in the source's catalog (refresh the catalog snapshot)"
    return {
        "table": str(table),
        "status": status,
        "dagster/row_count": report.loaded_rows.get(table, 0),
        "closure_rows": plan.closure.row_counts.get(table, 0),
        "bytes": dg.MetadataValue.int(sizes.get(table, 0)),
        "seconds": round(report.table_seconds.get(table, 0.0), 3),
        "masked_columns": dg.MetadataValue.json(masked),
    }


def table_check_results(
    tables: Sequence[CopiedTable],
    verdicts: Mapping[TableName, TableVerdicts],
    selected: Iterable[dg.AssetCheckKey],
) -> list[dg.AssetCheckResult]:
    chosen = set(selected)
    results = []
    for copied in tables:
        for verdict in (verdicts[copied.table].orphans, verdicts[copied.table].leaks):
            if dg.AssetCheckKey(copied.key, verdict.check) in chosen:
                results.append(
                    dg.AssetCheckResult(
                        asset_key=copied.key,
                        check_name=verdict.check,
                        passed=verdict.passed,
                        metadata={
                            key: dg.MetadataValue.json(value) if isinstance(value, dict | list) else value
                            for key, value in verdict.found.items()
                        },
                    )
                )
    return results
