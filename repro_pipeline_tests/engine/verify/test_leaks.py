"""The leak scan on real databases that really leak: every kind of original in every kind of place is
found, and what must not count (a masked value, a word that merely starts like a name) is not."""

from __future__ import annotations

import re
import secrets
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.types.json import Jsonb

from repro_pipeline.embedded.stack import Stack
from repro_pipeline.engine.config import load_config
from repro_pipeline.engine.dsn import with_database
from repro_pipeline.engine.source.catalog import TableName, read_catalog
from repro_pipeline.engine.verify.leaks import (
    JsonPathField,
    LeakScan,
    Originals,
    SensitiveColumn,
    SensitiveFields,
    find_leaks,
    original_values,
    sensitive_fields,
)

SCHEMA = """
CREATE TABLE users (id int PRIMARY KEY, full_name text, email text, notes text, last_four text, code char(12));
CREATE TABLE events (id int PRIMARY KEY, payload jsonb);
CREATE TABLE comments (id int PRIMARY KEY, body text);
CREATE TABLE keyless (organization_id int, full_name text);
CREATE TABLE documents (id int PRIMARY KEY, title text, body json, tags text[]);
"""
USERS = TableName("public", "users")
EVENTS = TableName("public", "events")

Connection = psycopg.Connection[tuple[object, ...]]


@dataclass(frozen=True)
class Pair:
    source: Connection
    target: Connection

    def scan(
        self, fields: dict[TableName, SensitiveFields], copied: str = "true"
    ) -> tuple[Originals, Counter[str]]:
        """``copied``: the condition that selects the copied rows of every table on the source."""
        originals = original_values(
            self.source, read_catalog(self.source), fields, lambda _: [(sql.SQL(copied), {})]
        )
        return originals, find_leaks(self.target, read_catalog(self.target), originals).leaks


@pytest.fixture
def pair(stack: Stack) -> Iterator[Pair]:
    names = [f"leak_test_{secrets.token_hex(4)}" for _ in range(2)]
    with psycopg.connect(stack.target_admin_dsn, autocommit=True) as admin:
        for name in names:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            source_dsn, target_dsn = (with_database(stack.target_admin_dsn, name) for name in names)
            with (
                psycopg.connect(source_dsn, autocommit=True) as source,
                psycopg.connect(target_dsn, autocommit=True) as target,
            ):
                for conn in (source, target):
                    conn.execute(SCHEMA)
                yield Pair(source, target)
        finally:
            for name in names:
                admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def _user(conn: Connection, full_name: str, email: str = "", notes: str = "", code: str = "") -> None:
    conn.execute(
        "INSERT INTO users (id, full_name, email, notes, code) VALUES (1, %s, %s, %s, %s)",
        (full_name, email, notes, code),
    )


NAMES = {USERS: SensitiveFields((SensitiveColumn("full_name"), SensitiveColumn("email")), ())}


@pytest.mark.parametrize(
    "leaked",
    [
        "Zorblat Quenwick",  # a whole copied cell
        "ZORBLAT QUENWICK",  # upper-cased
        "ticket: zorblat quenwick called twice",  # inside a sentence
        "Escalated by Zorblat Quenwick.",  # at the end, before punctuation
    ],
)
def test_an_original_is_found_whole_upper_cased_or_inside_text(pair: Pair, leaked: str) -> None:
    _user(pair.source, "Zorblat Quenwick")
    _user(pair.target, "Masked Person")
    pair.target.execute("INSERT INTO comments VALUES (1, %s)", (leaked,))
    _, leaks = pair.scan(NAMES)
    assert leaks == Counter({"public.comments.body": 1})


def test_an_original_of_many_words_is_found_inside_a_note(pair: Pair) -> None:
    _user(pair.source, "Ana Maria de la Cruz Quenwick")
    _user(pair.target, "Masked Person")
    pair.target.execute(
        "INSERT INTO comments VALUES (1, 'spoke with Ana Maria de la Cruz Quenwick about the invoice')"
    )
    assert pair.scan(NAMES)[1] == Counter({"public.comments.body": 1})


