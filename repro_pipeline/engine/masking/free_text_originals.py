"""The dictionary of ``ner_mask``: the originals of the run's masked columns and JSON paths, read from the
closure's rows in the load's snapshot, each with the value its rule gives it.

Read once per load, before the rows are copied, by the load's own session (the workers get the dictionary, not
a connection). A column counts when its rule masks it (not ``passthrough``, not ``ner_mask`` itself); a JSON
path when its rule is ``fake``, ``hash``, ``static`` or ``null`` on a dotted path of a jsonb column, whose value
the server reads (``#>>``) without sending the document. Each distinct value is masked once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Generator, Iterable, Mapping
from contextlib import closing
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from repro_pipeline.engine.config import ReproConfig
from repro_pipeline.engine.masking.free_text import DictionaryEntries, FreeTextDictionary
from repro_pipeline.engine.masking.plan import NER_MASK, MaskPlan
from repro_pipeline.engine.masking.values import ValueMasker
from repro_pipeline.engine.source.catalog import Catalog, Table, TableName

RowConditions = Callable[[Table], Iterable[tuple[sql.Composable, dict[str, Any]]]]
_STREAM_ROWS = 2_000
_DOTTED = re.compile(r"\$(\.[A-Za-z_][A-Za-z0-9_-]*)+")
_NOT_ORIGINALS = ("passthrough", NER_MASK, "json:")


def read_free_text_dictionary(
    source: psycopg.Connection[TupleRow],
    config: ReproConfig,
    catalog: Catalog,
    mask_plan: MaskPlan,
    copied_rows: RowConditions,
) -> FreeTextDictionary:
    entries = DictionaryEntries()
    paths = _json_paths(config, catalog)
    for name, masking in sorted(mask_plan.tables.items()):
        if not masking.copies_rows:
            continue
        table = catalog.tables[name]
        fields: list[tuple[str, sql.Composable, Callable[[str], str | None]]] = [
            (f"{name}.{column.column}", sql.SQL("{}::text").format(sql.Identifier(column.column)), masker)
            for column in masking.columns
            if not column.action.startswith(_NOT_ORIGINALS)
            and (masker := masking.masker_for(column.column)) is not None
        ]
        for column, path in paths.get(name, ()):
            document_masker = masking.masker_for(column)
            if document_masker is not None:
                fields.append(
                    (
                        f"{name}.{column}:{path}",
                        sql.SQL(
                            "CASE WHEN jsonb_typeof({column} #> {path}) = 'string' "
                            "THEN {column} #>> {path} END"
                        ).format(column=sql.Identifier(column), path=sql.Literal(path[2:].split("."))),
                        _at_path(document_masker, path[2:].split(".")),
                    )
                )
        if fields:
            _read_table(source, table, fields, copied_rows, entries)
    return entries.dictionary()


def _read_table(
    source: psycopg.Connection[TupleRow],
    table: Table,
    fields: list[tuple[str, sql.Composable, Callable[[str], str | None]]],
    copied_rows: RowConditions,
    entries: DictionaryEntries,
) -> None:
    selected = sql.SQL(", ").join(expression for _, expression, _ in fields)
    seen: list[set[str]] = [set() for _ in fields]
    for condition, params in copied_rows(table):
        query = sql.SQL("SELECT {} FROM {} WHERE {}").format(selected, table.name.identifier, condition)
        with closing(_stream(source, query, params)) as rows:
            for row in rows:
                for (field, _, masker), value, done in zip(fields, row, seen, strict=True):
                    if isinstance(value, str) and value not in done:
                        done.add(value)
                        entries.add(field, value, masker(value))


def _stream(
    conn: psycopg.Connection[TupleRow], query: sql.Composed, params: Mapping[str, Any]
) -> Generator[TupleRow]:
    yield from conn.cursor().stream(query, params, size=_STREAM_ROWS)


def _json_paths(config: ReproConfig, catalog: Catalog) -> dict[TableName, list[tuple[str, str]]]:
    """Per table, the (jsonb column, dotted path) of each json_mask rule that masks a value in place."""
    found: dict[TableName, list[tuple[str, str]]] = {}
    for entry in config.extensions.json_mask:
        table_text, _, column_name = entry.column.rpartition(".")
        table = catalog.find(table_text)
        column = table.column(column_name) if table else None
        if table is None or column is None or column.type != "jsonb":
            continue
        found.setdefault(table.name, []).extend(
            (column_name, rule.path)
            for rule in entry.paths
            if rule.action in ("fake", "hash", "static", "null") and _DOTTED.fullmatch(rule.path)
        )
    return found


def _at_path(document_masker: ValueMasker, keys: list[str]) -> Callable[[str], str | None]:
    """What the json column's masker makes of ``value`` at the path ``keys``."""

    def mask(value: str) -> str | None:
        document: Any = value
        for key in reversed(keys):
            document = {key: document}
        masked = document_masker(json.dumps(document))
        if masked is None:
            return None
        found: Any = json.loads(masked)
        for key in keys:
            if not isinstance(found, dict) or key not in found:
                return None
            found = found[key]
        return found if isinstance(found, str) else None

    return mask
