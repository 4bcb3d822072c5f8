"""References the schema does not declare, found by name and proven by the data: a ``<name>_id`` column
without a foreign key whose non-null values all exist in the one-column key of a table named after it, to
be declared as a virtual foreign key in ``commercial-extensions.yaml``.

Every check is one bounded query in the caller's snapshot: an anti-join that stops at the first value with no
row in the key, under a statement timeout, in a savepoint, so that a check that runs too long (or that
row-level security refuses) is reported as not checked and the other checks go on.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from repro_pipeline.engine.config import CommercialExtensions, ReproConfig
from repro_pipeline.engine.errors import ConfigError
from repro_pipeline.engine.source.catalog import Catalog, Column, Table, TableName, base_type

_REFERENCE_COLUMN = re.compile(r"(?P<stem>[a-z][a-z0-9_]*?)_id")


class NameMatch(IntEnum):
    """How a table's name matches a ``<name>_id`` column: the lower, the likelier the reference."""

    PLURAL = 0  # member_id -> members (also -es, and category_id -> categories): Rails
    SINGULAR = 1  # member_id -> member
    APP_PREFIXED = 2  # question_id -> polls_question: Django's <app>_<model> (or a prefixed plural)

    @property
    def label(self) -> str:
        return self.name.lower().replace("_", "-")


@dataclass(frozen=True)
class ColumnRef:
    table: TableName
    column: str

    def __str__(self) -> str:
        return f"{self.table}.{self.column}"


@dataclass(frozen=True)
class Candidate:
    """A column that may reference a table's one-column key, by their names."""

    child: ColumnRef
    key: ColumnRef
    name_match: NameMatch
    other_schema: bool
    unique_key: bool  # a unique constraint rather than the primary key

    @property
    def rank(self) -> tuple[int, bool, bool, str]:
        return (self.name_match, self.other_schema, self.unique_key, str(self.key))


@dataclass(frozen=True)
class Suggestion:
    """A reference every non-null value of ``child`` satisfies; ``alternatives`` satisfy it as well."""

    child: ColumnRef
    key: ColumnRef
    name_match: NameMatch
    distinct_values: int
    alternatives: tuple[ColumnRef, ...]


@dataclass(frozen=True)
class NotSuggested:
    """A column left out, with why: no values, a key missing some of its values, another type, a parent
    without a primary key, a check that could not run."""

    child: ColumnRef
    key: ColumnRef | None
    reason: str


@dataclass(frozen=True)
class ReferenceSuggestions:
    suggestions: tuple[Suggestion, ...]
    not_suggested: tuple[NotSuggested, ...]
    columns_considered: int  # <name>_id columns without a declared reference


def declared_virtual_columns(extensions: CommercialExtensions | None) -> frozenset[ColumnRef]:
    """The columns ``virtual_foreign_keys`` already declares as references."""
    if extensions is None:
        return frozenset()
    return frozenset(
        ColumnRef(TableName.parse(rule.table), column)
        for rule in extensions.virtual_foreign_keys
        for column in rule.columns or ()  # a reference held in JSON (issue 9) names no columns
    )


def ignored_columns(config: ReproConfig | None, catalog: Catalog) -> frozenset[ColumnRef]:
    """The columns ``implied_fk_ignore`` of ``mask-rules.yaml`` says not to suggest; each must exist."""
    if config is None:
        return frozenset()
    ignored = set()
    for index, entry in enumerate(config.mask_rules.implied_fk_ignore):
        table_text, _, column = entry.rpartition(".")
        table = catalog.find(table_text)
        if table is None or table.column(column) is None:
            where = config.mask_rules_doc.where(["implied_fk_ignore", index])
            raise ConfigError(
                f"{where}: implied_fk_ignore[{index}]: the source has no column {entry}",
                "check the spelling (schema.table.column), or remove the entry",
            )
        ignored.add(ColumnRef(table.name, column))
    return frozenset(ignored)


