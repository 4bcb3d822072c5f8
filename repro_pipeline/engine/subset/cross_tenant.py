"""Other tenants' rows in a closure: which rows belong to another tenant only, which references of the
tenant's own rows lead to them, and what each other tenant brought.

A row belongs to the tenant it references directly (its tenant column); a row without such a reference
belongs to the tenants its references, followed upward, reach, never through another tenant's row. A row
that belongs to another tenant and not to the one copied is that tenant's alone; a row that belongs to both
(a rental of this store's inventory by another store's customer) is the copied tenant's, and its references
to rows of the other tenant alone are the ones that *lead out* of the tenant. Rows that reach no tenant
(lookup tables) are everyone's.

Read from the closure's own rows in its snapshot, and only when the closure reached another tenant.
"""

from __future__ import annotations

from collections import Counter, defaultdict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from repro_pipeline.engine.source.catalog import Catalog, ForeignKey, Table, TableName
from repro_pipeline.engine.subset.closure import Closure, Key
from repro_pipeline.engine.subset.keyset import Term, batches, column_list, key_getter, match_keys

Row = tuple[TableName, Key]


@dataclass(frozen=True)
class OtherTenant:
    tenant_id: Key
    rows: Mapping[TableName, int]  # the closure's rows that reach this tenant and not the one copied
    references: Mapping[str, int]  # per reference, how many of the tenant's rows lead to those rows
    chain: str  # one path of references from the tenant's rows to this tenant, for messages

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())

    def describe(self) -> str:
        tables = ", ".join(f"{table} {count}" for table, count in sorted(self.rows.items()))
        through = ", ".join(f"{reference} ({count})" for reference, count in sorted(self.references.items()))
        return f"{self.total_rows} row(s) ({tables}) through {through or 'a root predicate'}"


@dataclass(frozen=True)
class CrossTenantRows:
    others: tuple[OtherTenant, ...]
    left_out: Mapping[TableName, frozenset[Key]]  # the rows of other tenants alone, by primary key


def cross_tenant_rows(
    conn: psycopg.Connection[TupleRow],
    catalog: Catalog,
    closure: Closure,
    tenant_table: TableName,
    organization_id: int,
) -> CrossTenantRows:
    graph = _ReferenceGraph(conn, catalog, closure, tenant_table)
    ours = graph.belonging_to(organization_id)
    theirs = {
        tenant_id: graph.belonging_to(tenant_id) - ours
        for tenant_id in closure.keys.get(tenant_table, ())
        if tenant_id != organization_id
    }
    left_out: dict[TableName, set[Key]] = defaultdict(set)
    for rows in theirs.values():
        for table, key in rows:
            left_out[table].add(key)
    others = []
    for tenant_id, rows in theirs.items():
        crossings = [
            (child, fk, row)
            for row in rows
            for fk, child in graph.children.get(row, ())
            if child[1] not in left_out.get(child[0], ())
        ]
        others.append(
            OtherTenant(
                tenant_id=tenant_id,
                rows=dict(Counter(table for table, _ in rows)),
                references=dict(Counter(_reference(fk) for _, fk, _ in crossings)),
                chain=graph.chain(crossings, (tenant_table, tenant_id)),
            )
        )
    return CrossTenantRows(tuple(others), {table: frozenset(keys) for table, keys in left_out.items()})


def _reference(fk: ForeignKey) -> str:
    return f"{fk.child}({', '.join(map(str, fk.child_terms))})"


