"""The leak scan: no original value of a masked column or JSON path may appear anywhere in the target.

The originals are read from the source for the closure's rows, in the load's own snapshot (the rows it
copied, as it copied them), so the scan does not trust the masker. Every masked column counts, whatever its
action: for ``regex_mask`` the parts its pattern matched, and every value when the pattern matched none of
them (a rule that masks nothing); for ``ner_mask`` (free text) the emails, card numbers, IP addresses and phone
numbers found inside each value, not the value (the names in it are the originals of the masked columns, searched
for as theirs). Two searches follow:

- Every text and JSON value of every target table, JSON keys included, is searched for the originals at once
  (Aho-Corasick), case-insensitively, as whole values or inside longer text at word boundaries. An original
  of one word of letters (``Mary``, ``Charlotte``) is also an ordinary word of other columns (the city
  ``Charlotte Amalie``) and of fakes: where it is found is counted and reported, not failed on. Originals too
  short to search for (one or two characters, bare numbers) are counted, not searched.
- Each masked column of a table with a primary key is compared row by row with its own originals, whatever
  their length: a column in which most of its rows (two at least) still hold their originals (a mask that
  did nothing) leaks them all; a few such rows elsewhere are fakes drawn equal to their originals by chance,
  and are reported. Of a ``ner_mask`` column, only the values in which PII was found are
  compared: most notes hold none and are rightly copied as they are.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from itertools import chain, islice
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from repro_pipeline.engine.config import (
    NerMaskAction,
    PassthroughAction,
    RegexMaskAction,
    ReproConfig,
    StaticAction,
)
from repro_pipeline.engine.masking.autodetect import pii_in_text
from repro_pipeline.engine.masking.json_paths import path_reader, string_leaves
from repro_pipeline.engine.source.catalog import Catalog, Column, Table, TableName
from repro_pipeline.engine.subset.keyset import key_getter
from repro_pipeline.engine.verify.in_threads import in_threads
from repro_pipeline.engine.verify.int_set import Int64Set
from repro_pipeline.engine.verify.leak_search import (
    COMMON_WORD,
    DISTINCTIVE,
    NOTHING,
    OriginalsIndex,
    OriginalsMatcher,
    folded_together,
)


@dataclass(frozen=True)
class SensitiveColumn:
    """A masked column and what of its source values must not survive."""

    name: str
    pattern: re.Pattern[str] | None = None  # regex_mask: the parts it matches
    kept: str | None = None  # static: its own replacement is no original
    free_text: bool = False  # ner_mask: the PII detected inside each value, not the value


@dataclass(frozen=True)
class SensitiveFields:
    """What of one table must not survive: masked columns, and JSON paths per json column."""

    columns: tuple[SensitiveColumn, ...]
    json_paths: tuple[JsonPathField, ...]


@dataclass(frozen=True)
class JsonPathField:
    column: str
    path: str
    kept: str | None = None  # static: its own replacement is no original
    free_text: bool = False  # ner_mask: the PII detected inside each value, not the value


def sensitive_fields(config: ReproConfig, catalog: Catalog) -> dict[TableName, SensitiveFields]:
    """Per copied table: its masked columns and JSON paths. A table that gets no rows has none."""
    not_copied = set()
    columns: dict[TableName, list[SensitiveColumn]] = {}
    for key, rules in config.mask_rules.tables.items():
        table = catalog.find(key)
        if table is None or rules.strategy != "transform":
            not_copied.update([] if table is None else [table.name])
            continue
        columns[table.name] = [
            SensitiveColumn(
                name,
                pattern=action.compiled() if isinstance(action, RegexMaskAction) else None,
                kept=action.value if isinstance(action, StaticAction) else None,
                free_text=isinstance(action, NerMaskAction),
            )
            for name, action in rules.columns.items()
            if not isinstance(action, PassthroughAction)
        ]
    paths: dict[TableName, list[JsonPathField]] = {}
    for entry in config.extensions.json_mask:
        table_text, _, column = entry.column.rpartition(".")
        table = catalog.find(table_text)
        if table is not None and table.name not in not_copied:
            paths.setdefault(table.name, []).extend(
                JsonPathField(
                    column,
                    rule.path,
                    rule.value if rule.action == "static" else None,
                    free_text=rule.action == "ner_mask",
                )
                for rule in entry.paths
            )
    return {
        name: SensitiveFields(tuple(columns.get(name, ())), tuple(paths.get(name, ())))
        for name in set(columns) | set(paths)
    }


@dataclass
class Originals:
    """The source's sensitive values for the copied rows, and what was set aside: kept as the search needs
    them (``OriginalsIndex``: a few bytes each, never their text)."""

    searched_for: OriginalsIndex = field(default_factory=OriginalsIndex)
    not_searched: Counter[str] = field(default_factory=Counter)  # reason -> originals
    masked_nothing: list[str] = field(default_factory=list)  # regex_mask columns whose pattern never matched
    own: Int64Set = field(default_factory=Int64Set)  # each masked row's (table, column, key, original)
    own_columns: dict[TableName, set[str]] = field(default_factory=dict)
    # The last originals added, as they came (-> why not searched for, or ""): their repeats are passed over.
    # Their text, so never shown (repr) and emptied once every original is read (``done_reading``).
    _recent: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def searched(self) -> int:
        """How many originals are searched for (those that fold alike are one)."""
        return len(self.searched_for)

    def includes(self, value: str) -> bool:
        """Whether ``value`` is searched for (as the search folds it)."""
        return value.rstrip(" ").casefold() in self.searched_for

    def add(self, value: str) -> None:
        reason = self._recent.get(value)
        if reason is None:
            reason = self._add_new(value)
        if reason:
            self.not_searched[reason] += 1

    def _add_new(self, value: str) -> str:
        """Why ``value`` is not searched for, or ``""``. Most originals of a JSON path repeat (one user's
        email in each of their events): the recent ones are known, the others are kept once by the index."""
        if len(self._recent) >= _RECENT:
            self._recent.clear()
        folded = value.rstrip(" ").casefold()  # char(n) pads with spaces
        reason = _too_plain(folded) if folded else ""
        if folded and not reason:
            # One word of letters is failed on nowhere, only reported where it is found (see the module).
            self.searched_for.add(folded, COMMON_WORD if _ONE_WORD.fullmatch(folded) else DISTINCTIVE)
        self._recent[value] = reason
        return reason

    def done_reading(self) -> None:
        self._recent.clear()

    def add_own(self, table: TableName, column: str, key: Any, value: str) -> None:
        """``value`` is the original of ``column`` in the row ``key``: the target's row must not hold it."""
        if value.rstrip(" "):
            self.own_columns.setdefault(table, set()).add(column)
            self.own.add(_row_value(table, column, key, value))


