"""The tenant: its key, a numeric organization id validated before it reaches any database, and the guard
that a closure holds this organization's rows and no other's."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from repro_pipeline.engine.config import ReproConfig
from repro_pipeline.engine.errors import ClosureError, ConfigError, TenantError
from repro_pipeline.engine.source.catalog import TableName
from repro_pipeline.engine.subset.closure import Closure

TENANT_TABLE = TableName("public", "organizations")
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


def require_tenant_roots(
    config: ReproConfig,
    root_keys: Mapping[TableName, tuple[Any, ...]],
    organization_id: int,
    has_placeholder: bool,
) -> None:
    """The tenant root must select exactly the organization asked for, never another one."""
    where = config.extensions_doc.path
    selected = root_keys.get(TENANT_TABLE)
    if selected is None:
        if not has_placeholder:
            raise ConfigError(
                f"{where}: no predicate uses :organization_id and none is on {TENANT_TABLE}, so the config "
                f"cannot be tied to organization {organization_id}",
                f"add a root - table: {TENANT_TABLE} / predicate: id = :organization_id",
            )
        return
    if selected == (organization_id,):
        return
    if not selected:
        raise ClosureError(
            f"{where}: the root predicate of {TENANT_TABLE} matched no rows for organization {organization_id}",
            "check the organization id: it does not exist on the source (or the predicate excludes it)",
        )
    shown = _some(selected)
    if not has_placeholder:
        raise ConfigError(
            f"{where}: the predicates are written for organization {shown} (no :organization_id placeholder); "
            f"running them for organization {organization_id} would copy organization {shown}",
            "write the tenant as a parameter: id = :organization_id and organization_id = :organization_id",
        )
    raise ClosureError(
        f"{where}: the root predicate of {TENANT_TABLE} selects organization(s) {shown}, "
        f"not only {organization_id}",
        "make the predicate select exactly one organization: id = :organization_id",
    )


def require_no_other_tenant(closure: Closure, organization_id: int) -> None:
    """No other organization's row may reach the copy, whatever brought it (a root, an FK edge)."""
    others = tuple(key for key in closure.keys.get(TENANT_TABLE, ()) if key != organization_id)
    if others:
        edges = ", ".join(
            reason for reason in closure.reasons.get(TENANT_TABLE, {}) if reason != "root predicate"
        )
        raise ClosureError(
            f"the closure of organization {organization_id} reaches organization(s) {_some(others)} of "
            f"{TENANT_TABLE} ({edges or 'through a root predicate'})",
            "make every root predicate select only this organization's rows (use :organization_id in each)",
        )


def _some(keys: tuple[Any, ...]) -> str:
    return ", ".join(str(key) for key in keys[:5]) + (" ..." if len(keys) > 5 else "")
