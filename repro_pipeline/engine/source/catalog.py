"""What the source database holds: tables, columns, keys and constraints, read once from ``pg_catalog``."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

_SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")
MANIFEST_SCHEMA = "_repro_pipeline"  # the run's record in each repro database; never copied or checked


@dataclass(frozen=True, order=True)
class TableName:
    schema: str
    name: str

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def identifier(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)

    @classmethod
    def parse(cls, text: str) -> TableName:
        """``schema.table``, or ``table`` for the ``public`` schema."""
        schema, _, name = text.rpartition(".")
        return cls(schema or "public", name)


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    not_null: bool
    default: str | None
    identity: str  # 'a' (ALWAYS), 'd' (BY DEFAULT) or ''
    generated: str  # 's' (STORED generated column) or ''
    base_type: str = ""  # for a column of a domain, the domain's base type (``integer`` for app.year)
    enum_labels: tuple[str, ...] = ()  # for a column of an enum, its labels in order


@dataclass(frozen=True)
class Constraint:
    table: TableName
    name: str
    kind: str  # 'p' primary key, 'u' unique, 'c' check, 'f' foreign key
    columns: tuple[str, ...]
    definition: str


@dataclass(frozen=True)
class JsonPath:
    """A reference held inside a json/jsonb column, at a dotted path (``$.actor.user_id``)."""

    column: str
    keys: tuple[str, ...]  # ("actor", "user_id")
    key_type: str  # the referenced column's type: a value at the path that is not one is no reference

    def __str__(self) -> str:
        return f"{self.column} at $.{'.'.join(self.keys)}"


@dataclass(frozen=True)
class ForeignKey:
    name: str
    child: TableName
    child_columns: tuple[str, ...]
    parent: TableName
    parent_columns: tuple[str, ...]
    definition: str
    virtual: bool = False  # declared in commercial-extensions.yaml, not by the schema: no constraint
    json_path: JsonPath | None = None  # a virtual reference held in JSON; child_columns is its json column

    @property
    def child_terms(self) -> tuple[str | JsonPath, ...]:
        """What holds the reference in each child row: its columns, or the value at its JSON path."""
        return (self.json_path,) if self.json_path else self.child_columns

    def __str__(self) -> str:
        child = str(self.json_path) if self.json_path else ", ".join(self.child_columns)
        return f"{self.child}({child}) -> {self.parent}({', '.join(self.parent_columns)})"


@dataclass(frozen=True)
class Table:
    """An ordinary table, or a partitioned one with its partitions (copied through the parent)."""

    name: TableName
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    constraints: tuple[Constraint, ...] = field(default=())
    partition_by: str | None = None  # e.g. RANGE (occurred_at)
    partitions: tuple[TableName, ...] = ()  # at every level, parents before their children

    @cached_property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    def column(self, name: str) -> Column | None:
        return next((column for column in self.columns if column.name == name), None)

    @property
    def copy_columns(self) -> tuple[Column, ...]:
        """Columns whose values are copied: generated columns are computed again by the target."""
        return tuple(column for column in self.columns if not column.generated)


@dataclass(frozen=True)
class Catalog:
    tables: Mapping[TableName, Table]
    # The references between tables: a FK declared on partitions (and not on their partitioned table) is a
    # reference of the partitioned table, once, named after its first partition's constraint.
    foreign_keys: tuple[ForeignKey, ...]
    unique_indexes: tuple[tuple[TableName, str], ...]  # (table, CREATE UNIQUE INDEX) not backing a constraint

    def find(self, text: str) -> Table | None:
        return self.tables.get(TableName.parse(text))

    def referencing(self, parent: TableName) -> tuple[ForeignKey, ...]:
        return tuple(fk for fk in self.foreign_keys if fk.parent == parent)

    def referenced_by(self, child: TableName) -> tuple[ForeignKey, ...]:
        return tuple(fk for fk in self.foreign_keys if fk.child == child)


def base_type(type_name: str) -> str:
    """``character varying(36)`` and ``character varying(255)`` are one type: the length is a limit."""
    return re.sub(r"\(\d+(?:,\d+)?\)", "", type_name)


def read_catalog(conn: psycopg.Connection[TupleRow]) -> Catalog:
    """Every ordinary table of every user schema, with its columns, keys and constraints.

    Read with an empty search_path, as pg_dump does, so that types, defaults and constraint definitions
    come back schema-qualified and mean the same on the target.
    """
    cur = conn.cursor()
    row = cur.execute("SELECT current_setting('search_path')").fetchone()
    search_path = str(row[0]) if row else ""
    cur.execute("SELECT set_config('search_path', '', false)")
    try:
        return _read_catalog(cur)
    finally:
        cur.execute("SELECT set_config('search_path', %s, false)", (search_path,))


def _read_catalog(cur: psycopg.Cursor[TupleRow]) -> Catalog:
    tables = cur.execute(
        """
        SELECT c.oid, n.nspname, c.relname, CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
          AND n.nspname <> ALL(%s) AND n.nspname NOT LIKE 'pg\\_%%' AND n.nspname <> %s
        ORDER BY n.nspname, c.relname
        """,
        (list(_SYSTEM_SCHEMAS), MANIFEST_SCHEMA),
    ).fetchall()
    names = {oid: TableName(str(schema), str(name)) for oid, schema, name, _ in tables}
    partition_by = {names[oid]: None if key is None else str(key) for oid, _, _, key in tables}
    oids = list(names)
    columns: dict[TableName, list[Column]] = {name: [] for name in names.values()}
    attnames: dict[tuple[object, object], str] = {}
    for (
        relid,
        attnum,
        attname,
        type_name,
        not_null,
        default,
        identity,
        generated,
        base_type,
        enum_labels,
    ) in cur.execute(
        """
        SELECT a.attrelid, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated,
               format_type(base.oid, base.typmod),
               CASE WHEN (SELECT typtype FROM pg_type WHERE oid = coalesce(base.oid, t.oid)) = 'e' THEN ARRAY(
                   SELECT e.enumlabel::text FROM pg_enum e
                   WHERE e.enumtypid = coalesce(base.oid, t.oid) ORDER BY e.enumsortorder
               ) END
        FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        LEFT JOIN LATERAL (  -- a domain's base type, through domains over domains
            WITH RECURSIVE chain(oid, typmod, depth) AS (
                SELECT t.typbasetype, t.typtypmod, 1 WHERE t.typtype = 'd'
              UNION ALL
                SELECT b.typbasetype, b.typtypmod, chain.depth + 1
                FROM chain JOIN pg_type b ON b.oid = chain.oid WHERE b.typtype = 'd'
            )
            SELECT oid, typmod FROM chain ORDER BY depth DESC LIMIT 1
        ) base ON true
        WHERE a.attrelid = ANY(%s) AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attrelid, a.attnum
        """,
        (oids,),
    ):
        attnames[(relid, attnum)] = str(attname)
        columns[names[relid]].append(
            Column(
                name=str(attname),
                type=str(type_name),
                not_null=bool(not_null),
                default=None if default is None else str(default),
                identity=str(identity),
                generated=str(generated),
                base_type="" if base_type is None else str(base_type),
                enum_labels=tuple(str(label) for label in enum_labels or ()),
            )
        )
    constraints: dict[TableName, list[Constraint]] = {name: [] for name in names.values()}
    foreign_keys = []
    for conname, contype, relid, conkey, frelid, confkey, definition in cur.execute(
        """
        SELECT conname, contype, conrelid, conkey, confrelid, confkey, pg_get_constraintdef(oid)
        FROM pg_constraint WHERE conrelid = ANY(%s) AND contype IN ('p', 'u', 'c', 'f') AND conparentid = 0
        ORDER BY conrelid, contype, conname
        """,
        (oids,),
    ):
        table = names[relid]
        cols = tuple(attnames[(relid, num)] for num in (conkey or ()))
        constraints[table].append(Constraint(table, str(conname), str(contype), cols, str(definition)))
        if contype == "f" and frelid in names:
            foreign_keys.append(
                ForeignKey(
                    name=str(conname),
                    child=table,
                    child_columns=cols,
                    parent=names[frelid],
                    parent_columns=tuple(attnames[(frelid, num)] for num in confkey),
                    definition=str(definition),
                )
            )
    indexes = [
        (names[relid], str(definition), bool(unique))
        for relid, definition, unique in cur.execute(
            """
            SELECT i.indrelid, pg_get_indexdef(i.indexrelid), i.indisunique FROM pg_index i
            WHERE i.indrelid = ANY(%s)
              AND NOT EXISTS (SELECT 1 FROM pg_constraint c
                              WHERE c.conindid = i.indexrelid AND c.contype IN ('p', 'u', 'x'))
            ORDER BY i.indexrelid
            """,
            (oids,),
        )
    ]
    unique_indexes = tuple((table, definition) for table, definition, unique in indexes if unique)
    partitions = _partitions(cur, names)
    partition_foreign_keys = _partition_foreign_keys(cur, names)
    foreign_keys.extend(_as_references(partition_foreign_keys, partitions, foreign_keys))
    return Catalog(
        tables={
            name: Table(
                name=name,
                columns=tuple(columns[name]),
                primary_key=_primary_key(constraints[name]),
                constraints=tuple(constraints[name]),
                partition_by=partition_by[name],
                partitions=partitions.get(name, ()),
            )
            for name in names.values()
        },
        foreign_keys=tuple(foreign_keys),
        unique_indexes=unique_indexes,
    )


def _partition_foreign_keys(
    cur: psycopg.Cursor[TupleRow], names: Mapping[object, TableName]
) -> tuple[ForeignKey, ...]:
    """FK constraints declared on a partition itself (not inherited from its parent's), to a table of ``names``."""
    rows = cur.execute(
        """
        SELECT con.conname, n.nspname, c.relname, con.confrelid, pg_get_constraintdef(con.oid),
               ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(num, i)
                     JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num ORDER BY k.i),
               ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(num, i)
                     JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num ORDER BY k.i)
        FROM pg_constraint con
        JOIN pg_class c ON c.oid = con.conrelid AND c.relispartition
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE con.contype = 'f' AND con.conparentid = 0 AND con.confrelid = ANY(%s)
        ORDER BY n.nspname, c.relname, con.conname
        """,
        (list(names),),
    ).fetchall()
    return tuple(
        ForeignKey(
            name=str(conname),
            child=TableName(str(schema), str(relname)),
            child_columns=tuple(str(column) for column in child_columns),
            parent=names[frelid],
            parent_columns=tuple(str(column) for column in parent_columns),
            definition=str(definition),
        )
        for conname, schema, relname, frelid, definition, child_columns, parent_columns in rows
    )


def _as_references(
    partition_foreign_keys: Iterable[ForeignKey],
    partitions: Mapping[TableName, tuple[TableName, ...]],
    declared: Iterable[ForeignKey],
) -> list[ForeignKey]:
    """Each distinct reference the partitions of a partitioned table declare, as the partitioned table's,
    unless the partitioned table declares it itself."""

    def reference(fk: ForeignKey) -> tuple[object, ...]:
        return (fk.child, fk.child_columns, fk.parent, fk.parent_columns)

    root_of = {partition: root for root, members in partitions.items() for partition in members}
    known = {reference(fk) for fk in declared}
    references: dict[tuple[object, ...], ForeignKey] = {}
    for fk in partition_foreign_keys:
        if fk.child in root_of:
            as_root = replace(fk, child=root_of[fk.child])
            if reference(as_root) not in known:
                references.setdefault(reference(as_root), as_root)
    return list(references.values())


def _partitions(
    cur: psycopg.Cursor[TupleRow], tables: Mapping[object, TableName]
) -> dict[TableName, tuple[TableName, ...]]:
    """Each partitioned table's partitions at every level, parents listed before their children."""
    rows = cur.execute(
        """
        WITH RECURSIVE tree AS (
            SELECT i.inhrelid AS oid, i.inhparent AS root, 1 AS depth
            FROM pg_inherits i WHERE i.inhparent = ANY(%s)
            UNION ALL
            SELECT i.inhrelid, tree.root, tree.depth + 1
            FROM pg_inherits i JOIN tree ON i.inhparent = tree.oid
        )
        SELECT tree.root, n.nspname, c.relname
        FROM tree
        JOIN pg_class c ON c.oid = tree.oid AND c.relispartition
        JOIN pg_namespace n ON n.oid = c.relnamespace
        ORDER BY tree.root, tree.depth, n.nspname, c.relname
        """,
        (list(tables),),
    ).fetchall()
    found: dict[TableName, list[TableName]] = {}
    for root, schema, name in rows:
        found.setdefault(tables[root], []).append(TableName(str(schema), str(name)))
    return {table: tuple(partitions) for table, partitions in found.items()}


def _primary_key(constraints: Iterable[Constraint]) -> tuple[str, ...]:
    return next((c.columns for c in constraints if c.kind == "p"), ())
