"""Rows read with ``COPY ... TO STDOUT``: one statement streams a whole table, where a cursor's stream pays a
round trip per row. Memory stays bounded: rows come typed one at a time, or as text in chunks of about
``CHUNK_BYTES``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

CHUNK_BYTES = 1 << 20


def copy_rows(
    conn: psycopg.Connection[TupleRow],
    select: sql.Composed,
    params: Mapping[str, Any] | None = None,
    *,
    described: sql.Composed,
) -> Iterator[tuple[Any, ...]]:
    """The rows of ``select``, typed as a cursor would type them (same loaders).

    ``described`` is a query with the same result columns that reads no rows (``... LIMIT 0``): COPY
    reports no column types, so they are taken from it.
    """
    cursor = conn.cursor()
    cursor.execute(described, params)
    types = [column.type_code for column in cursor.description or ()]
    with cursor.copy(sql.SQL("COPY ({}) TO STDOUT").format(select), params) as copy:
        copy.set_types(types)
        yield from copy.rows()


def copy_text_chunks(conn: psycopg.Connection[TupleRow], select: sql.Composed) -> Iterator[str]:
    """The rows of ``select`` in COPY's text format (fields split by tabs, a row per line, a backslash
    before every escaped character), NULL written as an empty field, in chunks of whole lines."""
    encoding = conn.info.encoding
    with conn.cursor().copy(sql.SQL("COPY ({}) TO STDOUT (NULL '')").format(select)) as copy:
        parts: list[bytes] = []
        size = 0
        for row in copy:
            parts.append(bytes(row))
            size += len(row)
            if size >= CHUNK_BYTES:
                yield b"".join(parts).decode(encoding)
                parts, size = [], 0
        if parts:
            yield b"".join(parts).decode(encoding)


_COPY_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def copy_text_fields(line: str) -> list[str | None]:
    """One line of ``copy_text_chunks`` as its fields' values (an empty field is None)."""
    return [_unescaped(field) if field else None for field in line.split("\t")]


def _unescaped(field: str) -> str:
    if "\\" not in field:
        return field
    out: list[str] = []
    escaped = False
    for char in field:
        if escaped:
            out.append(_COPY_ESCAPES.get(char, char))
            escaped = False
        elif char == "\\":
            escaped = True
        else:
            out.append(char)
    return "".join(out)