def test_an_original_is_found_in_a_json_value_and_as_a_json_key(pair: Pair) -> None:
    _user(pair.source, "Zorblat Quenwick", email="zorblat@acme.example")
    _user(pair.target, "Masked Person", email="masked@example.com")
    pair.target.execute(
        "INSERT INTO events VALUES (1, %s), (2, %s), (3, %s)",
        (
            Jsonb({"actor": {"notes": ["met ZORBLAT@acme.example"]}}),
            Jsonb({"by_email": {"zorblat@acme.example": 3}}),
            Jsonb({"actor": {"email": "masked@example.com"}}),
        ),
    )
    assert pair.scan(NAMES)[1] == Counter({"public.events.payload": 2})


def test_a_json_path_original_is_found_elsewhere(pair: Pair) -> None:
    pair.source.execute(
        "INSERT INTO events VALUES (1, %s)", (Jsonb({"actor": {"email": "zorblat@acme.example"}}),)
    )
    pair.target.execute(
        "INSERT INTO events VALUES (1, %s)", (Jsonb({"actor": {"email": "masked@example.com"}}),)
    )
    pair.target.execute("INSERT INTO comments VALUES (1, 'from zorblat@acme.example')")
    paths = (JsonPathField("payload", "$.actor.email"), JsonPathField("payload", "$..missing"))
    fields = {EVENTS: SensitiveFields((), paths)}
    originals, leaks = pair.scan(fields)
    assert _searches_exactly(originals, {"zorblat@acme.example"})
    assert "zorblat" not in repr(originals)  # kept as fingerprints: no original's text to show
    assert leaks == Counter({"public.comments.body": 1})


def test_a_table_without_primary_key_is_read_by_its_copied_rows(pair: Pair) -> None:
    pair.source.execute("INSERT INTO keyless VALUES (1, 'Zorblat Quenwick'), (2, 'Other Tenant')")
    pair.target.execute("INSERT INTO keyless VALUES (1, 'Zorblat Quenwick')")
    pair.target.execute("INSERT INTO comments VALUES (1, 'mentions Other Tenant')")
    keyless = {TableName("public", "keyless"): SensitiveFields((SensitiveColumn("full_name"),), ())}
    originals, leaks = pair.scan(keyless, copied="organization_id = 1")
    assert _searches_exactly(originals, {"Zorblat Quenwick"})
    assert leaks == Counter({"public.keyless.full_name": 1})


def test_originals_are_read_in_the_given_snapshot(pair: Pair, stack: Stack) -> None:
    _user(pair.source, "Zorblat Quenwick")
    _user(pair.target, "Zorblat Quenwick")
    source_dsn = pair.source.info.dsn
    with psycopg.connect(source_dsn, password=stack.password) as snapshot:
        snapshot.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        snapshot.execute("SELECT 1")  # the snapshot is taken here
        pair.source.execute("UPDATE users SET full_name = 'Renamed Since' WHERE id = 1")
        originals = original_values(
            snapshot, read_catalog(snapshot), NAMES, lambda _: [(sql.SQL("true"), {})]
        )
    assert _searches_exactly(originals, {"Zorblat Quenwick"})
    assert find_leaks(pair.target, read_catalog(pair.target), originals).leaks == Counter(
        {"public.users.full_name": 1}
    )


def _searches_exactly(originals: Originals, values: set[str]) -> bool:
    """The scan searches for these values and for no other (it keeps no original's text to list)."""
    return originals.searched == len({value.casefold() for value in values}) and all(
        map(originals.includes, values)
    )


def _full_scan(pair: Pair, fields: dict[TableName, SensitiveFields]) -> LeakScan:
    originals = original_values(
        pair.source, read_catalog(pair.source), fields, lambda _: [(sql.SQL("true"), {})]
    )
    return find_leaks(pair.target, read_catalog(pair.target), originals)


def test_originals_that_differ_only_in_case_are_searched_once(pair: Pair) -> None:
    pair.source.execute(
        "INSERT INTO users (id, full_name) VALUES (1, 'MARY'), (2, 'Mary'), (3, 'Mary Quenwick')"
    )
    pair.target.execute("INSERT INTO users (id, full_name) VALUES (1, 'A'), (2, 'B'), (3, 'C')")
    pair.target.execute("INSERT INTO comments VALUES (1, 'mary'), (2, 'MARY QUENWICK')")
    scan = _full_scan(pair, {USERS: SensitiveFields((SensitiveColumn("full_name"),), ())})
    assert scan.leaks == Counter({"public.comments.body": 1})
    assert scan.common_words == Counter({"public.comments.body": 1})


