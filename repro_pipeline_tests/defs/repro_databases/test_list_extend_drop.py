"""``repro-pipeline list|extend|drop`` and their op jobs on the real target server and a real Dagster
instance: what they change shows in the list and on the organization's partition; bad input is refused
before any run."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from psycopg import sql

from repro_pipeline.cli.launch import drop_repro_database
from repro_pipeline.cli.main import main
from repro_pipeline.engine.errors import RequestRefused
from repro_pipeline.engine.repro_databases import lifecycle
from repro_pipeline.engine.repro_databases.secret_sink import FileSecretSink
from repro_pipeline.engine.secrets import Secret
from repro_pipeline_tests.defs.run_results import step_failure_messages

ORGANIZATION = 452
NOT_OURS = "repro_org452_0badc0de"
REPRO_DATABASE = dg.AssetKey("repro_database")


@pytest.fixture
def dagster_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pipeline_environment: dict[str, str]
) -> Path:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    return tmp_path


@pytest.fixture
def database(target_admin: psycopg.Connection[tuple[object, ...]]) -> Iterator[lifecycle.ReproDatabase]:
    made = lifecycle.create_repro_database(
        target_admin,
        organization_id=ORGANIZATION,
        run_id=uuid.uuid4().hex,
        ttl=timedelta(hours=48),
        now=datetime.now(UTC),
    )
    yield lifecycle.mark(target_admin, made, "ready")
    lifecycle.drop_repro_database(target_admin, made.name)


@pytest.fixture
def not_ours(target_admin: psycopg.Connection[tuple[object, ...]]) -> Iterator[str]:
    target_admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(NOT_OURS)))
    yield NOT_OURS
    target_admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(NOT_OURS)))


def _listed(capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, object]]:
    assert main(["list", "--json"]) == 0
    return {str(row["database"]): row for row in json.loads(capsys.readouterr().out)}


def _observations(partition: str) -> list[dg.AssetObservation]:
    with dg.DagsterInstance.get() as instance:
        records = instance.fetch_observations(
            dg.AssetRecordsFilter(asset_key=REPRO_DATABASE, asset_partitions=[partition]), limit=10
        ).records
    return [record.asset_observation for record in records if record.asset_observation is not None]


def _run_count() -> int:
    with dg.DagsterInstance.get() as instance:
        return len(instance.get_run_records())


def test_list_shows_organization_status_and_expiry(
    dagster_home: Path, database: lifecycle.ReproDatabase, not_ours: str, capsys: pytest.CaptureFixture[str]
) -> None:
    listed = _listed(capsys)
    assert listed[database.name] == {
        "organization_id": ORGANIZATION,
        "database": database.name,
        "status": "ready",
        "created_at": database.created_at.isoformat(),
        "expires_at": database.expires_at.isoformat(),
        "expired": False,
    }
    assert not_ours not in listed
    assert main(["list"]) == 0
    (line,) = [text for text in capsys.readouterr().out.splitlines() if database.name in text]
    assert line.split()[:3] == [str(ORGANIZATION), database.name, "ready"]
    assert f"{database.expires_at:%Y-%m-%d %H:%M}" in line


def test_extend_changes_the_expiry_in_the_list_and_on_the_partition(
    dagster_home: Path, database: lifecycle.ReproDatabase, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["extend", database.name, "--hours", "24"]) == 0
    expires_at = database.expires_at + timedelta(hours=24)
    assert f"{database.name} now expires {expires_at:%Y-%m-%d %H:%M} UTC" in capsys.readouterr().out
    assert _listed(capsys)[database.name]["expires_at"] == expires_at.isoformat()
    (observation,) = _observations(str(ORGANIZATION))
    assert observation.metadata["status"].value == "ready"
    assert observation.metadata["reason"].value == "TTL extended by 24 hours"
    assert observation.metadata["expires_at"].value == expires_at.timestamp()


def test_an_extension_past_the_maximum_is_refused_naming_it_before_any_run(
    dagster_home: Path, database: lifecycle.ReproDatabase, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["extend", database.name, "--hours", "2200"]) == RequestRefused.exit_code
    error = capsys.readouterr().err
    assert "longer than the maximum of 2160 hours from its creation" in error
    assert "extend it by at most 2112 hours" in error and "Traceback" not in error
    assert _listed(capsys)[database.name]["expires_at"] == database.expires_at.isoformat()
    assert _run_count() == 0


@pytest.mark.parametrize("hours", ["0", "-3", "nan", "inf", "soon"])
def test_an_extension_that_is_not_a_positive_number_is_refused(
    dagster_home: Path, database: lifecycle.ReproDatabase, capsys: pytest.CaptureFixture[str], hours: str
) -> None:
    with pytest.raises(SystemExit) as refused:
        main(["extend", database.name, f"--hours={hours}"])
    assert refused.value.code == 2
    assert f"{hours!r} is not a positive number of hours" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["extend", "--hours", "1"], ["drop"]])
def test_a_database_not_ours_or_unknown_is_refused_before_any_run(
    dagster_home: Path,
    target_admin: psycopg.Connection[tuple[object, ...]],
    not_ours: str,
    capsys: pytest.CaptureFixture[str],
    command: list[str],
) -> None:
    assert main([command[0], not_ours, *command[1:]]) == RequestRefused.exit_code
    assert f"the database '{not_ours}' on the target server has no repro_pipeline record" in (
        capsys.readouterr().err
    )
    assert target_admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (not_ours,)).fetchone()
    assert main([command[0], "repro_org452_00000000", *command[1:]]) == RequestRefused.exit_code
    assert "the target server has no database 'repro_org452_00000000'" in capsys.readouterr().err
    assert _run_count() == 0


def test_drop_removes_the_database_and_the_partition_says_so(
    dagster_home: Path, database: lifecycle.ReproDatabase, capsys: pytest.CaptureFixture[str]
) -> None:
    sink = FileSecretSink(dagster_home / "repro-secrets")  # the handoff's default, in the instance's folder
    sink.store(database.name, Secret("host=127.0.0.1 dbname=kept-for-the-login"))
    assert main(["drop", database.name]) == 0
    assert f"dropped {database.name} (organization {ORGANIZATION})" in capsys.readouterr().out
    assert not sink.path(database.name).exists()
    assert database.name not in _listed(capsys)
    (observation,) = _observations(str(ORGANIZATION))
    assert observation.metadata["status"].value == "dropped"
    assert observation.metadata["database"].value == database.name
    assert observation.metadata["reason"].value == "dropped on request"


def test_the_drop_job_refuses_a_database_not_ours_as_launched_from_the_ui(
    dagster_home: Path, target_admin: psycopg.Connection[tuple[object, ...]], not_ours: str
) -> None:
    with dg.DagsterInstance.get() as instance:
        result = drop_repro_database(not_ours, instance)
    assert not result.success
    assert "has no repro_pipeline record" in step_failure_messages(result)
    assert target_admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (not_ours,)).fetchone()
    assert _observations(str(ORGANIZATION)) == []


def test_the_list_job_shows_the_databases_in_its_metadata(
    dagster_home: Path, database: lifecycle.ReproDatabase
) -> None:
    from repro_pipeline.definitions import defs

    with dg.DagsterInstance.get() as instance:
        result = (
            defs()
            .resolve_job_def("list_repro_databases")
            .execute_in_process(
                instance=instance,
                run_config={"ops": {"read_repro_databases": {"config": {"organization_id": ORGANIZATION}}}},
            )
        )
    assert [row["database"] for row in result.output_for_node("read_repro_databases")] == [database.name]