def suggest_references(
    conn: psycopg.Connection[TupleRow],
    catalog: Catalog,
    declared_virtual: frozenset[ColumnRef],
    *,
    statement_timeout_seconds: float,
) -> ReferenceSuggestions:
    """Check each candidate of each undeclared ``<name>_id`` column in the current transaction of ``conn``
    (read only, one snapshot), which is left as it was; the suggestions come best name match first."""
    columns = list(_undeclared_reference_columns(catalog, declared_virtual))
    suggestions: list[Suggestion] = []
    not_suggested: list[NotSuggested] = []
    # In a savepoint rolled back at the end, so that these settings end with it: each check stops after the
    # timeout, and a row-level security policy makes a check fail rather than hide rows from it.
    with conn.transaction(force_rollback=True):
        conn.execute(
            "SELECT set_config('statement_timeout', %s, true), set_config('row_security', 'off', true)",
            (str(math.ceil(statement_timeout_seconds * 1000)),),
        )
        for child, child_column in columns:
            candidates = sorted(_candidates(catalog, child, child_column), key=lambda found: found.rank)
            same_type: list[Candidate] = []
            for candidate in candidates:
                parent = catalog.tables[candidate.key.table]
                parent_type = _column(catalog, candidate.key).type
                if not parent.primary_key:
                    reason = (
                        f"{parent.name} has no primary key, which the closure needs of a referenced table"
                    )
                    not_suggested.append(NotSuggested(candidate.child, candidate.key, reason))
                elif base_type(parent_type) == base_type(child_column.type):
                    same_type.append(candidate)
                else:
                    reason = f"{child_column.type}, but {candidate.key} is {parent_type}"
                    not_suggested.append(NotSuggested(candidate.child, candidate.key, reason))
            if same_type:
                suggestion, left_out = _checked(_Checks(conn, child.name, child_column.name), same_type)
                suggestions.extend([suggestion] if suggestion else [])
                not_suggested.extend(left_out)
    ranked = sorted(suggestions, key=lambda s: (s.name_match, str(s.child)))
    return ReferenceSuggestions(tuple(ranked), tuple(not_suggested), len(columns))


def _checked(checks: _Checks, candidates: list[Candidate]) -> tuple[Suggestion | None, list[NotSuggested]]:
    """The best of ``candidates`` (of one column) that all the column's values satisfy, and the candidates
    left out with the reason (or the column, when it has no values)."""
    column = candidates[0].child
    try:
        if not checks.has_values():
            return None, [NotSuggested(column, None, "no values to check")]
    except _NotChecked as not_checked:
        return None, [NotSuggested(column, None, f"not checked: {not_checked}")]
    not_suggested: list[NotSuggested] = []
    found_in: list[Candidate] = []
    for candidate in candidates:
        try:
            if checks.all_found_in(candidate.key):
                found_in.append(candidate)
            else:
                reason = f"some values have no row in {candidate.key}"
                not_suggested.append(NotSuggested(column, candidate.key, reason))
        except _NotChecked as not_checked:
            not_suggested.append(NotSuggested(column, candidate.key, f"not checked: {not_checked}"))
    if not found_in:
        return None, not_suggested
    try:
        distinct_values = checks.distinct_values()
    except _NotChecked as not_checked:
        reason = f"all found, then not counted: {not_checked}"
        return None, [*not_suggested, NotSuggested(column, found_in[0].key, reason)]
    suggestion = Suggestion(
        child=column,
        key=found_in[0].key,
        name_match=found_in[0].name_match,
        distinct_values=distinct_values,
        alternatives=tuple(other.key for other in found_in[1:]),
    )
    return suggestion, not_suggested


