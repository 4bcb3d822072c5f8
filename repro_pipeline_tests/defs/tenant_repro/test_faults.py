"""Faults on the embedded stack: a server that crashes or a run worker that is killed mid-load, Slack down.

Each shows that nothing is handed off, that what the fault left behind is gone after the next TTL sweep,
and that the partition's next run succeeds. To be sure the fault strikes mid-load, the loads are held
(``held_loads``) until the test releases them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import psycopg
import pytest
import yaml

from repro_pipeline.cli.launch import hand_off_again, materialize_tenant, run_ttl_sweep
from repro_pipeline.cli.main import main
from repro_pipeline.defs.tenant_repro.partitions import ORGANIZATIONS
from repro_pipeline.embedded.stack import Stack, up, wait_for_standby_replay
from repro_pipeline.engine.errors import RequestRefused, StandbyNotReady
from repro_pipeline.engine.repro_databases import lifecycle
from repro_pipeline.engine.verify import checks
from repro_pipeline_tests.conftest import PROJECT_ROOT
from repro_pipeline_tests.defs.run_results import step_failure_messages
from repro_pipeline_tests.defs.tenant_repro.held_loads import held_databases, hold_loads, release_loads
from repro_pipeline_tests.slack_api import ScriptedReply, SlackApi

ORGANIZATION = 451


@dataclass
class HeldRun:
    """A tenant run started in the background, whose load waits at its first DDL statement."""

    stack: Stack
    thread: threading.Thread | None = None
    result: list[dg.ExecuteInProcessResult] = field(default_factory=list)

    def start(self, instance: dg.DagsterInstance) -> str:
        """Starts the run and returns its repro database's name once its load is held."""
        self.thread = threading.Thread(
            target=lambda: self.result.append(materialize_tenant(ORGANIZATION, instance))
        )
        self.thread.start()
        return self.wait_until_held(self.thread.is_alive)

    def wait_until_held(self, running: Callable[[], bool]) -> str:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            held = self._held_database()
            if held is not None:
                return held
            assert running(), "the run ended before its load was held"
            time.sleep(0.1)
        raise AssertionError("the load was never held")

    def release(self) -> None:
        release_loads(self.stack.target_admin_dsn)

    def finish(self) -> dg.ExecuteInProcessResult:
        assert self.thread is not None
        self.thread.join(timeout=300)
        assert not self.thread.is_alive() and self.result, "the run did not end"
        return self.result[0]

    def _held_database(self) -> str | None:
        held = held_databases(self.stack.target_admin_dsn)
        return held[0] if held else None


@pytest.fixture
def held(stack: Stack, slack_environment: None) -> Iterator[HeldRun]:
    hold_loads(stack.target_admin_dsn)
    run = HeldRun(stack)
    try:
        yield run
    finally:
        up(stack.root)  # a server the test crashed is started again
        run.release()


def _crash(data_dir: Path) -> None:
    """Kill a server's postmaster, as a power cut would: its backends exit on their own."""
    os.kill(int((data_dir / "postmaster.pid").read_text().split()[0]), signal.SIGKILL)


def _repro_databases(stack: Stack) -> dict[str, lifecycle.ReproDatabase]:
    with psycopg.connect(stack.target_admin_dsn, autocommit=True) as admin:
        return {database.name: database for database in lifecycle.list_repro_databases(admin)}


def _sweep_then_rerun(stack: Stack, instance: dg.DagsterInstance, slack_api: SlackApi, leftover: str) -> None:
    """The next sweep leaves nothing of the failed run, and the partition's next run is handed off."""
    run_ttl_sweep(instance)
    assert leftover not in _repro_databases(stack)
    before = len(slack_api.messages)
    assert materialize_tenant(ORGANIZATION, instance).success
    assert len(slack_api.messages) == before + 1


def test_a_target_that_crashes_mid_load_fails_the_run_with_the_loads_own_error(
    held: HeldRun, instance: dg.DagsterInstance, stack: Stack, slack_api: SlackApi
) -> None:
    before = len(slack_api.messages)
    database = held.start(instance)
    _crash(stack.target.data_dir)
    result = held.finish()
    assert not result.success
    message = step_failure_messages(result)
    assert "creating the schema (pg_dump's pre-data section) failed" in message  # the load's own error...
    assert f"{database} could not be dropped after the failed load" in message  # ...the cleanup's added
    assert stack.password not in message
    assert len(slack_api.messages) == before
    up(stack.root)
    assert _repro_databases(stack)[database].status == "loading"  # left behind by the crash
    held.release()
    _sweep_then_rerun(stack, instance, slack_api, database)