class _ReferenceGraph:
    """The references between the closure's rows (of tables with a primary key), both ways."""

    def __init__(
        self, conn: psycopg.Connection[TupleRow], catalog: Catalog, closure: Closure, tenant_table: TableName
    ) -> None:
        self.cur = conn.cursor()
        self.tenant_table = tenant_table
        self.catalog = catalog
        self.closure = closure
        self.parents: dict[Row, list[tuple[ForeignKey, Row]]] = defaultdict(list)
        self.children: dict[Row, list[tuple[ForeignKey, Row]]] = defaultdict(list)
        for fk in catalog.foreign_keys:
            if fk.child in closure.keys and fk.parent in closure.keys:
                self._read(fk)

    def _read(self, fk: ForeignKey) -> None:
        child, parent = self.catalog.tables[fk.child], self.catalog.tables[fk.parent]
        parent_key_of = self._parent_keys(parent, fk.parent_columns)
        for child_key, referenced in self._rows(child, fk.child_terms):
            parent_key = parent_key_of.get(referenced)
            if parent_key is not None:
                edge_parent, edge_child = (fk.parent, parent_key), (fk.child, child_key)
                self.parents[edge_child].append((fk, edge_parent))
                self.children[edge_parent].append((fk, edge_child))

    def _parent_keys(self, parent: Table, columns: tuple[str, ...]) -> Mapping[Any, Key]:
        """The parent rows of the closure by the columns an FK references (mostly the primary key itself)."""
        if columns == parent.primary_key:
            return {key: key for key in self.closure.keys[parent.name]}
        return {referenced: key for key, referenced in self._rows(parent, columns)}

    def _rows(self, table: Table, columns: tuple[Term, ...]) -> Iterable[tuple[Key, Any]]:
        selected = (*table.primary_key, *(c for c in columns if c not in table.primary_key))
        key_of = key_getter(selected, table.primary_key)
        value_of = key_getter(selected, columns)
        for batch in batches(self.closure.keys[table.name]):
            condition, params = match_keys(table, table.primary_key, batch)
            query = sql.SQL("SELECT {columns} FROM {table} WHERE {condition}").format(
                columns=column_list(selected), table=table.name.identifier, condition=condition
            )
            for row in self.cur.execute(query, params):
                value = value_of(row)
                if value is not None and not (isinstance(value, tuple) and None in value):
                    yield key_of(row), value

    def belonging_to(self, tenant_id: Key) -> set[Row]:
        """The tenant's row and every row whose references, followed upward, reach it without passing
        through another tenant's row, except rows that reference another tenant directly and not this one."""
        start = (self.tenant_table, tenant_id)
        found = {start} if tenant_id in self.closure.keys.get(self.tenant_table, ()) else set()
        queue = deque(found)
        while queue:
            for _, child in self.children.get(queue.popleft(), ()):
                if (
                    child not in found
                    and child[0] != self.tenant_table
                    and self._may_belong(child, tenant_id)
                ):
                    found.add(child)
                    queue.append(child)
        return found

    def _may_belong(self, row: Row, tenant_id: Key) -> bool:
        tenants = {parent[1] for _, parent in self.parents.get(row, ()) if parent[0] == self.tenant_table}
        return not tenants or tenant_id in tenants

    def chain(self, crossings: list[tuple[Row, ForeignKey, Row]], tenant_row: Row) -> str:
        """``a(x) -> b(y) -> tenant 2``: from one of the tenant's rows, the references up to the other
        tenant's row (the shortest path from the first crossing)."""
        if not crossings:
            return (
                f"{tenant_row[0]} {tenant_row[1]} (no reference from this tenant's rows leads there: a root "
                "predicate selected its rows, or a table without a primary key references them)"
            )
        _, first_fk, first_row = min(crossings, key=lambda crossing: str(crossing[1]))
        path = self._path_up(first_row, tenant_row)
        steps = [_reference(first_fk), *(_reference(fk) for fk in path)]
        return " -> ".join([*steps, f"{tenant_row[0]} {tenant_row[1]}"])

    def _path_up(self, start: Row, goal: Row) -> list[ForeignKey]:
        came_from: dict[Row, tuple[ForeignKey, Row] | None] = {start: None}
        queue = deque([start])
        while queue:
            row = queue.popleft()
            if row == goal:
                break
            for fk, parent in self.parents.get(row, ()):
                if parent not in came_from:
                    came_from[parent] = (fk, row)
                    queue.append(parent)
        path: list[ForeignKey] = []
        step = came_from.get(goal)
        while step is not None:
            fk, row = step
            path.append(fk)
            step = came_from[row]
        return path[::-1]
