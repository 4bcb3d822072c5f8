"""The leak scan: no original value of a masked column or JSON path may appear anywhere in the target.

The originals are read back from the source for exactly the rows the target holds (by primary key), so
the scan does not trust the masker; then every text and JSON value of every target table is compared
with them (JSON documents leaf by leaf).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from repro_pipeline.engine.config import FakeAction, HashAction, NullAction, ReproConfig
from repro_pipeline.engine.masking.json_paths import string_leaves, values_at
from repro_pipeline.engine.source.catalog import Catalog, TableName
from repro_pipeline.engine.subset.keyset import batches, column_list, match_keys


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
    """The source's values of the sensitive fields, for the rows present in the target.

    Tables without a primary key are not read back (their rows cannot be matched); their masks still apply.
    """
    originals: set[str] = set()
    for name, wanted in fields.items():
        table = source_catalog.tables[name]
        json_columns = tuple(dict.fromkeys(column for column, _ in wanted.json_paths))
        read = tuple(dict.fromkeys((*wanted.columns, *json_columns)))
        if not read or not table.primary_key:
            continue  # without a key, a target row cannot be matched to its source row
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
                originals.update(
                    str(values[column]).rstrip(" ") for column in wanted.columns if values[column]
                )
                for column, path in wanted.json_paths:
                    for found in values_at(values[column], path):
                        originals.update(
                            string_leaves(found) if not isinstance(found, int | float) else [str(found)]
                        )
    originals.discard("")
    return originals


def find_leaks(target: psycopg.Connection[TupleRow], catalog: Catalog, originals: set[str]) -> Counter[str]:
    """How many target values of each ``schema.table.column`` contain an original sensitive value.

    Every column that can hold text is read (as text, or parsed for json/jsonb). A value leaks when it,
    an email or IPv4 address inside it, one of its words or a run of two or three words equals an
    original: a copied email inside a support note is found, not only a whole copied cell.
    """
    hits: Counter[str] = Counter()
    if not originals:
        return hits
    for table in catalog.tables.values():
        columns = [column for column in table.columns if not column.type.startswith(_NEVER_TEXT)]
        if not columns:
            continue
        selected = sql.SQL(", ").join(
            sql.Identifier(c.name)
            if c.type in ("json", "jsonb")
            else sql.SQL("{}::text").format(sql.Identifier(c.name))
            for c in columns
        )
        for row in target.cursor().stream(
            sql.SQL("SELECT {} FROM {}").format(selected, table.name.identifier)
        ):
            for column, value in zip(columns, row, strict=True):
                texts = [value] if isinstance(value, str) else list(string_leaves(value))
                if any(fragment in originals for text in texts for fragment in _fragments(text)):
                    hits[f"{table.name}.{column.name}"] += 1
    return hits


_NEVER_TEXT = (
    "smallint",
    "integer",
    "bigint",
    "numeric",
    "real",
    "double precision",
    "boolean",
    "date",
    "timestamp",
    "time ",
    "interval",
    "oid",
)
_EMBEDDED = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+|\b(?:\d{1,3}\.){3}\d{1,3}\b")
_WORD_EDGES = "\"'.,;:!?()[]{}<>"


def _fragments(text: str) -> Iterator[str]:
    text = text.rstrip(" ")  # char(n) pads with spaces
    yield text
    yield from _EMBEDDED.findall(text)
    words = [word.strip(_WORD_EDGES) for word in text.split()]
    for size in (1, 2, 3):
        for start in range(len(words) - size + 1):
            yield " ".join(words[start : start + size])