def test_a_one_word_original_found_as_a_word_is_reported_and_inside_a_longer_word_not_at_all(
    pair: Pair,
) -> None:
    _user(pair.source, "Ann")
    _user(pair.target, "Masked Person")
    pair.target.execute("INSERT INTO comments VALUES (1, 'Annual report; see annex'), (2, 'Joanne')")
    assert _full_scan(pair, NAMES) == LeakScan(Counter(), Counter(), Counter())
    # A one-word original is an ordinary word too (the city Charlotte Amalie): reported, not failed on.
    pair.target.execute("INSERT INTO comments VALUES (3, 'ask ann_ops or Ann.')")
    assert _full_scan(pair, NAMES) == LeakScan(Counter(), Counter({"public.comments.body": 1}), Counter())


def test_a_masked_column_that_kept_its_originals_leaks_them_and_a_few_by_chance_are_reported(
    pair: Pair,
) -> None:
    first_names = {USERS: SensitiveFields((SensitiveColumn("full_name"),), ())}
    names = ["Mary", "Linda", "Susan", "Karen"]
    for conn, written in ((pair.source, names), (pair.target, ["Mary", "Linda", "Susan", "Omar"])):
        conn.cursor().executemany(
            "INSERT INTO users (id, full_name) VALUES (%s, %s)", list(enumerate(written))
        )
    kept = _full_scan(pair, first_names)  # three of four rows still hold their own one-word originals
    assert kept.leaks == Counter({"public.users.full_name": 3})
    pair.target.execute("UPDATE users SET full_name = 'Zed' WHERE id IN (1, 2)")
    pair.target.execute("UPDATE users SET full_name = 'Mary' WHERE id = 3")  # another row's original, faked
    by_chance = _full_scan(pair, first_names)  # only Mary's row 0 kept hers: a fake drawn equal to it
    assert by_chance.leaks == Counter() and by_chance.kept_by_chance == Counter({"public.users.full_name": 1})


def test_short_originals_and_bare_numbers_are_counted_not_searched(pair: Pair) -> None:
    pair.source.execute("INSERT INTO users (id, full_name, last_four) VALUES (1, 'Al', '4242')")
    pair.target.execute("INSERT INTO users (id, full_name, last_four) VALUES (1, 'Masked Person', '9999')")
    pair.target.execute("INSERT INTO comments VALUES (1, 'Al paid with 4242')")
    fields = {USERS: SensitiveFields((SensitiveColumn("full_name"), SensitiveColumn("last_four")), ())}
    originals, leaks = pair.scan(fields)
    assert leaks == Counter()
    assert originals.not_searched == Counter({"one or two characters": 1, "bare number": 1})


def test_a_padded_char_original_is_found_without_its_padding(pair: Pair) -> None:
    _user(pair.source, "x", code="QX-77-ALPHA")
    _user(pair.target, "y", code="masked")
    pair.target.execute("INSERT INTO comments VALUES (1, 'code QX-77-ALPHA')")
    fields = {USERS: SensitiveFields((SensitiveColumn("code"),), ())}
    assert pair.scan(fields)[1] == Counter({"public.comments.body": 1})


def test_a_regex_mask_that_matched_nothing_leaves_its_values_as_originals(pair: Pair) -> None:
    _user(pair.source, "Zorblat Quenwick")
    _user(pair.target, "Zorblat Quenwick")  # regex_mask "ZZZZ" changed nothing
    fields = {USERS: SensitiveFields((SensitiveColumn("full_name", pattern=re.compile("ZZZZ")),), ())}
    originals, leaks = pair.scan(fields)
    assert originals.masked_nothing == ["public.users.full_name"]
    assert leaks == Counter({"public.users.full_name": 1})


