"""Blocking checks of the repro database: a failure stops the handoff.

They run in the step that loads the database, on the originals read in the load's own snapshot; launched
on their own (the UI's "Execute"), the same step checks the partition's latest database against a fresh
snapshot. The checks themselves are the engine's (``engine/verify/checks.py``, also run by
``repro-pipeline verify``); here each verdict is recorded in the repro database's manifest, which the
handoff requires, and a database found to hold original PII is marked expired, so the next TTL sweep drops
it.
"""

import warnings
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from repro_pipeline.defs.repro_databases.observations import repro_database_observation
from repro_pipeline.defs.resources import TargetServer
from repro_pipeline.defs.tenant_repro.partitions import organizations
from repro_pipeline.defs.tenant_repro.repro_database import REPRO_DATABASE
from repro_pipeline.defs.tenant_repro.table_assets import CopiedTable, table_check_results
from repro_pipeline.engine.load.loader import ReplicatedSchema
from repro_pipeline.engine.load.plan import SubsetPlan
from repro_pipeline.engine.repro_databases import audit, lifecycle
from repro_pipeline.engine.repro_databases.manifest import record_check
from repro_pipeline.engine.verify import checks
from repro_pipeline.engine.verify.by_table import verdicts_by_table
from repro_pipeline.engine.verify.leaks import Originals

_CHECK_DESCRIPTIONS = {
    checks.ZERO_FK_ORPHANS: "Every foreign key of the source between copied tables exists on the target, with no orphan",
    checks.ROW_COUNTS_MATCH_CLOSURE: "Each table holds the rows the source sent in the load's snapshot, and the closure's count",
    checks.NO_ORIGINAL_PII: "No original value of a masked column or JSON path appears anywhere in the target",
    checks.SCHEMA_MATCHES_SOURCE: "The target's pg_dump --schema-only is the source's for everything copied",
}

# Partitioned like the asset they check, so each verdict is the organization's: the UI shows and plots it
# per partition, and its "Execute" asks which organization. Dagster 1.13 flags a check's partitions as a
# preview feature, warning on every load of the code location; that warning alone is silenced.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.PreviewWarning)
    CHECK_SPECS = [
        dg.AssetCheckSpec(
            name, asset=REPRO_DATABASE, blocking=True, description=description, partitions_def=organizations
        )
        for name, description in _CHECK_DESCRIPTIONS.items()
    ]


def check_results(
    context: dg.AssetExecutionContext,
    target: TargetServer,
    database: lifecycle.ReproDatabase,
    plan: SubsetPlan,
    originals: Originals,
    schema: ReplicatedSchema,
    tables: Sequence[CopiedTable] = (),
) -> Iterator[dg.AssetCheckResult]:
    """The selected checks' verdicts on ``database``, each recorded in its manifest first; then the selected
    checks of ``tables``, each its share of the database's."""
    selected = set(context.selected_asset_check_keys)
    with target.connect_database(database.name) as conn:
        every_verdict = checks.verify_repro(
            plan,
            originals,
            schema,
            conn,
            target.database_dsn(database.name),
            scan_session=lambda: target.connect_database(database.name),
        )
        verdicts = [v for v in every_verdict if dg.AssetCheckKey(REPRO_DATABASE, v.check) in selected]
        for verdict in verdicts:
            record_check(conn, verdict.check, passed=verdict.passed)
        audit.record_events(
            conn,
            [
                audit.check_evaluated(context.run.run_id, datetime.now(UTC), v.check, passed=v.passed)
                for v in verdicts
            ],
        )
    if any(v.check == checks.NO_ORIGINAL_PII and not v.passed for v in verdicts):
        with target.admin() as admin:
            retired = lifecycle.retire(admin, database, datetime.now(UTC))
        context.log.error(
            f"{database.name} holds original values of masked fields: marked expired for the sweep"
        )
        context.log_event(
            repro_database_observation(retired, "retired", "it holds original values of masked fields")
        )
    for verdict in verdicts:
        yield dg.AssetCheckResult(
            asset_key=REPRO_DATABASE,
            check_name=verdict.check,
            passed=verdict.passed,
            metadata=_metadata(verdict.found),
        )
    if tables:
        by_table = verdicts_by_table(plan.catalog, [copied.table for copied in tables], every_verdict)
        yield from table_check_results(tables, by_table, selected)


def _metadata(found: dict[str, Any]) -> dict[str, Any]:
    return {key: _metadata_value(value) for key, value in found.items()}


def _metadata_value(value: Any) -> Any:
    if isinstance(value, dict | list):
        return dg.MetadataValue.json(value)
    if isinstance(value, str) and "\n" in value:  # a diff: shown as it is, not run together
        return dg.MetadataValue.md(f"```diff\n{value}\n```")
    return value
