"""``on_existing_data`` for a load into a given database (``repro-pipeline load --target``): what the load does
when the target already holds tables. ``fail`` refuses, ``drop_create`` drops every object of the schemas the
load writes and replicates afresh, ``truncate`` empties the load's own tables, once their definitions are
found to be the source's, and fills them again in one transaction. Objects of other schemas, and other
databases, are never touched; someone else's table in a schema the load writes is kept by ``truncate``."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from repro_pipeline.engine import dsn
from repro_pipeline.engine.errors import TargetError
from repro_pipeline.engine.load.schema_dump import DumpTools, SchemaScripts, dump_database_schema
from repro_pipeline.engine.load.schema_entries import schema_entries
from repro_pipeline.engine.source.catalog import MANIFEST_SCHEMA, TableName

OnExistingData = Literal["fail", "truncate", "drop_create"]
POLICIES: tuple[OnExistingData, ...] = ("fail", "truncate", "drop_create")
ENTRIES_SHOWN = 10

_USER_RELATIONS = (
    "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
    "AND n.nspname NOT LIKE 'pg\\_%%' ORDER BY 1, 2"
)


def existing_tables(target: psycopg.Connection[TupleRow]) -> list[TableName]:
    """The tables of the target database, outside the system's schemas."""
    return [TableName(str(schema), str(name)) for schema, name in target.execute(_USER_RELATIONS).fetchall()]


def require_empty_target(target_dsn: str) -> None:
    """``fail``: a given target database must hold no table yet: nothing of the user's is overwritten."""
    with dsn.connect(target_dsn, role="target database") as conn:
        tables = existing_tables(conn)
    if tables:
        raise TargetError(
            f"the target database {dsn.describe(target_dsn)} is not empty ({len(tables)} tables, "
            f"e.g. {tables[0]})",
            "give an empty database, or set on_existing_data (or --on-existing-data) to truncate (refill the "
            "load's tables) or drop_create (drop the schemas the load writes and replicate afresh)",
        )


def holds_load_tables(target_dsn: str, tables: Collection[TableName]) -> bool:
    """Whether any of the load's ``tables`` exists in the target database (``truncate`` then refills them)."""
    with dsn.connect(target_dsn, role="target database") as conn:
        return bool(set(existing_tables(conn)) & set(tables))


def drop_written_schemas(target_dsn: str, tables: Collection[TableName]) -> list[str]:
    """``drop_create``: every object of the schemas the load writes (those of ``tables``, and the run's record)
    dropped, in one transaction; ``public`` is kept itself (its owner and grants come with the database) and
    emptied. Returns the schemas emptied."""
    schemas = sorted({table.schema for table in tables} | {MANIFEST_SCHEMA})
    with dsn.connect(target_dsn, role="target database") as conn:
        present = {
            str(name)
            for (name,) in conn.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname = ANY(%s)", (schemas,)
            ).fetchall()
        }
        for schema in schemas:
            if schema not in present:
                continue
            if schema == "public":
                _empty_schema(conn, schema)
            else:
                conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
    return [schema for schema in schemas if schema in present]


def _empty_schema(conn: psycopg.Connection[TupleRow], schema: str) -> None:
    """Drop the relations, routines and types of ``schema`` (with what depends on them), keeping the schema."""
    _drop_each(
        conn,
        "SELECT 'DROP ' || CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' "
        "WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END || ' IF EXISTS ' "
        "|| format('%%I.%%I', n.nspname, c.relname) || ' CASCADE' FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s "
        "AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND NOT c.relispartition "
        "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')",
        schema,
    )
    _drop_each(
        conn,
        "SELECT 'DROP SEQUENCE IF EXISTS ' || format('%%I.%%I', n.nspname, c.relname) || ' CASCADE' "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s "
        "AND c.relkind = 'S'",
        schema,
    )
    _drop_each(
        conn,
        "SELECT 'DROP ROUTINE IF EXISTS ' || p.oid::regprocedure::text || ' CASCADE' FROM pg_proc p "
        "WHERE p.pronamespace = %s::regnamespace AND p.prokind IN ('f', 'p') AND NOT EXISTS "
        "(SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')",
        schema,
    )
    _drop_each(
        conn,
        "SELECT 'DROP TYPE IF EXISTS ' || t.oid::regtype::text || ' CASCADE' FROM pg_type t "
        "WHERE t.typnamespace = %s::regnamespace AND t.typtype IN ('c', 'd', 'e', 'r', 'm') "
        "AND (t.typrelid = 0 OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c') "
        "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = t.oid AND d.deptype = 'e')",
        schema,
    )


