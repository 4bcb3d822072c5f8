"""The engine without Dagster: closure and masked load on the real standby, straight into a target database."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from repro_pipeline.engine.build import SubsetPlan, load_repro, open_source_snapshot, plan_subset
from repro_pipeline.engine.config import load_config
from repro_pipeline.engine.dsn import with_database
from repro_pipeline.engine.errors import ClosureError, ConfigError
from repro_pipeline.engine.secrets import Secret
from repro_pipeline.stack import Stack
from repro_pipeline.synthetic import SourceSummary
from repro_pipeline_tests.conftest import FIXTURES, PROJECT_ROOT

GUIDE = FIXTURES / "guide"
CONFIG = PROJECT_ROOT / "config"


def _plan(stack: Stack, directory: Path, salt: str, organization_id: int) -> SubsetPlan:
    config = load_config(directory / "mask-rules.yaml", directory / "commercial-extensions.yaml")
    with open_source_snapshot(stack.standby_dsn) as snapshot:
        return plan_subset(snapshot, config, Secret(salt), organization_id)


@pytest.fixture
def build_into(stack: Stack, source: SourceSummary) -> Iterator[Any]:
    """Builds a repro database with the engine alone; drops every database it made afterwards."""
    made: list[str] = []

    def build(directory: Path, salt: str, organization_id: int = 451) -> str:
        name = f"engine_test_{secrets.token_hex(4)}"
        with psycopg.connect(stack.target_admin_dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        made.append(name)
        config = load_config(directory / "mask-rules.yaml", directory / "commercial-extensions.yaml")
        target_dsn = with_database(stack.target_admin_dsn, name)
        with open_source_snapshot(stack.standby_dsn) as snapshot:
            plan = plan_subset(snapshot, config, Secret(salt), organization_id)
            load_repro(snapshot, target_dsn, plan, run_id=name, started_at=datetime.now(UTC), batch_size=500)
        return target_dsn

    yield build
    with psycopg.connect(stack.target_admin_dsn, autocommit=True) as admin:
        for name in made:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def _rows(dsn: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query).fetchall()


MASKED = (
    "SELECT u.id, u.email, u.full_name, pm.provider_token FROM users u "
    "LEFT JOIN payment_methods pm ON pm.user_id = u.id ORDER BY u.id, pm.id"
)


def test_guide_files_unchanged_give_the_same_repro_as_the_parameterized_config(build_into: Any) -> None:
    salt = secrets.token_hex(32)
    guide_dsn = build_into(GUIDE, salt)
    ours_dsn = build_into(CONFIG, salt)
    assert _rows(guide_dsn, MASKED) == _rows(ours_dsn, MASKED)
    assert _rows(guide_dsn, "SELECT count(*) FROM audit_events") == _rows(
        ours_dsn, "SELECT count(*) FROM audit_events"
    )


def test_a_different_salt_gives_different_masked_values(build_into: Any) -> None:
    first = _rows(build_into(CONFIG, secrets.token_hex(32)), MASKED)
    second = _rows(build_into(CONFIG, secrets.token_hex(32)), MASKED)
    assert [row[0] for row in first] == [row[0] for row in second]
    for before, after in zip(first, second, strict=True):
        assert before[1:] != after[1:]


def test_small_batches_load_the_same_rows_as_one_batch(build_into: Any, stack: Stack) -> None:
    dsn = build_into(CONFIG, secrets.token_hex(32))
    with psycopg.connect(dsn) as conn:
        loaded = dict(conn.execute("SELECT table_name, loaded_rows FROM _repro_pipeline.tables").fetchall())
        closure = dict(conn.execute("SELECT table_name, closure_rows FROM _repro_pipeline.tables").fetchall())
    assert loaded == closure
    assert loaded["public.invoice_line_items"] > 500


def test_identity_sequences_continue_after_the_loaded_rows(build_into: Any) -> None:
    dsn = build_into(CONFIG, secrets.token_hex(32))
    with psycopg.connect(dsn) as conn:
        largest = conn.execute("SELECT max(id) FROM invoices").fetchone()
        new_id = conn.execute(
            "INSERT INTO invoices (subscription_id, issued_at, total_cents) "
            "SELECT id, now(), 1 FROM subscriptions LIMIT 1 RETURNING id"
        ).fetchone()
        conn.rollback()
    assert largest is not None and new_id is not None
    assert new_id[0] > largest[0]


def test_guide_literal_config_refuses_another_organization(stack: Stack, source: SourceSummary) -> None:
    with pytest.raises(ConfigError, match="would copy organization 451"):
        _plan(stack, GUIDE, secrets.token_hex(32), 452)


def test_an_organization_that_does_not_exist_is_an_explicit_error(
    stack: Stack, source: SourceSummary
) -> None:
    with pytest.raises(ClosureError, match=r"matched no rows|no root predicate matched any row"):
        _plan(stack, CONFIG, secrets.token_hex(32), 999_999)


def test_a_broken_predicate_names_its_file_and_line(
    stack: Stack, source: SourceSummary, tmp_path: Path
) -> None:
    shutil.copy(CONFIG / "mask-rules.yaml", tmp_path / "mask-rules.yaml")
    text = (CONFIG / "commercial-extensions.yaml").read_text()
    (tmp_path / "commercial-extensions.yaml").write_text(
        text.replace('"id = :organization_id"', '"idd = :organization_id"')
    )
    with pytest.raises(ClosureError) as error:
        _plan(stack, tmp_path, secrets.token_hex(32), 451)
    assert "commercial-extensions.yaml:" in str(error.value) and "idd" in str(error.value)


def test_rules_on_unknown_tables_or_columns_are_refused_before_loading(
    stack: Stack, source: SourceSummary, tmp_path: Path
) -> None:
    shutil.copy(CONFIG / "commercial-extensions.yaml", tmp_path / "commercial-extensions.yaml")
    rules = (CONFIG / "mask-rules.yaml").read_text()
    (tmp_path / "mask-rules.yaml").write_text(rules.replace("      email:", "      emial:"))
    with pytest.raises(
        ConfigError, match=r"mask-rules.yaml:\d+: tables.public.users.columns.emial: unknown column"
    ):
        _plan(stack, tmp_path, secrets.token_hex(32), 451)
    (tmp_path / "mask-rules.yaml").write_text(
        rules.replace("public.payment_methods:", "public.payment_method:")
    )
    with pytest.raises(ConfigError, match=r"no table public\.payment_method"):
        _plan(stack, tmp_path, secrets.token_hex(32), 451)


def test_null_action_on_a_not_null_column_is_refused(
    stack: Stack, source: SourceSummary, tmp_path: Path
) -> None:
    shutil.copy(CONFIG / "commercial-extensions.yaml", tmp_path / "commercial-extensions.yaml")
    rules = (CONFIG / "mask-rules.yaml").read_text()
    (tmp_path / "mask-rules.yaml").write_text(
        rules.replace("{ action: fake, provider: full_name }", "{ action: null }")
    )
    with pytest.raises(ConfigError, match="action null on a NOT NULL column"):
        _plan(stack, tmp_path, secrets.token_hex(32), 451)


def test_the_closure_runs_on_the_read_only_standby(stack: Stack, source: SourceSummary) -> None:
    with psycopg.connect(stack.standby_dsn) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
    plan = _plan(stack, CONFIG, secrets.token_hex(32), 451)
    assert plan.closure.passes >= 2
    assert plan.closure.row_counts[next(t for t in plan.closure.keys if t.name == "organizations")] == 1
