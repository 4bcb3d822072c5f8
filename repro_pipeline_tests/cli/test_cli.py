"""The command line: user mistakes get one clear message and an exit code, never a traceback."""

from __future__ import annotations

import json
import os
from pathlib import Path

import psycopg
import pytest

from repro_pipeline.cli.run_report import GUIDE_BUG_QUERY
from repro_pipeline.embedded.stack import Stack
from repro_pipeline.embedded.synthetic import SourceSummary
from repro_pipeline.engine.dsn import with_database
from repro_pipeline_tests.cli.run_cli import NOWHERE, run_cli
from repro_pipeline_tests.conftest import FIXTURES, PROJECT_ROOT


@pytest.mark.parametrize("key", ["abc", "-5", "0451", "451;DROP TABLE users"])
def test_materialize_refuses_a_bad_organization_id(key: str) -> None:
    run = run_cli("materialize", key)
    assert run.returncode == 2
    assert "not a positive integer" in run.stderr
    assert "Traceback" not in run.stderr + run.stdout


def test_materialize_refuses_a_bad_repro_query_before_any_run() -> None:
    run = run_cli("materialize", "451", "--repro-query", "SELECT * FROM invoices FOR UPDATE")
    assert run.returncode == 3
    assert "--repro-query is refused: FOR UPDATE / FOR SHARE locks rows" in run.stderr
    assert "Traceback" not in run.stderr + run.stdout


