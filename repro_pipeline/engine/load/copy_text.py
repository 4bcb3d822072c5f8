"""Masking rows of COPY's text format without parsing them: each line is split on its tabs, only the fields a
masker needs are decoded, masked and encoded again, and the line is joined back, so the other columns go
from the source to the target as the bytes the source sent. A jsonb document the server sent in parts
(``PartsMasker``) has only its parts decoded: the rest of its bytes goes on as sent too.

The text format (PostgreSQL's ``COPY`` documentation, "Text Format"): one row per line, fields separated by a
tab, ``\\N`` for NULL, and a backslash escaping the characters that would break the line: ``\\\\``, ``\\n``,
``\\r``, ``\\t``, ``\\b``, ``\\f``, ``\\v``; on input also ``\\`` with one to three octal digits or ``x`` with
one or two hex digits (a byte), and a backslash before any other character stands for that character. A raw tab
or newline is always a separator, since one inside a value is written escaped. That holds for every encoding
in which a byte below 0x80 is always that ASCII character (see ``splits_safely``).
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Sequence

from repro_pipeline.engine.masking.json_paths import PARTS_SEPARATOR, PartsMasker, with_members
from repro_pipeline.engine.masking.values import ValueMasker

NULL = b"\\N"
# Client encodings PostgreSQL allows in which a byte of a multibyte character can look like a backslash.
_NOT_ASCII_SAFE = frozenset(
    codecs.lookup(name).name
    for name in ("shift_jis", "shift_jis_2004", "big5", "gbk", "gb18030", "johab", "cp949")
)
_SIMPLE_ESCAPES = {b"b": b"\b", b"f": b"\f", b"n": b"\n", b"r": b"\r", b"t": b"\t", b"v": b"\v"}
_ESCAPE = re.compile(rb"\\(x[0-9A-Fa-f]{1,2}|[0-7]{1,3}|.)", re.DOTALL)
_NEEDS_ESCAPE = re.compile("[\\\\\b\f\n\r\t\v]")
_ESCAPED = {"\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}

FieldMasker = tuple[int, ValueMasker]  # a column's position in the line, and its masker


class UnwritableValue(ValueError):
    """A masked value holds a character the COPY data's encoding cannot write (its message quotes no value)."""

    def __init__(self, position: int) -> None:
        super().__init__(
            f"a masked value at position {position} cannot be written in the COPY data's encoding"
        )
        self.position = position


def splits_safely(encoding: str) -> bool:
    """Whether lines in ``encoding`` (a Python codec name) can be split and unescaped byte by byte."""
    return codecs.lookup(encoding).name not in _NOT_ASCII_SAFE


def _unescaped_byte(match: re.Match[bytes]) -> bytes:
    escape = match.group(1)
    if escape[:1] == b"x" and len(escape) > 1:
        return bytes([int(escape[1:], 16)])
    if escape[:1].isdigit() and escape[:1] < b"8":
        return bytes([int(escape, 8) & 0xFF])
    return _SIMPLE_ESCAPES.get(escape, escape)


def decode_field(field: bytes, encoding: str) -> str | None:
    """One field of a text-format line as the value it stands for (None for ``\\N``)."""
    return None if field == NULL else _decoded(field, encoding)


def _decoded(field: bytes, encoding: str) -> str:
    if b"\\" in field:
        field = _ESCAPE.sub(_unescaped_byte, field)
    return field.decode(encoding)


def encode_field(value: str | None, encoding: str) -> bytes:
    """``value`` as one field of a text-format line, escaped as PostgreSQL writes it."""
    if value is None:
        return NULL
    if _NEEDS_ESCAPE.search(value):
        value = _NEEDS_ESCAPE.sub(lambda match: _ESCAPED[match.group()], value)
    return value.encode(encoding)


def line_masker(maskers: Sequence[FieldMasker], encoding: str) -> Callable[[bytes], bytes]:
    """A function from whole lines of text-format COPY data (each ending with a newline) to the same lines
    with the fields at the maskers' positions masked."""
    masked_fields = tuple((position, _field_masker(masker, encoding)) for position, masker in maskers)

    def mask_lines(data: bytes) -> bytes:
        masked_lines = []
        for line in data.split(b"\n")[:-1]:
            fields = line.split(b"\t")
            for position, mask_field in masked_fields:
                try:
                    fields[position] = mask_field(fields[position])
                except UnicodeEncodeError:
                    raise UnwritableValue(position) from None
            masked_lines.append(b"\t".join(fields))
        masked_lines.append(b"")
        return b"\n".join(masked_lines)

    return mask_lines


def _field_masker(masker: ValueMasker, encoding: str) -> Callable[[bytes], bytes]:
    """``masker`` on one field of a line. A jsonb document sent in parts (``PartsMasker``) has only its parts
    decoded: the rest of it, most of its text, goes on as the bytes the source sent."""
    if isinstance(masker, PartsMasker):
        separator = PARTS_SEPARATOR.encode(encoding)
        members_of = masker.members

        def mask_parts(field: bytes) -> bytes:
            rest, found, parts = field.partition(separator)
            if not found:
                return field  # NULL, or not an object: no path applies
            return with_members(rest, encode_field(members_of(_decoded(parts, encoding)), encoding))

        return mask_parts

    def mask_field(field: bytes) -> bytes:
        return encode_field(masker(decode_field(field, encoding)), encoding)

    return mask_field
