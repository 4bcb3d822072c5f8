"""The leak scan: no original value of a masked column or JSON path may appear anywhere in the target.

The originals are read back from the source for exactly the rows the target holds (by primary key), so
the scan does not trust the masker; then every text and JSON value of every target table is compared
with them (JSON documents leaf by leaf).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from repro_pipeline.engine.catalog import Catalog, TableName
from repro_pipeline.engine.config import FakeAction, HashAction, NullAction, ReproConfig
from repro_pipeline.engine.keyset import batches, column_list, match_keys
from repro_pipeline.engine.masking.json_paths import string_leaves, values_at


@dataclass(frozen=True)
class SensitiveFields:
    """What of one table must not survive: masked columns, and JSON paths per json column."""

    columns: tuple[str, ...]
    json_paths: tuple[tuple[str, str], ...]  # (column, path)


def sensitive_fields(config: ReproConfig, catalog: Catalog) -> dict[TableName, SensitiveFields]:
    columns: dict[TableName, list[str]] = {}
    for key, rules in config.mask_rules.tables.items():
        table = catalog.find(key)
        if table is None or rules.strategy != "transform":
            continue
        columns[table.name] = [
            name
            for name, action in rules.columns.items()
            if isinstance(action, FakeAction | HashAction | NullAction)
        ]
    paths: dict[TableName, list[tuple[str, str]]] = {}
    for entry in config.extensions.json_mask:
        table_text, _, column = entry.column.rpartition(".")
        table = catalog.find(table_text)
        if table is not None:
            paths.setdefault(table.name, []).extend(
                (column, rule.path) for rule in entry.paths if rule.action != "static"
            )
    return {
        name: SensitiveFields(tuple(columns.get(name, ())), tuple(paths.get(name, ())))
        for name in set(columns) | set(paths)
    }


def original_values(
    source: psycopg.Connection[TupleRow],
    target: psycopg.Connection[TupleRow],
    source_catalog: Catalog,
    fields: dict[TableName, SensitiveFields],
) -> set[str]:
    """The source's values of the sensitive fields, for the rows present in the target."""
    originals: set[str] = set()
    for name, wanted in fields.items():
        table = source_catalog.tables[name]
        json_columns = tuple(dict.fromkeys(column for column, _ in wanted.json_paths))
        read = tuple(dict.fromkeys((*wanted.columns, *json_columns)))
        if not read:
            continue
        keys = [
            row[0] if len(row) == 1 else row
            for row in target.execute(
                sql.SQL("SELECT {} FROM {}").format(column_list(table.primary_key), name.identifier)
            )
        ]
        for batch in batches(keys):
            condition, params = match_keys(table, table.primary_key, batch)
            query = sql.SQL("SELECT {} FROM {} WHERE {}").format(
                column_list(read), name.identifier, condition
            )
            for row in source.execute(query, params):
                values = dict(zip(read, row, strict=True))
                originals.update(str(values[column]) for column in wanted.columns if values[column])
                for column, path in wanted.json_paths:
                    for found in values_at(values[column], path):
                        originals.update(
                            string_leaves(found) if not isinstance(found, int | float) else [str(found)]
                        )
    originals.discard("")
    return originals


def find_leaks(target: psycopg.Connection[TupleRow], catalog: Catalog, originals: set[str]) -> Counter[str]:
    """How many target values of each ``schema.table.column`` equal an original sensitive value."""
    hits: Counter[str] = Counter()
    if not originals:
        return hits
    for table in catalog.tables.values():
        text_columns = [column for column in table.columns if column.is_text_like]
        if not text_columns:
            continue
        query = sql.SQL("SELECT {} FROM {}").format(
            column_list([column.name for column in text_columns]), table.name.identifier
        )
        for row in target.cursor().stream(query):
            for column, value in zip(text_columns, row, strict=True):
                if any(text in originals for text in _texts(value)):
                    hits[f"{table.name}.{column.name}"] += 1
    return hits


def _texts(value: Any) -> Iterator[str]:
    if value is None:
        return
    if isinstance(value, str):
        yield value.rstrip(" ")  # char(n) pads with spaces
    else:
        yield from string_leaves(value)  # json and jsonb arrive parsed