def _drop_each(conn: psycopg.Connection[TupleRow], listing: str, schema: str) -> None:
    """Each ``DROP ... IF EXISTS ... CASCADE`` the server writes for ``schema``'s objects (quoting their
    names itself): one dropped with an earlier one's CASCADE is gone by its turn."""
    for (statement,) in conn.execute(listing, (schema,)).fetchall():
        conn.execute(sql.SQL(str(statement)))


def require_same_definitions(expected: SchemaScripts, target_dsn: str, tools: DumpTools) -> None:
    """``truncate``: every object the load would create is in the target, defined as in the source (the same
    pg_dump entry); refused naming the entries missing or different. Objects only the target has (someone
    else's table) are no difference: they are kept."""
    actual = dump_database_schema(target_dsn, tools)
    differing = []
    for section, wanted, found in (
        ("pre-data", expected.pre_data, actual.pre_data),
        ("post-data", expected.post_data, actual.post_data),
    ):
        found_entries = schema_entries(found)
        for name, lines in schema_entries(wanted).items():
            if name not in found_entries:
                differing.append(f"{_entry_label(name)} is missing ({section})")
            elif found_entries[name] != lines:
                differing.append(f"{_entry_label(name)} differs ({section})")
    if differing:
        shown = "; ".join(differing[:ENTRIES_SHOWN])
        more = f"; and {len(differing) - ENTRIES_SHOWN} more" if len(differing) > ENTRIES_SHOWN else ""
        raise TargetError(
            f"on_existing_data truncate: the schema of the target database {dsn.describe(target_dsn)} differs "
            f"from the source's: {shown}{more}",
            "make the target's schema the source's, or use on_existing_data drop_create (drops the schemas the "
            "load writes and replicates afresh), or an empty database",
        )


def _entry_label(name: str) -> str:
    """pg_dump's ``users; Type: TABLE; Schema: public`` as ``TABLE public.users``."""
    match = re.fullmatch(r"(?P<name>.*?); Type: (?P<type>.*?); Schema: (?P<schema>.*)", name)
    if match is None:
        return name
    schema = "" if match["schema"] == "-" else f"{match['schema']}."
    return f"{match['type']} {schema}{match['name']}"


@dataclass(frozen=True)
class SetAside:
    """What ``truncate`` takes off the load's tables while it refills them, to put back after: their foreign
    keys (rows arrive in any order) and their user triggers (a load never fires them)."""

    foreign_keys: list[sql.Composed]
    triggers_disabled: list[TableName]


def empty_load_tables(target: psycopg.Connection[TupleRow], tables: Collection[TableName]) -> SetAside:
    """``truncate``, in the load's transaction: the load's ``tables`` emptied (a table of someone else's that
    references one of them refuses it, naming it: it is never emptied along), the run's previous record
    dropped, foreign keys and user triggers of those tables set aside."""
    names = sorted(set(tables))
    if not names:
        return SetAside([], [])
    relations = [name.identifier.as_string(target) for name in names]
    referencing = target.execute(
        "SELECT DISTINCT conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint "
        "WHERE contype = 'f' AND confrelid = ANY(%s::regclass[]) AND NOT conrelid = ANY(%s::regclass[]) "
        "ORDER BY 1, 2",
        (relations, relations),
    ).fetchall()
    if referencing:
        listed = ", ".join(f"{child} (references {parent})" for child, parent in referencing)
        raise TargetError(
            f"on_existing_data truncate: tables the load does not write reference its tables: {listed}; "
            "emptying them would empty those too",
            "drop those foreign keys or tables, or load into another database",
        )
    foreign_keys = []
    for table, constraint, definition in target.execute(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE contype = 'f' AND conrelid = ANY(%s::regclass[]) AND conparentid = 0 ORDER BY 1, 2",
        (relations,),
    ).fetchall():
        target.execute(
            sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                sql.SQL(str(table)), sql.Identifier(constraint)
            )
        )
        foreign_keys.append(
            sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                sql.SQL(str(table)), sql.Identifier(constraint), sql.SQL(str(definition))
            )
        )
    target.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(name.identifier for name in names)))
    target.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(MANIFEST_SCHEMA)))
    for name in names:
        target.execute(sql.SQL("ALTER TABLE {} DISABLE TRIGGER USER").format(name.identifier))
    return SetAside(foreign_keys, names)


def put_back(target: psycopg.Connection[TupleRow], aside: SetAside) -> None:
    """The foreign keys set aside added again (each validated over the new rows), the triggers enabled."""
    for statement in aside.foreign_keys:
        target.execute(statement)
    for name in aside.triggers_disabled:
        target.execute(sql.SQL("ALTER TABLE {} ENABLE TRIGGER USER").format(name.identifier))
