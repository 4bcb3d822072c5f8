"""The tenant's FK closure: which rows of which tables make a complete, consistent slice.

Semantics:
- **roots**: a root table's rows are those its predicate selects (plus parents pulled up, below);
  downward expansion never adds rows to a root table.
- **down**: a row of a non-root table that references, through any FK, a root row or a row added by
  down expansion is included.
- **up**: every parent row referenced by an included row is included, transitively, so every FK of
  the slice is satisfied; rows pulled up do not expand down (no cousin explosion).
- The walk repeats until no table gains a row (sets only grow, so it ends); cycles and
  self-references need no pass limit.

Keys stay on the client and go back to the server as array parameters (``= ANY($1)``): nothing is written
to the source, which may be a read-only hot standby. The caller runs this inside the transaction whose
snapshot the load will also read.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter, defaultdict
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field, replace
from itertools import islice
from typing import Any, overload

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow
from pyroaring import BitMap64

from repro_pipeline.engine.errors import ClosureError
from repro_pipeline.engine.source.catalog import Catalog, ForeignKey, Table, TableName
from repro_pipeline.engine.subset.keyset import (
    KEY_BATCH,
    Term,
    batches,
    column_list,
    key_getter,
    match_keys,
    term_sql,
)
from repro_pipeline.engine.subset.predicate import PLACEHOLDER, Predicate

Key = Any  # a scalar for one-column primary keys, a tuple for composite ones


@dataclass(frozen=True)
class Root:
    table: TableName
    predicate: Predicate
    where: str  # file:line of the predicate, for error messages


@dataclass(frozen=True)
class EdgePolicy:
    """How the walk follows one FK downward (upward it always goes: the copy must satisfy the FK)."""

    follow_down: bool = True
    max_rows_per_parent: int | None = None  # the newest rows (highest primary key) of each parent
    from_pulled_up_parents: bool = False  # also expand parents that were only pulled up (cousins)


FOLLOW = EdgePolicy()
EdgeKey = tuple[TableName, str]  # (referencing table, constraint name)


@dataclass(frozen=True)
class KeylessRows:
    """The rows of a table without a primary key: those a root predicate selects, or whose FK columns
    match parents of the closure. Copied by this condition rather than by key."""

    roots: tuple[Root, ...]
    parents: tuple[tuple[ForeignKey, tuple[Key, ...]], ...]  # (FK of the table, the parents' key values)
    rows: int

    def condition(self, table: Table, organization_id: int) -> tuple[sql.Composed, dict[str, Any]]:
        parts: list[sql.Composable] = [root.predicate.as_sql() for root in self.roots]
        params: dict[str, Any] = {PLACEHOLDER: organization_id} if self.roots else {}
        for index, (fk, values) in enumerate(self.parents):
            condition, fk_params = match_keys(table, fk.child_terms, values, name=f"fk{index}")
            parts.append(condition)
            params |= fk_params
        return sql.SQL(" OR ").join(parts or [sql.SQL("false")]), params


@dataclass(frozen=True)
class TableRows:
    """One table's rows of the closure, kept compact: its sorted keys (a bitmap for the usual integer keys) or
    a keyless table's selection. A load worker gets this, not the batches' conditions, and builds each batch's
    condition only when it copies it, so no process holds a table's key arrays at once."""

    keys: Sequence[Key] = ()
    keyless: KeylessRows | None = None

    @property
    def count(self) -> int:
        return self.keyless.rows if self.keyless is not None else len(self.keys)

    def segments(self, count: int) -> list[TableRows]:
        """The rows in ``count`` parts of consecutive keys whose sizes differ by one at most; one part when
        there are fewer keys than parts, or for a keyless table's selection (one condition)."""
        if self.keyless is not None or count <= 1 or len(self.keys) < count:
            return [self]
        size, larger = divmod(len(self.keys), count)
        bounds = [0]
        for part in range(count):
            bounds.append(bounds[-1] + size + (part < larger))
        return [TableRows(keys=self.keys[start:end]) for start, end in itertools.pairwise(bounds)]

    def conditions(
        self, table: Table, organization_id: int, batch_size: int
    ) -> Iterator[tuple[sql.Composed, dict[str, Any]]]:
        """WHERE conditions that together select these rows, one batch each."""
        if self.keyless is not None:
            if self.keyless.rows:
                yield self.keyless.condition(table, organization_id)
            return
        for batch in batches(self.keys, batch_size):
            yield match_keys(table, table.primary_key, batch)

    def batch_rows(self, batch_size: int) -> Iterator[int]:
        """The rows of each of ``conditions``' batches."""
        if self.keyless is not None:
            if self.keyless.rows:
                yield self.keyless.rows
            return
        count = len(self.keys)
        yield from (min(batch_size, count - start) for start in range(0, count, batch_size))