def test_validate_accepts_the_guide_files_unchanged() -> None:
    guide = FIXTURES / "guide"
    run = run_cli(
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
    run = run_cli("validate", "--mask-rules", str(bad))
    assert run.returncode == 3
    line = next(number for number, text in enumerate(bad.read_text().splitlines(), 1) if "hashh" in text)
    assert f"{bad}:{line}: tables.public.payment_methods.columns.provider_token" in run.stderr
    assert "unknown action 'hashh'" in run.stderr
    assert "Traceback" not in run.stderr


def test_plan_and_load_work_on_any_source_without_dagster(
    stack: Stack, source: SourceSummary, salt: str, tmp_path: Path
) -> None:
    environment = {**os.environ, "ANONYMIZATION_SALT": salt}
    run = run_cli("plan", "--source", stack.standby_dsn, "--organization", "451", "--json", env=environment)
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
        load = ("load", "--source", stack.standby_dsn, "--organization", "451", "--target", target)
        loaded = run_cli(*load, "--json", env=environment)
        assert loaded.returncode == 0, loaded.stderr
        report = json.loads(loaded.stdout)
        assert report["total_rows"] == plan["total_rows"] == sum(report["loaded_rows"].values())
        assert report["loaded_rows"]["public.invoices"] == source.demo_invoice_count
        assert "public.invoices: 3000/3000 rows in " in loaded.stderr  # its progress line at its end
        again = run_cli(*load, env=environment)
        assert again.returncode == 7 and "is not empty" in again.stderr and "Traceback" not in again.stderr
        assert stack.password not in again.stderr
        again_json = run_cli(*load, "--json", env=environment)
        assert again_json.returncode == 7
        assert "is not empty" in json.loads(again_json.stdout)["error"]["problem"]
    finally:
        with psycopg.connect(stack.target_admin_dsn, autocommit=True) as admin:
            admin.execute("DROP DATABASE IF EXISTS cli_load_test WITH (FORCE)")


def test_load_no_audit_table_leaves_the_audit_log_out_and_writes_the_runs_record(
    stack: Stack, source: SourceSummary, salt: str
) -> None:
    environment = {**os.environ, "ANONYMIZATION_SALT": salt}
    with psycopg.connect(stack.target_admin_dsn, autocommit=True) as admin:
        for name in ("cli_audited", "cli_unaudited"):
            admin.execute(f"DROP DATABASE IF EXISTS {name}")
            admin.execute(f"CREATE DATABASE {name}")
    try:
        load = ("load", "--source", stack.standby_dsn, "--organization", "451", "--quiet")
        for name, flags in (("cli_audited", ()), ("cli_unaudited", ("--no-audit-table",))):
            run = run_cli(
                *load, "--target", with_database(stack.target_admin_dsn, name), *flags, env=environment
            )
            assert run.returncode == 0, run.stderr
        with psycopg.connect(with_database(stack.target_admin_dsn, "cli_audited")) as audited:
            kinds = audited.execute("SELECT DISTINCT event_type FROM _repro_pipeline.audit_log").fetchall()
            assert sorted(kinds) == [("run.started",), ("table.loaded",)]
        with psycopg.connect(with_database(stack.target_admin_dsn, "cli_unaudited")) as unaudited:
            assert unaudited.execute("SELECT to_regclass('_repro_pipeline.audit_log')").fetchone() == (None,)
            assert unaudited.execute("SELECT count(*) FROM _repro_pipeline.runs").fetchone() == (1,)
    finally:
        with psycopg.connect(stack.target_admin_dsn, autocommit=True) as admin:
            for name in ("cli_audited", "cli_unaudited"):
                admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_a_dsn_with_a_malformed_password_never_shows_it(source: SourceSummary, salt: str) -> None:
    environment = {**os.environ, "ANONYMIZATION_SALT": salt}
    run = run_cli(
        "plan",
        "--source",
        "postgresql://user:pa%zzword@127.0.0.1:1/db",
        "--organization",
        "451",
        env=environment,
    )
    assert run.returncode == 3
    assert "malformed" in run.stderr and "pa%zz" not in run.stderr and "Traceback" not in run.stderr


def test_schema_prints_the_json_schema_of_both_files() -> None:
    run = run_cli("schema")
    assert run.returncode == 0, run.stderr
    schemas = json.loads(run.stdout)
    assert set(schemas) == {"mask-rules.yaml", "commercial-extensions.yaml"}
    rules, extensions = schemas["mask-rules.yaml"], schemas["commercial-extensions.yaml"]
    assert {"version", "global_salt", "strict_autodetect", "auto_detect", "tables"} <= set(
        rules["properties"]
    )
    assert {"version", "subset", "json_mask", "foreign_keys", "tenant", "virtual_foreign_keys"} <= set(
        extensions["properties"]
    )
    tenant = extensions["$defs"]["TenantRule"]["properties"]
    assert tenant["cross_tenant_references"]["enum"] == ["refuse", "null", "allow"]
    assert rules["additionalProperties"] is False and rules["required"] == ["version"]


def _strict_rules(directory: Path, *, email: str | None) -> Path:
    """The project's mask-rules.yaml with strict_autodetect: true and users.email's rule replaced."""
    rules = (PROJECT_ROOT / "config" / "mask-rules.yaml").read_text()
    rules = rules.replace('version: "1.0"\n', 'version: "1.0"\nstrict_autodetect: true\n', 1)
    original = "      email: { action: fake, provider: email, seed_alias: user_email }\n"
    assert original in rules
    rules = rules.replace(original, f"      email: {email}\n" if email else "")
    path = directory / "mask-rules.yaml"
    path.write_text(rules)
    return path


def test_preview_writes_the_policy_diff_before_failing_the_strict_gate(
    stack: Stack, source: SourceSummary, tmp_path: Path
) -> None:
    rules = _strict_rules(tmp_path, email=None)
    diff_file = tmp_path / "out" / "policy-diff.json"
    run = run_cli(
        "preview", "--source", stack.standby_dsn, "--mask-rules", str(rules), "--policy-diff", str(diff_file)
    )
    assert run.returncode == 6, run.stderr
    assert diff_file.exists()  # written although the exit is non-zero: CI uploads it with if: always()
    diff = json.loads(diff_file.read_text())
    assert (diff["strict_autodetect"], diff["strict_passed"]) == (True, False)
    assert [(entry["table"], entry["column"]) for entry in diff["uncovered_strict"]] == [
        ("public.users", "email")
    ]
    entry = diff["uncovered_strict"][0]
    assert entry["confidence"] == "high" and "path" not in entry
    assert entry["reason"].startswith("column name matches email; ")
    assert entry["reason"].endswith(" sampled values look like emails")
    assert entry["suggested_rule"] == {"action": "fake", "provider": "email"}
    located = {(f["table"], f["column"], f.get("path")): f for f in diff["findings"]}
    for path in ("$.actor.email", "$.actor.ip", "$.internal.support_notes"):
        assert located[("public.audit_events", "payload", path)]["covered_by"], path
    assert "public.users.email (high): column name matches email" in run.stderr
    assert "tables.public.users.columns: email: { action: fake, provider: email }" in run.stderr
    assert f"policy diff written to {diff_file}" in run.stdout
    assert "Traceback" not in run.stderr and stack.password not in run.stdout + run.stderr
    with psycopg.connect(stack.standby_dsn) as conn:
        emails = [str(row[0]) for row in conn.execute("SELECT email FROM users")]
    text = diff_file.read_text() + run.stdout + run.stderr
    assert not any(email in text for email in emails)


@pytest.mark.parametrize("email", ["{ action: passthrough }", "{ action: fake, provider: email }"])
def test_preview_passes_the_strict_gate_when_every_finding_has_a_rule(
    stack: Stack, source: SourceSummary, tmp_path: Path, email: str
) -> None:
    rules = _strict_rules(tmp_path, email=email)
    diff_file = tmp_path / "policy-diff.json"
    run = run_cli(
        "preview", "--source", stack.standby_dsn, "--mask-rules", str(rules), "--policy-diff", str(diff_file)
    )
    assert run.returncode == 0, run.stderr
    diff = json.loads(diff_file.read_text())
    assert (diff["strict_autodetect"], diff["strict_passed"], diff["uncovered_strict"]) == (True, True, [])
    users_email = next(f for f in diff["findings"] if (f["table"], f["column"]) == ("public.users", "email"))
    assert users_email["covered_by"].endswith(email.split()[2].rstrip(","))  # passthrough or fake


def test_preview_checks_keyed_rules_without_the_pseudonym_key(
    stack: Stack, source: SourceSummary, tmp_path: Path
) -> None:
    """Like the salt, the pseudonym key masks nothing in a preview: the policy gate runs in CI, where the
    key (an environment variable or a Vault secret of production) is not given."""
    rules = tmp_path / "mask-rules.yaml"
    rules.write_text(
        'version: "1.0"\npseudonym_key: vault://secret/repro#pseudonym\ntables:\n  public.users:\n'
        "    columns:\n      full_name: { action: pseudonym, provider: full_name }\n"
        "      email: { action: hmac_hash }\n"
    )
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in ("PSEUDONYM_KEY", "VAULT_ADDR", "VAULT_TOKEN", "ANONYMIZATION_SALT")
    }
    run = run_cli("preview", "--source", stack.standby_dsn, "--mask-rules", str(rules), env=environment)
    assert run.returncode == 0, run.stderr
    rules.write_text(rules.read_text().replace("full_name: { action", "id: { action"))  # an integer column
    run = run_cli("preview", "--source", stack.standby_dsn, "--mask-rules", str(rules), env=environment)
    assert run.returncode == 3
    assert "pseudonym full_name gives text that does not fit the column" in run.stderr