def _undeclared_reference_columns(
    catalog: Catalog, declared_virtual: frozenset[ColumnRef]
) -> Iterator[tuple[Table, Column]]:
    declared = {ColumnRef(fk.child, column) for fk in catalog.foreign_keys for column in fk.child_columns}
    for table in catalog.tables.values():
        for column in table.columns:
            ref = ColumnRef(table.name, column.name)
            if (
                _REFERENCE_COLUMN.fullmatch(column.name)
                and ref not in declared
                and ref not in declared_virtual
            ):
                yield table, column


def _candidates(catalog: Catalog, child: Table, column: Column) -> Iterator[Candidate]:
    match = _REFERENCE_COLUMN.fullmatch(column.name)
    assert match is not None
    stem = match["stem"]
    for parent in catalog.tables.values():
        name_match = _name_match(stem, parent.name.name)
        if name_match is None:
            continue
        for key, unique_key in _one_column_keys(parent):
            if (parent.name, key) != (child.name, column.name):
                yield Candidate(
                    child=ColumnRef(child.name, column.name),
                    key=ColumnRef(parent.name, key),
                    name_match=name_match,
                    other_schema=parent.name.schema != child.name.schema,
                    unique_key=unique_key,
                )


def _name_match(stem: str, table_name: str) -> NameMatch | None:
    plurals = {f"{stem}s", f"{stem}es"} | ({f"{stem[:-1]}ies"} if stem.endswith("y") else set())
    name = table_name.lower()
    if name in plurals:
        return NameMatch.PLURAL
    if name == stem:
        return NameMatch.SINGULAR
    if any(name.endswith(f"_{form}") for form in (stem, *plurals)):
        return NameMatch.APP_PREFIXED
    return None


def _one_column_keys(table: Table) -> Iterator[tuple[str, bool]]:
    """The columns of its one-column primary key and unique constraints (a virtual foreign key's only
    targets), the primary key first."""
    for kind in ("p", "u"):
        for constraint in table.constraints:
            if constraint.kind == kind and len(constraint.columns) == 1:
                yield constraint.columns[0], kind == "u"


def _column(catalog: Catalog, ref: ColumnRef) -> Column:
    column = catalog.tables[ref.table].column(ref.column)
    assert column is not None, f"{ref} is a key column of the catalog"
    return column


class _NotChecked(Exception):
    """A check the server stopped: the statement timeout, or a privilege or policy that refuses the read."""


class _Checks:
    """The bounded queries about one column, each in a savepoint of the caller's transaction."""

    def __init__(self, conn: psycopg.Connection[TupleRow], table: TableName, column: str) -> None:
        self._conn = conn
        self._table = table.identifier
        self._column = sql.Identifier(column)

    def has_values(self) -> bool:
        query = sql.SQL("SELECT EXISTS (SELECT FROM {table} WHERE {column} IS NOT NULL)")
        return bool(self._one(query.format(table=self._table, column=self._column)))

    def all_found_in(self, key: ColumnRef) -> bool:
        """Whether every non-null value has a row in ``key``; the scan stops at the first that has none."""
        query = sql.SQL(
            "SELECT NOT EXISTS (SELECT FROM {table} child WHERE child.{column} IS NOT NULL AND NOT EXISTS "
            "(SELECT FROM {parent} parent WHERE parent.{key} = child.{column}) LIMIT 1)"
        )
        return bool(
            self._one(
                query.format(
                    table=self._table,
                    column=self._column,
                    parent=key.table.identifier,
                    key=sql.Identifier(key.column),
                )
            )
        )

    def distinct_values(self) -> int:
        query = sql.SQL("SELECT count(DISTINCT {column}) FROM {table}")
        return int(self._one(query.format(table=self._table, column=self._column)))

    def _one(self, query: sql.Composed) -> Any:
        try:
            with self._conn.transaction():
                row = self._conn.execute(query).fetchone()
        except psycopg.errors.QueryCanceled:
            raise _NotChecked("it ran past the statement timeout") from None
        except psycopg.errors.InsufficientPrivilege as exc:
            raise _NotChecked(exc.diag.message_primary or "the source refused the read") from None
        assert row is not None
        return row[0]
