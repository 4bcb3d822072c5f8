"""The rows' way from the source to the target on a schema of awkward values (tabs, newlines, backslashes,
NULLs, ``\\N`` as text, unicode) in masked and unmasked columns: unmasked columns arrive byte for byte, masked
ones as the plan's Python maskers give them, also where the server applies the mask in the SELECT."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.types.string import TextLoader

from repro_pipeline.embedded.stack import Stack
from repro_pipeline.engine.config import load_config
from repro_pipeline.engine.load.copy_text import UnwritableValue
from repro_pipeline.engine.load.loader import load_repro
from repro_pipeline.engine.load.plan import SubsetPlan, plan_subset
from repro_pipeline.engine.load.transfer import _masked_row, _python_maskers
from repro_pipeline.engine.masking import in_select, values
from repro_pipeline.engine.masking.in_select import SelectMask
from repro_pipeline.engine.masking.json_paths import JsonPathAction
from repro_pipeline.engine.secrets import Secret
from repro_pipeline.engine.source.catalog import TableName
from repro_pipeline.engine.source.snapshot import open_source_snapshot
from repro_pipeline_tests.engine.load.databases import empty_target, source_database

PEOPLE = TableName("public", "people")
AWKWARD = [
    "tab\there",
    "new\nline\r\n",
    "back\\slash \\N \\t",
    "\\N",
    "Zoë Ångström 日本語 🦄",
    "\b\f\v\x01",
    "",
    None,
]
SCHEMA = """
CREATE TABLE accounts (id int PRIMARY KEY);
CREATE TABLE people (
    id int PRIMARY KEY, account_id int NOT NULL REFERENCES accounts, name text, note text, code char(20),
    tags text[], profile jsonb, raw json, secret text, hidden text
);
INSERT INTO accounts VALUES (1), (2);
"""
MASK_RULES = """
tables:
  public.people:
    strategy: transform
    columns:
      name: {action: fake, provider: full_name}
      code: {action: hash}
      secret: {action: static, value: "re\\tdacted\\\\"}
      hidden: {action: "null"}
"""
EXTENSIONS = """
version: "1.0"
subset:
  - table: public.accounts
    predicate: "id = :organization_id"
json_mask:
  - column: public.people.profile
    paths:
      - {path: $.contact.email, action: fake, provider: email}
      - {path: $.contact.notes, action: remove}
      - {path: $.notes, action: remove}
