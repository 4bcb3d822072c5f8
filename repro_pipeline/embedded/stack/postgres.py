"""Driving one PostgreSQL server with its command-line tools: initdb, configuration, pg_ctl, pg_basebackup."""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from repro_pipeline.embedded.stack.binaries import PgBinaries
from repro_pipeline.embedded.stack.commands import ToolRunner
from repro_pipeline.embedded.stack.errors import StackError, log_tail
from repro_pipeline.embedded.stack.model import HOST, SUPERUSER, Server, ServerStatus

START_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 60
STACK_CONF = "repro_stack.conf"
INCLUDE_LINE = f"include = '{STACK_CONF}'"
CRASH_LEFTOVER_SIGNS = ("already exists", "is still in use")
CRASH_LEFTOVER_WAIT_SECONDS = 15
RETRY_SECONDS = 0.3
PG_CTL_NOT_RUNNING = 3
PG_CTL_NO_DATA_DIR = 4

PG_HBA = f"""\
# Written by repro_pipeline.embedded.stack; rewritten at every start.
local all         all                 trust
host  all         all   {HOST}/32 scram-sha-256
host  replication all   {HOST}/32 scram-sha-256
"""

# Throwaway local data: durability is traded for start-up speed. synchronous_commit stays on because
# wait_for_standby_replay compares against pg_current_wal_lsn(), which must already include every commit
# (with fsync=off a synchronous commit costs only a write()).
COMMON_SETTINGS = {
    "listen_addresses": f"'{HOST}'",
    "fsync": "off",
    "full_page_writes": "off",
    "shared_buffers": "32MB",
}
ROLE_SETTINGS = {
    "primary": {"wal_level": "replica", "max_wal_senders": "10", "wal_keep_size": "256MB"},
    # Feedback keeps the primary from pruning rows a long repro read still sees, so replay is not held
    # back (and the read not cancelled) by recovery conflicts; real DR standbys want the same.
    "standby": {"hot_standby": "on", "hot_standby_feedback": "on"},
    "target": {},
}