class IncludedKeys:
    """One table's included keys, and which of them expand down.

    Keys that are non-negative integers (nearly every primary key) live in compressed bitmaps: a few
    bits per key for the usual dense ids, so the walk's memory stays small whatever the tenant's size.
    Other keys (text, uuid, composite) are kept in a dict.
    """

    def __init__(self) -> None:
        self._all = BitMap64()
        self._expanding = BitMap64()
        self._other: dict[Key, bool] = {}

    def get(self, key: Key) -> bool | None:
        """None when the key is not included, else whether its row expands down."""
        if _bitmap_key(key):
            return None if key not in self._all else key in self._expanding
        return self._other.get(key)

    def __contains__(self, key: Key) -> bool:
        return self.get(key) is not None

    def __setitem__(self, key: Key, expands_down: bool) -> None:
        if _bitmap_key(key):
            self._all.add(key)
            if expands_down:
                self._expanding.add(key)
        else:
            self._other[key] = expands_down

    def add_rows(
        self,
        rows: Iterable[tuple[Any, ...]],
        key_of: Callable[[Sequence[Any]], Key],
        expands_down: bool,
        pending: list[tuple[Any, ...]],
    ) -> int:
        """Include the rows' keys; append to ``pending`` each row that is new, or that now expands down and
        did not before (as ``(expands_down, *row)``). Returns how many keys were new.

        The walk's hottest loop: ``get`` and ``__setitem__`` inlined for bitmap keys."""
        all_keys, expanding = self._all, self._expanding
        added = 0
        for row in rows:
            key = key_of(row)
            if type(key) is int and 0 <= key < _BITMAP_END:
                if key in all_keys:
                    if not expands_down or key in expanding:
                        continue
                else:
                    all_keys.add(key)
                    added += 1
                if expands_down:
                    expanding.add(key)
            else:
                known = self._other.get(key)
                if known is not None and (known or not expands_down):
                    continue
                self._other[key] = expands_down
                added += known is None
            pending.append((expands_down, *row))
        return added

    def sorted_keys(self) -> Sequence[Key]:
        """The keys in order: the bitmap itself when it holds them all (the usual integer keys), so a million
        keys stay a few bits each rather than a million Python ints."""
        if not self._other:
            return SortedBitmap(self._all)
        # Integer keys outside the bitmaps' range (negative, or 2**64 and above) are in the dict: merged.
        return tuple(heapq.merge(self._all, sorted(self._other)))


class SortedBitmap(Sequence[int]):
    """Non-negative integer keys in a compressed bitmap, read like the sorted tuple of them: length, indexes,
    slices (bitmaps again), iteration, ``in``, and equality with any sequence of the same keys."""

    __slots__ = ("_bitmap",)

    def __init__(self, bitmap: BitMap64) -> None:
        self._bitmap = bitmap

    def __len__(self) -> int:
        return len(self._bitmap)

    def __iter__(self) -> Iterator[int]:
        return iter(self._bitmap)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, int) and _bitmap_key(key) and key in self._bitmap

    @overload
    def __getitem__(self, index: int) -> int: ...

    @overload
    def __getitem__(self, index: slice) -> SortedBitmap: ...

    def __getitem__(self, index: int | slice) -> int | SortedBitmap:
        if isinstance(index, slice):
            return SortedBitmap(self._bitmap[index])
        return int(self._bitmap[index])

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SortedBitmap):
            return bool(self._bitmap == other._bitmap)
        if isinstance(other, Sequence):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"SortedBitmap({len(self)} keys)"


def _bitmap_key(key: object) -> bool:
    return type(key) is int and 0 <= key < _BITMAP_END