def test_a_regex_mask_protects_what_it_matched_and_nothing_else(pair: Pair) -> None:
    note = "call zorblat@acme.example before noon"
    pair.source.execute(
        "INSERT INTO users (id, notes) VALUES (1, %s), (2, 'no contact given'), (3, 'write to q@acme.example')",
        (note,),
    )
    pair.target.execute(
        "INSERT INTO users (id, notes) VALUES (1, 'call [email] before noon'), (2, 'no contact given'), "
        "(3, 'write to q@acme.example')"
    )
    email = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
    fields = {USERS: SensitiveFields((SensitiveColumn("notes", pattern=email),), ())}
    originals, leaks = pair.scan(fields)
    assert _searches_exactly(originals, {"zorblat@acme.example", "q@acme.example"})
    assert originals.masked_nothing == []
    assert leaks == Counter({"public.users.notes": 1})  # row 3: the pattern's match survived


def test_a_static_value_is_no_original_of_itself(pair: Pair) -> None:
    pair.source.execute("INSERT INTO users (id, notes) VALUES (1, 'REDACTED'), (2, 'Zorblat Quenwick')")
    pair.target.execute("INSERT INTO users (id, notes) VALUES (1, 'REDACTED'), (2, 'REDACTED')")
    fields = {USERS: SensitiveFields((SensitiveColumn("notes", kept="REDACTED"),), ())}
    originals, leaks = pair.scan(fields)
    assert _searches_exactly(originals, {"Zorblat Quenwick"}) and leaks == Counter()


def test_every_masking_action_but_passthrough_is_sensitive(tmp_path: Path, pair: Pair) -> None:
    (tmp_path / "mask-rules.yaml").write_text(
        "version: '1.0'\n"
        "tables:\n"
        "  public.users:\n"
        "    columns:\n"
        "      full_name: { action: regex_mask, pattern: ZZZZ, replace: Y }\n"
        "      email: { action: fake, provider: email }\n"
        "      notes: { action: static, value: gone }\n"
        "      last_four: { action: hash }\n"
        "      code: { action: passthrough }\n"
        "  public.comments:\n"
        "    columns:\n"
        "      body: { action: 'null' }\n"
    )
    (tmp_path / "commercial-extensions.yaml").write_text(
        "version: '1.0'\n"
        "subset:\n  - table: public.users\n    predicate: id = 1\n"
        "json_mask:\n"
        "  - column: public.events.payload\n"
        "    paths:\n"
        "      - { path: $.a, action: static, value: x }\n"
        "      - { path: $.b, action: remove }\n"
    )
    config = load_config(tmp_path / "mask-rules.yaml", tmp_path / "commercial-extensions.yaml")
    fields = sensitive_fields(config, read_catalog(pair.source))
    assert {column.name for column in fields[USERS].columns} == {"full_name", "email", "notes", "last_four"}
    assert [column.name for column in fields[TableName("public", "comments")].columns] == ["body"]
    assert fields[EVENTS].json_paths == (
        JsonPathField("payload", "$.a", "x"),
        JsonPathField("payload", "$.b"),
    )


def test_json_booleans_and_a_json_static_value_are_no_originals(pair: Pair) -> None:
    pair.source.execute(
        "INSERT INTO events VALUES (1, %s)",
        (Jsonb({"admin": True, "plan": "REDACTED", "owner": "Zorblat Q"}),),
    )
    pair.target.execute(
        "INSERT INTO events VALUES (1, %s)", (Jsonb({"admin": True, "plan": "REDACTED", "owner": "Masked"}),)
    )
    pair.target.execute("INSERT INTO comments VALUES (1, 'true story: plan REDACTED')")
    paths = (
        JsonPathField("payload", "$.admin"),
        JsonPathField("payload", "$.plan", kept="REDACTED"),
        JsonPathField("payload", "$.owner"),
    )
    originals, leaks = pair.scan({EVENTS: SensitiveFields((), paths)})
    assert _searches_exactly(originals, {"Zorblat Q"}) and leaks == Counter()


