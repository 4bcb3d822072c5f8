"""Schema replication on the target, split as pg_dump does: pre-data (schemas, sequences, tables with
their columns, defaults, identity and checks), then the data, then post-data (primary keys, unique
constraints and indexes, foreign keys, sequence positions)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from psycopg import sql

from repro_pipeline.engine.source.catalog import Catalog, Column, Partition, Table, TableName

Statement = sql.SQL | sql.Composed
_NEXTVAL = re.compile(r"nextval\('(?P<sequence>.+)'::regclass\)")


def pre_data(tables: Iterable[Table]) -> list[Statement]:
    tables = list(tables)
    schemas = {table.name.schema for table in tables}
    schemas |= {partition.name.schema for table in tables for partition in table.partitions}
    statements: list[Statement] = [
        sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)) for schema in sorted(schemas)
    ]
    for table in tables:
        for column in table.columns:
            sequence = _serial_sequence(column)
            if sequence:
                statements.append(sql.SQL("CREATE SEQUENCE IF NOT EXISTS {}").format(sql.SQL(sequence)))
    statements.extend(_create_table(table) for table in tables)
    statements.extend(_create_partition(partition) for table in tables for partition in table.partitions)
    for table in tables:
        for column in table.columns:
            sequence = _serial_sequence(column)
            if sequence:
                # Owned by its column, as serial makes it: pg_get_serial_sequence finds it after the load.
                statements.append(
                    sql.SQL("ALTER SEQUENCE {} OWNED BY {}.{}").format(
                        sql.SQL(sequence), table.name.identifier, sql.Identifier(column.name)
                    )
                )
    return statements


def post_data(catalog: Catalog, tables: Iterable[Table], *, all_indexes: bool = False) -> list[Statement]:
    """Keys, unique indexes, FKs and sequence positions; with ``all_indexes`` the other indexes too."""
    tables = list(tables)
    names = {table.name for table in tables}
    statements: list[Statement] = []
    for kind in ("p", "u"):
        statements.extend(
            _add_constraint(table.name, constraint.name, constraint.definition)
            for table in tables
            for constraint in table.constraints
            if constraint.kind == kind
        )
    # On a partitioned table the definition says ON ONLY; without ONLY the index covers every partition.
    indexes = [*catalog.unique_indexes, *(catalog.other_indexes if all_indexes else ())]
    statements.extend(
        sql.SQL(definition.replace(" ON ONLY ", " ON ", 1)) for table, definition in indexes if table in names
    )
    statements.extend(
        _add_constraint(fk.child, fk.name, fk.definition)
        for fk in (
            *(fk for fk in catalog.foreign_keys if not (fk.declared_on_partitions or fk.virtual)),
            *catalog.partition_foreign_keys,
        )
        if _root(catalog, fk.child) in names and fk.parent in names
    )
    for table in tables:
        statements.extend(_reset_sequence(table, column) for column in table.columns if _has_sequence(column))
    return statements


def _create_table(table: Table) -> sql.Composed:
    parts = [_column_definition(column) for column in table.columns]
    parts.extend(
        sql.SQL("CONSTRAINT {} {}").format(sql.Identifier(c.name), sql.SQL(c.definition))
        for c in table.constraints
        if c.kind == "c"
    )
    partitioning = (
        sql.SQL(" PARTITION BY {}").format(sql.SQL(table.partition_by)) if table.partition_by else sql.SQL("")
    )
    return sql.SQL("CREATE TABLE {} ({}){}").format(
        table.name.identifier, sql.SQL(", ").join(parts), partitioning
    )


def _create_partition(partition: Partition) -> sql.Composed:
    partitioning = (
        sql.SQL(" PARTITION BY {}").format(sql.SQL(partition.partition_by))
        if partition.partition_by
        else sql.SQL("")
    )
    return sql.SQL("CREATE TABLE {} PARTITION OF {} {}{}").format(
        partition.name.identifier, partition.parent.identifier, sql.SQL(partition.bound), partitioning
    )


def _column_definition(column: Column) -> sql.Composed:
    parts = [sql.Identifier(column.name), sql.SQL(column.type)]
    if column.generated:
        parts.append(sql.SQL("GENERATED ALWAYS AS ({}) STORED").format(sql.SQL(column.default or "")))
    elif column.identity:
        mode = "ALWAYS" if column.identity == "a" else "BY DEFAULT"
        parts.append(sql.SQL(f"GENERATED {mode} AS IDENTITY"))
    elif column.default is not None:
        parts.append(sql.SQL("DEFAULT {}").format(sql.SQL(column.default)))
    if column.not_null:
        parts.append(sql.SQL("NOT NULL"))
    return sql.SQL(" ").join(parts)


def _add_constraint(table: TableName, name: str, definition: str) -> sql.Composed:
    return sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
        table.identifier, sql.Identifier(name), sql.SQL(definition)
    )


def _root(catalog: Catalog, name: TableName) -> TableName:
    """The table a partition belongs to (itself for a table)."""
    for table in catalog.tables.values():
        if any(partition.name == name for partition in table.partitions):
            return table.name
    return name


def _serial_sequence(column: Column) -> str | None:
    match = _NEXTVAL.fullmatch(column.default or "") if not column.generated else None
    return match.group("sequence") if match else None


def _has_sequence(column: Column) -> bool:
    return bool(column.identity) or _serial_sequence(column) is not None


def _reset_sequence(table: Table, column: Column) -> sql.Composed:
    """Point the column's sequence past the largest loaded value, so the next insert does not collide."""
    return sql.SQL(
        "SELECT setval(pg_get_serial_sequence(quote_ident({schema}) || '.' || quote_ident({name}), {column_text}),"
        " coalesce(max({column}), 1), max({column}) IS NOT NULL) FROM {table}"
    ).format(
        schema=sql.Literal(table.name.schema),
        name=sql.Literal(table.name.name),
        column_text=sql.Literal(column.name),
        column=sql.Identifier(column.name),
        table=table.name.identifier,
    )
