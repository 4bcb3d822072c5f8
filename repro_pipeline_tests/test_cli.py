"""The command line: user mistakes get one clear message and an exit code, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from repro_pipeline.engine.dsn import with_database
from repro_pipeline.stack import Stack
from repro_pipeline.synthetic import SourceSummary
from repro_pipeline_tests.conftest import FIXTURES, PROJECT_ROOT


def _cli(*arguments: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "repro_pipeline.cli", *arguments],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env=env,
        timeout=120,
    )


@pytest.mark.parametrize("key", ["abc", "-5", "0451", "451;DROP TABLE users"])
def test_materialize_refuses_a_bad_organization_id(key: str) -> None:
    run = _cli("materialize", key)
    assert run.returncode == 2
    assert "not a positive integer" in run.stderr
    assert "Traceback" not in run.stderr + run.stdout


def test_validate_accepts_the_guide_files_unchanged() -> None:
    guide = FIXTURES / "guide"
    run = _cli(
        "validate",
        "--mask-rules",
        str(guide / "mask-rules.yaml"),
        "--commercial-extensions",
        str(guide / "commercial-extensions.yaml"),
    )
    assert run.returncode == 0, run.stderr
    assert "valid" in run.stdout


def test_validate_names_the_file_line_and_key_at_fault(tmp_path: Path) -> None:
    rules = (PROJECT_ROOT / "config" / "mask-rules.yaml").read_text()
    bad = tmp_path / "mask-rules.yaml"
    bad.write_text(rules.replace("action: hash", "action: hashh"))
    run = _cli("validate", "--mask-rules", str(bad))
    assert run.returncode == 3
    line = next(number for number, text in enumerate(bad.read_text().splitlines(), 1) if "hashh" in text)
    assert f"{bad}:{line}: tables.public.payment_methods.columns.provider_token" in run.stderr
    assert "unknown action 'hashh'" in run.stderr
    assert "Traceback" not in run.stderr


def test_plan_and_load_work_on_any_source_without_dagster(
    stack: Stack, source: SourceSummary, salt: str, tmp_path: Path
) -> None:
    environment = {**os.environ, "ANONYMIZATION_SALT": salt}
    run = _cli("plan", "--source", stack.standby_dsn, "--organization", "451", "--json", env=environment)
    assert run.returncode == 0, run.stderr
    plan = json.loads(run.stdout)
    rows = {table["table"]: table["rows"] for table in plan["tables"]}
    assert rows["public.organizations"] == 1 and rows["public.invoices"] == source.demo_invoice_count
    assert plan["passes"] >= 2 and plan["total_rows"] == sum(rows.values())
    assert stack.password not in run.stdout + run.stderr

    target = with_database(stack.target_admin_dsn, "cli_load_test")
    with psycopg.connect(stack.target_admin_dsn, autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS cli_load_test")
        admin.execute("CREATE DATABASE cli_load_test")
    try:
        loaded = _cli(
            "load",
            "--source",
            stack.standby_dsn,
            "--organization",
            "451",
            "--target",
            target,
            env=environment,
        )
        assert loaded.returncode == 0, loaded.stderr
        assert f"loaded {plan['total_rows']} rows" in loaded.stdout
        again = _cli(
            "load",
            "--source",
            stack.standby_dsn,
            "--organization",
            "451",
            "--target",
            target,
            env=environment,
        )
        assert again.returncode == 2 and "is not empty" in again.stderr and "Traceback" not in again.stderr
        assert stack.password not in again.stderr
    finally:
        with psycopg.connect(stack.target_admin_dsn, autocommit=True) as admin:
            admin.execute("DROP DATABASE IF EXISTS cli_load_test WITH (FORCE)")


def test_a_dsn_with_a_malformed_password_never_shows_it(source: SourceSummary, salt: str) -> None:
    environment = {**os.environ, "ANONYMIZATION_SALT": salt}
    run = _cli(
        "plan",
        "--source",
        "postgresql://user:pa%zzword@127.0.0.1:1/db",
        "--organization",
        "451",
        env=environment,
    )
    assert run.returncode == 1
    assert "malformed" in run.stderr and "pa%zz" not in run.stderr and "Traceback" not in run.stderr
