"""The tenant: its table (configurable, the guide's ``public.organizations`` by default), a numeric
organization id validated before it reaches any database, and the guard that a closure holds this
organization's rows and no other's."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from repro_pipeline.engine.config import ReproConfig, TenantRule
from repro_pipeline.engine.errors import ClosureError, ConfigError, TenantError
from repro_pipeline.engine.source.catalog import Catalog, ForeignKey, TableName
from repro_pipeline.engine.subset.closure import Closure
from repro_pipeline.engine.subset.cross_tenant import CrossTenantRows, cross_tenant_rows


@dataclass(frozen=True)
class Tenant:
    table: TableName
    key: str = "id"
    cross_tenant_references: Literal["refuse", "null", "allow"] = "refuse"
    present: bool = True  # False: the default tenant table is not on the source, and nothing is guarded


def configured_tenant(config: ReproConfig, catalog: Catalog) -> Tenant:
    """The tenant table ``tenant:`` names (by default the guide's ``public.organizations``, ``id``); its
    key must be the table's one-column primary key, the ids the partitions are named by."""
    rule = config.extensions.tenant
    where = config.extensions_doc.where(["tenant"])
    given = rule or TenantRule()
    table = catalog.find(given.table)
    if table is None:
        if rule is None:
            return Tenant(TableName.parse(given.table), present=False)
        raise ConfigError(
            f"{where}: tenant.table: the source has no table {given.table}",
            "name the table whose rows are the tenants, as schema.table",
        )
    if table.primary_key != (given.key,):
        raise ConfigError(
            f"{where}: tenant.key: {given.key} is not the primary key of {table.name} "
            f"(which is {', '.join(table.primary_key) or 'none'})",
            "name the tenant table's one-column primary key, whose values are the organization ids",
        )
    column = table.column(given.key)
    if column is None or column.type not in _INTEGER_TYPES:
        raise ConfigError(
            f"{where}: tenant.key: {table.name}.{given.key} is {column.type if column else 'missing'}, but "
            "partitions are named by numeric organization ids",
            "name a tenant table whose primary key is an integer column",
        )
    return Tenant(table.name, given.key, given.cross_tenant_references)


_INTEGER_TYPES = ("smallint", "integer", "bigint")


_MAX_BIGINT = 2**63 - 1
_DIGITS = re.compile(r"[1-9][0-9]{0,18}")


def parse_organization_id(key: object) -> int:
    """Return the organization id that ``key`` spells, or raise ``TenantError``.

    Only plain decimal digits without sign, spaces or leading zeros are accepted, so that a partition key
    maps to exactly one organization and one database name.
    """
    text = key if isinstance(key, str) else str(key)
    if not _DIGITS.fullmatch(text) or int(text) > _MAX_BIGINT:
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise TenantError(
            f"organization id {shown!r} is not a positive integer",
            "use the numeric id of the organization (for example 451): digits only, without sign, leading "
            "zeros, slug or quotes",
        )
    return int(text)


def require_organization_exists(
    conn: psycopg.Connection[TupleRow], config: ReproConfig, organization_id: int
) -> None:
    """Refuse, in one indexed lookup, an organization that has no row in the tenant table: the cheap check
    a run makes before it plans a closure. A tenant table or key not on the source is left to the plan,
    which says what is wrong with the configuration."""
    rule = config.extensions.tenant or TenantRule()
    table = TableName.parse(rule.table)
    present = conn.execute(
        "SELECT EXISTS (SELECT FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = %s AND a.attname = %s AND NOT a.attisdropped)",
        [table.schema, table.name, rule.key],
    ).fetchone()
    if not (present and present[0]):
        return
    found = conn.execute(
        sql.SQL("SELECT EXISTS (SELECT FROM {} WHERE {} = %s)").format(
            table.identifier, sql.Identifier(rule.key)
        ),
        [organization_id],
    ).fetchone()
    if not (found and found[0]):
        raise TenantError(
            f"organization {organization_id} does not exist on the source: {table} has no row with "
            f"{rule.key} = {organization_id}",
            "check the organization id (the number in the organization's admin URL), then add it as a partition",
        )


def require_tenant_roots(
    config: ReproConfig,
    tenant: Tenant,
    root_keys: Mapping[TableName, Sequence[Any]],
    organization_id: int,
    has_placeholder: bool,
) -> None:
    """The tenant root must select exactly the organization asked for, never another one."""
    where = config.extensions_doc.path
    selected = root_keys.get(tenant.table)
    if selected is None:
        if not has_placeholder:
            raise ConfigError(
                f"{where}: no predicate uses :organization_id and none is on {tenant.table}, so the config "
                f"cannot be tied to organization {organization_id}",
                f"add a root - table: {tenant.table} / predicate: {tenant.key} = :organization_id",
            )
        return
    if selected == (organization_id,):
        return
    if not selected:
        raise ClosureError(
            f"{where}: the root predicate of {tenant.table} matched no rows for organization {organization_id}",
            "check the organization id: it does not exist on the source (or the predicate excludes it)",
        )
    shown = _some(selected)
    if not has_placeholder:
        raise ConfigError(
            f"{where}: the predicates are written for organization {shown} (no :organization_id placeholder); "
            f"running them for organization {organization_id} would copy organization {shown}",
            f"write the tenant as a parameter: {tenant.key} = :organization_id in the root of {tenant.table}, "
            "and :organization_id in every other predicate",
        )
    raise ClosureError(
        f"{where}: the root predicate of {tenant.table} selects organization(s) {shown}, "
        f"not only {organization_id}",
        f"make the predicate select exactly one organization: {tenant.key} = :organization_id",
    )


def other_tenants(
    conn: psycopg.Connection[TupleRow],
    catalog: Catalog,
    closure: Closure,
    organization_id: int,
    tenant: Tenant,
) -> CrossTenantRows:
    """Other tenants' rows the closure reached, whatever brought them (a root, an FK edge): refused with the
    references that lead to them, unless ``cross_tenant_references`` is ``allow`` or ``"null"``."""
    if not tenant.present or all(key == organization_id for key in closure.keys.get(tenant.table, ())):
        return CrossTenantRows((), {})
    crossing = cross_tenant_rows(conn, catalog, closure, tenant.table, organization_id)
    if tenant.cross_tenant_references != "refuse":
        return crossing
    raise ClosureError(
        f"{_reached(organization_id, tenant, crossing)}: "
        + "; ".join(other.chain for other in crossing.others[:3]),
        "make every root predicate select only this organization's rows (use :organization_id in each), or "
        'set tenant.cross_tenant_references in commercial-extensions.yaml: "null" writes the references '
        "that lead out of the tenant as NULL, allow copies those rows",
    )


def require_left_out_cleanly(
    catalog: Catalog, closure: Closure, organization_id: int, tenant: Tenant
) -> None:
    """With ``cross_tenant_references: "null"``, the closure walked without other tenants' rows holds no
    other tenant, and every reference that leads out of the tenant can be written as NULL: one whose columns
    all forbid it is refused before anything is written."""
    others = [key for key in closure.keys.get(tenant.table, ()) if key != organization_id]
    if others:
        raise ClosureError(
            f"other tenant(s) {_some(tuple(others))} of {tenant.table} are still reached after their rows were "
            'left out (cross_tenant_references: "null")',
            "set tenant.cross_tenant_references: allow to copy those rows masked, or make the root predicates "
            "select fewer rows",
        )
    for fk, values in closure.nulled.items():
        if fk.json_path:
            raise ClosureError(
                f"{len(values)} value(s) of {fk.child}({fk.json_path}) lead to other "
                'tenants\' rows: cross_tenant_references: "null" writes no value inside a JSON document',
                "set tenant.cross_tenant_references: allow to copy those rows masked, or make the root "
                "predicates select fewer rows",
            )
        if not columns_to_null(catalog, fk):
            raise ClosureError(
                f"{len(values)} value(s) of {fk.child}.{', '.join(fk.child_columns)} lead to other tenants' "
                f'rows ({fk}), and the column is NOT NULL: cross_tenant_references: "null" cannot write them as '
                "NULL",
                "set tenant.cross_tenant_references: allow to copy those rows masked, or make the root "
                "predicates select fewer rows",
            )


def columns_to_null(catalog: Catalog, fk: ForeignKey) -> tuple[str, ...]:
    """The columns of ``fk`` written as NULL where it leads out of the tenant: one NULL column is enough for
    a MATCH SIMPLE key, so the nullable ones that no primary key or other reference of the table uses (a
    shared tenant column stays), else every nullable one outside the primary key."""
    table = catalog.tables[fk.child]
    nullable = [
        name
        for name in fk.child_columns
        if (column := table.column(name)) and not column.not_null and name not in table.primary_key
    ]
    shared = {
        name for other in catalog.referenced_by(fk.child) if other != fk for name in other.child_columns
    }
    return tuple(name for name in nullable if name not in shared) or tuple(nullable)


def tenant_warnings(
    closure: Closure, organization_id: int, tenant: Tenant, crossing: CrossTenantRows
) -> list[str]:
    """What the plan says of other tenants: the rows copied (``allow``) or left out (``"null"``) for each, and
    through which references; without a tenant table on the source, that nothing is guarded."""
    if not tenant.present:
        return [
            f"the source has no {tenant.table}: the closure is not checked for other tenants' rows; name the "
            "tenant table in commercial-extensions.yaml (tenant: table, key)"
        ]
    if not crossing.others:
        return []
    reached = _reached(organization_id, tenant, crossing)
    if tenant.cross_tenant_references == "allow":
        return [
            f"{reached}: their rows are copied, masked, as tenant.cross_tenant_references: allow says",
            *(f"other tenant {other.tenant_id}: {other.describe()}" for other in crossing.others),
        ]
    nulled = sum(len(values) for values in closure.nulled.values())
    return [
        f"{reached}: their rows are left out and {nulled} value(s) of references to them written as NULL, as "
        'tenant.cross_tenant_references: "null" says',
        *(f"other tenant {other.tenant_id}: left out {other.describe()}" for other in crossing.others),
        *(
            f"{len(values)} value(s) of {fk.child}({', '.join(fk.child_columns)}) lead to other tenants' rows: "
            "written as NULL"
            for fk, values in sorted(closure.nulled.items(), key=lambda item: str(item[0]))
        ),
    ]


def _reached(organization_id: int, tenant: Tenant, crossing: CrossTenantRows) -> str:
    ids = tuple(other.tenant_id for other in crossing.others)
    return f"the closure of organization {organization_id} reaches other tenant(s) {_some(ids)} of {tenant.table}"


def _some(keys: Sequence[Any]) -> str:
    return ", ".join(str(key) for key in keys[:5]) + (" ..." if len(keys) > 5 else "")