def _row_value(table: TableName, column: str, key: Any, value: str) -> int:
    return hash((table, column, key, value.rstrip(" ").casefold()))


_RECENT = 4096  # originals remembered as they came, to pass over their repeats
_ONE_WORD = re.compile(r"[^\W\d_]{3,15}")  # longer runs of letters are tokens, not words


def _too_plain(value: str) -> str:
    if len(value) <= 2:
        return "one or two characters"
    if _BARE_NUMBER.fullmatch(value):
        return "bare number"
    return ""


_BARE_NUMBER = re.compile(r"[+-]?[0-9]+(?:[.,][0-9]+)?")


STREAM_ROWS = 200  # rows a stream brings per round trip (libpq's chunked rows)
# What the sieve takes at once: about this much text, and no more rows (each row is Python objects). The scan
# holds a chunk per thread, and one more, whatever the tenant's size.
SIEVE_CHARACTERS = 64 * 1024
SIEVE_ROWS = 1_000


def _stream(
    conn: psycopg.Connection[TupleRow], query: sql.Composed, params: Mapping[str, Any] | None = None
) -> Generator[TupleRow]:
    """The rows of ``query``, fetched a chunk at a time; closed early, it frees the connection (an unclosed
    stream holds the connection's lock, and the next statement would wait for it)."""
    yield from conn.cursor().stream(query, params, size=STREAM_ROWS)


