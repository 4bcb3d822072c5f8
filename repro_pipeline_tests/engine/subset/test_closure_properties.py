"""Property tests of the FK closure on generated schemas, against a brute-force oracle.

Each example is a small schema (2-5 tables; ``id`` or composite ``(a, b)`` primary keys, an optional
extra unique column ``u``, FKs to primary keys, to reversed composite keys, to ``u``, self-references
and cycles, NULL or NOT NULL) with a few rows and one or two root predicates. It is created in its own
schema of the scratch database ``props`` on the primary; the closure is computed on the hot standby and
compared with ``closure_oracle``, which applies README.md's "Closure semantics" literally to the full
table contents until nothing changes. A second test loads the closure into a target database and checks
that every FK of the source is there and has no orphans.

FK constraints are added after all rows are inserted (Postgres checks them then), so cycles and
self-references load whatever their nullability, NOT NULL cycles included. A few hand-written examples that
random data seldom builds run first. Run with ``--hypothesis-show-statistics`` to see what was generated.
"""

from __future__ import annotations

import itertools
import json
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, assume, event, example, given, note, settings
from hypothesis import strategies as st
from psycopg import sql
from psycopg.rows import TupleRow, dict_row

from repro_pipeline.embedded.stack import Stack, wait_for_standby_replay
from repro_pipeline.engine.config import ReproConfig, load_config
from repro_pipeline.engine.dsn import with_database
from repro_pipeline.engine.errors import ClosureError
from repro_pipeline.engine.load.loader import load_repro
from repro_pipeline.engine.load.plan import SubsetPlan
from repro_pipeline.engine.masking.plan import build_mask_plan
from repro_pipeline.engine.secrets import Secret
from repro_pipeline.engine.source.catalog import Catalog, TableName, read_catalog
from repro_pipeline.engine.source.snapshot import open_source_snapshot
from repro_pipeline.engine.subset.closure import Closure, Root, compute_closure
from repro_pipeline.engine.subset.predicate import Predicate
from repro_pipeline.engine.verify.orphans import count_orphans, expected_foreign_keys

