"""``repro-pipeline`` as a user runs it: a separate process, its output captured, in the project's folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from repro_pipeline_tests.conftest import PROJECT_ROOT

NOWHERE = "postgresql://nobody@127.0.0.1:1/none"  # nothing listens on port 1


def run_cli(*arguments: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "repro_pipeline.cli", *arguments],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env=env,
        timeout=120,
    )


def without_servers(tmp_path: Path, **extra: str) -> dict[str, str]:
    """An environment with no DSN or salt set and the embedded stack's folder pointing at an empty one."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in {"REPRO_STANDBY_DSN", "REPRO_TARGET_DSN", "ANONYMIZATION_SALT"}
    }
    return {
        **environment,
        "REPRO_STACK_DIR": str(tmp_path / "no-stack"),
        "DAGSTER_HOME": str(tmp_path),
        **extra,
    }