RowConditions = Callable[[Table], Iterable[tuple[sql.Composable, dict[str, Any]]]]
"""The WHERE conditions (with their parameters) that select a table's copied rows on the source."""


def original_values(
    source: psycopg.Connection[TupleRow],
    catalog: Catalog,
    fields: Mapping[TableName, SensitiveFields],
    copied_rows: RowConditions,
) -> Originals:
    """The source's values of the sensitive fields, for the copied rows.

    Given the closure's own row conditions and read inside the load's snapshot, these are exactly the rows
    the load copied, tables without a primary key included; the masker's output is never consulted.
    """
    originals = Originals()
    for name, wanted in sorted(fields.items()):
        table = catalog.tables[name]
        plain = tuple(dict.fromkeys(column.name for column in wanted.columns))
        # A dotted path of a jsonb column is read by the server (``#>>``): a string or number at the path
        # comes back as text, parsed by no one; only an object or array there is sent as a document.
        on_server = [field for field in wanted.json_paths if _reads_on_server(table, field)]
        in_documents = [field for field in wanted.json_paths if not _reads_on_server(table, field)]
        read = tuple(dict.fromkeys((*table.primary_key, *plain, *(field.column for field in in_documents))))
        if not plain and not wanted.json_paths:
            continue
        selected = sql.SQL(", ").join(
            [
                *(sql.Identifier(column) for column in read),
                *(
                    sql.SQL("{column} #>> {path}, jsonb_typeof({column} #> {path})").format(
                        column=sql.Identifier(field.column), path=sql.Placeholder(f"_repro_path_{index}")
                    )
                    for index, field in enumerate(on_server)
                ),
            ]
        )
        paths = {f"_repro_path_{index}": field.path[2:].split(".") for index, field in enumerate(on_server)}
        key_of = key_getter(read, table.primary_key)
        readers = [(field, path_reader(field.path)) for field in in_documents]
        regex_columns = {column.name: _RegexOriginals() for column in wanted.columns if column.pattern}
        for condition, params in copied_rows(table):
            query = sql.SQL("SELECT {} FROM {} WHERE {}").format(selected, name.identifier, condition)
            with closing(_stream(source, query, {**params, **paths})) as rows:
                for row in rows:
                    for field, text, kind in zip(
                        on_server, row[len(read) :: 2], row[len(read) + 1 :: 2], strict=True
                    ):
                        for leaf in _server_leaves(text, kind):
                            if field.free_text:
                                _add_free_text(originals, leaf)
                            elif leaf != field.kept:
                                originals.add(leaf)
                    if not plain and not in_documents:
                        continue
                    values = dict(zip(read, row, strict=False))
                    key = key_of(row)
                    for column in wanted.columns:
                        value = values[column.name]
                        if value is None:
                            continue
                        text = str(value)
                        if column.free_text:
                            if _add_free_text(originals, text) and key is not None:
                                originals.add_own(name, column.name, key, text)
                        elif column.pattern is not None:
                            regex_columns[column.name].read(text, key, column.pattern, originals)
                        elif text != column.kept:
                            originals.add(text)
                            if key is not None:
                                originals.add_own(name, column.name, key, text)
                    for json_field, reader in readers:
                        for found in reader(values[json_field.column]):
                            for leaf in _json_originals(found):
                                if json_field.free_text:
                                    _add_free_text(originals, leaf)
                                elif leaf != json_field.kept:
                                    originals.add(leaf)
        for column_name, regex_originals in regex_columns.items():
            if regex_originals.masked_nothing():
                originals.masked_nothing.append(f"{name}.{column_name}")
                for key, value in regex_originals.unmatched:
                    originals.add(value)
                    if key is not None:
                        originals.add_own(name, column_name, key, value)
    originals.done_reading()
    return originals


