"""docs/policy-gate.md's workflow, its commands run as written on a checkout of the project, against the
embedded stack's standby and the shipped config files."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from repro_pipeline.embedded.stack import Stack
from repro_pipeline.embedded.synthetic import SourceSummary
from repro_pipeline_tests.conftest import PROJECT_ROOT

WORKFLOW_MARKER = "# .github/workflows/check-masking-policy.yml"


def _workflow() -> dict[str, Any]:
    page = (PROJECT_ROOT / "docs" / "policy-gate.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", page, flags=re.DOTALL)
    [workflow] = [block for block in blocks if block.startswith(WORKFLOW_MARKER)]
    loaded: dict[str, Any] = yaml.safe_load(workflow)
    return loaded


def _policy_diff_step() -> dict[str, Any]:
    [step] = [
        step for step in _workflow()["jobs"]["policy-diff"]["steps"] if "Policy diff" in step.get("name", "")
    ]
    return step


def _run_policy_diff_step(checkout: Path, stack: Stack, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    runner_temp = tmp_path / "runner-temp"
    runner_temp.mkdir()
    environment = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "RUNNER_TEMP": str(runner_temp),
        "DR_STANDBY_URL": stack.standby_dsn,
    }
    return subprocess.run(
        ["bash", "-e", "-c", _policy_diff_step()["run"]],
        cwd=checkout,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_workflow_runs_the_strict_gate_on_the_shipped_config(
    stack: Stack, source: SourceSummary, tmp_path: Path
) -> None:
    checkout = tmp_path / "checkout"
    shutil.copytree(PROJECT_ROOT / "config", checkout / "config")
    shipped = (checkout / "config" / "mask-rules.yaml").read_text(encoding="utf-8")
    run = _run_policy_diff_step(checkout, stack, tmp_path)
    diff_file = checkout / "policy-diff.json"
    assert diff_file.exists(), f"exit {run.returncode}\n{run.stdout}\n{run.stderr}"
    diff = json.loads(diff_file.read_text(encoding="utf-8"))
    assert diff["strict_autodetect"] is True, run.stderr
    # the gate's own exit code is the CLI's (its table is in docs/cli.md); here: it fails exactly when it must
    assert (run.returncode == 0) == diff["strict_passed"], run.stderr
    assert "Traceback" not in run.stderr
    assert (checkout / "config" / "mask-rules.yaml").read_text(encoding="utf-8") == shipped


def test_the_workflow_fails_on_a_pii_column_without_a_rule_and_still_writes_the_diff(
    stack: Stack, source: SourceSummary, tmp_path: Path
) -> None:
    checkout = tmp_path / "checkout"
    shutil.copytree(PROJECT_ROOT / "config", checkout / "config")
    rules = checkout / "config" / "mask-rules.yaml"
    shipped = rules.read_text(encoding="utf-8")
    without_email = "".join(
        line for line in shipped.splitlines(keepends=True) if not line.strip().startswith("email:")
    )
    assert without_email != shipped
    rules.write_text(without_email, encoding="utf-8")
    run = _run_policy_diff_step(checkout, stack, tmp_path)
    diff = json.loads((checkout / "policy-diff.json").read_text(encoding="utf-8"))
    assert diff["strict_autodetect"] is True
    uncovered = {(entry["table"], entry["column"]) for entry in diff["uncovered_strict"]}
    assert ("public.users", "email") in uncovered
    assert run.returncode != 0
    assert "Traceback" not in run.stderr


def test_the_workflow_uploads_the_diff_even_when_the_gate_fails() -> None:
    [upload] = [
        step
        for step in _workflow()["jobs"]["policy-diff"]["steps"]
        if "upload-artifact" in step.get("uses", "")
    ]
    assert upload["if"] == "always()"
    assert upload["with"]["path"] == "policy-diff.json"
