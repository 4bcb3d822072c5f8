"""The run report's checks: every table's verdict under its own label, beside the database's checks."""

from __future__ import annotations

import dagster as dg

from repro_pipeline.cli.run_report import check_label, checks_by_name
from repro_pipeline.defs.tenant_repro.repro_database import REPRO_DATABASE
from repro_pipeline.engine.verify.by_table import TABLE_NO_ORIGINAL_PII

USERS = dg.AssetKey(["repro", "public", "users"])
INVOICES = dg.AssetKey(["repro", "public", "invoices"])


def test_a_tables_failed_check_is_not_hidden_by_another_tables_check_of_the_same_name() -> None:
    evaluations = [
        dg.AssetCheckEvaluation(asset_key=REPRO_DATABASE, check_name="no_original_pii", passed=False),
        dg.AssetCheckEvaluation(asset_key=USERS, check_name=TABLE_NO_ORIGINAL_PII, passed=False),
        dg.AssetCheckEvaluation(asset_key=INVOICES, check_name=TABLE_NO_ORIGINAL_PII, passed=True),
    ]
    report = checks_by_name(evaluations)
    assert {name: check["passed"] for name, check in report.items()} == {
        "no_original_pii": False,
        "repro/public/users:table_no_original_pii": False,
        "repro/public/invoices:table_no_original_pii": True,
    }


def test_the_databases_checks_keep_their_plain_names() -> None:
    assert check_label(REPRO_DATABASE, "zero_fk_orphans") == "zero_fk_orphans"
    assert check_label(USERS, TABLE_NO_ORIGINAL_PII) == "repro/public/users:table_no_original_pii"
