"""What a column's type (``format_type`` text, e.g. ``character varying(64)``) can hold, for the mask plan.

Kinds:

- ``text``: text, character varying, citext, bpchar without a length, and types this engine cannot see
  into (schema-qualified: domains, enums, extension types; the target checks those at load); ``length``
  is n for character varying(n), character(n) and name (63).
- ``json``, ``uuid``, ``date`` (date and timestamps), ``inet`` (inet, cidr), ``number`` (integers,
  numeric, floating point, money), ``array``, ``enum`` (its labels known), and ``other`` (every other
  built-in type: boolean, bytea, interval, time, xml, ...).

A domain is what its base type is (``app.year``, a domain over integer, is a number), so a rule on it is
checked as on its base type.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Literal

from repro_pipeline.engine.source.catalog import Column

Kind = Literal["text", "json", "uuid", "date", "inet", "number", "array", "enum", "other"]

_VARCHAR = re.compile(r"character varying\((\d+)\)")
_CHAR = re.compile(r"character\((\d+)\)")
_NUMBER = re.compile(r"(smallint|integer|bigint|real|double precision|money|numeric(\(\d+(,-?\d+)?\))?)")
_TIMESTAMP = re.compile(r"timestamp(\(\d\))? with(out)? time zone")
_INTEGER_RANGES = {
    "smallint": (-(2**15), 2**15 - 1),
    "integer": (-(2**31), 2**31 - 1),
    "bigint": (-(2**63), 2**63 - 1),
}


@dataclass(frozen=True)
class ColumnType:
    text: str  # as format_type gives it
    kind: Kind
    length: int | None = None  # most characters a text kind holds (None: unbounded)
    padded: bool = False  # character(n): values come blank-padded to n
    case_insensitive: bool = False  # citext
    labels: tuple[str, ...] = ()  # an enum's

    @property
    def integer_range(self) -> tuple[int, int] | None:
        return _INTEGER_RANGES.get(self.text)


def type_of(column: Column) -> ColumnType:
    """What ``column`` holds: an enum with its labels, a domain as its base type (named after the domain)."""
    if column.enum_labels:
        return ColumnType(column.type, "enum", labels=column.enum_labels)
    if column.base_type:
        return replace(
            column_type(column.base_type), text=f"{column.type} (a domain over {column.base_type})"
        )
    return column_type(column.type)


def column_type(text: str) -> ColumnType:
    if text.endswith("[]"):
        return ColumnType(text, "array")
    if text in ("text", "character varying", "bpchar"):
        return ColumnType(text, "text", padded=text == "bpchar")
    if text == "name":
        return ColumnType(text, "text", length=63)
    if match := _VARCHAR.fullmatch(text):
        return ColumnType(text, "text", length=int(match.group(1)))
    if match := _CHAR.fullmatch(text):
        return ColumnType(text, "text", length=int(match.group(1)), padded=True)
    if text == "citext" or text.endswith(".citext"):
        return ColumnType(text, "text", case_insensitive=True)
    if text in ("json", "jsonb"):
        return ColumnType(text, "json")
    if text == "uuid":
        return ColumnType(text, "uuid")
    if text == "date" or _TIMESTAMP.fullmatch(text):
        return ColumnType(text, "date")
    if text in ("inet", "cidr"):
        return ColumnType(text, "inet")
    if _NUMBER.fullmatch(text):
        return ColumnType(text, "number")
    if "." in text:
        return ColumnType(text, "text")  # a domain, enum or extension type: the target will check values
    return ColumnType(text, "other")
