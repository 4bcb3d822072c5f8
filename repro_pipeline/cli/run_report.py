"""What the CLI prints after a tenant run: row counts, check results, the guide's bug query, how to connect."""

import json
import os
import shlex

import dagster as dg
from psycopg.conninfo import conninfo_to_dict

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


def print_run_report(result: dg.JobExecutionResult, organization_id: int, password_file: str = "") -> int:
    metadata = {
        materialization.asset_key.to_user_string(): materialization.metadata
        for materialization in (
            event.step_materialization_data.materialization
            for event in result.get_asset_materialization_events()
        )
    }
    closure = metadata.get("tenant_closure", {})
    if "row_counts" in closure:
        counts = json.loads(json.dumps(closure["row_counts"].value))
        print(f"\nClosure of organization {organization_id} ({closure['passes'].value} passes):")
        for table, rows in sorted(counts.items()):
            print(f"  {table:<32} {rows:>8}")
    checks = result.get_asset_check_evaluations()
    if checks:
        print("\nChecks:")
        for check in checks:
            if check.check_name == REPRO_QUERY_CHECK:  # information, not a verdict
                print(f"  {check.check_name:<28} {check.description}")
            else:
                print(f"  {check.check_name:<28} {'PASSED' if check.passed else 'FAILED'}")
    if not result.success:
        failures = [event.message for event in result.all_events if event.is_failure]
        print("\nThe run failed:", *(f"  {message}" for message in failures if message), sep="\n")
        return 1
    database = str(metadata["repro_database"]["database"].value)
    target_dsn = dsn.with_database(os.environ["REPRO_TARGET_DSN"], database)
    host, port = dsn.describe(target_dsn).split("/")[0].rsplit(":", 1)
    user = conninfo_to_dict(target_dsn).get("user") or "postgres"
    with dsn.connect(target_dsn, role="repro database") as conn:
        mismatched = conn.execute(
            parse_repro_query(GUIDE_BUG_QUERY).as_sql(), {PLACEHOLDER: organization_id}
        ).fetchall()
    print(f"\nThe guide's bug query on {database} (invoice totals vs line items):")
    print(f"  {'invoice id':>10} {'total_cents':>12} {'computed_cents':>15}")
    for invoice_id, total, computed in mismatched:
        print(f"  {invoice_id:>10} {total:>12} {computed:>15}")
    handoff = metadata.get("repro_handoff", {})
    if "message" in handoff:
        print(f"\nHandoff message: {handoff['message'].value}")
    if "dsn_reference" in handoff:
        secret_file = shlex.quote(str(handoff["dsn_reference"].value))
        print(f'\nConnect with the database\'s own read-only login: psql "$(cat {secret_file})"')
        return 0
    print(f"\nConnect: psql -h {host} -p {port} -U {user} -d {database}")
    if password_file:
        print(f"  (the password of the embedded stack is in {password_file})")
    return 0
