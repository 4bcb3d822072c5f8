"""``repro-pipeline load --target`` into a database that holds data: ``on_existing_data`` (the file's key, or
``--on-existing-data``) on the embedded stack, with someone else's tables beside the load's."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from repro_pipeline.embedded.stack import Stack
from repro_pipeline.embedded.synthetic import SourceSummary
from repro_pipeline.engine.config import APPEND_REFUSED
from repro_pipeline_tests.cli.run_cli import run_cli
from repro_pipeline_tests.conftest import PROJECT_ROOT
from repro_pipeline_tests.engine.load.databases import empty_target

ORGANIZATION = "302"  # a small one: each test loads it twice
FOREIGN_KEYS = "SELECT conrelid::regclass::text, conname FROM pg_constraint WHERE contype = 'f' ORDER BY 1, 2"


@pytest.fixture
def target(stack: Stack) -> Iterator[str]:
    with empty_target(stack, "existing_data") as dsn:
        yield dsn


@pytest.fixture
def environment(source: SourceSummary, salt: str) -> dict[str, str]:
    return {**os.environ, "ANONYMIZATION_SALT": salt}


def _load(stack: Stack, target: str, environment: dict[str, str], *extra: str) -> Any:
    return run_cli(
        "load",
        "--source",
        stack.standby_dsn,
        "--organization",
        ORGANIZATION,
        "--target",
        target,
        "--quiet",
        "--json",
        *extra,
        env=environment,
    )


def _rows(dsn: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query).fetchall()


def _execute(dsn: str, *statements: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement.encode())


def _someone_elses_tables(dsn: str) -> None:
    """A table of someone else's in ``public`` (a schema the load writes) and one in a schema of their own."""
    _execute(
        dsn,
        "CREATE TABLE public.their_notes (id int PRIMARY KEY, body text)",
        "INSERT INTO public.their_notes VALUES (1, 'kept')",
        "CREATE SCHEMA theirs",
        "CREATE TABLE theirs.notes (id int PRIMARY KEY)",
        "INSERT INTO theirs.notes VALUES (7)",
    )


def _mask_rules_with(tmp_path: Path, policy: str) -> Path:
    rules = tmp_path / "mask-rules.yaml"
    rules.write_text(
        (PROJECT_ROOT / "config" / "mask-rules.yaml").read_text() + f"on_existing_data: {policy}\n"
    )
    return rules


def test_fail_by_default_refuses_a_target_with_someone_elses_table(
    stack: Stack, target: str, environment: dict[str, str]
) -> None:
    _someone_elses_tables(target)
    refused = _load(stack, target, environment)
    assert refused.returncode == 7, refused.stderr
    problem = json.loads(refused.stdout)["error"]
    assert "is not empty (2 tables, e.g. public.their_notes)" in problem["problem"]
    assert "on_existing_data" in problem["remedy"] and "Traceback" not in refused.stderr
    assert _rows(target, "SELECT body FROM public.their_notes") == [("kept",)]


def test_truncate_refills_the_loads_tables_and_keeps_someone_elses(
    stack: Stack, target: str, environment: dict[str, str]
) -> None:
    first = _load(stack, target, environment, "--on-existing-data", "truncate")  # empty: an ordinary load
    assert first.returncode == 0, first.stderr
    loaded = json.loads(first.stdout)["loaded_rows"]
    foreign_keys = _rows(target, FOREIGN_KEYS)
    _someone_elses_tables(target)
    _execute(target, "UPDATE users SET full_name = 'tampered'", "DELETE FROM invoice_line_items")

    again = _load(stack, target, environment, "--on-existing-data", "truncate")

    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["loaded_rows"] == loaded
    assert _rows(target, "SELECT count(*) FROM users WHERE full_name = 'tampered'") == [(0,)]
    counts = {table: _rows(target, f"SELECT count(*) FROM {table}")[0][0] for table in loaded}
    assert counts == loaded
    assert _rows(target, FOREIGN_KEYS) == foreign_keys  # set aside for the rows, put back, validated
    assert _rows(target, "SELECT count(*) FROM _repro_pipeline.runs") == [(1,)]  # this load's record only
    assert _rows(target, "SELECT body FROM public.their_notes") == [("kept",)]
    assert _rows(target, "SELECT id FROM theirs.notes") == [(7,)]


def test_truncate_refuses_a_table_defined_otherwise_and_leaves_the_rows(
    stack: Stack, target: str, environment: dict[str, str]
) -> None:
    assert _load(stack, target, environment).returncode == 0
    _execute(target, "ALTER TABLE users ADD COLUMN nickname text", "UPDATE users SET full_name = 'mine'")

    refused = _load(stack, target, environment, "--on-existing-data", "truncate")

    assert refused.returncode == 7, refused.stderr
    problem = json.loads(refused.stdout)["error"]["problem"]
    assert "on_existing_data truncate: the schema of the target database" in problem
    assert "TABLE public.users differs (pre-data)" in problem
    assert _rows(target, "SELECT count(*) FROM users WHERE full_name <> 'mine'") == [(0,)]


def test_truncate_refuses_when_someone_elses_table_references_the_loads(
    stack: Stack, target: str, environment: dict[str, str]
) -> None:
    assert _load(stack, target, environment).returncode == 0
    _execute(target, "CREATE TABLE their_refs (user_id bigint REFERENCES users (id))")
    _execute(target, "INSERT INTO their_refs SELECT id FROM users LIMIT 1")

    refused = _load(stack, target, environment, "--on-existing-data", "truncate")

    assert refused.returncode == 7, refused.stderr
    problem = json.loads(refused.stdout)["error"]["problem"]
    assert "tables the load does not write reference its tables: their_refs (references users)" in problem
    assert _rows(target, "SELECT count(*) FROM their_refs") == [(1,)]


def test_drop_create_from_the_file_replicates_afresh_and_keeps_other_schemas(
    stack: Stack, target: str, environment: dict[str, str], tmp_path: Path
) -> None:
    first = _load(stack, target, environment)
    assert first.returncode == 0, first.stderr
    _someone_elses_tables(target)
    _execute(
        target, "ALTER TABLE users ADD COLUMN nickname text", "CREATE VIEW public.their_view AS SELECT 1"
    )

    again = _load(stack, target, environment, "--mask-rules", str(_mask_rules_with(tmp_path, "drop_create")))

    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["loaded_rows"] == json.loads(first.stdout)["loaded_rows"]
    public = _rows(target, "SELECT relname FROM pg_class WHERE relname IN ('their_notes', 'their_view')")
    assert public == []
    assert _rows(
        target, "SELECT count(*) FROM information_schema.columns WHERE column_name = 'nickname'"
    ) == [(0,)]
    assert _rows(target, "SELECT id FROM theirs.notes") == [(7,)]


def test_the_command_line_overrides_the_file_and_refuses_append(
    stack: Stack, target: str, environment: dict[str, str], tmp_path: Path
) -> None:
    assert _load(stack, target, environment).returncode == 0
    rules = str(_mask_rules_with(tmp_path, "drop_create"))

    refused = _load(stack, target, environment, "--mask-rules", rules, "--on-existing-data", "fail")
    assert refused.returncode == 7 and "is not empty" in json.loads(refused.stdout)["error"]["problem"]
    append = _load(stack, target, environment, "--on-existing-data", "append")
    assert append.returncode == 2 and APPEND_REFUSED in append.stderr
    unknown = _load(stack, target, environment, "--on-existing-data", "keep")
    assert unknown.returncode == 2 and "'keep' is none of fail, truncate, drop_create" in unknown.stderr
    assert "Traceback" not in refused.stderr + append.stderr + unknown.stderr
