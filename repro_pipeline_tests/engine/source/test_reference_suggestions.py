"""Reference suggestions on a real standby: a ``<name>_id`` column is suggested only when every one of its
values exists in a table's key of its type, and never when a reference is declared already."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from repro_pipeline.embedded.stack import Stack
from repro_pipeline.engine.config import CommercialExtensions, load_config
from repro_pipeline.engine.errors import ConfigError
from repro_pipeline.engine.source.catalog import TableName, read_catalog
from repro_pipeline.engine.source.reference_suggestions import (
    ColumnRef,
    NameMatch,
    ReferenceSuggestions,
    declared_virtual_columns,
    ignored_columns,
    suggest_references,
)
from repro_pipeline.engine.source.snapshot import open_source_snapshot
from repro_pipeline_tests.engine.load.databases import source_database

# An app that declares one foreign key of many, with integer, uuid and text keys in three schemas.
SCHEMA = """
CREATE SCHEMA app; CREATE SCHEMA billing; CREATE SCHEMA archive;
CREATE TABLE app.accounts (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE archive.accounts (id int PRIMARY KEY);  -- every account ever: also holds app's
CREATE TABLE app.members (id int PRIMARY KEY, account_id int NOT NULL, email text NOT NULL);
CREATE TABLE app.categories (id int PRIMARY KEY, title text NOT NULL);
CREATE TABLE app.notes (id int PRIMARY KEY, member_id int, category_id int, body text NOT NULL);
CREATE TABLE app.comments (id int PRIMARY KEY, note_id int NOT NULL REFERENCES app.notes, member_id int);
CREATE TABLE app.devices (id uuid PRIMARY KEY, label text NOT NULL);
CREATE TABLE app.sessions (id int PRIMARY KEY, device_id uuid NOT NULL, member_id int NOT NULL);
CREATE TABLE billing.currencies (code text PRIMARY KEY);
CREATE TABLE billing.invoices (
    id int PRIMARY KEY, account_id bigint NOT NULL, currency_id text NOT NULL, region_id text NOT NULL
);
-- Orders are referenced by their unique number (not their primary key), a column YAML reads as false unquoted.
CREATE TABLE billing.orders (id int PRIMARY KEY, no int NOT NULL UNIQUE, placed_on date NOT NULL);
-- Unique codes but no primary key, which the closure needs of a referenced table.
CREATE TABLE billing.regions (code text NOT NULL UNIQUE);
CREATE TABLE billing.shipments (id int PRIMARY KEY, order_id int NOT NULL);
CREATE TABLE polls_question (id int PRIMARY KEY, text text NOT NULL);
CREATE TABLE polls_choice (id int PRIMARY KEY, question_id int NOT NULL);
INSERT INTO app.accounts SELECT g, 'account ' || g FROM generate_series(1, 3) g;
INSERT INTO archive.accounts SELECT g FROM generate_series(1, 9) g;
INSERT INTO app.members SELECT g, 1 + g % 3, 'm' || g || '@app.test' FROM generate_series(1, 12) g;
INSERT INTO app.categories SELECT g, 'category ' || g FROM generate_series(1, 4) g;
INSERT INTO app.notes SELECT g, 1 + g % 12, NULL, 'note ' || g FROM generate_series(1, 40) g;
-- Every member but one deleted long ago: mostly found, so not a reference to suggest.
INSERT INTO app.comments SELECT g, 1 + g % 40, CASE WHEN g = 17 THEN 999 ELSE 1 + g % 12 END
    FROM generate_series(1, 30) g;
INSERT INTO app.devices SELECT md5('device' || g)::uuid, 'device ' || g FROM generate_series(1, 5) g;
INSERT INTO app.sessions SELECT g, md5('device' || (1 + g % 5))::uuid, 1 + g % 12 FROM generate_series(1, 20) g;
INSERT INTO billing.currencies VALUES ('EUR'), ('USD'), ('JPY');
INSERT INTO billing.regions VALUES ('eu'), ('us');
INSERT INTO billing.invoices SELECT g, 1 + g % 3, (ARRAY['EUR', 'USD'])[1 + g % 2], (ARRAY['eu', 'us'])[1 + g % 2]
    FROM generate_series(1, 10) g;
INSERT INTO billing.orders SELECT g, 100 + g, date '2024-01-01' + g FROM generate_series(1, 5) g;
INSERT INTO billing.shipments SELECT g, 100 + 1 + g % 5 FROM generate_series(1, 8) g;
INSERT INTO polls_question SELECT g, 'question ' || g FROM generate_series(1, 3) g;
INSERT INTO polls_choice SELECT g, 1 + g % 3 FROM generate_series(1, 9) g;
"""
DECLARED = CommercialExtensions.model_validate(
    {
        "version": "1.0",
        "virtual_foreign_keys": [
            {
                "table": "app.notes",
                "columns": ["member_id"],
                "references": {"table": "app.members", "columns": ["id"]},
            }
        ],
    }
)


def _ref(text: str) -> ColumnRef:
    table, _, column = text.rpartition(".")
    return ColumnRef(TableName.parse(table), column)


@pytest.fixture(scope="module")
def app_source(stack: Stack) -> Iterator[str]:
    with source_database(stack, "reference_suggestions", SCHEMA) as dsn:
        yield dsn


def _suggest(
    source: str, extensions: CommercialExtensions | None, timeout: float = 60.0
) -> ReferenceSuggestions:
    with open_source_snapshot(source) as snapshot:
        settings = "SELECT current_setting('statement_timeout'), current_setting('row_security')"
        before = snapshot.conn.execute(settings).fetchone()
        found = suggest_references(
            snapshot.conn,
            read_catalog(snapshot.conn),
            declared_virtual_columns(extensions),
            statement_timeout_seconds=timeout,
        )
        # The snapshot's transaction (now() is its start) is usable still, with its own settings.
        assert snapshot.conn.execute(settings).fetchone() == before
        assert snapshot.conn.execute("SELECT now()").fetchone() == (snapshot.snapshot_at,)
        return found


def test_only_references_every_value_satisfies_are_suggested(app_source: str) -> None:
    found = _suggest(app_source, DECLARED)

    suggested = {(str(s.child), str(s.key)): s for s in found.suggestions}
    assert set(suggested) == {
        ("app.members.account_id", "app.accounts.id"),
        ("app.sessions.device_id", "app.devices.id"),  # a uuid key
        ("app.sessions.member_id", "app.members.id"),
        ("billing.invoices.currency_id", "billing.currencies.code"),  # a text key
        ("billing.shipments.order_id", "billing.orders.no"),  # a unique key
        ("public.polls_choice.question_id", "public.polls_question.id"),  # Django's <app>_<model>
    }
    accounts = suggested["app.members.account_id", "app.accounts.id"]
    assert accounts.distinct_values == 3 and accounts.name_match is NameMatch.PLURAL
    assert accounts.alternatives == (_ref("archive.accounts.id"),)  # another schema ranks second
    assert suggested["app.sessions.device_id", "app.devices.id"].distinct_values == 5
    assert suggested["billing.invoices.currency_id", "billing.currencies.code"].distinct_values == 2
    # Ranked by name match: the plural names first, Django's last.
    assert [s.name_match for s in found.suggestions] == sorted(s.name_match for s in found.suggestions)
    assert found.suggestions[-1].child == _ref("public.polls_choice.question_id")

    left_out = {(str(n.child), None if n.key is None else str(n.key)): n.reason for n in found.not_suggested}
    assert left_out == {
        # One dangling value of 13 is enough to fail the check.
        ("app.comments.member_id", "app.members.id"): "some values have no row in app.members.id",
        ("app.notes.category_id", None): "no values to check",
        ("billing.invoices.account_id", "app.accounts.id"): "bigint, but app.accounts.id is integer",
        ("billing.invoices.account_id", "archive.accounts.id"): "bigint, but archive.accounts.id is integer",
        ("billing.invoices.region_id", "billing.regions.code"): (
            "billing.regions has no primary key, which the closure needs of a referenced table"
        ),
        # Shipments name orders by number: the primary key, checked first, lacks them.
        ("billing.shipments.order_id", "billing.orders.id"): "some values have no row in billing.orders.id",
    }
    # app.comments.note_id has a foreign key, app.notes.member_id a virtual one: neither is considered.
    considered = {str(s.child) for s in found.suggestions} | {str(n.child) for n in found.not_suggested}
    assert "app.comments.note_id" not in considered and "app.notes.member_id" not in considered


def test_a_reference_declared_nowhere_is_suggested_without_the_configuration(app_source: str) -> None:
    found = _suggest(app_source, None)
    assert _ref("app.notes.member_id") in {s.child for s in found.suggestions}


def test_a_check_past_the_statement_timeout_is_reported_not_checked(stack: Stack) -> None:
    big = """
    CREATE TABLE members (id int PRIMARY KEY);
    CREATE TABLE events (id int, member_id int);
    INSERT INTO members SELECT generate_series(1, 100);
    INSERT INTO events SELECT g, 1 + g % 100 FROM generate_series(1, 500000) g;
    """
    with source_database(stack, "reference_suggestions_big", big) as dsn:
        found = _suggest(dsn, None, timeout=0.001)
    assert found.suggestions == ()
    assert [(str(n.child), n.reason) for n in found.not_suggested] == [
        ("public.events.member_id", "not checked: it ran past the statement timeout")
    ]


def _ignoring(tmp_path: Path, columns: list[str]) -> Path:
    rules = tmp_path / "mask-rules.yaml"
    rules.write_text(
        'version: "1.0"\nimplied_fk_ignore:\n' + "".join(f"  - {column}\n" for column in columns)
    )
    (tmp_path / "ext.yaml").write_text('version: "1.0"\n')
    return rules


def test_implied_fk_ignore_silences_the_columns_it_names(app_source: str, tmp_path: Path) -> None:
    config = load_config(
        _ignoring(tmp_path, ["app.members.account_id", "app.comments.member_id"]), tmp_path / "ext.yaml"
    )
    with open_source_snapshot(app_source) as snapshot:
        catalog = read_catalog(snapshot.conn)
        ignored = ignored_columns(config, catalog)
        found = suggest_references(
            snapshot.conn, catalog, declared_virtual_columns(DECLARED) | ignored, statement_timeout_seconds=60
        )
    assert ignored == {_ref("app.members.account_id"), _ref("app.comments.member_id")}
    considered = {s.child for s in found.suggestions} | {n.child for n in found.not_suggested}
    assert considered.isdisjoint(ignored)
    assert _ref("app.sessions.member_id") in {s.child for s in found.suggestions}


def test_implied_fk_ignore_naming_no_column_of_the_source_is_refused_with_its_line(
    app_source: str, tmp_path: Path
) -> None:
    rules = _ignoring(tmp_path, ["app.members.account_id", "app.members.acount_id"])
    config = load_config(rules, tmp_path / "ext.yaml")
    with open_source_snapshot(app_source) as snapshot, pytest.raises(ConfigError) as raised:
        ignored_columns(config, read_catalog(snapshot.conn))
    assert f"{rules}:4: implied_fk_ignore[1]: the source has no column app.members.acount_id" in str(
        raised.value
    )
