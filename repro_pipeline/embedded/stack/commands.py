"""Running PostgreSQL programs as the server account, turning failures into one-line ``StackError``s."""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from repro_pipeline.embedded.stack.accounts import ServerUser
from repro_pipeline.embedded.stack.errors import StackError, log_tail, one_line, redact

DEFAULT_TIMEOUT_SECONDS = 120.0


@dataclass(frozen=True)
class ToolRunner:
    """Runs programs as ``user`` from ``workdir``; ``secret`` is masked in every error message."""

    user: ServerUser
    workdir: Path
    secret: str = field(default="", repr=False)

    def run(
        self,
        args: Sequence[str],
        *,
        server: str,
        log_file: Path | None = None,
        extra_env: Mapping[str, str] | None = None,
        check: bool = True,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> subprocess.CompletedProcess[str]:
        command = list(args)
        try:
            return subprocess.run(
                command,
                check=check,
                capture_output=True,
                text=True,
                cwd=self.workdir,
                env=self._environment(extra_env),
                timeout=timeout,
                stdin=subprocess.DEVNULL,
                user=self.user.uid if self.user.switch else None,
                group=self.user.gid if self.user.switch else None,
                extra_groups=[] if self.user.switch else None,
            )
        except subprocess.CalledProcessError as error:
            outcome = f"exited with status {error.returncode}: {one_line(error.stderr or error.stdout)}"
            raise StackError(self._failure(command, server, log_file, outcome)) from error
        except subprocess.TimeoutExpired as error:
            raise StackError(
                self._failure(command, server, log_file, f"timed out after {timeout:g}s")
            ) from error
        except OSError as error:
            raise StackError(self._failure(command, server, log_file, f"could not run: {error}")) from error

    def _environment(self, extra_env: Mapping[str, str] | None) -> dict[str, str]:
        # Inherited PG* variables (PGDATA, PGPORT, PGPASSWORD...) would silently change what the tools do.
        env = {name: value for name, value in os.environ.items() if not name.startswith("PG")}
        env["LC_ALL"] = "C"
        if self.user.switch:
            env.update(HOME=str(self.workdir), USER=self.user.name, LOGNAME=self.user.name)
        env.update(extra_env or {})
        return env

    def _failure(self, command: list[str], server: str, log_file: Path | None, outcome: str) -> str:
        message = f"{server}: `{shlex.join(command)}` (as {self.user.name}) {outcome}"
        if log_file is not None:
            tail = log_tail(log_file)
            message += f"; see {log_file}" + (f" (last lines: {tail})" if tail else "")
        return redact(message, self.secret)