def test_preview_without_strict_mode_reports_and_exits_zero(
    stack: Stack, source: SourceSummary, tmp_path: Path
) -> None:
    rules = tmp_path / "mask-rules.yaml"
    rules.write_text('version: "1.0"\n')
    diff_file = tmp_path / "policy-diff.json"
    run = run_cli(
        "preview",
        "--source",
        stack.standby_dsn,
        "--mask-rules",
        str(rules),
        "--policy-diff",
        str(diff_file),
        "--sample",
        "20",
    )
    assert run.returncode == 0, run.stderr
    diff = json.loads(diff_file.read_text())
    assert (diff["strict_autodetect"], diff["strict_passed"]) == (False, True)
    assert {(f["table"], f["column"]) for f in diff["uncovered_strict"]} >= {
        ("public.users", "email"),
        ("public.users", "full_name"),
        ("public.payment_methods", "provider_token"),
    }
    assert "NO RULE" in run.stdout


def test_preview_checks_the_rules_against_the_source(
    stack: Stack, source: SourceSummary, tmp_path: Path
) -> None:
    rules = tmp_path / "mask-rules.yaml"
    rules.write_text(
        'version: "1.0"\nstrict_autodetect: true\ntables:\n  public.userz:\n    strategy: exclude\n'
    )
    run = run_cli("preview", "--source", stack.standby_dsn, "--mask-rules", str(rules))
    assert run.returncode == 3
    assert f"{rules}:5: tables.public.userz: the source has no table public.userz" in run.stderr


