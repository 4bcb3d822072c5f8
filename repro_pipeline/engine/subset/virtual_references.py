"""Virtual foreign keys: references an application keeps without a constraint (Rails, Django with
``db_constraint=False``), in columns or inside JSON documents, declared in ``commercial-extensions.yaml`` and
added to the catalog's references, so the closure follows them both ways and the orphan check covers them."""

from __future__ import annotations

from dataclasses import replace

from repro_pipeline.engine.config import ReproConfig, VirtualForeignKey
from repro_pipeline.engine.errors import ConfigError
from repro_pipeline.engine.source.catalog import Catalog, Column, ForeignKey, JsonPath, Table, base_type
from repro_pipeline.engine.subset.json_references import SUPPORTED_KEY_TYPES, supports_key_type


def with_virtual_foreign_keys(config: ReproConfig, catalog: Catalog) -> Catalog:
    """``catalog`` with the configured virtual foreign keys among its references, each checked against it."""
    added = [
        _checked(rule, catalog, config.extensions_doc.where(["virtual_foreign_keys", index]))
        for index, rule in enumerate(config.extensions.virtual_foreign_keys)
    ]
    if not added:
        return catalog
    return replace(catalog, foreign_keys=(*catalog.foreign_keys, *added))


def declared_at(config: ReproConfig, catalog: Catalog, fk: ForeignKey) -> str:
    """``file:line`` of the ``virtual_foreign_keys`` entry that declares ``fk``."""
    for index, rule in enumerate(config.extensions.virtual_foreign_keys):
        child = catalog.find(rule.table)
        if child is not None and _name(child, rule) == fk.name:
            return config.extensions_doc.where(["virtual_foreign_keys", index])
    return str(config.extensions_doc.path)


def _name(child: Table, rule: VirtualForeignKey) -> str:
    if rule.column is not None:
        return f"virtual {child.name}({rule.column} at {rule.json_path})"
    return f"virtual {child.name}({', '.join(rule.columns or ())})"


def _checked(rule: VirtualForeignKey, catalog: Catalog, where: str) -> ForeignKey:
    child = _table(catalog, rule.table, where, "table")
    parent = _table(catalog, rule.references.table, where, "references.table")
    json_path = None if rule.column is None else _json_path(rule, rule.column, child, parent, where)
    if rule.columns is not None:
        _check_column_types(rule.columns, rule.references.columns, child, parent, where)
    referenced_columns = tuple(rule.references.columns)
    unique = {constraint.columns for constraint in parent.constraints if constraint.kind in ("p", "u")}
    if referenced_columns not in unique:
        raise ConfigError(
            f"{where}: references.columns {', '.join(referenced_columns)} are not the primary key or a unique "
            f"constraint of {parent.name}",
            "reference the columns of its primary key (or of a unique constraint)",
        )
    fk = ForeignKey(
        name=_name(child, rule),
        child=child.name,
        child_columns=(json_path.column,) if json_path else tuple(rule.columns or ()),
        parent=parent.name,
        parent_columns=referenced_columns,
        definition="",
        virtual=True,
        json_path=json_path,
    )
    for declared in catalog.referenced_by(child.name) if json_path is None else ():
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


def _check_column_types(
    columns: list[str], referenced_columns: list[str], child: Table, parent: Table, where: str
) -> None:
    for column, referenced in zip(columns, referenced_columns, strict=True):
        child_column = _column(child, column, where, "columns")
        parent_column = _column(parent, referenced, where, "references.columns")
        if base_type(child_column.type) != base_type(parent_column.type):
            raise ConfigError(
                f"{where}: {child.name}.{column} is {child_column.type} but {parent.name}.{referenced} is "
                f"{parent_column.type}: the closure sends one column's values as the other's type",
                "declare only references between columns of one type (their lengths may differ)",
            )


def _json_path(rule: VirtualForeignKey, column: str, child: Table, parent: Table, where: str) -> JsonPath:
    """The JSON form: ``column`` is json or jsonb, and the referenced key of a type a JSON value can
    be read as."""
    child_column = _column(child, column, where, "column")
    if child_column.type not in ("json", "jsonb"):
        raise ConfigError(
            f"{where}: column: {child.name}.{column} is {child_column.type}, not json or jsonb, so it holds "
            f"no value at {rule.json_path}",
            "name the json/jsonb column that holds the reference, or give columns for a reference held in "
            "columns",
        )
    (referenced,) = rule.references.columns
    key = _column(parent, referenced, where, "references.columns")
    if not supports_key_type(key.type):
        raise ConfigError(
            f"{where}: references.columns: {parent.name}.{referenced} is {key.type}; a reference held in "
            f"JSON is read as a {SUPPORTED_KEY_TYPES} key",
            "reference a key of one of those types, or leave this reference out",
        )
    return JsonPath(column, rule.json_keys, key.type)


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
