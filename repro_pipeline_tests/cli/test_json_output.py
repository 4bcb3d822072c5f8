"""``--json``: each command a script parses prints one JSON document on stdout (errors too), its messages on
stderr, with the exit code it has without ``--json``."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from repro_pipeline.cli.main import main
from repro_pipeline.embedded.stack import Stack
from repro_pipeline.embedded.synthetic import SourceSummary
from repro_pipeline.engine.exit_codes import ExitCode
from repro_pipeline.engine.repro_databases import lifecycle
from repro_pipeline_tests.cli.run_cli import NOWHERE, run_cli, without_servers
from repro_pipeline_tests.cli.test_cli import _strict_rules

ORGANIZATION = 453


def _document(stdout: str) -> Any:
    """The whole of stdout as one JSON document (json.loads fails on anything around it)."""
    return json.loads(stdout)


def _error(stdout: str, code: ExitCode) -> dict[str, Any]:
    error: dict[str, Any] = _document(stdout)["error"]
    assert (error["exit_code"], error["exit_name"]) == (int(code), code.name)
    return error


def test_a_usage_error_is_a_json_document_with_exit_2() -> None:
    run = run_cli("plan", "--json", "--organization")
    assert run.returncode == ExitCode.USAGE
    error = _error(run.stdout, ExitCode.USAGE)
    assert "--organization: expected one argument" in error["problem"]
    assert "repro-pipeline plan --help" in error["remedy"]
    assert "usage:" in run.stderr and "Traceback" not in run.stderr


def test_validate_json_says_valid_or_names_the_file_at_fault(tmp_path: Path) -> None:
    assert main(["validate", "--json"]) == 0
    bad = tmp_path / "mask-rules.yaml"
    bad.write_text('version: "1.0"\ntables: [not, a, mapping]\n')
    run = run_cli("validate", "--json", "--mask-rules", str(bad))
    assert run.returncode == ExitCode.CONFIGURATION
    assert str(bad) in _error(run.stdout, ExitCode.CONFIGURATION)["problem"]
    assert run.stderr.startswith("error: ") and "Traceback" not in run.stderr


def test_validate_json_document(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--json"]) == 0
    document = _document(capsys.readouterr().out)
    assert document["valid"] is True and len(document["files"]) == 2


def test_with_the_stack_down_list_json_is_an_error_naming_stack_up(tmp_path: Path) -> None:
    run = run_cli("list", "--json", env=without_servers(tmp_path))
    assert run.returncode == ExitCode.NOT_READY
    error = _error(run.stdout, ExitCode.NOT_READY)
    assert "the embedded stack is not set up" in error["problem"]
    assert "`repro-pipeline stack up`" in error["remedy"]
    status = run_cli("stack", "status", "--json", env=without_servers(tmp_path))
    assert status.returncode == ExitCode.NOT_READY
    assert "`repro-pipeline stack up`" in _error(status.stdout, ExitCode.NOT_READY)["remedy"]


def test_stack_status_json_lists_the_servers_without_a_password(stack: Stack, tmp_path: Path) -> None:
    run = run_cli("stack", "status", "--json", env=without_servers(tmp_path, REPRO_STACK_DIR=str(stack.root)))
    assert run.returncode == 0, run.stderr
    document = _document(run.stdout)
    assert document["root"] == str(stack.root)
    assert {name: server["port"] for name, server in document["servers"].items()} == {
        server.name: server.port for server in stack.servers
    }
    assert all(server["running"] and server["pid"] for server in document["servers"].values())
    assert stack.password not in run.stdout + run.stderr


def test_an_unreachable_source_is_a_json_error_with_exit_7(tmp_path: Path, salt: str) -> None:
    run = run_cli(
        "plan",
        "--source",
        NOWHERE,
        "--organization",
        "451",
        "--json",
        env=without_servers(tmp_path, ANONYMIZATION_SALT=salt),
    )
    assert run.returncode == ExitCode.NOT_READY
    assert "127.0.0.1:1" in _error(run.stdout, ExitCode.NOT_READY)["problem"]
    assert "nobody@" not in run.stdout + run.stderr


def test_preview_json_is_the_policy_diff_with_the_gate_refusal_in_it(
    stack: Stack, source: SourceSummary, tmp_path: Path
) -> None:
    rules = _strict_rules(tmp_path, email=None)
    run = run_cli("preview", "--source", stack.standby_dsn, "--mask-rules", str(rules), "--json")
    assert run.returncode == ExitCode.POLICY_GATE, run.stderr
    diff = _document(run.stdout)
    assert (diff["strict_autodetect"], diff["strict_passed"]) == (True, False)
    assert [(entry["table"], entry["column"]) for entry in diff["uncovered_strict"]] == [
        ("public.users", "email")
    ]
    assert "public.users.email" in _error(run.stdout, ExitCode.POLICY_GATE)["problem"]
    assert "error: " in run.stderr and "Traceback" not in run.stderr

    covered = run_cli(
        "preview",
        "--source",
        stack.standby_dsn,
        "--mask-rules",
        str(_strict_rules(tmp_path, email="{ action: passthrough }")),
        "--json",
    )
    assert covered.returncode == 0, covered.stderr
    assert _document(covered.stdout)["strict_passed"] is True


@pytest.fixture
def dagster_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pipeline_environment: dict[str, str]
) -> Path:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return tmp_path


@pytest.fixture
def admin(stack: Stack) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with psycopg.connect(stack.target_admin_dsn, autocommit=True) as conn:
        yield conn


def _repro_database(admin: psycopg.Connection[tuple[object, ...]], ttl: timedelta, now: datetime) -> str:
    made = lifecycle.create_repro_database(
        admin, organization_id=ORGANIZATION, run_id=uuid.uuid4().hex, ttl=ttl, now=now
    )
    return lifecycle.mark(admin, made, "ready").name


def test_list_extend_drop_and_sweep_json(
    dagster_home: Path, admin: psycopg.Connection[tuple[object, ...]], capsys: pytest.CaptureFixture[str]
) -> None:
    now = datetime.now(UTC)
    living = _repro_database(admin, timedelta(hours=48), now)
    expired = _repro_database(admin, timedelta(hours=1), now - timedelta(hours=2))
    try:
        assert main(["list", "--json"]) == 0
        listed = {row["database"]: row for row in _document(capsys.readouterr().out)}
        assert listed[living]["expired"] is False and listed[expired]["expired"] is True

        assert main(["extend", living, "--hours", "24", "--json"]) == 0
        extended = _document(capsys.readouterr().out)
        assert extended["database"] == living
        assert datetime.fromisoformat(extended["expires_at"]) == datetime.fromisoformat(
            listed[living]["expires_at"]
        ) + timedelta(hours=24)

        assert main(["extend", "repro_org453_00000000", "--hours", "1", "--json"]) == ExitCode.USAGE
        assert "repro_org453_00000000" in _error(capsys.readouterr().out, ExitCode.USAGE)["problem"]
        assert main(["extend", living, "--hours", "5000", "--json"]) == ExitCode.USAGE
        assert "would have it live longer" in _error(capsys.readouterr().out, ExitCode.USAGE)["problem"]

        assert main(["sweep", "--json"]) == 0
        swept = _document(capsys.readouterr().out)
        assert expired in swept["dropped"] and living not in swept["dropped"] and swept["run_id"]
        assert set(swept) >= {
            "leftover_logins_dropped",
            "leftover_secrets_removed",
            "invalid_partitions_removed",
        }

        assert main(["handoff", "repro_org453_00000000", "--json"]) == ExitCode.USAGE
        assert (
            "no repro database 'repro_org453_00000000'"
            in _error(capsys.readouterr().out, ExitCode.USAGE)["problem"]
        )

        assert main(["drop", living, "--json"]) == 0
        assert _document(capsys.readouterr().out) == {"dropped": living, "organization_id": ORGANIZATION}
    finally:
        for name in (living, expired):
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def test_sweep_says_nothing_expired_when_nothing_did(
    dagster_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sweep"]) == 0
    captured = capsys.readouterr()
    assert "no repro database has expired: nothing dropped" in captured.out
    assert "Dagster UI" not in captured.out + captured.err


def test_materialize_json_reports_the_run(stack: Stack, source: SourceSummary, tmp_path: Path) -> None:
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    environment = without_servers(tmp_path, REPRO_STACK_DIR=str(stack.root))
    run = run_cli("materialize", "451", "--json", env=environment)
    assert run.returncode == 0, run.stderr
    report = _document(run.stdout)
    assert report["success"] is True and report["organization_id"] == 451
    assert report["closure"]["rows_by_table"]["public.invoices"] == source.demo_invoice_count
    assert {"zero_fk_orphans", "row_counts_match_closure", "no_original_pii"} <= set(report["checks"])
    assert all(check["passed"] for name, check in report["checks"].items() if name != "repro_query")
    assert sorted(report["guide_bug_query_invoice_ids"]) == sorted(source.planted_invoice_ids)
    assert report["port"] == stack.target.port and report["database"].startswith("repro_org451_")
    # its progress while it ran, as plain lines on stderr (no terminal here)
    assert f"public.invoices: {source.demo_invoice_count}/{source.demo_invoice_count} rows in " in run.stderr
    assert "step tenant_closure_and_repro_database started" in run.stderr
    assert "check zero_fk_orphans passed" in run.stderr
    # the embedded stack's defaults, said on stderr, never its password
    assert f"using the embedded stack's standby at 127.0.0.1:{stack.standby.port}/billing" in run.stderr
    assert f"salt from {stack.root / 'demo-salt'}" in run.stderr
    assert stack.password not in run.stdout + run.stderr
    dropped = run_cli("drop", report["database"], "--json", env=environment)
    assert _document(dropped.stdout) == {"dropped": report["database"], "organization_id": 451}


def test_json_is_requested_by_the_option_before_any_double_dash() -> None:
    from repro_pipeline.cli.json_output import json_requested

    assert json_requested(["plan", "--organization", "451", "--json"])
    assert not json_requested(["plan", "--organization", "451"])
    assert not json_requested(["materialize", "--", "--json"])


def test_materialize_of_an_organization_the_source_lacks_says_so_in_one_message(
    stack: Stack, source: SourceSummary, tmp_path: Path
) -> None:
    """The failed step's own error, without Dagster's traces or its "Execution of step ... failed"."""
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    environment = without_servers(tmp_path, REPRO_STACK_DIR=str(stack.root))
    run = run_cli("materialize", "99999", env=environment)
    assert run.returncode == 1
    assert "standby_health: organization 99999 does not exist on the source" in run.stderr
    assert "what to do: check the organization id" in run.stderr
    for noise in (
        "Traceback",
        "Stack Trace",
        "Execution of step",
        "Dependencies for step",
        "dagster - ERROR",
    ):
        assert noise not in run.stderr
    assert "step standby_health failed" in run.stderr
