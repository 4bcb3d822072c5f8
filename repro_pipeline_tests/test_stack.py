"""The embedded Postgres stack, on real servers: a primary, its streaming hot standby, and a target."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from repro_pipeline.stack import (
    Stack,
    StackError,
    destroy,
    down,
    find_binaries,
    server_statuses,
    status,
    up,
    wait_for_standby_replay,
)
from repro_pipeline.stack.__main__ import main


@pytest.fixture(scope="module")
def stack_root() -> Iterator[Path]:
    # Under /tmp and world-traversable: as root the servers run as 'postgres', which must reach it.
    folder = Path(tempfile.mkdtemp(dir="/tmp", prefix="repro-stack-test-"))
    folder.chmod(0o755)
    try:
        yield folder / "stack"
    finally:
        destroy(folder / "stack")
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def stack(stack_root: Path) -> Stack:
    return up(stack_root)


def query_one(dsn: str, sql: str, params: tuple[Any, ...] = ()) -> Any:
    with psycopg.connect(dsn, autocommit=True) as connection:
        row = connection.execute(sql, params).fetchone()
    assert row is not None
    return row[0]


def execute(dsn: str, sql: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(sql)


def new_table_with_row(stack: Stack) -> str:
    table = f"t_{uuid.uuid4().hex[:12]}"
    execute(stack.primary_dsn, f"create table {table} (id int primary key, note text)")
    execute(stack.primary_dsn, f"insert into {table} values (1, 'written on the primary')")
    return table


def assert_streaming(stack: Stack) -> None:
    assert query_one(stack.primary_dsn, "select pg_is_in_recovery()") is False
    assert query_one(stack.standby_dsn, "select pg_is_in_recovery()") is True
    assert query_one(stack.standby_dsn, "select status from pg_stat_wal_receiver") == "streaming"


def test_up_starts_primary_streaming_standby_and_target(stack: Stack) -> None:
    assert_streaming(stack)
    assert query_one(stack.primary_dsn, "select current_database()") == "billing"
    assert query_one(stack.target_admin_dsn, "select pg_is_in_recovery()") is False
    assert len({server.port for server in stack.servers}) == 3
    assert len({server.data_dir for server in stack.servers}) == 3


def test_password_is_required_and_kept_private(stack: Stack) -> None:
    wrong = stack.primary_dsn.replace(stack.password, "not-the-password")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(wrong).close()
    credentials = stack.root / "credentials"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    assert credentials.stat().st_uid == os.geteuid()
    assert stack.password not in repr(stack)
    assert stack.password not in (stack.root / "stack.json").read_text()


def test_rows_written_on_primary_appear_on_standby(stack: Stack) -> None:
    table = new_table_with_row(stack)
    wait_for_standby_replay(stack)
    assert query_one(stack.standby_dsn, f"select note from {table} where id = 1") == "written on the primary"


def test_standby_refuses_writes(stack: Stack) -> None:
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        execute(stack.standby_dsn, "create table must_fail (id int)")


def test_second_up_reuses_running_servers_quickly(stack: Stack) -> None:
    pids_before = {name: state.pid for name, state in server_statuses(stack).items()}
    started_before = query_one(stack.primary_dsn, "select pg_postmaster_start_time()")
    began = time.monotonic()
    again = up(stack.root)
    elapsed = time.monotonic() - began
    assert elapsed < 2, f"second up took {elapsed:.2f}s"
    assert again == stack
    assert {name: state.pid for name, state in server_statuses(again).items()} == pids_before
    assert None not in pids_before.values()
    assert query_one(again.primary_dsn, "select pg_postmaster_start_time()") == started_before


def test_down_then_up_restarts_with_data_kept(stack: Stack) -> None:
    table = new_table_with_row(stack)
    wait_for_standby_replay(stack)
    down(stack.root)
    down(stack.root)
    assert not any(state.running for state in server_statuses(stack).values())
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(stack.primary_dsn, connect_timeout=2).close()
    restarted = up(stack.root)
    assert restarted == stack
    assert all(state.running for state in server_statuses(restarted).values())
    assert_streaming(restarted)
    assert query_one(restarted.standby_dsn, f"select count(*) from {table}") == 1
    execute(restarted.primary_dsn, f"insert into {table} values (2, 'after restart')")
    wait_for_standby_replay(restarted)
    assert query_one(restarted.standby_dsn, f"select count(*) from {table}") == 2


def test_up_recovers_from_a_crash_and_its_stale_postmaster_pid(stack: Stack) -> None:
    pid_file = stack.primary.data_dir / "postmaster.pid"
    crashed_content = pid_file.read_text()
    os.kill(int(crashed_content.split()[0]), signal.SIGKILL)
    assert_streaming(up(stack.root))
    assert query_one(stack.primary_dsn, "select pg_is_in_recovery()") is False

    # After a crash the PID may have been reused by an unrelated process of the same account.
    down(stack.root)
    owner = stack.primary.data_dir.stat()
    with subprocess.Popen(["sleep", "60"], user=owner.st_uid, group=owner.st_gid) as unrelated:
        try:
            lines = crashed_content.split("\n")
            pid_file.write_text("\n".join([str(unrelated.pid), *lines[1:]]))
            assert not server_statuses(stack)["primary"].running
            assert_streaming(up(stack.root))
            assert unrelated.poll() is None
        finally:
            unrelated.kill()


def test_start_failure_names_server_and_log_but_not_the_password(stack: Stack) -> None:
    down(stack.root)
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", stack.primary.port))
        squatter.listen()
        with pytest.raises(StackError) as failure:
            up(stack.root)
    message = str(failure.value)
    assert message.startswith("primary: `") and "pg_ctl" in message
    assert str(stack.primary.log_file) in message and "could not" in message
    assert stack.password not in message and "\n" not in message
    assert_streaming(up(stack.root))


def test_status_and_cli_print_sourceable_dsns(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    assert status(stack.root) == stack
    assert main(["status", "--dir", str(stack.root)]) == 0
    output = capsys.readouterr().out
    variables = dict(line.split("=", 1) for line in output.splitlines() if not line.startswith("#"))
    assert variables == {
        "REPRO_SOURCE_PRIMARY_DSN": stack.primary_dsn,
        "REPRO_STANDBY_DSN": stack.standby_dsn,
        "REPRO_TARGET_DSN": stack.target_admin_dsn,
    }
    assert f"PostgreSQL {stack.binaries.major_version}" in output
    assert "# standby: running" in output


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--dir", str(tmp_path / "nothing-here")]) == 1
    error = capsys.readouterr().err
    assert error.startswith("error: no stack in") and error.count("\n") == 1
    assert status(tmp_path / "nothing-here") is None


def test_a_folder_holding_other_files_is_refused(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(StackError, match="already holds other files"):
        up(tmp_path)
    with pytest.raises(StackError, match="does not look like a stack folder"):
        destroy(tmp_path)
    assert (tmp_path / "precious.txt").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the stack to an unprivileged account")
def test_root_refuses_a_folder_the_server_account_cannot_reach() -> None:
    private = Path(tempfile.mkdtemp(dir="/tmp", prefix="repro-stack-private-"))  # mode 0700, owned by root
    try:
        with pytest.raises(StackError, match=r"not reachable by the '.*' account.*REPRO_STACK_DIR"):
            up(private / "stack")
        assert not (private / "stack").exists()
    finally:
        shutil.rmtree(private)


def test_pgserver_binaries_can_be_forced() -> None:
    binaries = find_binaries({"REPRO_PG_BINARIES": "pgserver"})
    assert (binaries.origin, binaries.major_version) == ("pgserver", 16)
    assert binaries.bin_dir.parts[-3:] == ("pgserver", "pginstall", "bin")


def test_system_binaries_and_an_explicit_bin_dir_can_be_chosen() -> None:
    try:
        system = find_binaries({"REPRO_PG_BINARIES": "system", "PATH": os.environ.get("PATH", "")})
    except StackError as error:
        pytest.skip(f"no system PostgreSQL here: {error}")
    assert system.origin == "system"
    explicit = find_binaries({"REPRO_PG_BIN": str(system.bin_dir)})
    assert (explicit.origin, explicit.bin_dir) == ("env", system.bin_dir)
    assert explicit.major_version == system.major_version


def test_bad_binary_choices_are_explained(tmp_path: Path) -> None:
    with pytest.raises(StackError, match=r"REPRO_PG_BIN=.* lacks initdb, pg_ctl, postgres, pg_basebackup"):
        find_binaries({"REPRO_PG_BIN": str(tmp_path)})
    with pytest.raises(StackError, match="is not one of: auto, system, pgserver"):
        find_binaries({"REPRO_PG_BINARIES": "docker"})


@pytest.mark.pgserver
def test_stack_on_pgserver_wheel_binaries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPRO_PG_BINARIES", "pgserver")
    monkeypatch.delenv("REPRO_PG_BIN", raising=False)
    folder = Path(tempfile.mkdtemp(dir="/tmp", prefix="repro-stack-pgserver-"))
    folder.chmod(0o755)
    root = folder / "stack"
    try:
        stack = up(root)
        assert (stack.binaries.origin, stack.binaries.major_version) == ("pgserver", 16)
        assert query_one(stack.primary_dsn, "show server_version_num").startswith("16")
        assert_streaming(stack)
        table = new_table_with_row(stack)
        wait_for_standby_replay(stack)
        assert query_one(stack.standby_dsn, f"select count(*) from {table}") == 1
        destroy(root)
        assert not root.exists()
        destroy(root)
    finally:
        destroy(root)
        shutil.rmtree(folder, ignore_errors=True)
