"""The bug query of a run (launchpad or ticket), run on its repro database as a non-blocking check: the bug
reproducing is information, not a failure. Passed when the query ran, with its row count; a query that
could not run (a timeout, an SQL error) is a WARN. The result is also kept in the database's manifest, for
the handoff to tell Slack and the ticket; the query's rows never leave the server."""

import warnings
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from repro_pipeline.defs.resources import TargetServer
from repro_pipeline.defs.tenant_repro.partitions import organizations
from repro_pipeline.defs.tenant_repro.repro_database import REPRO_DATABASE
from repro_pipeline.engine.repro_databases import audit, lifecycle
from repro_pipeline.engine.verify.repro_query import ReproQuery, record_repro_query, run_repro_query

REPRO_QUERY_CHECK = "repro_query"
# The step that loads and checks the repro database: its run config carries the query.
REPRO_DATABASE_STEP = "tenant_closure_and_repro_database"

with warnings.catch_warnings():  # a check's partitions are a preview feature in Dagster 1.13, see checks.py
    warnings.simplefilter("ignore", dg.PreviewWarning)
    REPRO_QUERY_SPEC = dg.AssetCheckSpec(
        REPRO_QUERY_CHECK,
        asset=REPRO_DATABASE,
        blocking=False,
        description="The bug query given with the run (launchpad or ticket) ran on the repro database: "
        "its row count says whether the bug reproduces on this copy",
        partitions_def=organizations,
    )


def repro_query_run_config(query: str) -> dict[str, Any]:
    """The run config that gives a tenant run its bug query."""
    return {"ops": {REPRO_DATABASE_STEP: {"config": {"repro_query": query}}}}


def repro_query_result(
    target: TargetServer,
    database: lifecycle.ReproDatabase,
    query: ReproQuery,
    organization_id: int,
    timeout_seconds: float,
    run_id: str,
) -> dg.AssetCheckResult:
    with target.connect_database(database.name) as conn:
        result = run_repro_query(conn, query, organization_id, timeout_seconds)
        record_repro_query(conn, result)
        audit.record_events(
            conn, [audit.check_evaluated(run_id, datetime.now(UTC), REPRO_QUERY_CHECK, passed=result.ran)]
        )
    metadata: dict[str, Any] = {
        "result": result.sentence(),
        "seconds": round(result.seconds, 3),
        "database": database.name,
        "query": dg.MetadataValue.md(f"```sql\n{query.text}\n```"),
    }
    if result.rows is not None:
        metadata["rows"] = result.rows
    return dg.AssetCheckResult(
        asset_key=REPRO_DATABASE,
        check_name=REPRO_QUERY_CHECK,
        passed=result.ran,
        severity=dg.AssetCheckSeverity.WARN,
        description=result.sentence(),
        metadata=metadata,
    )
