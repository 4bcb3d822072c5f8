"""Blocking checks of the repro database: a failure stops the handoff."""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import psycopg
from psycopg.rows import TupleRow

from repro_pipeline.defs.assets import REPRO_DATABASE, latest_repro_database
from repro_pipeline.defs.errors import reported_as_failure
from repro_pipeline.defs.resources import MaskingConfig, SourceStandby, TargetServer
from repro_pipeline.engine.catalog import read_catalog
from repro_pipeline.engine.leaks import find_leaks, original_values, sensitive_fields
from repro_pipeline.engine.manifest import expected_row_counts
from repro_pipeline.engine.tenant import parse_organization_id
from repro_pipeline.engine.verify import compare_counts, count_orphans, count_rows


@contextmanager
def _repro_database(
    context: dg.AssetCheckExecutionContext, target: TargetServer
) -> Iterator[psycopg.Connection[TupleRow]]:
    """The partition's latest repro database (the one this run loaded, when checks run with the load)."""
    parse_organization_id(context.partition_key)
    name = latest_repro_database(context.instance, context.partition_key, context.run.run_id)
    with psycopg.connect(target.database_dsn(name), autocommit=True) as conn:
        yield conn


@dg.asset_check(asset=REPRO_DATABASE, blocking=True, description="Every foreign key of the target resolves")
def zero_fk_orphans(context: dg.AssetCheckExecutionContext, target: TargetServer) -> dg.AssetCheckResult:
    with reported_as_failure(), _repro_database(context, target) as conn:
        results = count_orphans(conn, read_catalog(conn))
    failing = {str(result.foreign_key): result.orphans for result in results if result.orphans}
    return dg.AssetCheckResult(
        passed=not failing,
        metadata={
            "foreign_keys_checked": len(results),
            "orphans": sum(failing.values()),
            "failing_foreign_keys": dg.MetadataValue.json(failing),
        },
    )


@dg.asset_check(asset=REPRO_DATABASE, blocking=True, description="Target row counts equal the closure's")
def row_counts_match_closure(
    context: dg.AssetCheckExecutionContext, target: TargetServer
) -> dg.AssetCheckResult:
    with reported_as_failure(), _repro_database(context, target) as conn:
        expected = expected_row_counts(conn)
        mismatches = compare_counts(expected, count_rows(conn, sorted(expected)))
    return dg.AssetCheckResult(
        passed=not mismatches and bool(expected),
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
        with _repro_database(context, target) as target_conn, psycopg.connect(standby.dsn) as source:
            source.read_only = True
            source_catalog = read_catalog(source)
            originals = original_values(
                source, target_conn, source_catalog, sensitive_fields(config, source_catalog)
            )
            leaks = find_leaks(target_conn, read_catalog(target_conn), originals)
    return dg.AssetCheckResult(
        passed=not leaks,
        metadata={
            "original_values_checked": len(originals),
            "leaking_columns": dg.MetadataValue.json(dict(leaks)),
        },
    )