def _add_free_text(originals: Originals, text: str) -> bool:
    """The emails, card numbers, IP addresses and phone numbers inside free text are its originals (the names
    in it are those of the masked columns, searched for as theirs); whether it holds any."""
    found = pii_in_text(text)
    for _, start, end in found:
        originals.add(text[start:end])
    return bool(found)


def _server_leaves(text: str | None, kind: str | None) -> Sequence[str]:
    """The originals ``#>>`` found at a path, as ``_json_originals`` takes them: a string, or a number as
    written; the strings of an object or array at any depth; none for a JSON null, a boolean, or nothing (a
    missing key, a path through an array or a scalar)."""
    if text is None or kind in ("null", "boolean"):
        return ()
    if kind in ("object", "array"):
        return _json_originals(json.loads(text))
    return (text,)


def _reads_on_server(table: Table, field: JsonPathField) -> bool:
    """A dotted path (``$.actor.email``) of a jsonb column: ``#>`` finds what ``path_reader`` would, as
    its keys cannot be array indexes (they begin with a letter or ``_``)."""
    column = table.column(field.column)
    return column is not None and column.type == "jsonb" and bool(_DOTTED_PATH.fullmatch(field.path))


_DOTTED_PATH = re.compile(r"\$(\.[A-Za-z_][A-Za-z0-9_-]*)+")


def _json_originals(found: Any) -> list[str]:
    """The originals a JSON path selected: its strings, at any depth, and a number as written; true,
    false and null are no originals (searching for "True" would match every "true")."""
    if isinstance(found, bool) or found is None:
        return []
    if isinstance(found, int | float):
        return [str(found)]
    return list(string_leaves(found))


@dataclass
class _RegexOriginals:
    """A regex_mask column's originals: the parts its pattern matched, and the values it left alone
    (originals only if it matched none at all)."""

    matched_values: int = 0
    unmatched: list[tuple[Any, str]] = field(default_factory=list)  # (row key, value)

    def read(self, text: str, key: Any, pattern: re.Pattern[str], originals: Originals) -> None:
        parts = [match.group(0) for match in pattern.finditer(text) if match.group(0)]
        if parts:
            self.matched_values += 1
            for part in parts:
                originals.add(part)
        elif text.strip():
            self.unmatched.append((key, text))

    def masked_nothing(self) -> bool:
        return self.matched_values == 0 and bool(self.unmatched)


@dataclass(frozen=True)
class LeakScan:
    leaks: Counter[str]  # schema.table.column -> values holding an original: each a failure
    common_words: Counter[str]  # schema.table.column -> values holding a one-word original elsewhere
    kept_by_chance: Counter[str]  # schema.table.column -> masked rows equal to their original, a few


def find_leaks(target: psycopg.Connection[TupleRow], catalog: Catalog, originals: Originals) -> LeakScan:
    """How many target values of each ``schema.table.column`` contain an original sensitive value.

    Every column that can hold text is read as text, a chunk of rows at a time: the values the matcher's
    sieve lets through are tested one by one (json/jsonb parsed, whose keys count too).
    """
    leaks: Counter[str] = Counter()
    common_words: Counter[str] = Counter()
    kept = _KeptOriginals()
    matcher = OriginalsMatcher(originals.searched_for)
    for table in catalog.tables.values():
        columns = [column for column in table.columns if not column.type.startswith(_NEVER_TEXT)]
        if not columns:
            continue
        if not matcher.empty:
            for where, found in _values_holding_originals(target, table, columns, matcher):
                (leaks if found == DISTINCTIVE else common_words)[where] += 1
        own = [column for column in columns if column.name in originals.own_columns.get(table.name, ())]
        if own:
            kept.read(target, table, own, originals, matcher)
    failing = kept.failing()
    by_chance = Counter({column: rows for column, rows in kept.rows.items() if column not in failing})
    return LeakScan(leaks + failing, common_words, by_chance)