"""
UNMASKED = sql.SQL("COPY (SELECT id, account_id, note, tags, raw FROM people ORDER BY id) TO STDOUT")


def _profile(index: int, value: str | None) -> str | None:
    documents: list[str | None] = [
        '{"contact": {"email": %s, "notes": %s}, "notes": [1, 2.50, 1e400], "keep": %s}',
        '{"contact": "not an object", "notes": %s, "n": 0.1, "m": %s, "k": %s}',
        '[{"contact": {"notes": %s}}, %s, %s]',
        '{"contact": {"email": null, "notes": [%s, %s]}, "x": {"y": %s}}',
        None,
        '"a scalar %s%s%s"',
    ]
    template = documents[index % len(documents)]
    if template is None:
        return None
    text = (value or "").replace("\\", "\\\\").replace('"', '\\"')
    for control, escape in (("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t"), ("\b", "\\b"), ("\f", "\\f")):
        text = text.replace(control, escape)
    text = "".join(f"\\u{ord(c):04x}" if ord(c) < 0x20 else c for c in text)
    quoted = f'"{text}"'
    if template.startswith('"a scalar'):
        return template % (text, text, text)
    return template % (quoted, quoted, quoted)


def _insert_rows() -> str:
    rows = []
    for index, value in enumerate(AWKWARD * 3):
        literal = "NULL" if value is None else "E'" + value.replace("\\", "\\\\").replace("'", "''") + "'"
        literal = literal.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
        literal = (
            literal.replace("\b", "\\b").replace("\f", "\\f").replace("\v", "\\013").replace("\x01", "\\001")
        )
        profile = _profile(index, value)
        profile_literal = "NULL" if profile is None else "'" + profile.replace("'", "''") + "'"
        rows.append(
            f"({index}, {1 + index % 2}, {literal}, {literal}, left({literal}, 20), ARRAY[{literal}, 'x'], "
            f"{profile_literal}, {profile_literal}::json, {literal}, {literal})"
        )
    return "INSERT INTO people VALUES " + ",\n".join(rows) + ";"


@pytest.fixture(scope="module")
def awkward_source(stack: Stack) -> Iterator[str]:
    with source_database(stack, "awkward_values", SCHEMA + _insert_rows()) as dsn:
        yield dsn


def _plan(source: str, tmp_path: Path, account: int) -> SubsetPlan:
    (tmp_path / "mask-rules.yaml").write_text('version: "1.0"\n' + MASK_RULES)
    (tmp_path / "commercial-extensions.yaml").write_text(EXTENSIONS)
    config = load_config(tmp_path / "mask-rules.yaml", tmp_path / "commercial-extensions.yaml")
    with open_source_snapshot(source) as snapshot:
        return plan_subset(snapshot, config, Secret(secrets.token_hex(32)), account)


def _load(source: str, target: str, plan: SubsetPlan) -> None:
    with open_source_snapshot(source) as snapshot:
        load_repro(snapshot, target, plan, run_id="transfer", started_at=datetime.now(UTC), batch_size=4)


def _copied(dsn: str, query: sql.Composable) -> bytes:
    with psycopg.connect(dsn) as conn, conn.cursor().copy(query) as copy:
        return b"".join(bytes(block) for block in copy)


def _rows(dsn: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query, params).fetchall()


# GB18030 can write every character, and a byte of a multibyte one can look like a backslash: its rows are
# parsed by psycopg (not split on their tabs), and the maskers left to Python still apply.
@pytest.mark.parametrize(("account", "client_encoding"), [(1, "UTF8"), (2, "UTF8"), (1, "GB18030")])
def test_unmasked_columns_arrive_byte_for_byte_and_masked_ones_as_the_python_maskers_give_them(
    awkward_source: str, stack: Stack, tmp_path: Path, account: int, client_encoding: str
) -> None:
    source = make_conninfo(awkward_source, options=f"-c client_encoding={client_encoding}")
    plan = _plan(source, tmp_path, account)
    masking = plan.mask_plan.for_table(PEOPLE)
    with empty_target(stack, "transfer") as target:
        _load(source, target, plan)
        source_rows = _copied(awkward_source, UNMASKED).split(b"\n")
        assert _copied(target, UNMASKED).split(b"\n")[:-1] == [
            line for line in source_rows[:-1] if line.split(b"\t")[1] == str(account).encode()
        ]
        originals = _rows(
            awkward_source,
            "SELECT id, name, code, secret, hidden, profile::text FROM people WHERE account_id = %s ORDER BY id",
            account,
        )
        expected = []
        for row_id, name, code, secret, hidden, profile in originals:
            masked_profile = masking.masker_for("profile")(profile)  # type: ignore[misc]
            expected.append(
                (
                    row_id,
                    masking.masker_for("name")(name),  # type: ignore[misc]
                    masking.masker_for("code")(code),  # type: ignore[misc]
                    masking.masker_for("secret")(secret),  # type: ignore[misc]
                    masking.masker_for("hidden")(hidden),  # type: ignore[misc]
                    None
                    if masked_profile is None
                    else _rows(target, "SELECT %s::jsonb::text", masked_profile)[0][0],
                )
            )
        loaded = _rows(
            target, "SELECT id, name, rtrim(code), secret, hidden, profile::text FROM people ORDER BY id"
        )
    assert len(originals) == len(AWKWARD) * 3 // 2
    assert loaded == expected
    assert {row[3] for row in loaded} - {None} == {"re\tdacted\\"}
    assert {row[4] for row in loaded} == {None}


DOCUMENTS = [
    '{"contact": {"email": "a@b.c", "notes": "x", "keep": 1.50}, "notes": [1, 2.50], "z": "\\t\\u0001é"}',
    '{"contact": "not an object", "notes": {"deep": true}}',
    '{"contact": {"notes": null}}',
    '{"contact": [1, 2], "other": {}}',
    "[1, 2]",
    '"a scalar"',
    "null",
    "{}",
    None,
]


def _server_side(masker: SelectMask, dsn: str) -> list[str | None]:
    """Each of DOCUMENTS through the masker's SELECT expression on the server, then its Python remainder."""
    query = sql.SQL("SELECT {} FROM unnest(%s::jsonb[]) WITH ORDINALITY AS d(profile, n) ORDER BY n").format(
        masker.expression(sql.Identifier("profile"))
    )
    with psycopg.connect(dsn) as conn:
        conn.adapters.register_loader("jsonb", TextLoader)
        printed = [row[0] for row in conn.execute(query, (DOCUMENTS,))]
    return [masker.remaining(text) if masker.remaining else text for text in printed]