def test_json_paths_of_a_table_that_gets_no_rows_are_not_read_back(tmp_path: Path, pair: Pair) -> None:
    (tmp_path / "mask-rules.yaml").write_text(
        "version: '1.0'\ntables:\n  public.events:\n    strategy: exclude\n"
    )
    (tmp_path / "commercial-extensions.yaml").write_text(
        "version: '1.0'\nsubset:\n  - table: public.users\n    predicate: id = 1\n"
        "json_mask:\n  - column: public.events.payload\n    paths:\n      - { path: $.a, action: remove }\n"
    )
    config = load_config(tmp_path / "mask-rules.yaml", tmp_path / "commercial-extensions.yaml")
    assert sensitive_fields(config, read_catalog(pair.source)) == {}


def test_an_original_next_to_an_escaped_character_is_found_as_in_its_value(pair: Pair) -> None:
    """COPY writes a newline or a tab as a backslash and a letter: the test sees the value itself, in
    which the original after a newline begins a word."""
    _user(pair.source, "Zorblat Quenwick")
    _user(pair.target, "Masked Person")
    pair.target.execute(
        "INSERT INTO comments VALUES (1, %s), (2, %s), (3, %s)",
        ("first line\nzorblat quenwick", "tab\tZorblat Quenwick\r\n", "C:\\Zorblat Quenwick"),
    )
    assert pair.scan(NAMES)[1] == Counter({"public.comments.body": 3})


def test_an_original_holding_a_quote_or_backslash_is_found_in_json_and_text(pair: Pair) -> None:
    """In a document's text such an original is escaped (``\\"``), and in COPY's text the backslash is
    escaped again: found all the same."""
    _user(pair.source, 'Zorblat "Zee" O\\Quenwick')
    _user(pair.target, "Masked Person")
    pair.target.execute(
        "INSERT INTO events VALUES (1, %s)", (Jsonb({"note": 'met zorblat "zee" o\\quenwick today'}),)
    )
    pair.target.execute("INSERT INTO comments VALUES (1, %s)", ('cc Zorblat "Zee" O\\Quenwick',))
    assert pair.scan(NAMES)[1] == Counter({"public.events.payload": 1, "public.comments.body": 1})


def test_an_original_written_with_unicode_escapes_in_a_json_document_is_found(pair: Pair) -> None:
    """A json (not jsonb) column keeps its text as written: ``\\u0061`` is an ``a``, and a key counts."""
    _user(pair.source, "Zorblat Quenwick")
    _user(pair.target, "Masked Person")
    pair.target.execute(
        "INSERT INTO documents (id, body) VALUES (1, %s), (2, %s), (3, %s)",
        (
            '{"note": "Zorbl\\u0061t Quenwick"}',
            '{"Zorblat \\u0051uenwick": 1}',
            '{"note": "Zorblat Quenwicks"}',
        ),
    )
    assert pair.scan(NAMES)[1] == Counter({"public.documents.body": 2})


def test_an_original_inside_an_array_of_text_is_found(pair: Pair) -> None:
    _user(pair.source, "Zorblat Quenwick")
    _user(pair.target, "Masked Person")
    pair.target.execute(
        "INSERT INTO documents (id, tags) VALUES (1, %s), (2, %s)",
        (["vip", "Zorblat Quenwick"], ["vip"]),
    )
    assert pair.scan(NAMES)[1] == Counter({"public.documents.tags": 1})


