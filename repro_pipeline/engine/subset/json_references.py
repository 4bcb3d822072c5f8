"""References held in JSON: the value at a dotted path of a json/jsonb column, read on the server as the
referenced key's type.

A value that is not one (a non-uuid string for a uuid key; 4.5, an object or a number past the range for
an integer key; a string longer than a ``character varying(n)`` key) reads as NULL: it references nothing,
and is counted apart, instead of failing the transaction with a cast error. Integer keys are read from
their plain decimal text (a JSON number or a string of digits), uuids in either case.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from repro_pipeline.engine.source.catalog import Catalog, ForeignKey, JsonPath, Table, TableName

RowConditions = Callable[[Table], Iterable[tuple[sql.Composable, dict[str, Any]]]]

SUPPORTED_KEY_TYPES = "smallint, integer, bigint, uuid, text or character varying"

_INTEGER_RANGES = {
    "smallint": (-(2**15), 2**15 - 1),
    "integer": (-(2**31), 2**31 - 1),
    "bigint": (-(2**63), 2**63 - 1),
}
_INTEGER_TEXT = r"^-?(0|[1-9][0-9]{0,18})$"
_UUID_TEXT = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_TEXT_TYPE = re.compile(r"text|character varying(?:\((?P<length>\d+)\))?")


def supports_key_type(type_name: str) -> bool:
    return type_name in _INTEGER_RANGES or type_name == "uuid" or _TEXT_TYPE.fullmatch(type_name) is not None


def json_text(path: JsonPath, qualifier: str | None = None) -> sql.Composed:
    """The value at the path as text (SQL NULL when the path is missing or holds JSON null)."""
    column = sql.Identifier(qualifier, path.column) if qualifier else sql.Identifier(path.column)
    keys = sql.SQL(", ").join(sql.Literal(key) for key in path.keys)
    return sql.SQL("({} #>> ARRAY[{}]::text[])").format(column, keys)


def json_value(path: JsonPath, qualifier: str | None = None) -> sql.Composed:
    """The value at the path as the referenced key's type; NULL when it is not a value of that type.

    The casts stand in the THEN branch of a CASE whose test admits only text they accept, so no value
    can make them fail.
    """
    text = json_text(path, qualifier)
    if path.key_type in _INTEGER_RANGES:
        low, high = _INTEGER_RANGES[path.key_type]
        return sql.SQL(
            "CASE WHEN {text} ~ {pattern} THEN CASE WHEN {text}::numeric BETWEEN {low} AND {high} "
            "THEN {text}::{type} END END"
        ).format(
            text=text,
            pattern=sql.Literal(_INTEGER_TEXT),
            low=sql.Literal(low),
            high=sql.Literal(high),
            type=sql.SQL(path.key_type),
        )
    if path.key_type == "uuid":
        return sql.SQL("CASE WHEN {text} ~ {pattern} THEN {text}::uuid END").format(
            text=text, pattern=sql.Literal(_UUID_TEXT)
        )
    text_type = _TEXT_TYPE.fullmatch(path.key_type)
    if text_type is None:
        raise ValueError(f"a JSON reference to a {path.key_type} key is not supported")
    if text_type["length"] is None:
        return text
    return sql.SQL("CASE WHEN char_length({text}) <= {length} THEN {text} END").format(
        text=text, length=sql.Literal(int(text_type["length"]))
    )


def not_fitting_the_key(path: JsonPath, qualifier: str | None = None) -> sql.Composed:
    """True for a row whose path holds a value that is not one of the referenced key's type."""
    return sql.SQL("{} IS NOT NULL AND {} IS NULL").format(
        json_text(path, qualifier), json_value(path, qualifier)
    )


def count_not_fitting(
    conn: psycopg.Connection[TupleRow],
    catalog: Catalog,
    copied_tables: Iterable[TableName],
    row_conditions: RowConditions,
) -> dict[ForeignKey, int]:
    """For each JSON reference of a copied table, how many of the rows ``row_conditions`` select (the
    closure's) hold a value at its path that is not a key of the referenced type: followed nowhere, and
    copied as they are."""
    copied = set(copied_tables)
    found = {}
    for fk in catalog.foreign_keys:
        if fk.json_path is None or fk.child not in copied:
            continue
        table = catalog.tables[fk.child]
        rows = 0
        for condition, params in row_conditions(table):
            query = sql.SQL("SELECT count(*) FROM {} WHERE ({}) AND {}").format(
                table.name.identifier, condition, not_fitting_the_key(fk.json_path)
            )
            row = conn.execute(query, params).fetchone()
            rows += int(row[0]) if row else 0
        found[fk] = rows
    return found