PROPS_DATABASE = "props"
TABLE_NAMES = ("t0", "Parent", "order", "two words", 'q"t')  # quoting matters for all but the first
SETTINGS = settings(
    deadline=None,
    derandomize=True,  # the same examples on every run, so CI is reproducible
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

Key = Any  # an int for ``id`` tables, an (a, b) tuple for composite ones, as Closure.keys has them
Row = dict[str, int | None]
ID_KEYS = list(range(1, 21))
COMPOSITE_KEYS = [(a, b) for a in range(1, 5) for b in range(1, 6)]


# --- generated schemas ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TableSpec:
    name: str
    composite: bool  # primary key (a, b) instead of (id)
    unique: str  # "" (no column u), "constraint" (UNIQUE (u)) or "index" (CREATE UNIQUE INDEX ... (u))
    rows: tuple[Row, ...]  # every column: key, u, and the FK columns of the FKs from this table

    @property
    def key_columns(self) -> tuple[str, ...]:
        return ("a", "b") if self.composite else ("id",)

    def key(self, row: Row) -> Key:
        values = tuple(row[column] for column in self.key_columns)
        return values if self.composite else values[0]


@dataclass(frozen=True)
class ForeignKeySpec:
    name: str
    child: int  # index into SchemaSpec.tables
    parent: int  # == child for a self-reference
    columns: tuple[str, ...]
    parent_columns: tuple[str, ...]  # the parent's key, the key reversed, or ("u",)
    not_null: bool
    deferrable: bool = False  # DEFERRABLE INITIALLY DEFERRED


@dataclass(frozen=True)
class RootSpec:
    table: int
    columns: tuple[str, ...]
    op: str  # "=", "<", "IN" or "= :organization_id"
    values: tuple[Any, ...]

    def predicate(self) -> str:
        columns = ", ".join(self.columns)
        if self.op == "IN":
            listed = ", ".join(str(value) for value in self.values)  # str((1, 2)) is "(1, 2)"
            return f"({columns}) IN ({listed})" if len(self.columns) > 1 else f"{columns} IN ({listed})"
        if self.op == "= :organization_id":
            return f"{columns} = :organization_id"
        return f"{columns} {self.op} {self.values[0]}"

    def selects(self, row: Row, organization_id: int) -> bool:
        values = tuple(row[column] for column in self.columns)
        value: Any = values if len(values) > 1 else values[0]
        if self.op == "IN":
            return value in self.values
        if self.op == "= :organization_id":
            return bool(value == organization_id)
        return bool(value == self.values[0] if self.op == "=" else value < self.values[0])


@dataclass(frozen=True)
class SchemaSpec:
    tables: tuple[TableSpec, ...]
    foreign_keys: tuple[ForeignKeySpec, ...]
    roots: tuple[RootSpec, ...]  # on distinct tables
    organization_id: int  # the value bound to :organization_id

    def columns(self, index: int) -> list[tuple[str, bool]]:
        """(name, not null) of every column of a table, in CREATE TABLE order."""
        table = self.tables[index]
        columns = [(column, True) for column in table.key_columns]
        if table.unique:
            columns.append(("u", False))
        for fk in self.foreign_keys:
            if fk.child == index:
                columns.extend((column, fk.not_null) for column in fk.columns)
        return columns

    def roots_select_a_row(self) -> bool:
        return any(
            root.selects(row, self.organization_id)
            for root in self.roots
            for row in self.tables[root.table].rows
        )


def referenced_values(
    keys: Sequence[Key], uniques: Sequence[int | None], columns: tuple[str, ...]
) -> list[Any]:
    """What an FK to ``columns`` of a table with these rows can hold (tuples, one value per column)."""
    if columns == ("u",):
        return [(value,) for value in uniques if value is not None]
    as_tuples = [key if isinstance(key, tuple) else (key,) for key in keys]
    return [tuple(reversed(key)) for key in as_tuples] if columns == ("b", "a") else as_tuples


def root_predicates(index: int, composite: bool, keys: Sequence[Key]) -> st.SearchStrategy[RootSpec]:
    """``id = 7``, ``id < 8``, ``id IN (1, 5)``, ``id = :organization_id``; with ``a`` or ``(a, b)`` for
    composite keys. Values are often keys of the table, but may select nothing."""
    column, largest = ("a", 4) if composite else ("id", 20)
    in_columns = ("a", "b") if composite else ("id",)
    value = st.integers(1, largest + 1)
    listed = st.tuples(st.integers(1, 4), st.integers(1, 5)) if composite else st.integers(1, 20)
    if keys:
        value = st.one_of(st.sampled_from([key[0] if composite else key for key in keys]), value)
        listed = listed | st.sampled_from(keys)
    return st.one_of(
        value.map(lambda v: RootSpec(index, (column,), "=", (v,))),
        value.map(lambda v: RootSpec(index, (column,), "<", (v,))),
        st.lists(listed, min_size=1, max_size=3, unique=True).map(
            lambda values: RootSpec(index, in_columns, "IN", tuple(values))
        ),
        st.just(RootSpec(index, (column,), "= :organization_id", ())),
    )


def foreign_key_values(
    choices: list[tuple[Any, ...]], popular: list[tuple[Any, ...]], width: int, not_null: bool
) -> st.SearchStrategy[Any]:
    """A referenced value, often one of a few popular ones (so that parents have several children), or
    NULL one time in four when the FK is nullable; with MATCH SIMPLE, a composite FK with one NULL column
    is not checked, so its other column may hold anything."""
    nulls: st.SearchStrategy[tuple[int | None, ...]] = st.just((None,) * width)
    if width == 2:
        nulls = st.one_of(
            nulls, st.tuples(st.none(), st.integers(1, 5)), st.tuples(st.integers(1, 5), st.none())
        )
    if not choices:
        return nulls
    referenced = st.one_of(st.sampled_from(popular), st.sampled_from(popular), st.sampled_from(choices))
    return referenced if not_null else st.one_of(referenced, referenced, referenced, nulls)


@st.composite
def schemas(draw: st.DrawFn) -> SchemaSpec:
    count = draw(st.integers(2, 5))
    names = draw(st.permutations(TABLE_NAMES))[:count]
    composite = [draw(st.booleans()) for _ in range(count)]
    unique = [draw(st.sampled_from(["", "constraint", "index"])) for _ in range(count)]
    keys: list[list[Key]] = []
    for is_composite in composite:
        size = draw(st.integers(0, 15))
        keys.append(draw(st.permutations(COMPOSITE_KEYS if is_composite else ID_KEYS))[:size])
    uniques: list[list[int | None]] = []
    for index, table_keys in enumerate(keys):
        # u overlaps the id range on purpose: a u mistaken for an id (or the reverse) finds the wrong row.
        values = draw(st.permutations(range(1, 26)))
        nulls = draw(st.lists(st.booleans(), min_size=len(table_keys), max_size=len(table_keys)))
        uniques.append(
            [
                None if null or not unique[index] else value
                for value, null in zip(values[: len(nulls)], nulls, strict=True)
            ]
        )

    foreign_keys: list[ForeignKeySpec] = []
    for number in range(draw(st.integers(1, 7))):
        any_pair = st.tuples(st.integers(0, count - 1), st.integers(0, count - 1))
        reversed_pairs = [(fk.parent, fk.child) for fk in foreign_keys if fk.parent != fk.child]
        # Closing a cycle with an earlier FK is made likelier than chance would make it.
        child, parent = draw(any_pair | st.sampled_from(reversed_pairs) if reversed_pairs else any_pair)
        key_columns = ("a", "b") if composite[parent] else ("id",)
        targets = [key_columns] + [("b", "a")] * composite[parent] + [("u",)] * bool(unique[parent])
        parent_columns = draw(st.sampled_from(targets))
        columns = (
            tuple(f"fk{number}_{column}" for column in parent_columns)
            if len(parent_columns) > 1
            else (f"fk{number}",)
        )
        foreign_keys.append(
            ForeignKeySpec(
                f"fk{number}",
                child,
                parent,
                columns,
                parent_columns,
                draw(st.booleans()),
                draw(st.booleans()),
            )
        )

    # A NOT NULL FK to a table with nothing to reference leaves its table empty (and so on, transitively).
    emptied = True
    while emptied:
        emptied = False
        for fk in foreign_keys:
            if (
                fk.not_null
                and keys[fk.child]
                and not referenced_values(keys[fk.parent], uniques[fk.parent], fk.parent_columns)
            ):
                keys[fk.child], uniques[fk.child], emptied = [], [], True

    rows: list[list[Row]] = [
        [
            dict(zip(("a", "b"), key, strict=True) if composite[index] else [("id", key)])
            | ({"u": u} if unique[index] else {})
            for key, u in zip(keys[index], uniques[index], strict=True)
        ]
        for index in range(count)
    ]
    for fk in foreign_keys:
        choices = referenced_values(keys[fk.parent], uniques[fk.parent], fk.parent_columns)
        popular = (
            draw(st.lists(st.sampled_from(choices), min_size=1, max_size=3, unique=True)) if choices else []
        )
        fk_values = foreign_key_values(choices, popular, len(fk.columns), fk.not_null)
        for row in rows[fk.child]:
            row.update(zip(fk.columns, draw(fk_values), strict=True))

    with_rows = [index for index in range(count) if keys[index]] or list(range(count))
    root_tables = draw(st.lists(st.sampled_from(with_rows), min_size=1, max_size=2, unique=True))
    roots = tuple(draw(root_predicates(index, composite[index], keys[index])) for index in root_tables)
    placeholder_on_a = any(root.op == "= :organization_id" and root.columns == ("a",) for root in roots)
    organization_id = draw(st.integers(1, 4) if placeholder_on_a else st.integers(1, 20))

    tables = tuple(
        TableSpec(names[index], composite[index], unique[index], tuple(rows[index])) for index in range(count)
    )
    return SchemaSpec(tables, tuple(foreign_keys), roots, organization_id)


def render(spec: SchemaSpec, schema: str) -> list[sql.Composed]:
    """CREATE SCHEMA, the tables with their keys, the rows, then the FKs (checked against the rows)."""

    def table_id(index: int) -> sql.Identifier:
        return sql.Identifier(schema, spec.tables[index].name)

    def names(columns: Sequence[str]) -> sql.Composed:
        return sql.SQL(", ").join(map(sql.Identifier, columns))

    statements = [sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema))]
    for index, table in enumerate(spec.tables):
        parts: list[sql.Composable] = [
            sql.SQL("{} integer{}").format(sql.Identifier(column), sql.SQL(" NOT NULL" if not_null else ""))
            for column, not_null in spec.columns(index)
        ]
        parts.append(sql.SQL("PRIMARY KEY ({})").format(names(table.key_columns)))
        if table.unique == "constraint":
            parts.append(sql.SQL("UNIQUE (u)"))
        statements.append(sql.SQL("CREATE TABLE {} ({})").format(table_id(index), sql.SQL(", ").join(parts)))
        if table.unique == "index":
            statements.append(sql.SQL("CREATE UNIQUE INDEX ON {} (u)").format(table_id(index)))
    for index, table in enumerate(spec.tables):
        columns = [column for column, _ in spec.columns(index)]
        if table.rows:
            values = sql.SQL(", ").join(
                sql.SQL("({})").format(sql.SQL(", ").join(sql.Literal(row[column]) for column in columns))
                for row in table.rows
            )
            statements.append(
                sql.SQL("INSERT INTO {} ({}) VALUES {}").format(table_id(index), names(columns), values)
            )
    for fk in spec.foreign_keys:
        statements.append(
            sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {} ({}){}").format(
                table_id(fk.child),
                sql.Identifier(fk.name),
                names(fk.columns),
                table_id(fk.parent),
                names(fk.parent_columns),
                sql.SQL(" DEFERRABLE INITIALLY DEFERRED" if fk.deferrable else ""),
            )
        )
    return statements