def test_strict_autodetect_stops_a_plan_that_leaves_pii_unmasked(
    stack: Stack, source: SourceSummary, salt: str, tmp_path: Path
) -> None:
    rules = (PROJECT_ROOT / "config" / "mask-rules.yaml").read_text()
    strict = tmp_path / "mask-rules.yaml"
    strict.write_text(
        rules.replace('version: "1.0"\n', 'version: "1.0"\nstrict_autodetect: true\n').replace(
            "      email: { action: fake, provider: email, seed_alias: user_email }\n", ""
        )
    )
    environment = {**os.environ, "ANONYMIZATION_SALT": salt}
    run = run_cli(
        "plan",
        "--source",
        stack.standby_dsn,
        "--organization",
        "451",
        "--mask-rules",
        str(strict),
        env=environment,
    )
    assert run.returncode == 6
    assert "public.users.email" in run.stderr and "Traceback" not in run.stderr


@pytest.mark.parametrize("command", ["plan", "load", "preview"])
def test_the_engine_commands_refuse_a_primary(
    command: str, stack: Stack, source: SourceSummary, salt: str
) -> None:
    environment = {**os.environ, "ANONYMIZATION_SALT": salt}
    arguments = {
        "plan": ("--organization", "451"),
        "load": ("--organization", "451", "--target", with_database(stack.target_admin_dsn, "never_made")),
        "preview": (),
    }[command]
    run = run_cli(command, "--source", stack.primary_dsn, *arguments, env=environment)
    assert run.returncode == 7, run.stderr
    assert "is not a caught-up hot standby: it is not in recovery" in run.stderr
    assert "never the primary" in run.stderr and "Traceback" not in run.stderr


def test_allow_primary_reads_a_primary_and_says_so(stack: Stack, source: SourceSummary, salt: str) -> None:
    environment = {**os.environ, "ANONYMIZATION_SALT": salt}
    run = run_cli(
        "plan", "--source", stack.primary_dsn, "--organization", "451", "--allow-primary", env=environment
    )
    assert run.returncode == 0, run.stderr
    assert "is a PRIMARY, not a standby; reading it because of --allow-primary" in run.stderr
    assert "warning: the source role postgres is a superuser" in run.stderr
    assert "organization 451:" in run.stdout


@pytest.mark.parametrize(
    ("given", "refusal"),
    [
        (("--repro-query", "DELETE FROM invoices"), "--repro-query is refused: it is DELETE, not a SELECT"),
        (("--repro-query", "SELECT 1; SELECT 2"), "--repro-query is refused: it holds 2 statements"),
        (
            ("--repro-query-file", "/nonexistent/bug.sql"),
            "--repro-query-file /nonexistent/bug.sql cannot be read",
        ),
        (
            ("--repro-query", "SELECT 1", "--repro-query-timeout", "0"),
            "--repro-query-timeout is 0: it must be a positive number of seconds",
        ),
        (
            ("--repro-query", "SELECT 1", "--repro-query-timeout", "inf"),
            "--repro-query-timeout is inf: it must be a positive number of seconds",
        ),
    ],
    ids=["write", "two-statements", "missing-file", "zero-timeout", "infinite-timeout"],
)
def test_verify_refuses_a_bad_repro_query_before_touching_a_database(
    given: tuple[str, ...], refusal: str, salt: str
) -> None:
    environment = {**os.environ, "ANONYMIZATION_SALT": salt}
    run = run_cli(
        "verify", "--source", NOWHERE, "--target", NOWHERE, "--organization", "451", *given, env=environment
    )
    assert run.returncode == 3, run.stderr
    assert refusal in run.stderr
    assert "Traceback" not in run.stderr + run.stdout


