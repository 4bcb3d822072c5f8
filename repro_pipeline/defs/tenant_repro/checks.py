"""Blocking checks of the repro database: a failure stops the handoff.

Each check records its verdict in the repro database's manifest, and the handoff requires all of them.
A database found to hold original PII is marked expired, so the next TTL sweep drops it.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import dagster as dg
import psycopg
from psycopg.rows import TupleRow

from repro_pipeline.defs.failures import reported_as_failure
from repro_pipeline.defs.resources import MaskingConfig, SourceStandby, TargetServer
from repro_pipeline.defs.tenant_repro.assets import REPRO_DATABASE, repro_database_of
from repro_pipeline.engine.repro_databases import lifecycle
from repro_pipeline.engine.repro_databases.manifest import planned_row_counts, record_check
from repro_pipeline.engine.source.catalog import read_catalog
from repro_pipeline.engine.verify.counts import compare_counts, count_rows
from repro_pipeline.engine.verify.leaks import find_leaks, original_values, sensitive_fields
from repro_pipeline.engine.verify.orphans import count_orphans, expected_foreign_keys


@contextmanager
def _repro_database(
    context: dg.AssetCheckExecutionContext, target: TargetServer
) -> Iterator[tuple[lifecycle.ReproDatabase, psycopg.Connection[TupleRow]]]:
    """The partition's repro database (the one this run loaded, when checks run with the load)."""
    database = repro_database_of(context, target)
    with target.connect_database(database.name) as conn:
        yield database, conn


@dg.asset_check(
    asset=REPRO_DATABASE,
    blocking=True,
    description="Every foreign key of the source between copied tables exists on the target, with no orphan",
)
def zero_fk_orphans(
    context: dg.AssetCheckExecutionContext, target: TargetServer, standby: SourceStandby
) -> dg.AssetCheckResult:
    with reported_as_failure(), _repro_database(context, target) as (_, conn):
        with standby.connect() as source:
            expected = expected_foreign_keys(read_catalog(source), read_catalog(conn))
        results = count_orphans(conn, (*expected.present, *expected.missing))
        failing = {str(result.foreign_key): result.orphans for result in results if result.orphans}
        passed = not failing and not expected.missing
        record_check(conn, "zero_fk_orphans", passed=passed)
    return dg.AssetCheckResult(
        passed=passed,
        metadata={
            "foreign_keys_checked": len(results),
            "orphans": sum(failing.values()),
            "failing_foreign_keys": dg.MetadataValue.json(failing),
            "missing_foreign_keys": dg.MetadataValue.json([str(fk) for fk in expected.missing]),
        },
    )


@dg.asset_check(
    asset=REPRO_DATABASE,
    blocking=True,
    description="Target row counts equal the closure's, as the load recorded them in the repro database",
)
def row_counts_match_closure(
    context: dg.AssetCheckExecutionContext, target: TargetServer
) -> dg.AssetCheckResult:
    with reported_as_failure(), _repro_database(context, target) as (_, conn):
        expected = planned_row_counts(conn)
        mismatches = compare_counts(expected, count_rows(conn, sorted(expected)))
        passed = not mismatches and bool(expected)
        record_check(conn, "row_counts_match_closure", passed=passed)
    return dg.AssetCheckResult(
        passed=passed,
        metadata={
            "tables_checked": len(expected),
            "mismatches": dg.MetadataValue.json(
                {str(m.table): {"closure": m.expected, "target": m.actual} for m in mismatches}
            ),
        },
    )


@dg.asset_check(
    asset=REPRO_DATABASE,
    blocking=True,
    description="No original value of a masked column or JSON path appears anywhere in the target",
)
def no_original_pii(
    context: dg.AssetCheckExecutionContext,
    target: TargetServer,
    standby: SourceStandby,
    masking: MaskingConfig,
) -> dg.AssetCheckResult:
    with reported_as_failure():
        config, _salt = masking.load()
        with _repro_database(context, target) as (database, conn), standby.connect() as source:
            source.read_only = True
            source_catalog = read_catalog(source)
            originals = original_values(
                source, conn, source_catalog, sensitive_fields(config, source_catalog)
            )
            leaks = find_leaks(conn, read_catalog(conn), originals)
            record_check(conn, "no_original_pii", passed=not leaks)
        if leaks:
            with target.admin() as admin:
                lifecycle.retire(admin, database, datetime.now(UTC))
            context.log.error(
                f"{database.name} holds original values of masked fields: marked expired for the sweep"
            )
    return dg.AssetCheckResult(
        passed=not leaks,
        metadata={
            "original_values_checked": len(originals.values),
            "originals_not_searched": dg.MetadataValue.json(dict(originals.not_searched)),
            "regex_masks_that_masked_nothing": dg.MetadataValue.json(originals.masked_nothing),
            "leaking_columns": dg.MetadataValue.json(dict(leaks)),
        },
    )
