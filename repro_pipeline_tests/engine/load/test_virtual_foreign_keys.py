"""Virtual foreign keys: references without a constraint, declared in commercial-extensions.yaml, are followed
both ways by the closure, checked for orphans, and never created on the target."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from repro_pipeline.embedded.stack import Stack
from repro_pipeline.engine.config import load_config
from repro_pipeline.engine.errors import ClosureError, ConfigError
from repro_pipeline.engine.load.loader import load_repro
from repro_pipeline.engine.load.plan import SubsetPlan, plan_subset
from repro_pipeline.engine.secrets import Secret
from repro_pipeline.engine.source.catalog import TableName
from repro_pipeline.engine.source.snapshot import open_source_snapshot
from repro_pipeline.engine.verify.checks import zero_fk_orphans
from repro_pipeline_tests.engine.load.databases import empty_target, source_database

# As a Rails app keeps it: every reference is a plain *_id column, without a constraint.
SCHEMA = """
CREATE TABLE accounts (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE members (id int PRIMARY KEY, account_id int NOT NULL, invited_by int, email text NOT NULL);
CREATE TABLE notes (id int PRIMARY KEY, member_id int, body text NOT NULL);
CREATE TABLE labels (code text PRIMARY KEY);
INSERT INTO accounts SELECT g, 'account ' || g FROM generate_series(1, 3) g;
INSERT INTO members  -- members 4, 8 and 12 were invited by members deleted since: a dangling reference
    SELECT g, 1 + g % 3, CASE WHEN g % 4 = 0 THEN 900 + g END, 'm' || g || '@app.test' FROM generate_series(1, 12) g;
INSERT INTO notes SELECT g, CASE WHEN g % 5 = 0 THEN NULL ELSE 1 + g % 12 END, 'note ' || g
    FROM generate_series(1, 40) g;
"""
ACCOUNT = 2
REFERENCES = """
virtual_foreign_keys:
  - table: public.members
    columns: [account_id]
    references: {table: public.accounts, columns: [id]}
  - table: public.notes
    columns: [member_id]
    references: {table: public.members, columns: [id]}
  - table: public.members
    columns: [invited_by]
    references: {table: public.members, columns: [id]}
"""
ROOT = """
version: "1.0"
subset:
  - table: public.accounts
    predicate: "id = :organization_id"
tenant:
  table: public.accounts
  key: id
"""
MEMBERS, NOTES = TableName("public", "members"), TableName("public", "notes")


@pytest.fixture(scope="module")
def app_source(stack: Stack) -> Iterator[str]:
    with source_database(stack, "virtual_fks", SCHEMA) as dsn:
        yield dsn


def _plan(source: str, tmp_path: Path, extensions: str) -> SubsetPlan:
    (tmp_path / "mask-rules.yaml").write_text('version: "1.0"\n')
    (tmp_path / "commercial-extensions.yaml").write_text(extensions)
    config = load_config(tmp_path / "mask-rules.yaml", tmp_path / "commercial-extensions.yaml")
    with open_source_snapshot(source) as snapshot:
        return plan_subset(snapshot, config, Secret(secrets.token_hex(32)), ACCOUNT)


def test_without_virtual_foreign_keys_the_tenant_has_no_members(app_source: str, tmp_path: Path) -> None:
    plan = _plan(app_source, tmp_path, ROOT)
    assert plan.closure.row_counts[MEMBERS] == 0
    assert any("public.members gets no rows" in warning for warning in plan.warnings)


def test_virtual_foreign_keys_are_followed_both_ways_and_checked_for_orphans(
    app_source: str, stack: Stack, tmp_path: Path
) -> None:
    with psycopg.connect(app_source) as conn:
        members = {row[0] for row in conn.execute("SELECT id FROM members WHERE account_id = %s", (ACCOUNT,))}
        notes = {
            row[0] for row in conn.execute("SELECT id FROM notes WHERE member_id = ANY(%s)", (list(members),))
        }
    plan = _plan(app_source, tmp_path, ROOT + REFERENCES)
    assert set(plan.closure.keys[MEMBERS]) == members
    assert set(plan.closure.keys[NOTES]) == notes
    assert "1 value(s) of public.members via virtual public.members(invited_by) reference no row" in " ".join(
        plan.warnings
    )
    assert plan.closure.reasons[NOTES] == {
        "down from public.members via virtual public.notes(member_id)": len(notes)
    }

    # A root on notes alone: the note's member and its account are pulled up through the references.
    note_root = ROOT.replace(
        '  - table: public.accounts\n    predicate: "id = :organization_id"\n',
        '  - table: public.accounts\n    predicate: "id = :organization_id"\n'
        '  - table: public.notes\n    predicate: "id = 1 AND :tenant_id > 0"\n',
    )
    with pytest.raises(ClosureError, match=r"other tenant\(s\) 3 of public\.accounts"):
        _plan(app_source, tmp_path, note_root + REFERENCES)  # note 1's member is of account 3

    with empty_target(stack, "virtual_fks") as target:
        with open_source_snapshot(app_source) as snapshot:
            load_repro(
                snapshot, target, plan, run_id="virtual-fks", started_at=datetime.now(UTC), batch_size=5
            )
        with psycopg.connect(target, autocommit=True) as conn:
            constraints = "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND connamespace = 'public'::regnamespace"
            assert conn.execute(constraints).fetchone() == (0,)
            clean = zero_fk_orphans(plan, conn)
            assert clean.passed and clean.found["foreign_keys_checked"] == 3
            # Member 4 of account 2 is copied with its dangling reference, as the source has it.
            assert clean.found["dangling_on_source"] == {
                "public.members(invited_by) -> public.members(id)": 1
            }
            conn.execute("UPDATE notes SET member_id = 999 WHERE id = %s", (min(notes),))
            orphaned = zero_fk_orphans(plan, conn)
    assert not orphaned.passed
    assert orphaned.found["failing_foreign_keys"] == {"public.notes(member_id) -> public.members(id)": 1}


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        (
            "  - table: public.notes\n    columns: [author_id]\n    references: {table: public.members, columns: [id]}\n",
            "columns: public.notes has no column author_id",
        ),
        (
            "  - table: public.notes\n    columns: [member_id]\n    references: {table: public.labels, columns: [code]}\n",
            "public.notes.member_id is integer but public.labels.code is text",
        ),
        (
            "  - table: public.members\n    columns: [id]\n    references: {table: public.notes, columns: [member_id]}\n",
            "are not the primary key or a unique constraint of public.notes",
        ),
        (
            "  - table: public.notes\n    columns: [member_id, id]\n    references: {table: public.members, columns: [id]}\n",
            "give as many on each side",
        ),
    ],
    ids=["unknown-column", "other-type", "not-unique", "column-count"],
)
def test_a_virtual_foreign_key_the_schema_cannot_hold_is_refused_naming_it(
    app_source: str, tmp_path: Path, entry: str, says: str
) -> None:
    with pytest.raises(ConfigError, match=says) as refused:
        _plan(app_source, tmp_path, ROOT + "virtual_foreign_keys:\n" + entry)
    assert "commercial-extensions.yaml:" in str(refused.value)


def test_a_tenant_key_that_is_not_an_integer_is_refused(app_source: str, tmp_path: Path) -> None:
    labels = ROOT.replace("table: public.accounts\n  key: id", "table: public.labels\n  key: code")
    with pytest.raises(
        ConfigError, match=r"tenant\.key: public\.labels\.code is text, but partitions are named"
    ):
        _plan(app_source, tmp_path, labels)
