"""Rows of a LATIN1 source database loaded into a UTF8 repro database, on one connection and by workers: the
target session takes the source session's client encoding, so its server converts the text, unmasked columns
arrive as the same characters and masked ones as the maskers' outputs; a masked value the source's encoding
cannot write is a clear error naming the column."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from repro_pipeline.embedded.stack import Stack
from repro_pipeline.engine.config import ReproConfig, load_config
from repro_pipeline.engine.errors import ConfigError
from repro_pipeline.engine.load.loader import load_repro
from repro_pipeline.engine.load.parallel import LoadWorkers
from repro_pipeline.engine.load.plan import SubsetPlan, plan_subset
from repro_pipeline.engine.secrets import Secret
from repro_pipeline.engine.source.catalog import TableName
from repro_pipeline.engine.source.snapshot import open_source_snapshot
from repro_pipeline_tests.engine.load.databases import empty_target, source_database

PEOPLE = TableName("public", "people")
SCHEMA = """
CREATE TABLE accounts (id int PRIMARY KEY);
CREATE TABLE people (id int PRIMARY KEY, account_id int NOT NULL REFERENCES accounts, name text, code text,
    note text);
INSERT INTO accounts VALUES (1);
INSERT INTO people VALUES
    (1, 1, 'é ß Å', 'é ß Å', 'é ß Å'),
    (2, 1, 'Zoë', E'Ångström\\tß', E'naïve\\\\ß ÿ'),
    (3, 1, NULL, 'plain', NULL);
"""
MASK_RULES = """version: "1.0"
tables:
  public.people:
    strategy: transform
    columns:
      name: {action: fake, provider: full_name}
      code: {action: hash}
"""
UNWRITABLE_IN_LATIN1 = """
      note: {action: regex_mask, pattern: "ß", replace: "日"}
"""
KEY_COMMENTED_IN_KANJI = "COMMENT ON CONSTRAINT people_pkey ON people IS '日本';"
EXTENSIONS = """version: "1.0"
subset:
  - table: public.accounts
    predicate: "id = :organization_id"
"""


@pytest.fixture(scope="module")
def latin1_source(stack: Stack) -> Iterator[str]:
    with source_database(stack, "latin1_values", SCHEMA, encoding="LATIN1") as dsn:
        yield dsn


@pytest.fixture(scope="module")
def utf8_source(stack: Stack) -> Iterator[str]:
    with source_database(stack, "utf8_values", SCHEMA + KEY_COMMENTED_IN_KANJI) as dsn:
        yield dsn


def _config(tmp_path: Path, mask_rules: str) -> ReproConfig:
    (tmp_path / "mask-rules.yaml").write_text(mask_rules)
    (tmp_path / "commercial-extensions.yaml").write_text(EXTENSIONS)
    return load_config(tmp_path / "mask-rules.yaml", tmp_path / "commercial-extensions.yaml")


def _load(source: str, target: str, config: ReproConfig, workers: int) -> SubsetPlan:
    salt = Secret(secrets.token_hex(32))
    with open_source_snapshot(source) as snapshot:
        plan = plan_subset(snapshot, config, salt, 1)
        load_repro(
            snapshot,
            target,
            plan,
            run_id="encoding",
            started_at=datetime.now(UTC),
            batch_size=2,
            workers=LoadWorkers(workers, config, salt, min_rows_each=1),
        )
    return plan


def _people(dsn: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT id, name, code, note FROM people ORDER BY id").fetchall()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_latin1_source_loads_into_a_utf8_target_as_the_same_characters(
    latin1_source: str, stack: Stack, tmp_path: Path, workers: int
) -> None:
    with empty_target(stack, "encoding") as target:
        with psycopg.connect(target) as conn:
            assert conn.info.parameter_status("server_encoding") == "UTF8"
        plan = _load(latin1_source, target, _config(tmp_path, MASK_RULES), workers)
        loaded = _people(target)
    masking = plan.mask_plan.for_table(PEOPLE)
    originals = _people(latin1_source)
    assert originals[0][3] == "é ß Å"
    assert loaded == [
        (row_id, masking.masker_for("name")(name), masking.masker_for("code")(code), note)  # type: ignore[misc]
        for row_id, name, code, note in originals
    ]


@pytest.mark.parametrize("workers", [1, 2])
def test_a_masked_value_the_source_encoding_cannot_write_fails_naming_the_column(
    latin1_source: str, stack: Stack, tmp_path: Path, workers: int
) -> None:
    config = _config(tmp_path, MASK_RULES + UNWRITABLE_IN_LATIN1)
    with empty_target(stack, "encoding") as target, pytest.raises(ConfigError) as failure:
        _load(latin1_source, target, config, workers)
    assert "public.people.note" in failure.value.problem
    assert "LATIN1" in failure.value.problem


def test_the_target_session_takes_back_its_own_encoding_after_the_rows_for_the_post_data(
    utf8_source: str, stack: Stack, tmp_path: Path
) -> None:
    """A source read in LATIN1 (its DSN says so) whose post-data (its primary key's comment) LATIN1 cannot write."""
    source = make_conninfo(utf8_source, options="-c client_encoding=LATIN1")
    with empty_target(stack, "encoding") as target:
        _load(source, target, _config(tmp_path, MASK_RULES), workers=1)
        with psycopg.connect(target) as conn:
            comment = conn.execute(
                "SELECT obj_description(oid, 'pg_constraint') FROM pg_constraint WHERE conname = 'people_pkey'"
            ).fetchone()
        assert comment == ("日本",)
        assert [row[3] for row in _people(target)] == [row[3] for row in _people(utf8_source)]
