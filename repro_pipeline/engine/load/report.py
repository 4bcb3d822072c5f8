"""A subset plan as data for people and scripts: rows per table, what brought them, passes, warnings."""

from __future__ import annotations

from typing import Any

from repro_pipeline.engine.load.plan import SubsetPlan


def plan_summary(plan: SubsetPlan) -> dict[str, Any]:
    """JSON-ready: ``{"organization_id", "passes", "total_rows", "tables": [...], "other_tenants": [...],
    "nulled_references": {...}, "warnings": [...], "json_values_not_fitting_their_key": {reference: rows}}``."""
    closure = plan.closure
    tables = []
    for name in sorted(plan.mask_plan.tables):
        masking = plan.mask_plan.for_table(name)
        tables.append(
            {
                "table": str(name),
                "strategy": masking.strategy,
                "rows": closure.row_counts.get(name, 0),
                "brought_by": dict(closure.reasons.get(name, {})),
                "columns": {column.column: column.action for column in masking.columns},
            }
        )
    return {
        "organization_id": plan.organization_id,
        "passes": closure.passes,
        "total_rows": closure.total_rows,
        "tables": tables,
        "other_tenants": [
            {
                "tenant_id": other.tenant_id,
                "rows": {str(table): rows for table, rows in sorted(other.rows.items())},
                "references": dict(sorted(other.references.items())),
                "chain": other.chain,
            }
            for other in plan.other_tenants
        ],
        "nulled_references": {
            str(fk): len(values) for fk, values in sorted(closure.nulled.items(), key=lambda i: str(i[0]))
        },
        "warnings": list(plan.warnings),
        "json_values_not_fitting_their_key": {
            str(fk): rows for fk, rows in plan.json_values_not_fitting.items()
        },
    }


def plan_text(summary: dict[str, Any]) -> str:
    lines = [
        f"organization {summary['organization_id']}: {summary['total_rows']} rows "
        f"in {summary['passes']} passes",
        "",
        f"{'table':<36} {'strategy':<10} {'rows':>9}  brought by",
    ]
    for table in summary["tables"]:
        brought = "; ".join(f"{reason}: {rows}" for reason, rows in table["brought_by"].items()) or "-"
        lines.append(f"{table['table']:<36} {table['strategy']:<10} {table['rows']:>9}  {brought}")
        for column, action in table["columns"].items():
            lines.append(f"{'':<36}   {column}: {action}")
    lines.extend(f"warning: {warning}" for warning in summary["warnings"])
    return "\n".join(lines)
