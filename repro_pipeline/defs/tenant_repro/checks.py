"""Blocking checks of the repro database: a failure stops the handoff.

The checks themselves are the engine's (``engine/verify/checks.py``, also run by ``repro-pipeline verify``);
here each records its verdict in the repro database's manifest, which the handoff requires, and a database
found to hold original PII is marked expired, so the next TTL sweep drops it.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import dagster as dg
import psycopg
from psycopg.rows import TupleRow

from repro_pipeline.defs.failures import reported_as_failure
from repro_pipeline.defs.resources import MaskingConfig, SourceStandby, TargetServer
from repro_pipeline.defs.tenant_repro.assets import REPRO_DATABASE, repro_database_of
from repro_pipeline.engine.repro_databases import lifecycle
from repro_pipeline.engine.repro_databases.manifest import record_check
from repro_pipeline.engine.verify import checks
from repro_pipeline.engine.verify.checks import Verdict


@contextmanager
def _repro_database(
    context: dg.AssetCheckExecutionContext, target: TargetServer
) -> Iterator[tuple[lifecycle.ReproDatabase, psycopg.Connection[TupleRow]]]:
    """The partition's repro database (the one this run loaded, when checks run with the load)."""
    database = repro_database_of(context, target)
    with target.connect_database(database.name) as conn:
        yield database, conn


def _recorded(conn: psycopg.Connection[TupleRow], verdict: Verdict) -> dg.AssetCheckResult:
    record_check(conn, verdict.check, passed=verdict.passed)
    return dg.AssetCheckResult(passed=verdict.passed, metadata=_metadata(verdict.found))


def _metadata(found: dict[str, Any]) -> dict[str, Any]:
    return {
        key: dg.MetadataValue.json(value) if isinstance(value, dict | list) else value
        for key, value in found.items()
    }


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
            verdict = checks.zero_fk_orphans(source, conn)
        return _recorded(conn, verdict)


@dg.asset_check(
    asset=REPRO_DATABASE,
    blocking=True,
    description="Target row counts equal the closure's, as the load recorded them in the repro database",
)
def row_counts_match_closure(
    context: dg.AssetCheckExecutionContext, target: TargetServer
) -> dg.AssetCheckResult:
    with reported_as_failure(), _repro_database(context, target) as (_, conn):
        return _recorded(conn, checks.row_counts_match_closure(conn))


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
        config = masking.load_config()
        with _repro_database(context, target) as (database, conn), standby.connect() as source:
            result = _recorded(conn, checks.no_original_pii(source, conn, config))
        if not result.passed:
            with target.admin() as admin:
                lifecycle.retire(admin, database, datetime.now(UTC))
            context.log.error(
                f"{database.name} holds original values of masked fields: marked expired for the sweep"
            )
    return result