@dataclass(frozen=True)
class ServerControl:
    """Runs one stack's PostgreSQL tools; its servers put their Unix sockets in ``socket_dir``."""

    binaries: PgBinaries
    runner: ToolRunner
    socket_dir: Path

    def initdb(self, server: Server, password_file: Path) -> None:
        self.runner.run(
            [
                self.binaries.tool("initdb"),
                f"--pgdata={server.data_dir}",
                f"--username={SUPERUSER}",
                f"--pwfile={password_file}",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            server=server.name,
        )

    def base_backup(self, source: Server, standby: Server, password: str) -> None:
        """Clone ``source`` into ``standby``'s data dir, ready to stream from it (primary_conninfo)."""
        self.runner.run(
            [
                self.binaries.tool("pg_basebackup"),
                f"--pgdata={standby.data_dir}",
                "--write-recovery-conf",
                "--wal-method=stream",
                "--checkpoint=fast",
                "--no-sync",
                f"--host={HOST}",
                f"--port={source.port}",
                f"--username={SUPERUSER}",
                "--no-password",
            ],
            server=standby.name,
            log_file=source.log_file,
            # In the environment, not the command line, so that `ps` never shows it.
            extra_env={"PGPASSWORD": password},
        )

    def configure(self, server: Server) -> None:
        """(Re)write the settings this module owns; the server's role decides the replication ones."""
        settings = {
            **COMMON_SETTINGS,
            "port": str(server.port),
            "unix_socket_directories": _quoted(str(self.socket_dir)),
            **ROLE_SETTINGS[server.name],
        }
        conf = "".join(f"{name} = {value}\n" for name, value in settings.items())
        self._write(
            server.data_dir / STACK_CONF,
            "# Written by repro_pipeline.embedded.stack; rewritten at every start.\n" + conf,
        )
        self._write(server.data_dir / "pg_hba.conf", PG_HBA)
        self._include_stack_conf(server.data_dir / "postgresql.conf")

    def start(self, server: Server) -> None:
        """Start a stopped server with the current settings and wait until it is up."""
        self.configure(server)
        self._remove_pid_file_of_other_process(server)
        deadline = time.monotonic() + CRASH_LEFTOVER_WAIT_SECONDS
        while True:
            try:
                self._pg_ctl_start(server)
                return
            except StackError:
                if time.monotonic() > deadline or not _crashed_server_lingers(server.log_file):
                    raise
            time.sleep(RETRY_SECONDS)

    def _pg_ctl_start(self, server: Server) -> None:
        self.runner.run(
            [
                self.binaries.tool("pg_ctl"),
                "start",
                f"--pgdata={server.data_dir}",
                f"--log={server.log_file}",
                "--wait",
                f"--timeout={START_TIMEOUT_SECONDS}",
                "--silent",
            ],
            server=server.name,
            log_file=server.log_file,
            timeout=START_TIMEOUT_SECONDS + 10,
        )

    def stop(self, server: Server, mode: str = "fast") -> None:
        self.runner.run(
            [
                self.binaries.tool("pg_ctl"),
                "stop",
                f"--pgdata={server.data_dir}",
                f"--mode={mode}",
                "--wait",
                f"--timeout={STOP_TIMEOUT_SECONDS}",
                "--silent",
            ],
            server=server.name,
            log_file=server.log_file,
            timeout=STOP_TIMEOUT_SECONDS + 10,
        )

    def status(self, server: Server) -> ServerStatus:
        if not server.data_dir.is_dir():
            return ServerStatus(running=False)
        result = self.runner.run(
            [self.binaries.tool("pg_ctl"), "status", f"--pgdata={server.data_dir}"],
            server=server.name,
            log_file=server.log_file,
            check=False,
        )
        if result.returncode in (PG_CTL_NOT_RUNNING, PG_CTL_NO_DATA_DIR):
            return ServerStatus(running=False)
        match = re.search(r"PID: (\d+)", result.stdout)
        if result.returncode != 0 or match is None:
            raise StackError(
                f"{server.name}: `pg_ctl status` on {server.data_dir} exited with status "
                f"{result.returncode}; see {server.log_file}"
            )
        pid = int(match.group(1))
        if not _is_postmaster_of(pid, server.data_dir):
            return ServerStatus(running=False)
        return ServerStatus(running=True, pid=pid)

    def _remove_pid_file_of_other_process(self, server: Server) -> None:
        """After a crash the PID in postmaster.pid may now belong to an unrelated live process of the same
        account; pg_ctl and postgres would both take the server for running. Dead PIDs are left to postgres,
        which also checks that no orphaned backend still uses the old shared memory."""
        pid_file = server.data_dir / "postmaster.pid"
        pid = _pid_in(pid_file)
        if pid is not None and _process_exists(pid) and not _is_postmaster_of(pid, server.data_dir):
            pid_file.unlink()

    def _write(self, path: Path, text: str) -> None:
        path.write_text(text)
        self.runner.user.give(path)

    def _include_stack_conf(self, postgresql_conf: Path) -> None:
        text = postgresql_conf.read_text()
        if INCLUDE_LINE not in text.splitlines():
            self._write(postgresql_conf, text.rstrip("\n") + f"\n\n{INCLUDE_LINE}\n")


def _crashed_server_lingers(log_file: Path) -> bool:
    """Right after a crash the dead postmaster (until reaped) or its orphaned backends keep the lock files
    and shared memory busy for a moment; postgres refuses to start until they are gone."""
    return any(sign in log_tail(log_file, max_lines=5) for sign in CRASH_LEFTOVER_SIGNS)


def _quoted(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _pid_in(pid_file: Path) -> int | None:
    try:
        first_line = pid_file.read_text().split("\n", 1)[0].strip()
    except OSError:
        return None
    return int(first_line) if first_line.isdigit() else None


def _process_exists(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists() if Path("/proc/self").exists() else True


def _is_postmaster_of(pid: int, data_dir: Path) -> bool:
    """Whether process ``pid`` is a postgres started on ``data_dir`` (pg_ctl passes it as ``-D <dir>``).

    Unknowable without /proc or when its command line is unreadable: then trust pg_ctl and say yes.
    """
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except FileNotFoundError:
        return not Path("/proc/self").exists()
    except OSError:
        return True
    return os.fsencode(str(data_dir)) in argv
