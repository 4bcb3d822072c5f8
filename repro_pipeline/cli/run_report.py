"""What the CLI prints after a tenant run: row counts, check results, the guide's bug query, how to connect."""

import json
import os
import shlex
from collections.abc import Iterable
from typing import Any

import dagster as dg
from psycopg.conninfo import conninfo_to_dict

from repro_pipeline.cli.json_output import print_json, report_failure
from repro_pipeline.defs.tenant_repro.repro_database import REPRO_DATABASE
from repro_pipeline.defs.tenant_repro.repro_query import REPRO_QUERY_CHECK
from repro_pipeline.engine import dsn
from repro_pipeline.engine.subset.predicate import PLACEHOLDER
from repro_pipeline.engine.verify.repro_query import parse_repro_query

# The guide's invoice-total query, the organization bound by name: the demo's bug query.
GUIDE_BUG_QUERY = """
SELECT i.id, i.total_cents, SUM(li.quantity * li.unit_cents) AS computed_cents
FROM invoices i
JOIN subscriptions s ON s.id = i.subscription_id
JOIN invoice_line_items li ON li.invoice_id = i.id
WHERE s.organization_id = :organization_id
GROUP BY i.id, i.total_cents
HAVING i.total_cents <> SUM(li.quantity * li.unit_cents)
ORDER BY i.id
"""


def failure_reasons(events: Iterable[dg.DagsterEvent]) -> list[str]:
    """Each failed step with its error as the step raised it (a ``ReproError``'s problem and what to do),
    rather than Dagster's "Execution of step ... failed"; the run's own failure when no step failed."""
    events = list(events)
    reasons = []
    for event in events:
        if event.event_type != dg.DagsterEventType.STEP_FAILURE:
            continue
        data = event.step_failure_data
        described = data.user_failure_data.description if data.user_failure_data is not None else None
        reason = described or (data.error.message.strip() if data.error is not None else event.message or "")
        reasons.append(f"{event.step_key}: {reason}")
    return reasons or [event.message for event in events if event.is_failure and event.message]


def print_run_report(
    result: dg.ExecuteInProcessResult, organization_id: int, password_file: str = "", *, as_json: bool = False
) -> int:
    metadata = {
        materialization.asset_key.to_user_string(): materialization.metadata
        for materialization in (
            event.step_materialization_data.materialization
            for event in result.get_asset_materialization_events()
        )
    }
    closure = metadata.get("tenant_closure", {})
    counts = json.loads(json.dumps(closure["row_counts"].value)) if "row_counts" in closure else {}
    checks = result.get_asset_check_evaluations()
    report: dict[str, Any] = {
        "organization_id": organization_id,
        "run_id": result.run_id,
        "success": result.success,
        "closure": {"rows_by_table": counts, "passes": closure["passes"].value if counts else None},
        "checks": checks_by_name(checks),
    }
    if not as_json:
        _print_closure_and_checks(report)
    if not result.success:
        return report_failure(as_json, f"the run {result.run_id} failed", failure_reasons(result.all_events))
    database = str(metadata["repro_database"]["database"].value)
    target_dsn = dsn.with_database(os.environ["REPRO_TARGET_DSN"], database)
    host, port = dsn.server_address(target_dsn).rsplit(":", 1)
    user = conninfo_to_dict(target_dsn).get("user") or "postgres"
    with dsn.connect(target_dsn, role="repro database") as conn:
        mismatched = conn.execute(
            parse_repro_query(GUIDE_BUG_QUERY).as_sql(), {PLACEHOLDER: organization_id}
        ).fetchall()
    handoff = metadata.get("repro_handoff", {})
    report.update(
        database=database,
        host=host,
        port=int(port),
        guide_bug_query_invoice_ids=[invoice_id for invoice_id, _, _ in mismatched],
        handoff_message=handoff["message"].value if "message" in handoff else None,
        dsn_reference=str(handoff["dsn_reference"].value) if "dsn_reference" in handoff else None,
    )
    if as_json:
        print_json(report)
        return 0
    print(f"\nThe guide's bug query on {database} (invoice totals vs line items):")
    print(f"  {'invoice id':>10} {'total_cents':>12} {'computed_cents':>15}")
    for invoice_id, total, computed in mismatched:
        print(f"  {invoice_id:>10} {total:>12} {computed:>15}")
    if report["handoff_message"] is not None:
        print(f"\nHandoff message: {report['handoff_message']}")
    if report["dsn_reference"] is not None:
        secret_file = shlex.quote(report["dsn_reference"])
        print(f'\nConnect with the database\'s own read-only login: psql "$(cat {secret_file})"')
        return 0
    print(f"\nConnect: psql -h {host} -p {port} -U {user} -d {database}")
    if password_file:
        print(f"  (the password of the embedded stack is in {password_file})")
    return 0


def check_label(asset_key: dg.AssetKey, check_name: str) -> str:
    """The check's name for the database's own checks; ``asset:check`` for any other asset's, as every
    table's asset has checks of the same name."""
    key = dg.AssetCheckKey(asset_key, check_name)
    return check_name if asset_key == REPRO_DATABASE else key.to_user_string()


def checks_by_name(checks: Iterable[dg.AssetCheckEvaluation]) -> dict[str, dict[str, Any]]:
    """Each check's verdict under its own label: a table's failed check is never hidden by another table's
    check of the same name."""
    return {
        check_label(check.asset_key, check.check_name): {
            "passed": check.passed,
            "description": check.description or "",
        }
        for check in checks
    }


def _print_closure_and_checks(report: dict[str, Any]) -> None:
    closure = report["closure"]
    if closure["rows_by_table"]:
        print(f"\nClosure of organization {report['organization_id']} ({closure['passes']} passes):")
        for table, rows in sorted(closure["rows_by_table"].items()):
            print(f"  {table:<32} {rows:>8}")
    if report["checks"]:
        print("\nChecks:")
        width = max(28, *(len(name) for name in report["checks"]))
        for name, check in report["checks"].items():
            if name == REPRO_QUERY_CHECK:  # information, not a verdict
                print(f"  {name:<{width}} {check['description']}")
            else:
                print(f"  {name:<{width}} {'PASSED' if check['passed'] else 'FAILED'}")
