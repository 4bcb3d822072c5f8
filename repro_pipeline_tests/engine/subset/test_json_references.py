"""The value at a JSON path read as a key's type on a real server: a value of another type reads as NULL
and is counted as not fitting, never a cast error."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest
from psycopg import sql

from repro_pipeline.embedded.stack import Stack
from repro_pipeline.engine.source.catalog import JsonPath
from repro_pipeline.engine.subset.json_references import json_value, not_fitting_the_key


@pytest.mark.parametrize(
    ("key_type", "value", "read_as"),
    [
        ("integer", 42, 42),
        ("integer", "42", 42),
        ("integer", 42.0, None),  # jsonb keeps the number as written, 42.0: not an integer's text
        ("integer", -7, -7),
        ("integer", 2147483647, 2147483647),
        ("integer", 2147483648, None),
        ("smallint", 32768, None),
        ("bigint", 9223372036854775807, 9223372036854775807),
        ("bigint", 9223372036854775808, None),
        ("bigint", "99999999999999999999", None),
        ("bigint", "007", None),
        ("bigint", " 42", None),
        ("bigint", "4e1", None),
        ("bigint", "forty-two", None),
        ("bigint", True, None),
        ("bigint", {"id": 42}, None),
        ("uuid", "0b1e4d2c-8f3a-4c5b-9d6e-7f8091a2b3c4", "0b1e4d2c-8f3a-4c5b-9d6e-7f8091a2b3c4"),
        ("uuid", "0B1E4D2C-8F3A-4C5B-9D6E-7F8091A2B3C4", "0b1e4d2c-8f3a-4c5b-9d6e-7f8091a2b3c4"),
        ("uuid", "0b1e4d2c8f3a4c5b9d6e7f8091a2b3c4", None),
        ("uuid", "not-a-uuid", None),
        ("uuid", 17, None),
        ("text", "sku-1", "sku-1"),
        ("text", 17, "17"),
        ("character varying(5)", "sku-1", "sku-1"),
        ("character varying(5)", "sku-10", None),
        ("character varying", "sku-10", "sku-10"),
    ],
)
def test_a_value_is_read_as_the_keys_type_or_as_not_fitting(
    stack: Stack, key_type: str, value: Any, read_as: Any
) -> None:
    path = JsonPath("payload", ("actor", "user_id"), key_type)
    query = sql.SQL("SELECT {}::text, {} FROM (SELECT %s::jsonb AS payload) AS c").format(
        json_value(path), not_fitting_the_key(path)
    )
    with psycopg.connect(stack.primary_dsn) as conn:
        row = conn.execute(query, (json.dumps({"actor": {"user_id": value}}),)).fetchone()
    assert row == (None if read_as is None else str(read_as), read_as is None)


@pytest.mark.parametrize("document", [{}, {"actor": None}, {"actor": {"user_id": None}}, {"actor": [1]}])
def test_a_missing_value_is_no_reference_and_not_counted(stack: Stack, document: Any) -> None:
    path = JsonPath("payload", ("actor", "user_id"), "bigint")
    query = sql.SQL("SELECT {}, {} FROM (SELECT %s::json AS payload) AS c").format(
        json_value(path), not_fitting_the_key(path)
    )
    with psycopg.connect(stack.primary_dsn) as conn:
        assert conn.execute(query, (json.dumps(document),)).fetchone() == (None, False)
