"""One tenant's repro database, end to end, as plain functions: the Dagster assets and the CLI call these.

1. ``open_source_snapshot``: one REPEATABLE READ READ ONLY transaction on the standby; the closure and
   the load both read it, so the copy is consistent even while the primary keeps writing.
2. ``plan_subset``: catalog, mask plan and closure, all checked before anything is written.
3. ``load_repro``: schema, masked rows and constraints in one target transaction, then the manifest.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import IsolationLevel
from psycopg.rows import TupleRow

from repro_pipeline.engine import ddl, dsn
from repro_pipeline.engine.autodetect import detect, require_covered
from repro_pipeline.engine.catalog import Catalog, TableName, read_catalog
from repro_pipeline.engine.closure import Closure, Root, compute_closure
from repro_pipeline.engine.config import ReproConfig
from repro_pipeline.engine.errors import ClosureError, ConfigError, StandbyNotReady, TargetError
from repro_pipeline.engine.manifest import RunRecord, TableRecord, write_manifest
from repro_pipeline.engine.masking.plan import MaskPlan, build_mask_plan
from repro_pipeline.engine.masking.values import ValueMasker
from repro_pipeline.engine.roots import configured_edge_policies, configured_roots, uses_tenant_placeholder
from repro_pipeline.engine.secrets import Secret
from repro_pipeline.engine.transfer import copy_table

TENANT_TABLE = TableName("public", "organizations")


@dataclass(frozen=True)
class SourceSnapshot:
    conn: psycopg.Connection[TupleRow]
    source: str  # host:port/dbname
    snapshot_at: datetime
    replay_lsn: str | None


@contextmanager
def open_source_snapshot(source_dsn: str) -> Iterator[SourceSnapshot]:
    source = dsn.describe(source_dsn)
    with dsn.connect(source_dsn, role="standby") as conn:
        conn.isolation_level = IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        row = conn.execute("SELECT now(), pg_last_wal_replay_lsn()::text").fetchone()
        assert row is not None
        try:
            yield SourceSnapshot(conn, source, row[0], row[1])
        except psycopg.errors.SerializationFailure as exc:
            raise StandbyNotReady(
                f"the standby {source} cancelled the read: {exc.diag.message_primary}",
                "WAL replay removed rows this snapshot still needed; set hot_standby_feedback = on on the "
                "standby (or raise max_standby_streaming_delay) and launch again",
            ) from None
        conn.rollback()


@dataclass(frozen=True)
class SubsetPlan:
    organization_id: int
    catalog: Catalog
    mask_plan: MaskPlan
    closure: Closure
    config_hash: str
    salt_fingerprint: str
    warnings: tuple[str, ...] = ()
    replicate_all_indexes: bool = False

    @property
    def created_tables(self) -> list[TableName]:
        """Every table the target gets: all but those with strategy ``exclude``."""
        return [name for name, masking in self.mask_plan.tables.items() if masking.strategy != "exclude"]


def plan_subset(
    snapshot: SourceSnapshot, config: ReproConfig, salt: Secret, organization_id: int
) -> SubsetPlan:
    catalog = read_catalog(snapshot.conn)
    mask_plan = _without_dangling_references(config, catalog, build_mask_plan(config, catalog, salt))
    _require_consistent_references(config, catalog, mask_plan)
    if config.mask_rules.strict_autodetect:
        require_covered(detect(snapshot.conn, catalog, config), config)
    roots = configured_roots(config, catalog)
    copied = [name for name, masking in mask_plan.tables.items() if masking.copies_rows]
    for root in roots:
        if root.table not in copied:
            raise ConfigError(
                f"{root.where}: {root.table} is a subset root but its strategy is "
                f"{mask_plan.for_table(root.table).strategy}: a table that gets no rows is not walked",
                f"remove the root of {root.table}, or give the table strategy transform",
            )
    has_placeholder = uses_tenant_placeholder(roots)
    closure = compute_closure(
        snapshot.conn,
        catalog,
        roots,
        organization_id,
        copied_tables=copied,
        edge_policies=configured_edge_policies(config, catalog),
        check_roots=lambda root_keys: _require_tenant_roots(
            config, root_keys, organization_id, has_placeholder
        ),
    )
    _require_no_other_tenant(closure, organization_id)
    return SubsetPlan(
        organization_id=organization_id,
        catalog=catalog,
        mask_plan=mask_plan,
        closure=closure,
        config_hash=config.fingerprint(),
        salt_fingerprint=salt.fingerprint(),
        warnings=_warnings(catalog, mask_plan, closure, roots),
        replicate_all_indexes=config.mask_rules.replicate_all_indexes,
    )


def _warnings(catalog: Catalog, mask_plan: MaskPlan, closure: Closure, roots: list[Root]) -> tuple[str, ...]:
    """What a reviewer of the plan should know: tables copied empty, references written as NULL."""
    found = []
    root_tables = {root.table for root in roots}
    for name, masking in sorted(mask_plan.tables.items()):
        if masking.copies_rows and not closure.row_counts.get(name) and name not in root_tables:
            parents = sorted({str(fk.parent) for fk in catalog.referenced_by(name)})
            found.append(
                f"{name} gets no rows: none of its rows reference the tenant's rows"
                + (f" through {', '.join(parents)}" if parents else " (it has no foreign key to follow)")
            )
        found.extend(
            f"{name}.{column.column} is written as NULL: {column.action}"
            for column in masking.columns
            if column.action.startswith("null (")
        )
    return tuple(found)


def _without_dangling_references(config: ReproConfig, catalog: Catalog, mask_plan: MaskPlan) -> MaskPlan:
    """A copied row must find its parent. When the parent's table gets no rows (strategy empty, truncate
    or exclude), the reference is written as NULL if the FK allows it; a NOT NULL one is a config error."""
    tables = dict(mask_plan.tables)
    for fk in catalog.foreign_keys:
        child, parent = tables[fk.child], mask_plan.for_table(fk.parent)
        if not child.copies_rows or parent.copies_rows:
            continue
        not_null = [
            name for name in fk.child_columns if (column := child.table.column(name)) and column.not_null
        ]
        if not_null:
            raise ConfigError(
                f"{config.mask_rules_doc.path}: {fk.parent} has strategy {parent.strategy}, but {fk.child} is "
                f"copied and its NOT NULL {', '.join(not_null)} references it ({fk.name})",
                f"copy {fk.parent} (strategy transform), or give {fk.child} strategy {parent.strategy} too",
            )
        tables[fk.child] = child.with_null_columns(
            fk.child_columns, f"{fk.name} references {fk.parent}, which is {parent.strategy}"
        )
    return MaskPlan(tables)


_PROBES = ("repro-probe", "Probe.Value@example.com", "4242")


def _require_consistent_references(config: ReproConfig, catalog: Catalog, mask_plan: MaskPlan) -> None:
    """A masked key must be masked the same way where it is referenced, or the copy's FK breaks.

    Checked by masking a few probe values with both columns' maskers: any difference is refused now,
    rather than found by ADD FOREIGN KEY after every row was copied.
    """
    for fk in catalog.foreign_keys:
        child, parent = mask_plan.for_table(fk.child), mask_plan.for_table(fk.parent)
        if not (child.copies_rows and parent.copies_rows):
            continue
        for child_column, parent_column in zip(fk.child_columns, fk.parent_columns, strict=True):
            child_mask, parent_mask = child.masker_for(child_column), parent.masker_for(parent_column)
            if child_mask is parent_mask is None:
                continue
            if any(_masked(child_mask, probe) != _masked(parent_mask, probe) for probe in _PROBES):
                raise ConfigError(
                    f"{config.mask_rules_doc.path}: {fk.child}.{child_column} and {fk.parent}.{parent_column} "
                    f"are masked differently, but {fk.name} joins them: the copy's foreign key would break",
                    "give both columns the same rule with a shared seed_alias (or neither a rule)",
                )


def _masked(masker: ValueMasker | None, value: str) -> str | None:
    return value if masker is None else masker(value)


def _require_tenant_roots(
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


def _require_no_other_tenant(closure: Closure, organization_id: int) -> None:
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


def require_empty_target(target_dsn: str) -> None:
    """A given target database must hold no table yet: nothing of the user's is overwritten."""
    with dsn.connect(target_dsn, role="target database") as conn:
        row = conn.execute(
            "SELECT count(*), min(n.nspname || '.' || c.relname) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') "
            "AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%%'"
        ).fetchone()
    if row and row[0]:
        raise TargetError(
            f"the target database {dsn.describe(target_dsn)} is not empty ({row[0]} tables, e.g. {row[1]})",
            "give an empty database: repro_pipeline never writes over existing tables",
        )


