"""What follows pg_dump's post-data section (``schema_dump.py``): each sequence set to the source's position,
read in the load's transaction (a schema-only dump creates them fresh), so the target's next value is the
source's, whichever columns share the sequence; and the materialized views refreshed over the loaded rows (a
schema-only dump creates them empty)."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from repro_pipeline.engine.errors import StandbyNotReady
from repro_pipeline.engine.source.catalog import MANIFEST_SCHEMA, TableName


@dataclass(frozen=True)
class SequencePosition:
    sequence: TableName
    last_value: int
    is_called: bool  # False: the next value is ``last_value`` itself (a fresh or restarted sequence)


def sequences(conn: psycopg.Connection[TupleRow]) -> list[TableName]:
    """The sequences of the database ``conn`` is in (the target's: those pg_dump's pre-data created)."""
    rows = conn.execute(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind = 'S' AND n.nspname NOT IN ('pg_catalog', 'information_schema', %s) "
        "ORDER BY 1, 2",
        (MANIFEST_SCHEMA,),
    ).fetchall()
    return [TableName(str(schema), str(name)) for schema, name in rows]


def source_positions(source: psycopg.Connection[TupleRow], names: list[TableName]) -> list[SequencePosition]:
    """Where each of the source's sequences ``names`` stands (its ``last_value`` and ``is_called``), read
    by the load's source session; a sequence the source role may not read is refused, naming the grant."""
    names = _permanent_on_source(source, names)
    if not names:
        return []
    unreadable = [
        TableName(str(schema), str(name))
        for schema, name in source.execute(
            "SELECT s.schema, s.name FROM unnest(%s::text[], %s::text[]) AS s(schema, name) "
            "WHERE NOT has_sequence_privilege(format('%%I.%%I', s.schema, s.name), 'SELECT')",
            ([name.schema for name in names], [name.name for name in names]),
        )
    ]
    if unreadable:
        row = source.execute("SELECT current_user").fetchone()
        role = str(row[0]) if row else "the source role"
        listed = ", ".join(str(name) for name in unreadable)
        raise StandbyNotReady(
            f"the source role {role} may not read the sequence(s) {listed}, whose positions the repro "
            "database continues from",
            f"GRANT SELECT ON SEQUENCE {listed} TO {role} (on the primary), then launch again",
        )
    query = sql.SQL(" UNION ALL ").join(
        sql.SQL("SELECT {position}, last_value, is_called FROM {sequence}").format(
            position=sql.Literal(position), sequence=name.identifier
        )
        for position, name in enumerate(names)
    )
    rows = sorted(source.execute(query).fetchall())
    return [
        SequencePosition(name, int(last_value), bool(is_called))
        for name, (_, last_value, is_called) in zip(names, rows, strict=True)
    ]


def _permanent_on_source(source: psycopg.Connection[TupleRow], names: list[TableName]) -> list[TableName]:
    """Those of ``names`` that are logged sequences of the source: a standby cannot read an unlogged one (nor
    the rows of the unlogged table it numbers), and one the source lacks (made by the target's template)
    keeps the start pg_dump gave it."""
    if not names:
        return []
    rows = source.execute(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind = 'S' AND c.relpersistence = 'p' "
        "AND (n.nspname, c.relname) IN (SELECT * FROM unnest(%s::text[], %s::text[]))",
        ([name.schema for name in names], [name.name for name in names]),
    ).fetchall()
    found = {TableName(str(schema), str(name)) for schema, name in rows}
    return [name for name in names if name in found]


def set_position(position: SequencePosition) -> sql.Composed:
    """``setval`` to the source's position, so the target's ``nextval`` gives what the source's would."""
    return sql.SQL("SELECT setval(format('%I.%I', {schema}, {name})::regclass, {value}, {is_called})").format(
        schema=sql.Literal(position.sequence.schema),
        name=sql.Literal(position.sequence.name),
        value=sql.Literal(position.last_value),
        is_called=sql.Literal(position.is_called),
    )


# In creation order, which pg_dump made the order of their dependencies.
MATERIALIZED_VIEWS = sql.SQL(
    "SELECT oid::regclass::text FROM pg_class WHERE relkind = 'm' "
    "AND relnamespace <> 'pg_catalog'::regnamespace ORDER BY oid"
)


def refresh(materialized_view: str) -> sql.Composed:
    """``materialized_view`` as ``regclass`` writes it: already quoted and schema-qualified."""
    return sql.SQL("REFRESH MATERIALIZED VIEW {}").format(sql.SQL(materialized_view))
