"""Virtual foreign keys: references an application keeps without a constraint (Rails, Django with
``db_constraint=False``), declared in ``commercial-extensions.yaml`` and added to the catalog's references, so
the closure follows them both ways and the orphan check covers them."""

from __future__ import annotations

import re
from dataclasses import replace

from repro_pipeline.engine.config import ReproConfig, VirtualForeignKey
from repro_pipeline.engine.errors import ConfigError
from repro_pipeline.engine.source.catalog import Catalog, Column, ForeignKey, Table


def with_virtual_foreign_keys(config: ReproConfig, catalog: Catalog) -> Catalog:
    """``catalog`` with the configured virtual foreign keys among its references, each checked against it."""
    added = [
        _checked(rule, catalog, config.extensions_doc.where(["virtual_foreign_keys", index]))
        for index, rule in enumerate(config.extensions.virtual_foreign_keys)
    ]
    if not added:
        return catalog
    return replace(catalog, foreign_keys=(*catalog.foreign_keys, *added))


def _checked(rule: VirtualForeignKey, catalog: Catalog, where: str) -> ForeignKey:
    child = _table(catalog, rule.table, where, "table")
    parent = _table(catalog, rule.references.table, where, "references.table")
    for column, referenced in zip(rule.columns, rule.references.columns, strict=True):
        child_column = _column(child, column, where, "columns")
        parent_column = _column(parent, referenced, where, "references.columns")
        if _base_type(child_column.type) != _base_type(parent_column.type):
            raise ConfigError(
                f"{where}: {child.name}.{column} is {child_column.type} but {parent.name}.{referenced} is "
                f"{parent_column.type}: the closure sends one column's values as the other's type",
                "declare only references between columns of one type (their lengths may differ)",
            )
    referenced_columns = tuple(rule.references.columns)
    unique = {constraint.columns for constraint in parent.constraints if constraint.kind in ("p", "u")}
    if referenced_columns not in unique:
        raise ConfigError(
            f"{where}: references.columns {', '.join(referenced_columns)} are not the primary key or a unique "
            f"constraint of {parent.name}",
            "reference the columns of its primary key (or of a unique constraint)",
        )
    fk = ForeignKey(
        name=f"virtual {child.name}({', '.join(rule.columns)})",
        child=child.name,
        child_columns=tuple(rule.columns),
        parent=parent.name,
        parent_columns=referenced_columns,
        definition="",
        virtual=True,
    )
    for declared in catalog.referenced_by(child.name):
        if (declared.child_columns, declared.parent, declared.parent_columns) == (
            fk.child_columns,
            fk.parent,
            fk.parent_columns,
        ):
            raise ConfigError(
                f"{where}: {fk} is declared by the schema already ({declared.name})",
                "remove this virtual_foreign_keys entry",
            )
    return fk


def _base_type(type_name: str) -> str:
    """``character varying(36)`` and ``character varying(255)`` are one type: the length is a limit."""
    return re.sub(r"\(\d+(?:,\d+)?\)", "", type_name)


def _table(catalog: Catalog, name: str, where: str, key: str) -> Table:
    table = catalog.find(name)
    if table is None:
        raise ConfigError(f"{where}: {key}: the source has no table {name}", "name a table as schema.table")
    return table


def _column(table: Table, name: str, where: str, key: str) -> Column:
    column = table.column(name)
    if column is None:
        raise ConfigError(
            f"{where}: {key}: {table.name} has no column {name}",
            f"name one of its columns: {', '.join(table.column_names)}",
        )
    return column