@dataclass(frozen=True)
class LoadReport:
    loaded_rows: dict[TableName, int]
    seconds: float
    table_seconds: dict[TableName, float]  # streaming and masking each table's rows


def load_repro(
    snapshot: SourceSnapshot,
    target_dsn: str,
    plan: SubsetPlan,
    *,
    run_id: str,
    started_at: datetime,
    batch_size: int,
) -> LoadReport:
    """Create and fill the repro database's tables in one transaction: on error nothing is left half done."""
    began = time.perf_counter()
    catalog = plan.catalog
    created = [catalog.tables[name] for name in plan.created_tables]
    loaded: dict[TableName, int] = {}
    table_seconds: dict[TableName, float] = {}
    with dsn.connect(target_dsn, role="repro database") as target:
        cur = target.cursor()
        with _without_values("creating the tables"):
            for statement in ddl.pre_data(created):
                cur.execute(statement)
        for name in plan.created_tables:
            masking = plan.mask_plan.for_table(name)
            batches = plan.closure.row_conditions(
                masking.table, plan.organization_id, masking.batch_size or batch_size
            )
            table_began = time.perf_counter()
            with _without_values(f"loading {name}"):
                loaded[name] = (
                    copy_table(snapshot.conn, target, masking, batches) if masking.copies_rows else 0
                )
            table_seconds[name] = time.perf_counter() - table_began
        with _without_values("adding keys, constraints and sequence positions"):
            for statement in ddl.post_data(catalog, created, all_indexes=plan.replicate_all_indexes):
                cur.execute(statement)
        write_manifest(
            target,
            RunRecord(
                run_id=run_id,
                organization_id=plan.organization_id,
                config_hash=plan.config_hash,
                salt_fingerprint=plan.salt_fingerprint,
                source=snapshot.source,
                source_replay_lsn=snapshot.replay_lsn,
                snapshot_at=snapshot.snapshot_at,
                closure_passes=plan.closure.passes,
                started_at=started_at,
                tables=[
                    TableRecord(
                        table=name,
                        strategy=plan.mask_plan.for_table(name).strategy,
                        closure_rows=plan.closure.row_counts.get(name, 0),
                        loaded_rows=loaded[name],
                        column_actions={c.column: c.action for c in plan.mask_plan.for_table(name).columns},
                    )
                    for name in plan.created_tables
                ],
            ),
        )
    return LoadReport(loaded_rows=loaded, seconds=time.perf_counter() - began, table_seconds=table_seconds)


@contextmanager
def _without_values(step: str) -> Iterator[None]:
    """Database errors without their DETAIL, which can quote row values (a failing row, a duplicate key)."""
    try:
        yield
    except psycopg.errors.SerializationFailure:
        raise
    except psycopg.Error as exc:
        raise TargetError(
            f"{step} failed: {exc.diag.message_primary or type(exc).__name__} (SQLSTATE {exc.sqlstate})",
            "the repro database was not handed off; the message names the object at fault",
        ) from None