_BITMAP_END = 1 << 64


@dataclass(frozen=True)
class Closure:
    keys: Mapping[TableName, Sequence[Key]]  # sorted primary keys of the included rows
    reasons: Mapping[TableName, Mapping[str, int]]  # how many rows each root or FK edge brought
    passes: int
    root_keys: Mapping[TableName, Sequence[Key]]  # the rows each root predicate selected
    keyless: Mapping[TableName, KeylessRows] = field(default_factory=dict)
    # References of copied rows to no row of the parent on the source (a virtual foreign key, or a NOT VALID
    # constraint, enforces nothing): copied as they are, so the orphan check expects exactly these.
    dangling: Mapping[EdgeKey, frozenset[Key]] = field(default_factory=dict)
    # References of copied rows to rows left out as another tenant's (cross_tenant_references: "null"): the
    # values of the FK's columns that the load writes as NULL.
    nulled: Mapping[ForeignKey, frozenset[Key]] = field(default_factory=dict)

    @property
    def row_counts(self) -> dict[TableName, int]:
        counts = {table: len(keys) for table, keys in self.keys.items()}
        return counts | {table: selection.rows for table, selection in self.keyless.items()}

    @property
    def total_rows(self) -> int:
        return sum(self.row_counts.values())

    def rows_of(self, name: TableName) -> TableRows:
        if name in self.keyless:
            return TableRows(keyless=self.keyless[name])
        return TableRows(keys=self.keys.get(name, ()))

    def row_conditions(
        self, table: Table, organization_id: int, batch_size: int
    ) -> Iterator[tuple[sql.Composed, dict[str, Any]]]:
        """WHERE conditions that together select the table's rows of the closure, one batch each."""
        return self.rows_of(table.name).conditions(table, organization_id, batch_size)


def compute_closure(
    conn: psycopg.Connection[TupleRow],
    catalog: Catalog,
    roots: Sequence[Root],
    organization_id: int,
    *,
    copied_tables: Iterable[TableName],
    edge_policies: Mapping[EdgeKey, EdgePolicy] | None = None,
    check_roots: Callable[[Mapping[TableName, Sequence[Key]]], None] = lambda _: None,
    left_out: Mapping[TableName, frozenset[Key]] | None = None,
) -> Closure:
    """``check_roots`` sees the rows each root selected before the walk starts, and may refuse them.
    Rows in ``left_out`` (by primary key) are never included: references to them are noted as nulled."""
    walk = _Walk(conn, catalog, roots, frozenset(copied_tables), edge_policies or {}, left_out or {})
    for root in roots:
        # A stream left unread holds the connection: closed whatever happens.
        with closing(walk.select_root(root, organization_id)) as chunks:
            walk.add_root(root.table, chunks)
    check_roots(walk.root_keys)
    if not any(walk.root_rows.values()):
        raise ClosureError(
            f"no root predicate matched any row for organization {organization_id} "
            f"({', '.join(root.where for root in roots)})",
            "check that the organization exists on the source and that the predicates select it; "
            "no repro database is built from an empty root",
        )
    while walk.pending:
        walk.run_pass()
    return walk.result(organization_id)