# --- the oracle -------------------------------------------------------------------------------------------


def closure_oracle(spec: SchemaSpec, contents: Sequence[Sequence[Row]]) -> list[set[Key]]:
    """README.md's closure semantics, applied to every pair of rows until nothing changes.

    ``down`` holds the rows that expand downwards: root rows, and rows of non-root tables that reference
    one of them through an FK whose columns are all non-NULL and equal. ``included`` adds, transitively,
    every row an included row references.
    """
    root_tables = {root.table for root in spec.roots}
    down: list[set[Key]] = [set() for _ in spec.tables]
    for root in spec.roots:
        table = spec.tables[root.table]
        down[root.table] |= {
            table.key(row) for row in contents[root.table] if root.selects(row, spec.organization_id)
        }
    included = [set(keys) for keys in down]

    def references(fk: ForeignKeySpec, child: Row, parent: Row) -> bool:
        return all(
            child[column] is not None and child[column] == parent[parent_column]
            for column, parent_column in zip(fk.columns, fk.parent_columns, strict=True)
        )

    changed = True
    while changed:
        changed = False
        for fk in spec.foreign_keys:
            child_table, parent_table = spec.tables[fk.child], spec.tables[fk.parent]
            for child in contents[fk.child]:
                for parent in contents[fk.parent]:
                    if not references(fk, child, parent):
                        continue
                    child_key, parent_key = child_table.key(child), parent_table.key(parent)
                    if (
                        fk.child not in root_tables
                        and parent_key in down[fk.parent]
                        and child_key not in down[fk.child]
                    ):
                        down[fk.child].add(child_key)
                        included[fk.child].add(child_key)
                        changed = True
                    if child_key in included[fk.child] and parent_key not in included[fk.parent]:
                        included[fk.parent].add(parent_key)
                        changed = True
    return included


