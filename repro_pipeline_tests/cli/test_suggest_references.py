"""``repro-pipeline suggest-references``: its YAML is pasted into a config as it is, validated and planned
with; ``--json`` holds the same entries."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from repro_pipeline.embedded.stack import Stack
from repro_pipeline_tests.cli.run_cli import run_cli
from repro_pipeline_tests.engine.load.databases import source_database
from repro_pipeline_tests.engine.source.test_reference_suggestions import SCHEMA

ROOT = """\
version: "1.0"
subset:
  - table: app.accounts
    predicate: "id = :organization_id"
tenant:
  table: app.accounts
  key: id
"""
DECLARED = """\
virtual_foreign_keys:
  - table: app.notes
    columns: [member_id]
    references: {table: app.members, columns: [id]}
"""


@pytest.fixture(scope="module")
def app_source(stack: Stack) -> Iterator[str]:
    with source_database(stack, "suggest_references_cli", SCHEMA) as dsn:
        yield dsn


def _config(directory: Path, extensions: str) -> tuple[str, str]:
    directory.mkdir(exist_ok=True)
    (directory / "mask-rules.yaml").write_text('version: "1.0"\n')
    (directory / "commercial-extensions.yaml").write_text(extensions)
    return (
        "--mask-rules",
        str(directory / "mask-rules.yaml"),
        "--commercial-extensions",
        str(directory / "commercial-extensions.yaml"),
    )


def _entries(suggested: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    return [
        (entry["table"], *entry["columns"], entry["references"]["table"], *entry["references"]["columns"])
        for entry in suggested
    ]


def test_the_suggestions_paste_into_a_config_that_validates_and_plans(
    app_source: str, tmp_path: Path, salt: str
) -> None:
    declared = _config(tmp_path / "declared", ROOT + DECLARED)
    run = run_cli("suggest-references", "--source", app_source, *declared)
    assert run.returncode == 0, run.stderr
    suggested = yaml.safe_load(run.stdout)["virtual_foreign_keys"]
    assert _entries(suggested) == [
        ("app.members", "account_id", "app.accounts", "id"),
        ("app.sessions", "device_id", "app.devices", "id"),
        ("app.sessions", "member_id", "app.members", "id"),
        ("billing.invoices", "currency_id", "billing.currencies", "code"),
        ("billing.shipments", "order_id", "billing.orders", "no"),
        ("public.polls_choice", "question_id", "public.polls_question", "id"),
    ]
    assert (
        "  # app.members.account_id: 3 distinct value(s) checked, all found in app.accounts.id" in run.stdout
    )
    assert "# not suggested: app.comments.member_id -> app.members.id: some values have no row" in run.stdout
    assert "# not suggested: app.notes.category_id: no values to check" in run.stdout
    assert 'references: {table: billing.orders, columns: ["no"]}' in run.stdout  # a string, not false

    # Pasted as it is into a config without virtual_foreign_keys, and under the ones a config has.
    environment = {**os.environ, "ANONYMIZATION_SALT": salt}
    pasted_whole = _config(tmp_path / "whole", ROOT + run.stdout)
    entries = run.stdout.split("virtual_foreign_keys:\n", 1)[1]
    pasted_under = _config(tmp_path / "under", ROOT + DECLARED + entries)
    for pasted in (pasted_whole, pasted_under):
        validated = run_cli("validate", *pasted)
        assert validated.returncode == 0, validated.stderr
        planned = run_cli(
            "plan", "--source", app_source, "--organization", "2", "--json", *pasted, env=environment
        )
        assert planned.returncode == 0, planned.stderr
        rows = {table["table"]: table["rows"] for table in json.loads(planned.stdout)["tables"]}
        # Account 2's members, their sessions and the sessions' devices, only through the suggestions.
        assert rows["app.members"] == 4 and rows["app.sessions"] == 6 and rows["app.devices"] > 0

    # Once pasted, they are declared: nothing is left to suggest but the references not yet declared.
    again = run_cli("suggest-references", "--source", app_source, *pasted_under)
    assert again.returncode == 0, again.stderr
    assert yaml.safe_load(again.stdout)["virtual_foreign_keys"] == []
    assert "0 suggestion(s)" in again.stdout


def test_json_holds_the_entries_and_the_values_checked(app_source: str, tmp_path: Path) -> None:
    run = run_cli("suggest-references", "--source", app_source, "--json", *_config(tmp_path, ROOT + DECLARED))
    assert run.returncode == 0, run.stderr
    found = json.loads(run.stdout)
    members = next(s for s in found["suggestions"] if s["table"] == "app.members")
    assert members == {
        "table": "app.members",
        "column": "account_id",
        "references": {"table": "app.accounts", "column": "id"},
        "name_match": "plural",
        "distinct_values_checked": 3,
        "all_found": True,
        "alternatives": [{"table": "archive.accounts", "column": "id"}],
        "virtual_foreign_key": {
            "table": "app.members",
            "columns": ["account_id"],
            "references": {"table": "app.accounts", "columns": ["id"]},
        },
    }
    assert len(found["suggestions"]) == 6
    assert {
        "table": "app.comments",
        "column": "member_id",
        "references": {"table": "app.members", "column": "id"},
        "reason": "some values have no row in app.members.id",
    } in found["not_suggested"]


def test_a_config_file_that_cannot_be_read_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "commercial-extensions.yaml"
    run = run_cli(
        "suggest-references",
        "--source",
        "postgresql://nobody@127.0.0.1:1/none",
        "--commercial-extensions",
        str(missing),
    )
    assert run.returncode == 3
    assert f"{missing}: cannot read the file" in run.stderr
    assert "Traceback" not in run.stderr


def test_a_statement_timeout_must_be_positive() -> None:
    run = run_cli(
        "suggest-references", "--source", "postgresql://nobody@127.0.0.1:1/none", "--statement-timeout", "0"
    )
    assert run.returncode == 2
    assert "'0' is not a positive number of seconds" in run.stderr


def test_implied_fk_ignore_leaves_its_columns_out_and_says_so(app_source: str, tmp_path: Path) -> None:
    arguments = _config(tmp_path, ROOT + DECLARED)
    (tmp_path / "mask-rules.yaml").write_text('version: "1.0"\nimplied_fk_ignore: [app.members.account_id]\n')
    run = run_cli("suggest-references", "--source", app_source, *arguments)
    assert run.returncode == 0, run.stderr
    assert "; 1 column(s) of implied_fk_ignore left out." in run.stdout
    assert "app.members.account_id" not in run.stdout
    assert ("app.sessions", "member_id", "app.members", "id") in _entries(
        yaml.safe_load(run.stdout)["virtual_foreign_keys"]
    )
