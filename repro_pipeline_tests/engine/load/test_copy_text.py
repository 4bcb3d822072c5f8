"""COPY's text format read and written field by field: checked against the server's own COPY output and
input, and on lines where only the masked fields may change."""

from __future__ import annotations

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from psycopg import sql

from repro_pipeline.embedded.stack import Stack
from repro_pipeline.engine.load.copy_text import (
    UnwritableValue,
    decode_field,
    encode_field,
    line_masker,
    splits_safely,
)
from repro_pipeline.engine.masking.json_paths import JsonPathAction, PartsMasker

NASTY = [
    "",
    "plain",
    "tab\there",
    "new\nline",
    "carriage\rreturn",
    "back\\slash",
    "\\N",
    "\\.",
    "ends with a backslash\\",
    "\b\f\v and \x01 \x1f \x7f",
    "Zoë Ångström 日本語 🦄",
    "\\t is not a tab",
    " leading and trailing ",
]


def _server_fields(conn: psycopg.Connection[tuple[object, ...]], values: list[str | None]) -> list[bytes]:
    """Each value as the server writes it in COPY's text format."""
    query = sql.SQL("COPY (SELECT {}) TO STDOUT").format(
        sql.SQL(", ").join(sql.Literal(value) + sql.SQL("::text") for value in values)
    )
    with conn.cursor().copy(query) as copy:
        line = b"".join(bytes(block) for block in copy)
    return line.rstrip(b"\n").split(b"\t")


def test_fields_read_and_written_as_the_server_does(stack: Stack) -> None:
    values: list[str | None] = [*NASTY, None]
    with psycopg.connect(stack.target_admin_dsn) as conn:
        fields = _server_fields(conn, values)
    assert len(fields) == len(values)
    for value, field in zip(values, fields, strict=True):
        assert decode_field(field, "utf-8") == value
        assert encode_field(value, "utf-8") == field


def test_escapes_the_server_accepts_on_input_are_read_as_it_reads_them(stack: Stack) -> None:
    written = [b"\\101\\x42\\7", b"\\q\\x\\8", b"\\xE6\\x97\\xa5", b"\\1010\\x414"]
    with psycopg.connect(stack.target_admin_dsn) as conn:
        conn.execute("CREATE TEMPORARY TABLE escapes (position int, value text)")
        with conn.cursor().copy("COPY escapes FROM STDIN") as copy:
            copy.write(b"".join(b"%d\t%s\n" % (position, field) for position, field in enumerate(written)))
        stored = [value for (value,) in conn.execute("SELECT value FROM escapes ORDER BY position")]
    assert stored == ["AB\x07", "qx8", "日", "A0A4"]
    assert [decode_field(field, "utf-8") for field in written] == stored


@given(
    st.one_of(
        st.none(), st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))
    )
)
def test_any_value_comes_back_from_its_field(value: str | None) -> None:
    field = encode_field(value, "utf-8")
    assert b"\t" not in field and b"\n" not in field and b"\r" not in field
    assert decode_field(field, "utf-8") == value


def test_only_the_masked_fields_of_a_line_change() -> None:
    untouched = [b"1", b"tab\\there", b"\\N", "Zoë\\\\".encode(), b"new\\nline"]
    lines = b"".join(
        b"\t".join([*untouched[:2], field, *untouched[2:]]) + b"\n" for field in (b"a\\tb", b"\\N")
    )
    mask = line_masker([(2, lambda value: None if value is None else f"<{value}>\n")], "utf-8")
    masked = mask(lines).split(b"\n")
    assert masked[-1] == b""
    assert [line.split(b"\t") for line in masked[:-1]] == [
        [*untouched[:2], b"<a\\tb>\\n", *untouched[2:]],
        [*untouched[:2], b"\\N", *untouched[2:]],
    ]


@pytest.mark.parametrize(("encoding", "safe"), [("utf-8", True), ("latin-1", True), ("sjis", False)])
def test_encodings_whose_bytes_can_look_like_a_backslash_are_not_split(encoding: str, safe: bool) -> None:
    assert splits_safely(encoding) is safe


def test_a_masked_value_the_encoding_cannot_write_is_refused_naming_its_position() -> None:
    line = "1\té\tß\n".encode("latin-1")
    assert line_masker([(2, lambda value: "Åsa")], "latin-1")(line) == "1\té\tÅsa\n".encode("latin-1")
    with pytest.raises(UnwritableValue) as refused:
        line_masker([(2, lambda value: "日本")], "latin-1")(line)
    assert refused.value.position == 2


def test_a_document_sent_in_parts_keeps_its_rest_as_sent_and_gets_its_masked_members() -> None:
    masker = PartsMasker([JsonPathAction("$.actor.email", lambda value: "masked@example.com")], ["actor"])
    rest = b'{"note": "tab\\\\there \\\\"quoted\\\\"", "n": 1.50}'
    actor = b'{"email": "jane@acme.example", "id": 7}'
    mask = line_masker([(1, masker)], "utf-8")
    lines = (
        b"1\t"
        + rest
        + b"\x01"
        + actor
        + b"\tx\n"
        + b"2\t\\N\tx\n"
        + b'3\t"a scalar"\tx\n'
        + b"4\t{}\x01\tx\n"
    )
    assert mask(lines).split(b"\n") == [
        b"1\t" + rest[:-1] + b', "actor": {"email": "masked@example.com", "id": 7}}\tx',
        b"2\t\\N\tx",
        b'3\t"a scalar"\tx',
        b"4\t{}\tx",
        b"",
    ]
    assert masker(decode_field(lines.split(b"\t")[1], "utf-8")) == decode_field(
        mask(lines).split(b"\t")[1], "utf-8"
    )