# --- the database side ------------------------------------------------------------------------------------

_schema_numbers = itertools.count()


@pytest.fixture(scope="module")
def props(stack: Stack) -> Iterator[None]:
    """The scratch database ``props`` on the primary, for the whole module."""
    with psycopg.connect(stack.primary_dsn, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(PROPS_DATABASE))
        )
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(PROPS_DATABASE)))
    yield
    with psycopg.connect(stack.primary_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(PROPS_DATABASE)))


@contextmanager
def materialized(stack: Stack, spec: SchemaSpec) -> Iterator[str]:
    """The example in a new schema of ``props`` on the primary, replayed on the standby; dropped after."""
    schema = f"prop_{next(_schema_numbers)}"
    primary = stack.dsn("primary", PROPS_DATABASE)
    with psycopg.connect(primary) as conn:
        statements = render(spec, schema)
        note("\n".join(statement.as_string(conn) + ";" for statement in statements))
        note("roots: " + "; ".join(f"{spec.tables[r.table].name}: {r.predicate()}" for r in spec.roots))
        note(f"organization_id: {spec.organization_id}")
        for statement in statements:
            conn.execute(statement)
    try:
        wait_for_standby_replay(stack)
        yield schema
    finally:
        with psycopg.connect(primary, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


@contextmanager
def target_database(stack: Stack, name: str) -> Iterator[str]:
    with psycopg.connect(stack.target_admin_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield with_database(stack.target_admin_dsn, name)
    finally:
        with psycopg.connect(stack.target_admin_dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def schema_catalog(conn: psycopg.Connection[TupleRow], schema: str) -> Catalog:
    catalog = read_catalog(conn)
    return Catalog(
        tables={name: table for name, table in catalog.tables.items() if name.schema == schema},
        foreign_keys=tuple(
            fk for fk in catalog.foreign_keys if fk.child.schema == schema == fk.parent.schema
        ),
        unique_indexes=tuple(entry for entry in catalog.unique_indexes if entry[0].schema == schema),
    )


def table_contents(conn: psycopg.Connection[TupleRow], spec: SchemaSpec, schema: str) -> list[list[Row]]:
    """Every row of every table of the example, read once (all columns are integers)."""
    cur = conn.cursor(row_factory=dict_row)
    return [
        cur.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(schema, table.name))).fetchall()
        for table in spec.tables
    ]


def engine_roots(spec: SchemaSpec, schema: str) -> list[Root]:
    return [
        Root(TableName(schema, spec.tables[root.table].name), Predicate(root.predicate()), f"root {number}")
        for number, root in enumerate(spec.roots)
    ]


def run_closure(
    conn: psycopg.Connection[TupleRow], catalog: Catalog, spec: SchemaSpec, schema: str
) -> Closure:
    return compute_closure(
        conn, catalog, engine_roots(spec, schema), spec.organization_id, copied_tables=list(catalog.tables)
    )


def primary_keys(conn: psycopg.Connection[TupleRow], schema: str, table: TableSpec) -> list[Key]:
    query = sql.SQL("SELECT {} FROM {}").format(
        sql.SQL(", ").join(map(sql.Identifier, table.key_columns)), sql.Identifier(schema, table.name)
    )
    return [row if table.composite else row[0] for row in conn.execute(query)]


def shown(spec: SchemaSpec, keys: Sequence[Any]) -> dict[str, list[Key]]:
    """Keys per table name, sorted, for readable assertion diffs."""
    return {table.name: sorted(table_keys) for table, table_keys in zip(spec.tables, keys, strict=True)}


def record_features(spec: SchemaSpec) -> None:
    """Shown by ``pytest --hypothesis-show-statistics``: how often each feature was generated."""
    pairs = {(fk.child, fk.parent) for fk in spec.foreign_keys}
    for fk in spec.foreign_keys:
        event("FK to a composite key" if len(fk.columns) > 1 else "FK to one column")
        event("FK to a unique non-key column" if fk.parent_columns == ("u",) else "FK to a primary key")
        event("NOT NULL FK" if fk.not_null else "nullable FK")
        if fk.child == fk.parent:
            event("self-reference")
        elif (fk.parent, fk.child) in pairs:
            event("cycle between two tables")
    event(f"{len(spec.roots)} root(s)")
    event("roots select rows" if spec.roots_select_a_row() else "roots select nothing")


# --- the tests --------------------------------------------------------------------------------------------


# Hand-written cases that random data rarely builds; @example runs them before the generated ones. Each
# depends on the order in which the engine visits FKs and rows within one pass.

# Parents 1 and 3 are children of the root row. In the next pass, 3 pulls up 2 (fk1) before the down step
# finds 2 as a child of 1: 2 must still expand down, to 4.
PULLED_UP_THEN_REACHED_DOWN = SchemaSpec(
    tables=(
        TableSpec("t0", False, "", ({"id": 1},)),
        TableSpec(
            "Parent",
            False,
            "",
            (
                {"id": 1, "fk0": 1, "fk1": None},
                {"id": 3, "fk0": 1, "fk1": 2},
                {"id": 2, "fk0": None, "fk1": 1},
                {"id": 4, "fk0": None, "fk1": 2},
            ),
        ),
    ),
    foreign_keys=(
        ForeignKeySpec("fk0", 1, 0, ("fk0",), ("id",), False),
        ForeignKeySpec("fk1", 1, 1, ("fk1",), ("id",), False),
    ),
    roots=(RootSpec(0, ("id",), "=", (1,)),),
    organization_id=1,
)
# The root row references parent 2 by id and parent 1 by its unique u = 2: a known id 2 is not a known u 2.
UNIQUE_VALUE_EQUAL_TO_A_KNOWN_KEY = SchemaSpec(
    tables=(
        TableSpec("t0", False, "", ({"id": 1, "fk0": 2, "fk1": 2},)),
        TableSpec("Parent", False, "constraint", ({"id": 1, "u": 2}, {"id": 2, "u": None})),
    ),
    foreign_keys=(
        ForeignKeySpec("fk0", 0, 1, ("fk0",), ("id",), True),
        ForeignKeySpec("fk1", 0, 1, ("fk1",), ("u",), True),
    ),
    roots=(RootSpec(0, ("id",), "=", (1,)),),
    organization_id=1,
)

# fk1 names parent (1, 2) as (b, a) = (2, 1): equal to the key of parent (2, 1), which fk0 pulled up first.
REVERSED_COMPOSITE_KEY = SchemaSpec(
    tables=(
        TableSpec("t0", False, "", ({"id": 1, "fk0_a": 2, "fk0_b": 1, "fk1_b": 2, "fk1_a": 1},)),
        TableSpec("Parent", True, "", ({"a": 1, "b": 2}, {"a": 2, "b": 1})),
    ),
    foreign_keys=(
        ForeignKeySpec("fk0", 0, 1, ("fk0_a", "fk0_b"), ("a", "b"), True),
        ForeignKeySpec("fk1", 0, 1, ("fk1_b", "fk1_a"), ("b", "a"), True),
    ),
    roots=(RootSpec(0, ("id",), "=", (1,)),),
    organization_id=1,
)


@settings(SETTINGS, max_examples=40)
@given(spec=schemas())
@example(spec=PULLED_UP_THEN_REACHED_DOWN)
@example(spec=UNIQUE_VALUE_EQUAL_TO_A_KNOWN_KEY)
@example(spec=REVERSED_COMPOSITE_KEY)
def test_the_closure_equals_the_brute_force_fixed_point(stack: Stack, props: None, spec: SchemaSpec) -> None:
    record_features(spec)
    with (
        materialized(stack, spec) as schema,
        open_source_snapshot(stack.dsn("standby", PROPS_DATABASE)) as snapshot,
    ):
        catalog = schema_catalog(snapshot.conn, schema)
        expected = closure_oracle(spec, table_contents(snapshot.conn, spec, schema))
        if not spec.roots_select_a_row():
            with pytest.raises(ClosureError, match="no root predicate matched any row"):
                run_closure(snapshot.conn, catalog, spec, schema)
            return
        closure = run_closure(snapshot.conn, catalog, spec, schema)
    found = [closure.keys[TableName(schema, table.name)] for table in spec.tables]
    assert set(closure.keys) == set(catalog.tables)
    assert all(list(keys) == sorted(keys) for keys in found)
    assert shown(spec, found) == shown(spec, expected)


def write_config(directory: Path, spec: SchemaSpec, schema: str) -> ReproConfig:
    """Minimal config files: no masking rules, and the example's roots as the subset."""
    (directory / "mask-rules.yaml").write_text('version: "1.0"\n')
    subset = "".join(
        f"  - table: {json.dumps(str(TableName(schema, spec.tables[root.table].name)))}\n"
        f"    predicate: {json.dumps(root.predicate())}\n"
        for root in spec.roots
    )
    (directory / "commercial-extensions.yaml").write_text(f'version: "1.0"\nsubset:\n{subset}')
    return load_config(directory / "mask-rules.yaml", directory / "commercial-extensions.yaml")


@settings(SETTINGS, max_examples=10)
@given(spec=schemas())
def test_a_loaded_closure_has_every_foreign_key_and_no_orphans(
    stack: Stack, props: None, spec: SchemaSpec, tmp_path: Path
) -> None:
    assume(spec.roots_select_a_row())
    record_features(spec)
    with (
        materialized(stack, spec) as schema,
        open_source_snapshot(stack.dsn("standby", PROPS_DATABASE)) as snapshot,
    ):
        catalog = schema_catalog(snapshot.conn, schema)
        closure = run_closure(snapshot.conn, catalog, spec, schema)
        config = write_config(tmp_path, spec, schema)
        salt = Secret(secrets.token_hex(32))
        plan = SubsetPlan(
            organization_id=spec.organization_id,
            catalog=catalog,
            mask_plan=build_mask_plan(config, catalog, salt),
            closure=closure,
            config_hash=config.fingerprint(),
            salt_fingerprint=salt.fingerprint(),
        )
        with target_database(stack, f"props_load_{schema}") as target_dsn:
            # batch_size=4: most tables take several key batches.
            load_repro(snapshot, target_dsn, plan, run_id=schema, started_at=datetime.now(UTC), batch_size=4)
            with psycopg.connect(target_dsn) as target:
                foreign_keys = expected_foreign_keys(catalog, read_catalog(target))
                assert [str(fk) for fk in foreign_keys.missing] == []
                assert len(foreign_keys.present) == len(spec.foreign_keys)
                orphans = count_orphans(target, foreign_keys.present + foreign_keys.missing)
                assert [(str(count.foreign_key), count.orphans) for count in orphans if count.orphans] == []
                loaded = [primary_keys(target, schema, table) for table in spec.tables]
    assert shown(spec, loaded) == shown(spec, [closure.keys[TableName(schema, t.name)] for t in spec.tables])
