"""Exit codes, help and version: each kind of outcome has its own code, documented in docs/cli.md's table, with
one message and no traceback; every command and option says what it is for."""

from __future__ import annotations

import argparse
import re
import secrets
import subprocess
from importlib.metadata import version
from pathlib import Path

import pytest

from repro_pipeline.cli.main import _parser, main
from repro_pipeline.engine.exit_codes import ExitCode, markdown_table
from repro_pipeline_tests.cli.run_cli import NOWHERE, run_cli, without_servers
from repro_pipeline_tests.conftest import PROJECT_ROOT

EXIT_CODE_TABLE = re.compile(r"<!-- exit-codes:start -->\n(.*?)\n<!-- exit-codes:end -->", re.DOTALL)


def _assert_one_error(run: subprocess.CompletedProcess[str], code: ExitCode, *phrases: str) -> None:
    assert run.returncode == code, run.stderr
    assert "Traceback" not in run.stderr + run.stdout
    assert any(line.startswith(("error: ", "usage: ")) for line in run.stderr.splitlines()), run.stderr
    for phrase in phrases:
        assert phrase in run.stderr


def test_the_markdown_table_is_the_exit_code_enum() -> None:
    found = EXIT_CODE_TABLE.search((PROJECT_ROOT / "docs" / "cli.md").read_text(encoding="utf-8"))
    assert found is not None, "docs/cli.md lost its <!-- exit-codes:start/end --> markers"
    assert found.group(1) == markdown_table(), (
        "docs/cli.md's exit code table drifted from ExitCode: regenerate it"
    )


def test_exit_codes_are_distinct_and_each_has_a_description() -> None:
    assert len({int(code) for code in ExitCode.__members__.values()}) == len(ExitCode.__members__)
    assert all(code.description for code in ExitCode)


def _undocumented(parser: argparse.ArgumentParser, command: str) -> list[str]:
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, subparser in action.choices.items():
                if not helps.get(name):
                    missing.append(f"{command} {name}".strip())
                missing.extend(_undocumented(subparser, f"{command} {name}".strip()))
        elif not action.help or action.help == argparse.SUPPRESS:
            missing.append(f"{command} {'/'.join(action.option_strings) or action.dest}".strip())
    return missing


def test_every_command_and_option_has_a_description() -> None:
    assert _undocumented(_parser(), "") == []


def test_the_help_walk_finds_an_option_without_a_description() -> None:
    parser = _parser()
    parser.add_argument("--undocumented")
    assert _undocumented(parser, "") == ["--undocumented"]


def test_version_is_the_installed_distributions(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"repro-pipeline {version('repro_pipeline')}\n"


def test_usage_mistakes_exit_2() -> None:
    _assert_one_error(run_cli("no-such-command"), ExitCode.USAGE, "invalid choice: 'no-such-command'")
    _assert_one_error(run_cli("materialize", "abc"), ExitCode.USAGE, "'abc' is not a positive integer")


def test_a_bad_config_file_exits_3(tmp_path: Path) -> None:
    rules = tmp_path / "mask-rules.yaml"
    rules.write_text('version: "1.0"\ntables: [not, a, mapping]\n')
    _assert_one_error(run_cli("validate", "--mask-rules", str(rules)), ExitCode.CONFIGURATION, str(rules))


def test_a_missing_salt_exits_4(tmp_path: Path) -> None:
    run = run_cli("plan", "--source", NOWHERE, "--organization", "451", env=without_servers(tmp_path))
    _assert_one_error(run, ExitCode.SECRET, "ANONYMIZATION_SALT is not set")


def test_an_unreachable_source_exits_7(tmp_path: Path) -> None:
    environment = without_servers(tmp_path, ANONYMIZATION_SALT=secrets.token_hex(32))
    run = run_cli("plan", "--source", NOWHERE, "--organization", "451", env=environment)
    _assert_one_error(run, ExitCode.NOT_READY, "127.0.0.1:1")
    assert "nobody@" not in run.stderr


def test_without_dsns_or_a_stack_commands_say_to_run_stack_up_and_exit_7(tmp_path: Path) -> None:
    run = run_cli("list", env=without_servers(tmp_path))
    _assert_one_error(
        run, ExitCode.NOT_READY, "the embedded stack is not set up", "`repro-pipeline stack up`"
    )
    status = run_cli("stack", "status", env=without_servers(tmp_path))
    _assert_one_error(status, ExitCode.NOT_READY, "no stack in", "`repro-pipeline stack up`")


def test_a_failed_sweep_exits_1_with_its_step_failure_and_run_id(tmp_path: Path) -> None:
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    environment = without_servers(tmp_path, REPRO_STANDBY_DSN=NOWHERE, REPRO_TARGET_DSN=NOWHERE)
    run = run_cli("sweep", env=environment)
    _assert_one_error(
        run, ExitCode.RUNTIME, "error: the TTL sweep failed (run ", f" in {tmp_path}):", "127.0.0.1:1"
    )
    assert "Dagster UI" not in run.stderr and "dagster._core" not in run.stderr