class _Walk:
    """Semi-naive fixpoint: each pass expands only the rows found by the pass before."""

    def __init__(
        self,
        conn: psycopg.Connection[TupleRow],
        catalog: Catalog,
        roots: Sequence[Root],
        copied_tables: frozenset[TableName],
        edge_policies: Mapping[EdgeKey, EdgePolicy],
        left_out: Mapping[TableName, frozenset[Key]],
    ) -> None:
        self.cur = conn.cursor()
        self.left_out = left_out
        self.nulled: dict[ForeignKey, set[Key]] = defaultdict(set)
        self.policies = edge_policies
        self.catalog = catalog
        self.root_tables = frozenset(root.table for root in roots)
        self.copied = copied_tables
        self.included: dict[TableName, IncludedKeys] = defaultdict(IncludedKeys)
        self.pending: dict[TableName, _Frontier] = {}
        self.reasons: dict[TableName, Counter[str]] = defaultdict(Counter)
        self.passes = 0
        self.root_keys: dict[TableName, Sequence[Key]] = {}
        self.root_rows: Counter[TableName] = Counter()
        self.roots = roots
        self.keyless_parents: dict[TableName, dict[ForeignKey, set[Key]]] = defaultdict(dict)
        self.dangling: dict[EdgeKey, set[Key]] = defaultdict(set)
        for fk in catalog.foreign_keys:
            if fk.child in copied_tables and fk.parent in copied_tables:
                _require_primary_key(catalog.tables[fk.parent], because=f"{fk} references it")

    def select_root(self, root: Root, organization_id: int) -> Generator[list[tuple[Any, ...]]]:
        table = self.catalog.tables[root.table]
        query = sql.SQL("SELECT {columns} FROM {table} WHERE {predicate}").format(
            columns=column_list(self._key_columns(table)),
            table=table.name.identifier,
            predicate=root.predicate.as_sql(),
        )
        try:
            yield from _streamed(self.cur, query, {PLACEHOLDER: organization_id})
        except (psycopg.errors.QueryCanceled, psycopg.errors.SerializationFailure):
            raise
        except psycopg.Error as exc:
            raise ClosureError(
                f"{root.where}: the root predicate of {root.table} failed on the source: "
                f"{exc.diag.message_primary or type(exc).__name__}",
                "fix the predicate: it must be one boolean SQL expression over the columns of that table",
            ) from None

    def add_root(self, name: TableName, chunks: Iterable[list[tuple[Any, ...]]]) -> None:
        table = self.catalog.tables[name]
        key_of = key_getter(self._key_columns(table), table.primary_key)
        keys = _DistinctValues()
        for rows in chunks:
            self.root_rows[name] += len(rows)
            if table.primary_key:
                keys.update([key_of(row) for row in rows])
            self.add(name, rows, expands_down=True, reason="root predicate")
        if table.primary_key:
            self.root_keys[name] = keys.sorted_keys()

    def add(
        self, name: TableName, rows: Iterable[tuple[Any, ...]], *, expands_down: bool, reason: str
    ) -> None:
        table = self.catalog.tables[name]
        if not table.primary_key:
            # Nothing references a keyless table: its rows only need their parents pulled up.
            self._frontier(name).absorb([(False, *row) for row in rows])
            return
        key_of = key_getter(self._key_columns(table), table.primary_key)
        left_out = self.left_out.get(name, frozenset())
        found: list[tuple[Any, ...]] = []
        added = self.included[name].add_rows(
            (row for row in rows if key_of(row) not in left_out) if left_out else rows,
            key_of,
            expands_down,
            found,
        )
        self._frontier(name).absorb(found)
        if added:
            self.reasons[name][reason] += added

    def run_pass(self) -> None:
        self.passes += 1
        frontier, self.pending = self.pending, {}
        for name, found in frontier.items():
            for fk in self.catalog.referenced_by(name):
                if fk.parent in self.copied:
                    self._pull_up(fk, found.every[fk.child_terms])
            for fk in self.catalog.referencing(name):
                policy = self.policies.get((fk.child, fk.name), FOLLOW)
                if fk.child not in self.copied or fk.child in self.root_tables or not policy.follow_down:
                    continue
                parents = (found.every if policy.from_pulled_up_parents else found.expanding)[
                    fk.parent_columns
                ]
                if parents:
                    self._expand_down(fk, parents, policy.max_rows_per_parent)

    def _frontier(self, name: TableName) -> _Frontier:
        frontier = self.pending.get(name)
        if frontier is None:
            groups = [fk.child_terms for fk in self.catalog.referenced_by(name) if fk.parent in self.copied]
            groups += [fk.parent_columns for fk in self.catalog.referencing(name)]
            frontier = self.pending[name] = _Frontier(self._key_columns(self.catalog.tables[name]), groups)
        return frontier

    def _pull_up(self, fk: ForeignKey, values: Iterable[Key]) -> None:
        parent = self.catalog.tables[fk.parent]
        if fk.parent_columns == parent.primary_key:
            known = self.included[fk.parent]
            values = (value for value in values if value not in known)
        referenced = key_getter(self._key_columns(parent), fk.parent_columns)
        left_out = self.left_out.get(fk.parent)
        for batch in _chunks(values):
            rows = self._fetch(parent, fk.parent_columns, batch)
            if len(rows) < len(batch):
                found = {referenced(row) for row in rows}
                self.dangling[(fk.child, fk.name)].update(value for value in batch if value not in found)
            if left_out:
                key_of = key_getter(self._key_columns(parent), parent.primary_key)
                self.nulled[fk].update(referenced(row) for row in rows if key_of(row) in left_out)
            self.add(fk.parent, rows, expands_down=False, reason=f"up from {fk.child} via {fk.name}")

    def _expand_down(self, fk: ForeignKey, values: Iterable[Key], limit: int | None) -> None:
        child = self.catalog.tables[fk.child]
        if not child.primary_key:
            if limit:
                _require_primary_key(child, because=f"max_rows_per_parent is set for {fk.name}")
            known = self.keyless_parents[fk.child].setdefault(fk, set())
            values = [value for value in values if value not in known]
            known.update(values)
        reason = f"down from {fk.parent} via {fk.name}" + (f" (at most {limit} per parent)" if limit else "")
        for batch in _chunks(values):
            # Streamed: the children of a batch of parents have no bound (a whale's invoices, their lines).
            query, params = self._query(child, fk.child_terms, batch, limit)
            with closing(_streamed(self.cur, query, params)) as children:
                for rows in children:
                    self.add(fk.child, rows, expands_down=True, reason=reason)

    def _fetch(
        self, table: Table, match_columns: tuple[Term, ...], values: Sequence[Key]
    ) -> list[tuple[Any, ...]]:
        return self.cur.execute(*self._query(table, match_columns, values, None)).fetchall()

    def _query(
        self, table: Table, match_columns: tuple[Term, ...], values: Sequence[Key], limit: int | None
    ) -> tuple[sql.Composed, dict[str, Any]]:
        condition, params = match_keys(table, match_columns, values)
        key_columns = self._key_columns(table)
        if limit is None:
            query = sql.SQL("SELECT {columns} FROM {table} WHERE {condition}").format(
                columns=column_list(key_columns), table=table.name.identifier, condition=condition
            )
        else:
            # The ranked rows' terms are named, as a JSON path's term reads its column, which only the inner
            # query has.
            names = [sql.Identifier(f"repro_term_{n}") for n in range(len(key_columns))]
            query = sql.SQL(
                "SELECT {names} FROM (SELECT {terms}, row_number() OVER "
                "(PARTITION BY {match} ORDER BY {newest}) AS repro_rank FROM {table} WHERE {condition}) ranked "
                "WHERE repro_rank <= {limit}"
            ).format(
                names=sql.SQL(", ").join(names),
                terms=sql.SQL(", ").join(
                    sql.SQL("{} AS {}").format(term_sql(term), name)
                    for term, name in zip(key_columns, names, strict=True)
                ),
                match=column_list(match_columns),
                newest=sql.SQL(", ").join(
                    sql.SQL("{} DESC").format(sql.Identifier(c)) for c in table.primary_key
                ),
                table=table.name.identifier,
                condition=condition,
                limit=sql.Literal(limit),
            )
        return query, params

    def _key_columns(self, table: Table) -> tuple[Term, ...]:
        """Primary key, then every column (or JSON path) an FK of the table uses or an FK into the table
        references."""
        columns: list[Term] = list(table.primary_key)
        for fk in self.catalog.referenced_by(table.name):
            columns.extend(fk.child_terms)
        for fk in self.catalog.referencing(table.name):
            columns.extend(fk.parent_columns)
        return tuple(dict.fromkeys(columns))

    def result(self, organization_id: int) -> Closure:
        tables = [self.catalog.tables[name] for name in sorted(self.copied)]
        keys = {table.name: self.included[table.name].sorted_keys() for table in tables if table.primary_key}
        keyless = {
            table.name: self._keyless_rows(table, organization_id)
            for table in tables
            if not table.primary_key
        }
        reasons = {name: dict(self.reasons.get(name, {})) for name in sorted(self.copied)}
        return Closure(
            keys=keys,
            reasons=reasons,
            passes=self.passes,
            root_keys=self.root_keys,
            keyless=keyless,
            dangling={edge: frozenset(values) for edge, values in self.dangling.items() if values},
            nulled={fk: frozenset(values) for fk, values in self.nulled.items() if values},
        )

    def _keyless_rows(self, table: Table, organization_id: int) -> KeylessRows:
        selection = KeylessRows(
            roots=tuple(root for root in self.roots if root.table == table.name),
            parents=tuple(
                (fk, tuple(values)) for fk, values in self.keyless_parents[table.name].items() if values
            ),
            rows=0,
        )
        condition, params = selection.condition(table, organization_id)
        row = self.cur.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE {}").format(table.name.identifier, condition), params
        ).fetchone()
        rows = int(row[0]) if row else 0
        if rows:
            self.reasons[table.name]["root predicate or parents in the closure"] = rows
        return replace(selection, rows=rows)


