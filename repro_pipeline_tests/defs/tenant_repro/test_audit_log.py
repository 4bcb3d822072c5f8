"""The audit log of partition runs through the real Dagster instance, on the embedded stack: its events in
order, none of the tenant's values even when the leak check finds some, readable by the login, and left out
(the run's record kept) with ``audit_log: false``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
import pytest

from repro_pipeline.cli.launch import materialize_tenant
from repro_pipeline.cli.run_report import GUIDE_BUG_QUERY
from repro_pipeline.embedded.stack import Stack
from repro_pipeline.embedded.synthetic import TABLES
from repro_pipeline.engine.dsn import with_database
from repro_pipeline.engine.repro_databases import audit, lifecycle
from repro_pipeline.engine.repro_databases.manifest import REQUIRED_CHECKS
from repro_pipeline_tests.conftest import PROJECT_ROOT

ORGANIZATION = 451
RULES = PROJECT_ROOT / "config" / "mask-rules.yaml"
EMAIL_RULE = "      email: { action: fake, provider: email, seed_alias: user_email }\n"


@pytest.fixture(scope="module")
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance


def _database(result: dg.ExecuteInProcessResult) -> str:
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        if materialization.asset_key == dg.AssetKey("repro_database"):
            return str(materialization.metadata["database"].value)
    raise AssertionError("repro_database was not materialized")


def _metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, Any]:
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        if materialization.asset_key == dg.AssetKey(asset):
            return {key: value.value for key, value in materialization.metadata.items()}
    raise AssertionError(f"{asset} was not materialized")


def _query(dsn: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query).fetchall()


@pytest.fixture(scope="module")
def audited_run(slack_environment: None, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    result = materialize_tenant(ORGANIZATION, instance, repro_query=GUIDE_BUG_QUERY)
    assert result.success
    return result


def _rules_with(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    path = tmp_path / "mask-rules.yaml"
    path.write_text(text)
    monkeypatch.setenv("REPRO_MASK_RULES", str(path))


def test_a_partition_runs_audit_log_holds_its_events_in_order(
    audited_run: dg.ExecuteInProcessResult, stack: Stack
) -> None:
    database = _database(audited_run)
    dsn = with_database(stack.target_admin_dsn, database)
    events = _query(
        dsn,
        "SELECT run_id, event_at, event_type, table_name, check_name, passed, rows, seconds, expires_at "
        f"FROM {audit.TABLE} ORDER BY event_id",
    )
    assert {event[0] for event in events} == {audited_run.run_id}
    times = [event[1] for event in events]
    assert times == sorted(times)
    kinds = [event[2] for event in events]
    assert kinds == [
        "run.started",
        *["table.loaded"] * len(TABLES),
        *["check.evaluated"] * (len(REQUIRED_CHECKS) + 1),
        "run.handed_off",
    ]
    loaded = {event[3]: event[6] for event in events if event[2] == "table.loaded"}
    assert loaded == dict(_query(dsn, "SELECT table_name, loaded_rows FROM _repro_pipeline.tables"))
    assert all(event[7] >= 0 for event in events if event[2] == "table.loaded")
    verdicts = {event[4]: event[5] for event in events if event[2] == "check.evaluated"}
    assert verdicts == {**dict.fromkeys(REQUIRED_CHECKS, True), "repro_query": True}
    with psycopg.connect(stack.target_admin_dsn) as admin:
        (record,) = [db for db in lifecycle.list_repro_databases(admin) if db.name == database]
    assert events[-1][8] == record.expires_at


def test_the_login_handed_off_reads_the_audit_log(audited_run: dg.ExecuteInProcessResult) -> None:
    login_dsn = Path(_metadata(audited_run, "repro_handoff")["dsn_reference"]).read_text().strip()
    with psycopg.connect(login_dsn, autocommit=True) as reader:
        assert reader.execute(f"SELECT count(*) FROM {audit.TABLE}").fetchone() == (len(TABLES) + 7,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            reader.execute(f"DELETE FROM {audit.TABLE}")


def test_no_value_reaches_the_audit_log_even_when_the_leak_check_finds_one(
    audited_run: dg.ExecuteInProcessResult,
    instance: dg.DagsterInstance,
    stack: Stack,
    salt: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # users.email left unmasked: the tenant's real addresses are in the repro database, a leak to catch.
    rules = RULES.read_text()
    assert EMAIL_RULE in rules
    _rules_with(tmp_path, monkeypatch, rules.replace(EMAIL_RULE, ""))
    result = materialize_tenant(ORGANIZATION, instance)
    assert not result.success
    dsn = with_database(stack.target_admin_dsn, _database(result))
    emails = {str(email) for (email,) in _query(dsn, "SELECT email FROM users")}
    with psycopg.connect(stack.standby_dsn) as source:
        originals = {
            str(email)
            for (email,) in source.execute(
                "SELECT email FROM users WHERE organization_id = %s", (ORGANIZATION,)
            ).fetchall()
        }
    assert originals and originals <= emails  # the leak-shaped values are there to be leaked
    events = _query(dsn, f"SELECT * FROM {audit.TABLE} ORDER BY event_id")
    assert ("no_original_pii", False) in {(event[5], event[6]) for event in events}
    text = "\n".join(str(event) for event in events)
    assert not any(email in text for email in originals)
    assert "@" not in text and salt not in text and stack.password not in text


def test_audit_log_false_leaves_the_table_out_and_keeps_the_runs_record(
    audited_run: dg.ExecuteInProcessResult,
    instance: dg.DagsterInstance,
    stack: Stack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rules = RULES.read_text()
    assert "\naudit_log:" not in rules
    _rules_with(tmp_path, monkeypatch, f"{rules}\naudit_log: false\n")
    result = materialize_tenant(ORGANIZATION, instance)
    assert result.success
    dsn = with_database(stack.target_admin_dsn, _database(result))
    assert _query(dsn, f"SELECT to_regclass('{audit.TABLE}')") == [(None,)]
    assert _query(dsn, "SELECT run_id, status FROM _repro_pipeline.runs") == [(result.run_id, "ready")]
    assert _query(dsn, "SELECT count(*) FROM _repro_pipeline.checks WHERE passed") == [
        (len(REQUIRED_CHECKS),)
    ]
