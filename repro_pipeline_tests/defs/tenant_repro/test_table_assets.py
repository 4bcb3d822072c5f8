"""The per-table assets of the load's step, on the embedded stack: built from a catalog snapshot of the
standby, materialized with repro_database in one step, each with its rows, bytes, seconds, masked columns and
checks; the fallback without a snapshot; the refresh command and ``dg check defs`` with and without one."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
import pytest

from repro_pipeline.cli.main import main
from repro_pipeline.defs import resources
from repro_pipeline.defs.tenant_repro.assets import repro_handoff, standby_health
from repro_pipeline.defs.tenant_repro.catalog_snapshot import (
    LoadStepFromCatalogSnapshot,
    load_step_definitions,
)
from repro_pipeline.defs.tenant_repro.jobs import tenant_repro_job
from repro_pipeline.defs.tenant_repro.partitions import organizations
from repro_pipeline.embedded.stack import Stack
from repro_pipeline.engine.dsn import with_database
from repro_pipeline.engine.errors import ConfigError, ReproError
from repro_pipeline.engine.repro_databases import lifecycle
from repro_pipeline.engine.source.catalog import read_catalog
from repro_pipeline.engine.source.catalog_snapshot import CatalogTable, load_catalog_snapshot
from repro_pipeline.engine.verify.by_table import TABLE_NO_ORIGINAL_PII, TABLE_ZERO_FK_ORPHANS
from repro_pipeline_tests.conftest import PROJECT_ROOT
from repro_pipeline_tests.defs.run_results import step_failure_messages

ORGANIZATION = "451"
GONE = dg.AssetKey(["repro", "public", "gone_since_the_snapshot"])
USERS = dg.AssetKey(["repro", "public", "users"])
INVOICES = dg.AssetKey(["repro", "public", "invoices"])
LINE_ITEMS = dg.AssetKey(["repro", "public", "invoice_line_items"])


@pytest.fixture(scope="module")
def snapshot_file(pipeline_environment: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The standby's catalog, as the refresh writes it, and one table the source no longer has."""
    path = tmp_path_factory.mktemp("defs-state") / "state"
    LoadStepFromCatalogSnapshot().write_state_to_path(path)
    snapshot = load_catalog_snapshot(path)
    gone = CatalogTable(schema_name="public", name="gone_since_the_snapshot")
    path.write_text(snapshot.model_copy(update={"tables": (*snapshot.tables, gone)}).to_json())
    return path


def _tenant_job(state_path: Path | None) -> dg.JobDefinition:
    """The tenant job as the code location builds it, its load's step from the snapshot at ``state_path``."""
    defs = dg.Definitions.merge(
        dg.Definitions(assets=[standby_health, repro_handoff], jobs=[tenant_repro_job]),
        load_step_definitions(state_path),
        resources.defs,
    )
    return defs.resolve_job_def(tenant_repro_job.name)


@pytest.fixture(scope="module")
def job(snapshot_file: Path) -> dg.JobDefinition:
    return _tenant_job(snapshot_file)


@pytest.fixture(scope="module")
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        test_instance.add_dynamic_partitions(organizations.name, [ORGANIZATION])
        yield test_instance


def _run(job: dg.JobDefinition, instance: dg.DagsterInstance, **subset: Any) -> dg.ExecuteInProcessResult:
    chosen = job.get_subset(**subset) if subset else job
    return chosen.execute_in_process(instance=instance, partition_key=ORGANIZATION, raise_on_error=False)


def _materializations(result: dg.ExecuteInProcessResult) -> dict[dg.AssetKey, dict[str, Any]]:
    return {
        event.step_materialization_data.materialization.asset_key: {
            name: value.value
            for name, value in event.step_materialization_data.materialization.metadata.items()
        }
        for event in result.get_asset_materialization_events()
    }


def _checks(result: dg.ExecuteInProcessResult) -> dict[dg.AssetCheckKey, dg.AssetCheckEvaluation]:
    return {evaluation.asset_check_key: evaluation for evaluation in result.get_asset_check_evaluations()}