def _require_primary_key(table: Table, *, because: str) -> None:
    if not table.primary_key:
        raise ClosureError(
            f"table {table.name} has no primary key, which is needed because {because}",
            f"add a primary key to {table.name}, or give it strategy empty or exclude in mask-rules.yaml",
        )


_STREAM_ROWS = 5_000  # rows of a query brought and walked at once (libpq's chunked rows)


def _streamed(
    cur: psycopg.Cursor[TupleRow], query: sql.Composed, params: dict[str, Any]
) -> Generator[list[tuple[Any, ...]]]:
    """The rows of ``query`` a chunk at a time; closed early, it closes the stream, which would otherwise hold
    the connection."""
    yield from _chunks(cur.stream(query, params, size=_STREAM_ROWS), _STREAM_ROWS)


def _chunks(values: Iterable[Any], size: int = KEY_BATCH) -> Iterator[list[Any]]:
    iterator = iter(values)
    while chunk := list(islice(iterator, size)):
        yield chunk


class _DistinctValues:
    """Values seen, each once: non-negative integers (nearly every key) in a compressed bitmap, a few bits
    each, others in a set. Iterated integers first, in order."""

    def __init__(self) -> None:
        self._integers = BitMap64()
        self._other: set[Key] = set()

    def update(self, values: list[Key]) -> None:
        # The bitmap converts what it can to an integer (a UUID, 2.5, True): only a batch of ints may go to it
        # whole, else a uuid key would come back as an int and a numeric 2.5 as the key 2.
        if all(type(value) is int for value in values):
            try:
                self._integers.update(values)  # one call in C for the usual batch of integer keys
                return
            except (OverflowError, ValueError):
                pass  # a negative or 64-bit-overflowing key: sorted one by one below
        for value in values:
            if type(value) is int and 0 <= value < _BITMAP_END:
                self._integers.add(value)
            else:
                self._other.add(value)

    def __bool__(self) -> bool:
        return bool(self._integers) or bool(self._other)

    def __iter__(self) -> Iterator[Key]:
        yield from self._integers
        yield from self._other

    def sorted_keys(self) -> Sequence[Key]:
        if not self._other:
            return SortedBitmap(self._integers)
        return tuple(heapq.merge(self._integers, sorted(self._other)))


class _Frontier:
    """What a pass found in one table, for the next: for each group of columns an FK reads (to pull parents
    up, or to find children), the distinct non-null values of the rows found, and of those that expand down.
    Kept as values rather than rows, so a pass over a million rows holds their distinct references (bits in
    a bitmap), not a million tuples."""

    def __init__(self, columns: tuple[Term, ...], groups: Iterable[tuple[Term, ...]]) -> None:
        self._positions = {group: [1 + columns.index(column) for column in group] for group in groups}
        self.every = {group: _DistinctValues() for group in self._positions}
        self.expanding = {group: _DistinctValues() for group in self._positions}

    def absorb(self, entries: list[tuple[Any, ...]]) -> None:
        """Entries are ``(expands_down, *row)`` over the walk's key columns of the table."""
        if not entries:
            return
        expanding = [entry for entry in entries if entry[0]]
        for group, positions in self._positions.items():
            for found, rows in ((self.every[group], entries), (self.expanding[group], expanding)):
                if len(positions) == 1:
                    (only,) = positions
                    found.update([row[only] for row in rows if row[only] is not None])
                else:
                    values = (tuple(row[position] for position in positions) for row in rows)
                    found.update([value for value in values if None not in value])