def test_verify_passes_a_loaded_database_and_fails_a_leaking_one(
    stack: Stack, source: SourceSummary, salt: str, tmp_path: Path
) -> None:
    environment = {**os.environ, "ANONYMIZATION_SALT": salt}
    target = with_database(stack.target_admin_dsn, "cli_verify_test")
    with psycopg.connect(stack.target_admin_dsn, autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS cli_verify_test WITH (FORCE)")
        admin.execute("CREATE DATABASE cli_verify_test")
    try:
        common = ("--source", stack.standby_dsn, "--organization", "451")
        assert run_cli("load", *common, "--target", target, env=environment).returncode == 0
        bug_query = tmp_path / "invoice-totals.sql"
        bug_query.write_text(GUIDE_BUG_QUERY)
        clean = run_cli(
            "verify",
            *common,
            "--target",
            target,
            "--json",
            "--repro-query-file",
            str(bug_query),
            env=environment,
        )
        assert clean.returncode == 0, clean.stderr
        verdicts = json.loads(clean.stdout)
        planted = len(source.planted_invoice_ids)
        assert verdicts.pop("repro_query") == {
            "ran": True,
            "rows": planted,
            "error": "",
            "result": f"the query returns {planted} rows: the bug reproduces",
        }
        assert all(verdict["passed"] for verdict in verdicts.values())
        assert verdicts["zero_fk_orphans"]["foreign_keys_checked"] == 6
        assert set(verdicts) >= {"schema_matches_source"} and verdicts["schema_matches_source"]["diff"] == ""

        with psycopg.connect(stack.standby_dsn) as standby:
            (original,) = standby.execute(
                "SELECT full_name FROM users WHERE organization_id = 451 ORDER BY id LIMIT 1"
            ).fetchone() or ("",)
        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute(
                "UPDATE invoice_line_items SET sku = %s WHERE id = (SELECT min(id) FROM invoice_line_items)",
                (f"paid by {original.upper()}",),
            )
        leaking = run_cli(
            "verify", *common, "--target", target, "--repro-query", "SELECT 1 WHERE false", env=environment
        )
        assert leaking.returncode == 5, leaking.stderr
        assert (
            "repro_query                  RAN: the query returns 0 rows: the bug does not reproduce on this copy"
            in leaking.stdout
        )
        assert "no_original_pii              FAILED" in leaking.stdout
        assert (
            '"public.invoice_line_items.sku": 1' in leaking.stdout and original.upper() not in leaking.stdout
        )
        assert "failed no_original_pii" in leaking.stderr and "Traceback" not in leaking.stderr
        leaking_json = run_cli("verify", *common, "--target", target, "--json", env=environment)
        assert leaking_json.returncode == 5, leaking_json.stderr
        verdicts = json.loads(leaking_json.stdout)
        assert verdicts["no_original_pii"]["passed"] is False
        assert "failed no_original_pii" in verdicts["error"]["problem"]
        assert (
            verdicts["error"]["exit_name"] == "CHECK_FAILED" and original.upper() not in leaking_json.stdout
        )

        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute("CREATE INDEX users_email_idx ON users (email)")
        changed = run_cli("verify", *common, "--target", target, env=environment)
        assert changed.returncode == 5, changed.stderr
        assert "schema_matches_source        FAILED" in changed.stdout
        assert "      +CREATE INDEX users_email_idx ON public.users USING btree (email);" in changed.stdout
        assert "failed no_original_pii, schema_matches_source" in changed.stderr
        assert stack.password not in changed.stdout + changed.stderr

        other = run_cli(
            "verify",
            "--source",
            stack.standby_dsn,
            "--organization",
            "452",
            "--target",
            target,
            env=environment,
        )
        assert other.returncode == 7 and "holds organization 451, not 452" in other.stderr
        unrecorded = with_database(stack.target_admin_dsn, "postgres")
        foreign = run_cli("verify", *common, "--target", unrecorded, env=environment)
        assert foreign.returncode == 7 and "has no repro_pipeline record" in foreign.stderr
    finally:
        with psycopg.connect(stack.target_admin_dsn, autocommit=True) as admin:
            admin.execute("DROP DATABASE IF EXISTS cli_verify_test WITH (FORCE)")


@pytest.mark.parametrize("workers", ["0", "-1", "two"])
def test_load_refuses_a_worker_count_that_is_no_positive_integer(
    workers: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from repro_pipeline.cli.main import main

    arguments = ["load", "--source", "x", "--organization", "451", "--target", "y", "--workers", workers]
    with pytest.raises(SystemExit) as exited:
        main(arguments)
    assert exited.value.code == 2
    assert f"--workers: {workers!r} is not a positive integer" in capsys.readouterr().err