@pytest.fixture(scope="module")
def table_run(job: dg.JobDefinition, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    return _run(job, instance)


def test_each_table_of_the_snapshot_is_an_asset_of_the_load_step(
    job: dg.JobDefinition, snapshot_file: Path
) -> None:
    tables = load_catalog_snapshot(snapshot_file).tables
    keys = {dg.AssetKey(["repro", table.schema_name, table.name]) for table in tables}
    (load_step,) = load_step_definitions(snapshot_file).assets or ()
    assert (
        isinstance(load_step, dg.AssetsDefinition)
        and load_step.node_def.name == "tenant_closure_and_repro_database"
    )
    assert load_step.keys == {dg.AssetKey("tenant_closure"), dg.AssetKey("repro_database"), *keys}
    assert {key.asset_key for key in load_step.check_keys if key.name.startswith("table_")} == keys
    assert [dep.asset_key for dep in load_step.specs_by_key[INVOICES].deps] == [dg.AssetKey("tenant_closure")]
    assert keys <= job.asset_layer.selected_asset_keys  # the tenant job materializes them


def test_a_run_materializes_every_table_with_its_rows_bytes_seconds_and_masked_columns(
    table_run: dg.ExecuteInProcessResult, stack: Stack
) -> None:
    assert table_run.success, step_failure_messages(table_run)
    materialized = _materializations(table_run)
    database = materialized[dg.AssetKey("repro_database")]["database"]
    tables = {key: metadata for key, metadata in materialized.items() if key.path[0] == "repro"}
    assert {INVOICES, USERS, LINE_ITEMS, GONE} <= set(tables)
    with psycopg.connect(with_database(stack.target_admin_dsn, str(database))) as conn:
        indexed = {  # an index takes a page even when its table is empty
            dg.AssetKey(["repro", schema, name])
            for schema, name in conn.execute(
                "SELECT schemaname, tablename FROM pg_indexes WHERE schemaname <> '_repro_pipeline'"
            ).fetchall()
        }
        for key, metadata in tables.items():
            if key == GONE:
                continue
            (rows,) = conn.execute(f'SELECT count(*) FROM "{key.path[1]}"."{key.path[2]}"').fetchone()  # type: ignore[misc]
            assert metadata["dagster/row_count"] == rows == metadata["closure_rows"], key
            assert metadata["status"] == "copied" and metadata["seconds"] >= 0
            assert (metadata["bytes"] > 0) == (rows > 0 or key in indexed), key
        # Autovacuum may have added the free space and visibility maps since the run measured (3 + 1 pages).
        (invoices_bytes, maps_bytes) = conn.execute(  # type: ignore[misc]
            "SELECT pg_total_relation_size('public.invoices'), "
            "pg_relation_size('public.invoices', 'fsm') + pg_relation_size('public.invoices', 'vm')"
        ).fetchone()
    assert tables[INVOICES]["dagster/row_count"] == 3000
    assert invoices_bytes - maps_bytes <= tables[INVOICES]["bytes"] <= invoices_bytes
    assert tables[USERS]["masked_columns"]["email"].startswith("fake")
    assert "id" not in tables[USERS]["masked_columns"]
    assert (
        sum(t["dagster/row_count"] for t in tables.values())
        == (materialized[dg.AssetKey("repro_database")]["dagster/row_count"])
    )
    gone = tables[GONE]
    assert gone["dagster/row_count"] == 0 and gone["bytes"] == 0 and gone["masked_columns"] == {}
    assert gone["status"] == "not copied: no longer in the source's catalog (refresh the catalog snapshot)"
    assert dg.AssetKey("repro_handoff") in materialized


def test_each_table_carries_its_passing_orphan_and_leak_checks(table_run: dg.ExecuteInProcessResult) -> None:
    checks = _checks(table_run)
    table_checks = {key: check for key, check in checks.items() if key.asset_key.path[0] == "repro"}
    tables = {key.asset_key for key in table_checks}
    assert len(table_checks) == 2 * len(tables) and all(check.passed for check in table_checks.values())
    assert {check.partition for check in table_checks.values()} == {ORGANIZATION}
    line_items = table_checks[dg.AssetCheckKey(LINE_ITEMS, TABLE_ZERO_FK_ORPHANS)].metadata
    assert line_items["foreign_keys_checked"].value >= 1 and line_items["orphans"].value == 0
    assert (
        table_checks[dg.AssetCheckKey(GONE, TABLE_ZERO_FK_ORPHANS)].metadata["foreign_keys_checked"].value
        == 0
    )


def test_a_planted_leak_fails_its_tables_check_and_stops_the_handoff(
    job: dg.JobDefinition, instance: dg.DagsterInstance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = (PROJECT_ROOT / "config" / "mask-rules.yaml").read_text()
    forgetful = tmp_path / "mask-rules.yaml"
    forgetful.write_text(
        rules.replace("      email: { action: fake, provider: email, seed_alias: user_email }\n", "")
    )
    monkeypatch.setenv("REPRO_MASK_RULES", str(forgetful))
    result = _run(job, instance)
    assert not result.success
    checks = _checks(result)
    users = checks[dg.AssetCheckKey(USERS, TABLE_NO_ORIGINAL_PII)]
    assert not users.passed and users.metadata["leaking_columns"].value["public.users.email"] > 0
    assert checks[dg.AssetCheckKey(INVOICES, TABLE_NO_ORIGINAL_PII)].passed
    assert checks[dg.AssetCheckKey(USERS, TABLE_ZERO_FK_ORPHANS)].passed
    assert dg.AssetKey("repro_handoff") not in _materializations(result)


def test_a_planted_orphan_fails_its_tables_check_launched_on_its_own(
    job: dg.JobDefinition, instance: dg.DagsterInstance, stack: Stack
) -> None:
    run = _run(job, instance)
    assert run.success, step_failure_messages(run)
    database = str(_materializations(run)[dg.AssetKey("repro_database")]["database"])
    with psycopg.connect(with_database(stack.target_admin_dsn, database), autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")  # no FK trigger: as a careless restore
        conn.execute("DELETE FROM invoices WHERE id = (SELECT min(invoice_id) FROM invoice_line_items)")
    orphans = {dg.AssetCheckKey(key, TABLE_ZERO_FK_ORPHANS) for key in (LINE_ITEMS, INVOICES)}
    result = _run(job, instance, asset_selection=set(), asset_check_selection=orphans)
    assert not result.success and result.get_asset_materialization_events() == []
    checks = _checks(result)
    assert set(checks) == orphans
    line_items = checks[dg.AssetCheckKey(LINE_ITEMS, TABLE_ZERO_FK_ORPHANS)]
    assert not line_items.passed and line_items.metadata["orphans"].value > 0
    assert checks[dg.AssetCheckKey(INVOICES, TABLE_ZERO_FK_ORPHANS)].passed


def test_an_excluded_table_is_materialized_with_no_rows_and_says_why(
    job: dg.JobDefinition, instance: dg.DagsterInstance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = (PROJECT_ROOT / "config" / "mask-rules.yaml").read_text()
    excluding = tmp_path / "mask-rules.yaml"
    excluding.write_text(
        rules.replace(
            "  public.payment_methods:\n    strategy: transform\n",
            "  public.payment_methods:\n    strategy: exclude\n",
        )
    )
    monkeypatch.setenv("REPRO_MASK_RULES", str(excluding))
    result = _run(job, instance)
    assert result.success, step_failure_messages(result)
    excluded = _materializations(result)[dg.AssetKey(["repro", "public", "payment_methods"])]
    assert excluded["dagster/row_count"] == 0 and excluded["bytes"] == 0
    assert excluded["status"] == "not copied: strategy exclude in mask-rules.yaml"


def test_the_snapshot_is_read_from_a_ready_standby_only(
    stack: Stack, pipeline_environment: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REPRO_STANDBY_DSN", stack.primary_dsn)
    with pytest.raises(ReproError, match="this is a primary"):
        LoadStepFromCatalogSnapshot().write_state_to_path(tmp_path / "state")
    monkeypatch.delenv("REPRO_STANDBY_DSN")
    with pytest.raises(
        ConfigError, match="REPRO_STANDBY_DSN is not set: the catalog snapshot is read from the standby"
    ):
        LoadStepFromCatalogSnapshot().write_state_to_path(tmp_path / "state")
    assert not (tmp_path / "state").exists()


def test_one_table_or_repro_database_alone_is_refused_before_any_database_is_made(
    job: dg.JobDefinition, instance: dg.DagsterInstance, stack: Stack
) -> None:
    with psycopg.connect(stack.target_admin_dsn, autocommit=True) as admin:
        before = {database.name for database in lifecycle.list_repro_databases(admin)}
    for alone in (INVOICES, dg.AssetKey("repro_database")):
        result = _run(job, instance, asset_selection={alone})
        assert not result.success
        message = step_failure_messages(result)
        assert "repro_database and its tables' assets are one load: this run selects 1 of its" in message
        assert "launch the tenant_repro job" in message and "select repro_database, or" not in message
    with psycopg.connect(stack.target_admin_dsn, autocommit=True) as admin:
        assert {database.name for database in lifecycle.list_repro_databases(admin)} == before


def test_without_a_snapshot_the_step_has_repro_database_alone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    alone = {dg.AssetKey("tenant_closure"), dg.AssetKey("repro_database")}
    (without,) = load_step_definitions(None).assets or ()
    assert isinstance(without, dg.AssetsDefinition) and without.keys == alone
    unreadable = tmp_path / "state"
    unreadable.write_text("{half a snapshot")
    with caplog.at_level(logging.WARNING):
        (fallback,) = load_step_definitions(unreadable).assets or ()
    assert isinstance(fallback, dg.AssetsDefinition) and fallback.keys == alone
    assert f"the catalog snapshot {unreadable} cannot be read" in caplog.text
    assert "until then repro_database stands alone" in caplog.text


@pytest.fixture
def checkout_state(checkout_catalog_snapshot: Path) -> Iterator[Path]:
    """The checkout's own catalog snapshot (what `dg` loads): none at first, none after."""
    assert not checkout_catalog_snapshot.exists()
    try:
        yield checkout_catalog_snapshot
    finally:
        checkout_catalog_snapshot.unlink(missing_ok=True)


def _dg(*arguments: str) -> subprocess.CompletedProcess[str]:
    venv = PROJECT_ROOT / ".venv"
    return subprocess.run(
        [str(venv / "bin" / "dg"), *arguments],
        cwd=PROJECT_ROOT,
        env={**os.environ, "VIRTUAL_ENV": str(venv)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _table_asset_keys() -> set[str]:
    listed = _dg("list", "defs", "--json")
    assert listed.returncode == 0, listed.stderr
    return {
        asset["asset_key"]
        for asset in json.loads(listed.stdout)["assets"]
        if asset["asset_key"].startswith("repro/")
    }


@pytest.mark.skipif(
    shutil.which("dg", path=str(PROJECT_ROOT / ".venv" / "bin")) is None, reason="needs the venv's dg"
)
def test_the_refresh_command_keeps_the_snapshot_that_dg_loads(
    checkout_state: Path,
    stack: Stack,
    pipeline_environment: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    check = _dg("check", "defs")
    assert check.returncode == 0 and "All definitions loaded successfully" in check.stdout + check.stderr
    assert _table_asset_keys() == set()

    assert main(["catalog", "refresh", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    with psycopg.connect(stack.standby_dsn) as standby:
        expected = sorted(str(name) for name in read_catalog(standby).tables)
    assert printed["tables"] == expected and "public.invoices" in expected
    assert printed["path"] == str(checkout_state) and checkout_state.exists()
    assert (
        "password" not in checkout_state.read_text() and stack.standby_dsn not in checkout_state.read_text()
    )

    check = _dg("check", "defs")
    assert check.returncode == 0, check.stderr
    assert _table_asset_keys() == {f"repro/{name.replace('.', '/')}" for name in expected}

    by_the_cli = load_catalog_snapshot(checkout_state)
    checkout_state.unlink()
    refreshed = _dg("utils", "refresh-defs-state")
    assert refreshed.returncode == 0, refreshed.stdout + refreshed.stderr
    by_dg = load_catalog_snapshot(checkout_state)
    assert (by_dg.source, by_dg.table_names) == (by_the_cli.source, by_the_cli.table_names)
    assert sorted(str(name) for name in by_dg.table_names) == expected
