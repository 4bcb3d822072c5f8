"""Which columns must stay unique in the target: members of a primary key, a unique constraint or a
unique index (every member of a composite one, and every column an index expression reads)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pglast import ast, parse_sql
from pglast.parser import ParseError
from pglast.visitors import Visitor

from repro_pipeline.engine.source.catalog import Catalog, TableName


@dataclass
class Uniqueness:
    """What keeps one column unique: the constraints and indexes covering it."""

    covered_by: list[str] = field(default_factory=list)  # e.g. "PRIMARY KEY users_pkey"
    nulls_collide: bool = False  # a primary key, or NULLS NOT DISTINCT: NULL counts as a value
    case_insensitive: bool = False  # a unique index on exactly lower(column) or upper(column)

    def describe(self) -> str:
        return ", ".join(self.covered_by)


def unique_columns(catalog: Catalog) -> dict[TableName, dict[str, Uniqueness]]:
    found: dict[TableName, dict[str, Uniqueness]] = {}
    for table in catalog.tables.values():
        for constraint in table.constraints:
            if constraint.kind not in ("p", "u"):
                continue
            kind = "PRIMARY KEY" if constraint.kind == "p" else "UNIQUE"
            for column in constraint.columns:
                entry = found.setdefault(table.name, {}).setdefault(column, Uniqueness())
                entry.covered_by.append(f"{kind} {constraint.name}")
                entry.nulls_collide |= constraint.kind == "p" or "NULLS NOT DISTINCT" in constraint.definition
    for name, definition in catalog.unique_indexes:
        parsed = _index(definition)
        if parsed is None:
            continue
        index_name, columns, nulls_collide, case_insensitive_column = parsed
        for column in columns:
            entry = found.setdefault(name, {}).setdefault(column, Uniqueness())
            entry.covered_by.append(f"UNIQUE INDEX {index_name}")
            entry.nulls_collide |= nulls_collide
            entry.case_insensitive |= column == case_insensitive_column
    return found


def _index(definition: str) -> tuple[str, list[str], bool, str | None] | None:
    """(name, columns read by the key, NULLS NOT DISTINCT, the column of a lone lower()/upper() key)."""
    try:
        statement = parse_sql(definition)[0].stmt
    except (ParseError, IndexError):
        return None
    if not isinstance(statement, ast.IndexStmt):
        return None
    keys: tuple[Any, ...] = statement.indexParams or ()
    columns: list[str] = []
    for element in keys:
        if element.name is not None:
            columns.append(str(element.name))
        elif element.expr is not None:
            columns.extend(_column_refs(element.expr))
    case_insensitive = None
    if len(keys) == 1 and statement.whereClause is None:
        case_insensitive = _folded_column(keys[0].expr)
    return (
        str(statement.idxname),
        list(dict.fromkeys(columns)),
        bool(statement.nulls_not_distinct),
        case_insensitive,
    )


def _folded_column(expression: Any) -> str | None:
    """``column`` when ``expression`` is lower(column) or upper(column), casts allowed."""
    if not isinstance(expression, ast.FuncCall):
        return None
    name: tuple[Any, ...] = expression.funcname or ()
    arguments: tuple[Any, ...] = expression.args or ()
    if len(arguments) != 1 or not name or getattr(name[-1], "sval", None) not in ("lower", "upper"):
        return None
    argument = arguments[0]
    while isinstance(argument, ast.TypeCast):
        argument = argument.arg
    return _column_name(argument) if isinstance(argument, ast.ColumnRef) else None


def _column_name(reference: ast.ColumnRef) -> str | None:
    fields: tuple[Any, ...] = reference.fields or ()
    return str(fields[-1].sval) if fields and isinstance(fields[-1], ast.String) else None


class _ColumnRefs(Visitor):
    def __init__(self) -> None:
        self.names: list[str] = []

    def visit_ColumnRef(self, ancestors: Any, node: ast.ColumnRef) -> None:
        name = _column_name(node)
        if name is not None:
            self.names.append(name)


def _column_refs(expression: Any) -> Iterator[str]:
    visitor = _ColumnRefs()
    visitor(expression)
    yield from visitor.names
