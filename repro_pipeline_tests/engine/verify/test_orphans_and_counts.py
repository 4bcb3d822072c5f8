"""The verify stage on databases that really have orphans, missing foreign keys and wrong counts: each
check finds what is wrong, not only that nothing is."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from repro_pipeline.embedded.stack import Stack
from repro_pipeline.engine.dsn import with_database
from repro_pipeline.engine.repro_databases.manifest import TableRecord, write_manifest
from repro_pipeline.engine.source.catalog import TableName, read_catalog
from repro_pipeline.engine.verify.checks import row_counts_match_closure
from repro_pipeline.engine.verify.counts import count_rows
from repro_pipeline.engine.verify.orphans import count_orphans, expected_foreign_keys
from repro_pipeline_tests.run_records import run_record

SOURCE_SCHEMA = """
CREATE TABLE accounts (region int, id int, PRIMARY KEY (region, id));
CREATE TABLE users (id int PRIMARY KEY, region int, account_id int,
    FOREIGN KEY (region, account_id) REFERENCES accounts);
CREATE TABLE notes (id int PRIMARY KEY, user_id int REFERENCES users);
"""


@pytest.fixture
def scratch(stack: Stack) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    name = f"verify_test_{secrets.token_hex(4)}"
    with psycopg.connect(stack.target_admin_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            with psycopg.connect(with_database(stack.target_admin_dsn, name), autocommit=True) as conn:
                conn.execute(SOURCE_SCHEMA)
                yield conn
        finally:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def test_orphans_are_counted_per_foreign_key_on_every_column_of_a_composite_key(
    scratch: psycopg.Connection[tuple[object, ...]],
) -> None:
    scratch.execute("INSERT INTO accounts VALUES (1, 10), (2, 20)")
    scratch.execute("SET session_replication_role = replica")  # FK triggers off: orphans get in
    # (1, 20) matches an account id and a region, but no account on both: an orphan of the composite FK.
    scratch.execute("INSERT INTO users VALUES (1, 1, 10), (2, 1, 20), (3, NULL, 99), (4, 2, 20)")
    scratch.execute("INSERT INTO notes VALUES (1, 1), (2, 5), (3, 6), (4, NULL)")
    catalog = read_catalog(scratch)
    orphans = {
        str(result.foreign_key.child): result.orphans
        for result in count_orphans(scratch, catalog.foreign_keys)
    }
    assert orphans == {"public.users": 1, "public.notes": 2}


def test_a_foreign_key_the_target_lacks_is_reported_missing(
    scratch: psycopg.Connection[tuple[object, ...]],
) -> None:
    source = read_catalog(scratch)
    (notes_fk,) = [fk for fk in source.foreign_keys if fk.child == TableName("public", "notes")]
    scratch.execute(sql.SQL("ALTER TABLE notes DROP CONSTRAINT {}").format(sql.Identifier(notes_fk.name)))
    expected = expected_foreign_keys(source, read_catalog(scratch))
    assert [fk.name for fk in expected.missing] == [notes_fk.name]
    assert [str(fk.child) for fk in expected.present] == ["public.users"]


def test_counts_leave_out_a_missing_table(scratch: psycopg.Connection[tuple[object, ...]]) -> None:
    scratch.execute("INSERT INTO accounts VALUES (1, 10), (1, 11)")
    accounts, users, absent = (TableName("public", name) for name in ("accounts", "users", "gone"))
    assert count_rows(scratch, [accounts, users, absent]) == {accounts: 2, users: 0}


def _recorded(conn: psycopg.Connection[tuple[object, ...]], counts: dict[str, tuple[int, int]]) -> None:
    tables = [
        TableRecord(TableName.parse(name), "transform", closure, source, 0, {})
        for name, (closure, source) in counts.items()
    ]
    write_manifest(conn, run_record("r", tables))


@pytest.mark.parametrize(
    ("recorded", "mismatches"),
    [
        ({"accounts": (2, 2), "users": (0, 0)}, {}),
        (
            {"accounts": (3, 3), "users": (0, 0)},
            {"public.accounts": {"closure": 3, "source": 3, "target": 2}},
        ),
        (
            {"accounts": (2, 3), "users": (0, 0)},
            {"public.accounts": {"closure": 2, "source": 3, "target": 2}},
        ),
        ({"accounts": (2, 2), "gone": (1, 1)}, {"public.gone": {"closure": 1, "source": 1, "target": None}}),
    ],
    ids=["equal", "rows-lost", "closure-disagrees-with-source", "table-missing"],
)
def test_the_counts_check_compares_target_source_and_closure(
    scratch: psycopg.Connection[tuple[object, ...]],
    recorded: dict[str, tuple[int, int]],
    mismatches: dict[str, object],
) -> None:
    scratch.execute("INSERT INTO accounts VALUES (1, 10), (1, 11)")
    _recorded(scratch, recorded)
    verdict = row_counts_match_closure(scratch)
    assert verdict.found["mismatches"] == mismatches
    assert verdict.passed is (not mismatches)