def test_a_standby_that_crashes_mid_load_leaves_nothing(
    held: HeldRun, instance: dg.DagsterInstance, stack: Stack, slack_api: SlackApi
) -> None:
    before = len(slack_api.messages)
    database = held.start(instance)
    _crash(stack.standby.data_dir)
    held.release()
    result = held.finish()
    assert not result.success
    assert "the standby's connection was lost mid-load" in step_failure_messages(result)
    assert len(slack_api.messages) == before
    assert database not in _repro_databases(stack)  # the failed load dropped it
    up(stack.root)
    _sweep_then_rerun(stack, instance, slack_api, database)


def test_originals_that_cannot_be_read_during_the_load_leave_no_database(
    slack_environment: None,
    instance: dg.DagsterInstance,
    stack: Stack,
    slack_api: SlackApi,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The leak check's originals are read beside the load, in a session of their own: if that read fails,
    the loaded database is dropped, as after a failed load, and nothing is handed off."""

    def cancelled(*_: object) -> None:
        raise StandbyNotReady("the standby cancelled the originals' read", "launch again")

    monkeypatch.setattr(checks, "read_originals", cancelled)
    before, existing = len(slack_api.messages), set(_repro_databases(stack))
    failed = materialize_tenant(ORGANIZATION, instance)
    assert not failed.success
    assert "the standby cancelled the originals' read" in step_failure_messages(failed)
    assert set(_repro_databases(stack)) == existing and len(slack_api.messages) == before
    monkeypatch.undo()
    assert materialize_tenant(ORGANIZATION, instance).success


def _closed_port_url() -> str:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{closed.getsockname()[1]}/api/"


@pytest.mark.parametrize("fault", ["down", "rate-limited", "garbage"])
def test_a_handoff_slack_did_not_take_is_posted_again_by_the_cli(
    fault: str,
    slack_environment: None,
    slack_api: SlackApi,
    stack: Stack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    if fault == "down":
        monkeypatch.setenv("REPRO_SLACK_API_URL", _closed_port_url())
    elif fault == "rate-limited":
        slack_api.answer_next(ScriptedReply(429, b"", (("Retry-After", "3600"),)))
    else:
        slack_api.answer_next(ScriptedReply(200, b"<html>captive portal</html>"))
    before = len(slack_api.messages)
    with dg.DagsterInstance.get() as instance:
        run = materialize_tenant(ORGANIZATION, instance)
        assert not run.success
        (database,) = [
            str(event.step_materialization_data.materialization.metadata["database"].value)
            for event in run.get_asset_materialization_events()
            if event.asset_key == dg.AssetKey("repro_database")
        ]
        assert all(check.passed for check in run.get_asset_check_evaluations())
        failure = step_failure_messages(run)
        assert f"{database} is checked but was not handed off: Slack" in failure
        assert f"then post it again with `repro-pipeline handoff {database}`" in failure
        run_ttl_sweep(instance)
    assert len(slack_api.messages) == before
    assert _repro_databases(stack)[database].status == "loaded"  # checked, so the sweep keeps it

    monkeypatch.setenv("REPRO_SLACK_API_URL", slack_api.base_url)  # Slack is back
    try:
        assert main(["handoff", database]) == 0
        assert f"handed off {database}" in capsys.readouterr().out
        (message,) = slack_api.messages[before:]
        assert f"database `{database}`" in message.text
        assert _repro_databases(stack)[database].status == "ready"
        assert main(["handoff", "repro_org451_00000000"]) == RequestRefused.exit_code
        assert "no repro database 'repro_org451_00000000'" in capsys.readouterr().err
        with dg.DagsterInstance.get() as instance:
            instance.add_dynamic_partitions(ORGANIZATIONS, ["452"])
            other = hand_off_again(452, database, instance)
            assert not other.success
            assert f"no repro database '{database}' of organization 452" in step_failure_messages(other)
    finally:
        with psycopg.connect(stack.target_admin_dsn, autocommit=True) as admin:
            lifecycle.drop_repro_database(admin, database)


def test_replay_paused_before_the_run_is_refused_and_the_run_after_resume_succeeds(
    slack_environment: None, instance: dg.DagsterInstance, stack: Stack, slack_api: SlackApi
) -> None:
    before = len(slack_api.messages)
    existing = set(_repro_databases(stack))
    with psycopg.connect(stack.standby_dsn, autocommit=True) as standby:
        standby.execute("SELECT pg_wal_replay_pause()")
        try:
            refused = materialize_tenant(ORGANIZATION, instance)
            assert not refused.success
            assert "WAL replay is paused" in step_failure_messages(refused)
        finally:
            standby.execute("SELECT pg_wal_replay_resume()")
    assert set(_repro_databases(stack)) == existing and len(slack_api.messages) == before
    assert materialize_tenant(ORGANIZATION, instance).success
    assert len(slack_api.messages) == before + 1


def test_a_killed_launchers_run_is_failed_by_run_monitoring_and_its_database_swept(
    held: HeldRun, stack: Stack, slack_api: SlackApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = yaml.safe_load((PROJECT_ROOT / "dagster_home" / "dagster.yaml").read_text())
    monitoring = settings["run_monitoring"]
    assert monitoring["enabled"] and 0 < monitoring["max_runtime_seconds"] <= 24 * 3600
    settings["run_monitoring"] |= {"max_runtime_seconds": 30, "poll_interval_seconds": 1}
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(settings))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with dg.DagsterInstance.get():
        pass  # its SQLite storage made now: the daemon and the launcher's steps would race to create it
    bin_dir = Path(sys.executable).parent
    with (
        (tmp_path / "daemon.log").open("w") as daemon_log,
        (tmp_path / "launcher.log").open("w") as launcher_log,
    ):
        daemon = subprocess.Popen(
            [bin_dir / "dagster-daemon", "run", "-w", PROJECT_ROOT / "workspace.yaml"],
            cwd=PROJECT_ROOT,
            stdout=daemon_log,
            stderr=subprocess.STDOUT,
        )
        launcher = subprocess.Popen(
            [bin_dir / "repro-pipeline", "materialize", str(ORGANIZATION)],
            stdout=launcher_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            try:
                database = held.wait_until_held(lambda: launcher.poll() is None)
            except AssertionError as failed:
                raise AssertionError((tmp_path / "launcher.log").read_text()[-3000:]) from failed
            os.killpg(launcher.pid, signal.SIGKILL)  # the launcher, whose process runs the steps
            launcher.wait()
            with dg.DagsterInstance.get() as instance:
                (run,) = instance.get_runs()
                deadline = time.monotonic() + 120
                while run.status != dg.DagsterRunStatus.FAILURE and time.monotonic() < deadline:
                    time.sleep(1)
                    run = instance.get_run_by_id(run.run_id) or run
                assert run.status == dg.DagsterRunStatus.FAILURE, (tmp_path / "daemon.log").read_text()[
                    -2000:
                ]
                assert _repro_databases(stack)[database].status == "loading"
                held.release()
                _sweep_then_rerun(stack, instance, slack_api, database)
        finally:
            daemon.terminate()
            daemon.wait(timeout=60)


def test_a_source_row_changed_mid_load_is_checked_as_it_was_copied(
    held: HeldRun,
    instance: dg.DagsterInstance,
    stack: Stack,
    slack_api: SlackApi,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A rule that masks nothing leaks the names; renamed on the source while the load runs, they must still be
    found: the check compares the target with the snapshot the load copied, not with the source as it is now."""
    rules = (PROJECT_ROOT / "config" / "mask-rules.yaml").read_text()
    leaky = tmp_path / "mask-rules.yaml"
    leaky.write_text(
        rules.replace(
            "full_name: { action: fake, provider: full_name }",
            'full_name: { action: regex_mask, pattern: "ZZZZ", replace: "Y" }',
        )
    )
    monkeypatch.setenv("REPRO_MASK_RULES", str(leaky))
    before = len(slack_api.messages)
    with psycopg.connect(stack.primary_dsn, autocommit=True) as primary:
        names = primary.execute(
            "SELECT id, full_name FROM users WHERE organization_id = %s", (ORGANIZATION,)
        ).fetchall()
        database = held.start(instance)
        try:
            primary.execute(
                "UPDATE users SET full_name = 'Renamed Since ' || id WHERE organization_id = %s",
                (ORGANIZATION,),
            )
            wait_for_standby_replay(stack)
            held.release()
            result = held.finish()
        finally:
            with primary.cursor() as cursor:
                cursor.executemany(
                    "UPDATE users SET full_name = %s WHERE id = %s", [(n, i) for i, n in names]
                )
            wait_for_standby_replay(stack)
    assert not result.success
    (leaks,) = [c for c in result.get_asset_check_evaluations() if c.check_name == "no_original_pii"]
    assert not leaks.passed
    assert leaks.metadata["regex_masks_that_masked_nothing"].value == ["public.users.full_name"]
    assert leaks.metadata["leaking_columns"].value["public.users.full_name"] == len(names)
    assert len(slack_api.messages) == before
    assert _repro_databases(stack)[database].status == "failed"  # retired at once, for the sweep
    run_ttl_sweep(instance)
    assert database not in _repro_databases(stack)
