"""``on_existing_data`` on partition runs: what a rerun does while the organization has a live repro database,
through real Dagster runs on the embedded stack."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from repro_pipeline.cli.launch import materialize_tenant
from repro_pipeline.embedded.stack import Stack
from repro_pipeline.engine.repro_databases import lifecycle
from repro_pipeline.engine.repro_databases.logins import login_role
from repro_pipeline_tests.conftest import PROJECT_ROOT
from repro_pipeline_tests.defs.run_results import materialized_database, step_failure_messages

ORGANIZATION = 303  # a small one of its own: these runs drop its databases
RULES = (PROJECT_ROOT / "config" / "mask-rules.yaml").read_text()


@pytest.fixture(scope="module")
def instance(slack_environment: None) -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance


def _databases(stack: Stack) -> dict[str, lifecycle.ReproDatabase]:
    with psycopg.connect(stack.target_admin_dsn, autocommit=True) as admin:
        return {
            database.name: database
            for database in lifecycle.list_repro_databases(admin)
            if database.organization_id == ORGANIZATION
        }


def _roles(stack: Stack) -> set[str]:
    with psycopg.connect(stack.target_admin_dsn, autocommit=True) as admin:
        return {str(name) for (name,) in admin.execute("SELECT rolname FROM pg_roles").fetchall()}


def _with_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, policy: str, rules: str = RULES) -> None:
    path = tmp_path / f"mask-rules-{policy}.yaml"
    path.write_text(rules + f"on_existing_data: {policy}\n")
    monkeypatch.setenv("REPRO_MASK_RULES", str(path))


@pytest.fixture(scope="module")
def live(instance: dg.DagsterInstance, stack: Stack) -> str:
    """The organization's first repro database, handed off: live."""
    result = materialize_tenant(ORGANIZATION, instance)
    assert result.success
    database = materialized_database(result)
    assert _databases(stack)[database].status == "ready"
    return database


def test_unset_builds_a_new_database_beside_the_live_one(
    live: str, instance: dg.DagsterInstance, stack: Stack
) -> None:
    result = materialize_tenant(ORGANIZATION, instance)
    assert result.success
    assert {live, materialized_database(result)} <= set(_databases(stack))


def test_fail_refuses_before_creating_anything_and_names_the_live_database(
    live: str, instance: dg.DagsterInstance, stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _with_policy(tmp_path, monkeypatch, "fail")
    before = set(_databases(stack))
    result = materialize_tenant(ORGANIZATION, instance)
    assert not result.success
    message = step_failure_messages(result)
    assert (
        f"on_existing_data fail: organization {ORGANIZATION} already has a live repro database: " in message
    )
    assert live in message and "repro-pipeline drop repro_org" in message
    assert set(_databases(stack)) == before


def test_truncate_is_refused_with_the_reason(
    live: str, instance: dg.DagsterInstance, stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _with_policy(tmp_path, monkeypatch, "truncate")
    before = set(_databases(stack))
    result = materialize_tenant(ORGANIZATION, instance)
    assert not result.success
    assert "a repro database in use is never emptied under its readers" in step_failure_messages(result)
    assert set(_databases(stack)) == before


def test_drop_create_drops_the_live_ones_only_once_the_new_one_passed_its_checks(
    live: str, instance: dg.DagsterInstance, stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A new database that leaks (a regex_mask that masks nothing) fails its checks: the old ones are kept.
    leaky = RULES.replace(
        "full_name: { action: fake, provider: full_name }",
        'full_name: { action: regex_mask, pattern: "ZZZZ", replace: "Y" }',
    )
    _with_policy(tmp_path, monkeypatch, "drop_create", leaky)
    old = {name for name, database in _databases(stack).items() if database.status in ("loaded", "ready")}
    assert live in old
    failed = materialize_tenant(ORGANIZATION, instance)
    assert not failed.success
    after_failure = _databases(stack)
    assert all(after_failure[name].status in ("loaded", "ready") for name in old)

    _with_policy(tmp_path, monkeypatch, "drop_create")
    replaced = materialize_tenant(ORGANIZATION, instance)

    assert replaced.success
    new = materialized_database(replaced)
    remaining = _databases(stack)
    assert new in remaining and not old & set(remaining)
    assert not {login_role(name) for name in old} & _roles(stack)
    secrets = Path(instance.root_directory) / "repro-secrets"
    assert not [path for path in secrets.iterdir() if any(name in path.name for name in old)]
    observations = instance.fetch_observations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("repro_database"), asset_partitions=[str(ORGANIZATION)]),
        limit=10,
    ).records
    dropped = {
        str(record.asset_observation.metadata["database"].value)
        for record in observations
        if record.asset_observation is not None
        and record.asset_observation.metadata["status"].value == "dropped"
    }
    assert dropped == old
