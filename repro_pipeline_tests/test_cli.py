"""The command line: user mistakes get one clear message and an exit code, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from repro_pipeline_tests.conftest import FIXTURES, PROJECT_ROOT


def _cli(*arguments: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "repro_pipeline.cli", *arguments],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env=env,
        timeout=120,
    )


@pytest.mark.parametrize("key", ["abc", "-5", "0451", "451;DROP TABLE users"])
def test_materialize_refuses_a_bad_organization_id(key: str) -> None:
    run = _cli("materialize", key)
    assert run.returncode == 2
    assert "not a positive integer" in run.stderr
    assert "Traceback" not in run.stderr + run.stdout


def test_validate_accepts_the_guide_files_unchanged() -> None:
    guide = FIXTURES / "guide"
    run = _cli(
        "validate",
        "--mask-rules",
        str(guide / "mask-rules.yaml"),
        "--commercial-extensions",
        str(guide / "commercial-extensions.yaml"),
    )
    assert run.returncode == 0, run.stderr
    assert "valid" in run.stdout


def test_validate_names_the_file_line_and_key_at_fault(tmp_path: Path) -> None:
    rules = (PROJECT_ROOT / "config" / "mask-rules.yaml").read_text()
    bad = tmp_path / "mask-rules.yaml"
    bad.write_text(rules.replace("action: hash", "action: hashh"))
    run = _cli("validate", "--mask-rules", str(bad))
    assert run.returncode == 3
    line = next(number for number, text in enumerate(bad.read_text().splitlines(), 1) if "hashh" in text)
    assert f"{bad}:{line}: tables.public.payment_methods.columns.provider_token" in run.stderr
    assert "unknown action 'hashh'" in run.stderr
    assert "Traceback" not in run.stderr