def _canonical(dsn: str, documents: list[str | None]) -> list[str | None]:
    with psycopg.connect(dsn) as conn:
        conn.adapters.register_loader("jsonb", TextLoader)
        return [conn.execute("SELECT %s::jsonb", (document,)).fetchone()[0] for document in documents]  # type: ignore[index]


@pytest.mark.parametrize(
    "paths",
    [
        [("$.contact.notes", None), ("$.notes", None)],
        [("$.contact.email", "fake"), ("$.contact.notes", None), ("$.notes", None)],
        [("$.notes", None), ("$..email", "fake"), ("$.contact.notes", None)],
        [("$.contact", "hash"), ("$.contact.notes", None), ("$.other", None)],
        [("$.contact.email", "fake"), ("$.z", "hash"), ("$.missing.key", "hash")],
    ],
    ids=["removals only", "the guide's shape", "after a recursive path", "under a masked key", "parts only"],
)
def test_what_the_server_does_in_the_select_gives_the_python_maskers_value(
    stack: Stack, paths: list[tuple[str, str | None]]
) -> None:
    salt = Secret("s" * 64)
    rules = {None: None, "fake": values.fake(salt, "scope", "email", {}), "hash": values.hashed(salt)}
    actions = [JsonPathAction(path, rules[rule]) for path, rule in paths]
    masker = in_select.document_masker(actions, jsonb=True)
    assert isinstance(masker, SelectMask)
    documents = _canonical(stack.target_admin_dsn, DOCUMENTS)
    python = [masker(document) for document in documents]
    server = _server_side(masker, stack.target_admin_dsn)
    assert _canonical(stack.target_admin_dsn, server) == _canonical(stack.target_admin_dsn, python)
    if all(rule is None for _, rule in paths):
        assert masker.remaining is None
        assert server == python  # byte for byte: nothing but the server touched them


def test_a_json_column_is_masked_in_python() -> None:
    assert not isinstance(in_select.document_masker([JsonPathAction("$.a", None)], jsonb=False), SelectMask)


def test_null_static_and_removals_are_left_to_the_server(awkward_source: str, tmp_path: Path) -> None:
    masking = _plan(awkward_source, tmp_path, 1).mask_plan.for_table(PEOPLE)
    in_python = {masking.table.copy_columns[position].name for position, _ in _python_maskers(masking)}
    assert in_python == {"name", "code", "profile"}
    profile = masking.masker_for("profile")
    assert isinstance(profile, SelectMask) and profile.remaining is not None


def test_a_parsed_row_whose_masked_value_the_encoding_cannot_write_is_refused_naming_its_position() -> None:
    """Rows in an encoding whose bytes can look like a backslash are parsed by psycopg, then masked."""
    assert _masked_row((1, "x", "y"), [(2, lambda value: "日本")], "shift_jis") == [1, "x", "日本"]
    with pytest.raises(UnwritableValue) as refused:
        _masked_row((1, "x", "y"), [(1, lambda value: "Zoë")], "shift_jis")
    assert refused.value.position == 1
