"""The production instance of ``deploy/``, on the embedded stack: run, event log and schedule storage in a
Postgres database on the target server, the code location served over gRPC (``dagster code-server
start``), a real ``dagster-daemon`` dequeuing the runs ``dagster job launch`` puts in the queue."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import psycopg
import pytest
import yaml
from psycopg import sql

from repro_pipeline.defs.tenant_repro.jobs import READS_STANDBY_TAG
from repro_pipeline.defs.tenant_repro.partitions import ORGANIZATIONS
from repro_pipeline.embedded.stack import Stack
from repro_pipeline.embedded.stack.model import HOST, SUPERUSER
from repro_pipeline.engine.dsn import with_database
from repro_pipeline_tests.conftest import PROJECT_ROOT
from repro_pipeline_tests.defs.tenant_repro.held_loads import held_databases, hold_loads, release_loads
from repro_pipeline_tests.slack_api import SlackApi

DEPLOY = PROJECT_ROOT / "deploy"
STORAGE_DATABASE = "dagster_storage"
BIN = Path(sys.executable).parent
IN_PROGRESS = {dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED}
# The daemon's pass over the queue every second, not every 5 s (the default, deploy/dagster.yaml's), to
# keep the test short.
DEQUEUE_INTERVAL_SECONDS = 1
FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


@dataclass(frozen=True)
class Deployment:
    home: Path
    storage_dsn: str


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _wait_for(condition: Callable[[], bool], what: str, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} never happened; {log.name}:\n{log.read_text()[-3000:]}")
        time.sleep(0.25)


@pytest.fixture(scope="module")
def deployment(
    stack: Stack, slack_environment: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """deploy/dagster.yaml and deploy/workspace.yaml as they are, given the stack's server through the
    variables a deployment sets; a code location server and a daemon running on them."""
    with psycopg.connect(stack.target_admin_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(STORAGE_DATABASE)))
    home = tmp_path_factory.mktemp("dagster_home")
    settings = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    settings["run_queue"] = {"dequeue_interval_seconds": DEQUEUE_INTERVAL_SECONDS}
    (home / "dagster.yaml").write_text(yaml.safe_dump(settings))
    code_server_port = _free_port()
    logs = home / "logs"
    logs.mkdir()
    processes: list[subprocess.Popen[bytes]] = []
    with pytest.MonkeyPatch.context() as environment:
        for name, value in {
            "DAGSTER_HOME": str(home),
            "DAGSTER_PG_HOST": HOST,
            "DAGSTER_PG_PORT": str(stack.target.port),
            "DAGSTER_PG_USER": SUPERUSER,
            "DAGSTER_PG_PASSWORD": stack.password,
            "DAGSTER_PG_DB": STORAGE_DATABASE,
            "REPRO_CODE_SERVER_HOST": HOST,
            "REPRO_CODE_SERVER_PORT": str(code_server_port),
        }.items():
            environment.setenv(name, value)
        with dg.DagsterInstance.get():
            pass  # the storage's tables made now, before the processes below race to make them
        try:
            processes.append(
                _start(
                    [
                        *(BIN / "dagster", "code-server", "start", "-m", "repro_pipeline.definitions"),
                        *("-h", HOST, "-p", str(code_server_port), "--location-name", "repro_pipeline"),
                    ],
                    logs / "code-server.log",
                )
            )
            health: list[str | Path] = [
                BIN / "dagster",
                "api",
                "grpc-health-check",
                "-p",
                str(code_server_port),
            ]
            _wait_for(
                lambda: subprocess.run(health, capture_output=True).returncode == 0,
                "the code location server serving",
                120,
                logs / "code-server.log",
            )
            processes.append(
                _start([BIN / "dagster-daemon", "run", "-w", DEPLOY / "workspace.yaml"], logs / "daemon.log")
            )
            yield Deployment(home, with_database(stack.target_admin_dsn, STORAGE_DATABASE))
        finally:
            for process in reversed(processes):
                _stop(process)
            with psycopg.connect(stack.target_admin_dsn, autocommit=True) as admin:
                admin.execute(
                    sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(STORAGE_DATABASE))
                )


def _start(command: list[str | Path], log: Path) -> subprocess.Popen[bytes]:
    """In a session of its own, so that stopping it stops what it started (the code server's gRPC child)."""
    with log.open("w") as output:
        return subprocess.Popen(
            command, cwd=PROJECT_ROOT, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to its session; SIGKILL when it has not ended within 30 s (a code server busy shutting down
    its gRPC child has been seen to take longer than 60 s on a loaded machine)."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def _launch(*organization_ids: int) -> list[str]:
    """Queue one tenant run per organization, at once, as an operator would from a shell (``dagster job
    launch``); their run ids."""
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions(ORGANIZATIONS, [str(key) for key in organization_ids])
    run_ids = [str(uuid.uuid4()) for _ in organization_ids]
    launches = [
        subprocess.Popen(
            [
                *(BIN / "dagster", "job", "launch", "-w", DEPLOY / "workspace.yaml", "-j", "tenant_repro"),
                *("--tags", json.dumps({"dagster/partition": str(organization_id)}), "--run-id", run_id),
            ],
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for organization_id, run_id in zip(organization_ids, run_ids, strict=True)
    ]
    for launch in launches:
        output, _ = launch.communicate(timeout=120)
        assert launch.returncode == 0, output
    return run_ids


def _statuses(run_ids: list[str]) -> dict[str, dg.DagsterRunStatus]:
    with dg.DagsterInstance.get() as instance:
        return {
            record.dagster_run.run_id: record.dagster_run.status
            for record in instance.get_run_records(dg.RunsFilter(run_ids=run_ids))
        }


def test_the_deploy_instance_has_the_run_queue_retries_and_monitoring_of_the_local_one() -> None:
    local = yaml.safe_load((PROJECT_ROOT / "dagster_home" / "dagster.yaml").read_text())
    production = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    for section in ("concurrency", "run_retries", "run_monitoring"):
        assert production[section] == local[section], section
    assert {"key": READS_STANDBY_TAG, "value": "true", "limit": 2} in local["concurrency"]["runs"][
        "tag_concurrency_limits"
    ]


def test_a_queued_run_is_dequeued_by_the_daemon_and_stored_in_postgres(
    deployment: Deployment, slack_api: SlackApi
) -> None:
    before = len(slack_api.messages)
    (run_id,) = _launch(451)
    daemon_log = deployment.home / "logs" / "daemon.log"
    _wait_for(
        lambda: _statuses([run_id])[run_id] in FINISHED,
        "the run finishing",
        180,
        daemon_log,
    )
    with dg.DagsterInstance.get() as instance:
        assert isinstance(instance.run_coordinator, dg.QueuedRunCoordinator)
        run = instance.get_run_by_id(run_id)
        assert run is not None and run.status == dg.DagsterRunStatus.SUCCESS, daemon_log.read_text()[-3000:]
        assert run.tags[READS_STANDBY_TAG] == "true" and run.tags["dagster/partition"] == "451"
        events = {
            record.event_log_entry.dagster_event_type
            for record in instance.get_records_for_run(run_id).records
        }
    assert {dg.DagsterEventType.RUN_ENQUEUED, dg.DagsterEventType.RUN_STARTING} <= events
    with psycopg.connect(deployment.storage_dsn) as storage:
        stored = storage.execute("SELECT status FROM runs WHERE run_id = %s", (run_id,)).fetchone()
    assert stored == ("SUCCESS",)
    assert len(slack_api.messages) == before + 1  # handed off


def test_the_queue_holds_a_second_run_of_an_organization_and_a_third_reader_of_the_standby(
    deployment: Deployment, stack: Stack
) -> None:
    """While loads are held: two runs for 451, then runs for 452 and 453. One 451 waits for the other; one of
    452 and 453 starts while that 451, queued before it, waits (one run per organization); the last waits
    while two runs are in progress, of four allowed (two readers of the standby). Released, all four succeed,
    never more than two at once, never two of one organization."""
    daemon_log = deployment.home / "logs" / "daemon.log"
    samples: list[dict[str, dg.DagsterRunStatus]] = []
    hold_loads(stack.target_admin_dsn)
    try:
        organization_of = dict.fromkeys(_launch(451, 451), 451)
        organization_of |= dict(zip(_launch(452, 453), (452, 453), strict=True))

        def held_two() -> bool:
            samples.append(_statuses(list(organization_of)))
            return len(held_databases(stack.target_admin_dsn)) == 2

        _wait_for(held_two, "two loads held", 120, daemon_log)
        time.sleep(3 * DEQUEUE_INTERVAL_SECONDS)  # the daemon's passes over the queue
        statuses = _statuses(list(organization_of))
        samples.append(statuses)
        (first, second, *others) = sorted(
            organization_of, key=lambda run_id: (organization_of[run_id], statuses[run_id] not in IN_PROGRESS)
        )
        (started,) = [run_id for run_id in others if statuses[run_id] in IN_PROGRESS]
        (waiting,) = set(others) - {started}
        assert statuses[first] in IN_PROGRESS
        assert statuses[second] == statuses[waiting] == dg.DagsterRunStatus.QUEUED
    finally:
        release_loads(stack.target_admin_dsn)

    def finished() -> bool:
        samples.append(_statuses(list(organization_of)))
        return set(samples[-1].values()) <= FINISHED

    _wait_for(finished, "all four runs finishing", 240, daemon_log)
    assert set(samples[-1].values()) == {dg.DagsterRunStatus.SUCCESS}, daemon_log.read_text()[-3000:]
    for statuses in samples:
        running = [organization_of[run_id] for run_id, status in statuses.items() if status in IN_PROGRESS]
        assert len(running) <= 2 and len(set(running)) == len(running), statuses
    with dg.DagsterInstance.get() as instance:
        records = {
            record.dagster_run.run_id: record
            for record in instance.get_run_records(dg.RunsFilter(run_ids=list(organization_of)))
        }
    first_end, second_start = records[first].end_time, records[second].start_time
    assert first_end is not None and second_start is not None and second_start >= first_end
