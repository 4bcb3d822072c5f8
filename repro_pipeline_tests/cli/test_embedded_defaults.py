"""With no source or salt given, the engine commands take the embedded stack's standby and demo salt when
the stack is up, and say so without a secret; with the stack down they say to run `repro-pipeline stack up`."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from repro_pipeline.embedded.stack import Stack
from repro_pipeline.embedded.synthetic import SourceSummary
from repro_pipeline.engine.exit_codes import ExitCode
from repro_pipeline_tests.cli.run_cli import run_cli, without_servers


def test_plan_without_source_or_salt_uses_the_embedded_stack_and_says_so(
    stack: Stack, source: SourceSummary, tmp_path: Path
) -> None:
    environment = without_servers(tmp_path, REPRO_STACK_DIR=str(stack.root))
    run = run_cli("plan", "--organization", "451", "--json", env=environment)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["total_rows"] > 0
    salt_file = stack.root / "demo-salt"
    assert f"using the embedded stack's standby at 127.0.0.1:{stack.standby.port}/billing" in run.stderr
    assert (
        f"salt from {salt_file} (the embedded stack's demo salt; ANONYMIZATION_SALT is not set)" in run.stderr
    )
    assert stat.S_IMODE(salt_file.stat().st_mode) == 0o600
    assert salt_file.read_text().strip() not in run.stdout + run.stderr
    assert stack.password not in run.stdout + run.stderr


def test_a_salt_or_source_given_is_used_instead_of_the_stacks(
    stack: Stack, source: SourceSummary, salt: str, tmp_path: Path
) -> None:
    environment = without_servers(tmp_path, REPRO_STACK_DIR=str(stack.root), ANONYMIZATION_SALT=salt)
    run = run_cli("plan", "--organization", "451", env=environment)
    assert run.returncode == 0, run.stderr
    assert "using the embedded stack's standby" in run.stderr and "salt from" not in run.stderr
    given = run_cli("plan", "--source", stack.standby_dsn, "--organization", "451", env=environment)
    assert given.returncode == 0, given.stderr
    assert "using the embedded stack" not in given.stderr


def test_without_a_source_and_the_stack_down_the_engine_commands_name_stack_up(tmp_path: Path) -> None:
    for command in (
        ("plan", "--organization", "451"),
        ("preview",),
        ("suggest-references",),
        ("verify", "--organization", "451", "--target", "postgresql://127.0.0.1:1/x"),
    ):
        run = run_cli(*command, env=without_servers(tmp_path))
        assert run.returncode == ExitCode.NOT_READY, (command, run.stderr)
        assert "no --source is given and REPRO_STANDBY_DSN is not set" in run.stderr, command
        assert "run `repro-pipeline stack up`" in run.stderr and "Traceback" not in run.stderr, command