def _values_holding_originals(
    target: psycopg.Connection[TupleRow], table: Table, columns: list[Column], matcher: OriginalsMatcher
) -> Iterator[tuple[str, int]]:
    """(``schema.table.column``, what it holds) of each value of ``columns`` that holds an original."""
    parsed = [column.type in _JSON_TYPES for column in columns]
    select = sql.SQL("SELECT {} FROM {}").format(
        sql.SQL(", ").join(
            sql.SQL("coalesce({}::text, '')").format(sql.Identifier(column.name)) for column in columns
        ),
        table.name.identifier,
    )
    with (
        closing(_stream(target, select)) as rows,
        closing(
            in_threads(lambda chunk: matcher.candidate_values(chunk[1]), _sieve_chunks(rows), _threads())
        ) as searched,
    ):
        for (values, _), candidates in searched:
            for index in candidates:
                column = index % len(columns)
                if values[index]:
                    text = values[index]
                    found = matcher.value_holds(json.loads(text) if parsed[column] else text)
                    if found != NOTHING:
                        yield f"{table.name}.{columns[column].name}", found


def _threads() -> int:
    return os.cpu_count() or 1


def _sieve_chunks(rows: Iterator[TupleRow]) -> Iterator[tuple[list[str], str]]:
    """The rows' values a chunk at a time, with their text for the sieve (``folded_together``): about
    ``SIEVE_CHARACTERS`` each (the rows a chunk takes set by the size of the last), ``SIEVE_ROWS`` at most."""
    rows_each = STREAM_ROWS
    while chunk := list(islice(rows, rows_each)):
        values: list[str] = list(chain.from_iterable(chunk))
        folded = folded_together(values)
        yield values, folded
        rows_each = max(1, min(SIEVE_ROWS, len(chunk) * SIEVE_CHARACTERS // max(1, len(folded))))


@dataclass
class _KeptOriginals:
    """Masked rows that still hold their own original, per ``schema.table.column``."""

    rows: Counter[str] = field(default_factory=Counter)
    only: Counter[str] = field(
        default_factory=Counter
    )  # of those, the ones no distinctive original made a leak
    checked: Counter[str] = field(default_factory=Counter)

    def read(
        self,
        target: psycopg.Connection[TupleRow],
        table: Table,
        columns: list[Column],
        originals: Originals,
        matcher: OriginalsMatcher,
    ) -> None:
        key = table.primary_key
        selected = sql.SQL(", ").join(
            [
                *(sql.Identifier(name) for name in key),
                *(
                    sql.Identifier(column.name)
                    if column.type in _JSON_TYPES
                    else sql.SQL("{}::text").format(sql.Identifier(column.name))
                    for column in columns
                ),
            ]
        )
        select = sql.SQL("SELECT {} FROM {}").format(selected, table.name.identifier)
        key_of = key_getter((*key, *(column.name for column in columns)), key)
        with closing(_stream(target, select)) as rows:
            for row in rows:
                row_key = key_of(row)
                for column, value in zip(columns, row[len(key) :], strict=True):
                    if not isinstance(value, str):
                        continue
                    where = f"{table.name}.{column.name}"
                    self.checked[where] += 1
                    if _row_value(table.name, column.name, row_key, value) in originals.own:
                        self.rows[where] += 1
                        # Counted once: a leak already if it is a distinctive original.
                        self.only[where] += matcher.value_holds(value) != DISTINCTIVE

    def failing(self) -> Counter[str]:
        """One row alike may be chance (a tenant's one row faked to its own first name); most of several is
        not: those columns leak."""
        return Counter(
            {
                column: self.only[column]
                for column, rows in self.rows.items()
                if rows >= 2 and rows * 2 > self.checked[column]
            }
        )


_JSON_TYPES = ("json", "jsonb")
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