def test_every_leaking_row_of_a_table_read_in_many_chunks_is_counted_and_no_other(pair: Pair) -> None:
    """Tables are read in chunks of many rows: each leak is counted once, in its own column, whatever the
    rows before it (``ß`` folds to two letters) and wherever the chunks end."""
    _user(pair.source, "Zorblat Quenwick", email="zorblat@acme.example")
    _user(pair.target, "Masked Person", email="masked@example.com")
    leaking = {7, 15_000, 29_999}
    rows = [
        (
            index,
            "Straße " * 8 + ("ZORBLAT QUENWICK" if index in leaking else "nobody here"),
            '{"to": "zorblat@acme.example"}' if index == 15_001 else '{"to": "Großmann"}',
        )
        for index in range(30_000)
    ]
    with pair.target.cursor().copy("COPY documents (id, title, body) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    assert pair.scan(NAMES)[1] == Counter({"public.documents.title": 3, "public.documents.body": 1})


def test_a_long_original_is_found_whether_or_not_it_quotes_a_shorter_one(pair: Pair) -> None:
    """A long original (a note) that quotes a shorter one is searched through it; one that quotes none is
    searched for itself."""
    quoting = "Customer asked to move every invoice to zorblat@acme.example before the end of the quarter"
    alone = "Customer asked to move every invoice to the new billing address before the end of the quarter"
    pair.source.execute(
        "INSERT INTO users (id, email, notes) VALUES (1, 'zorblat@acme.example', %s), (2, 'q@acme.example', %s)",
        (quoting, alone),
    )
    pair.target.execute(
        "INSERT INTO users (id, email, notes) VALUES (1, 'a@example.com', 'x'), (2, 'b@example.com', 'y')"
    )
    pair.target.execute(
        "INSERT INTO comments VALUES (1, %s), (2, %s), (3, %s)", (quoting, alone.upper(), alone[:-1])
    )
    fields = {USERS: SensitiveFields((SensitiveColumn("email"), SensitiveColumn("notes")), ())}
    assert pair.scan(fields)[1] == Counter({"public.comments.body": 2})


def test_a_dotted_json_path_reads_what_is_there_and_nothing_through_arrays_or_scalars(pair: Pair) -> None:
    """The server reads a dotted path of a jsonb column: an object at the path gives its strings at any
    depth, a number as written, and a path through an array, a scalar, a null or a missing key nothing.
    Other paths (recursive descent) are read from the document as before."""
    pair.source.execute(
        "INSERT INTO events VALUES (1, %s), (2, %s), (3, %s), (4, %s), (5, %s), (6, NULL), (7, %s)",
        (
            Jsonb({"actor": {"email": {"work": "zorblat@acme.example", "tags": ["Quenwick Holdings"]}}}),
            Jsonb({"actor": {"email": 12345.5}}),
            Jsonb({"actor": [{"email": "through@array.example"}]}),
            Jsonb({"actor": "scalar@text.example"}),
            Jsonb({"actor": {"email": None}}),
            Jsonb({"x": [{"deep": "Deep Secret Value"}]}),
        ),
    )
    paths = (JsonPathField("payload", "$.actor.email"), JsonPathField("payload", "$..deep"))
    originals, _ = pair.scan({EVENTS: SensitiveFields((), paths)})
    assert _searches_exactly(originals, {"zorblat@acme.example", "Quenwick Holdings", "Deep Secret Value"})
    assert originals.not_searched == Counter({"bare number": 1})


def test_a_dotted_json_path_read_by_the_server_takes_no_boolean_and_counts_each_plain_value(
    pair: Pair,
) -> None:
    """The server sends the text at a dotted path: a boolean there is no original (``true`` would match
    every "true"), and a bare number found in many documents is counted in each."""
    pair.source.execute(
        "INSERT INTO events VALUES (1, %s), (2, %s), (3, %s)",
        (
            Jsonb({"actor": {"email": True, "seat": 4242}}),
            Jsonb({"actor": {"email": "Zorblat Quenwick", "seat": 4242}}),
            Jsonb({"actor": {"email": "Zorblat Quenwick", "seat": 4242}}),
        ),
    )
    paths = (JsonPathField("payload", "$.actor.email"), JsonPathField("payload", "$.actor.seat"))
    originals, _ = pair.scan({EVENTS: SensitiveFields((), paths)})
    assert _searches_exactly(originals, {"Zorblat Quenwick"})
    assert originals.not_searched == Counter({"bare number": 3})


def test_a_masked_column_that_is_the_primary_key_is_read_too(pair: Pair) -> None:
    for conn in (pair.source, pair.target):
        conn.execute("CREATE TABLE handles (handle text PRIMARY KEY)")
    pair.source.execute("INSERT INTO handles VALUES ('zorblat.quenwick')")
    pair.target.execute("INSERT INTO handles VALUES ('masked.handle')")
    pair.target.execute("INSERT INTO comments VALUES (1, 'ask zorblat.quenwick')")
    fields = {TableName("public", "handles"): SensitiveFields((SensitiveColumn("handle"),), ())}
    originals, leaks = pair.scan(fields)
    assert _searches_exactly(originals, {"zorblat.quenwick"})
    assert leaks == Counter({"public.comments.body": 1})
