"""The plan of one tenant's repro database, checked before anything is written: the catalog, the mask plan
and the FK closure, all read from one source snapshot.

A plan, then a load: ``plan_subset`` here, ``loader.load_repro`` next. The Dagster assets and the CLI call
these two.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from repro_pipeline.engine.config import ReproConfig
from repro_pipeline.engine.errors import ConfigError, StandbyNotReady
from repro_pipeline.engine.load.schema_dump import objects_depending_on
from repro_pipeline.engine.load.target_fit import TargetServerFacts, require_schema_fits
from repro_pipeline.engine.masking.autodetect import detect, require_covered
from repro_pipeline.engine.masking.free_text import FreeTextDictionary
from repro_pipeline.engine.masking.free_text_originals import read_free_text_dictionary
from repro_pipeline.engine.masking.plan import MaskPlan, TableMasking, build_mask_plan, masks_free_text
from repro_pipeline.engine.masking.values import ValueMasker
from repro_pipeline.engine.secrets import Secret
from repro_pipeline.engine.source.catalog import Catalog, ForeignKey, JsonPath, TableName, read_catalog
from repro_pipeline.engine.source.snapshot import SourceSnapshot
from repro_pipeline.engine.source.standby import source_role, superuser_warning
from repro_pipeline.engine.subset.closure import Closure, Root, compute_closure
from repro_pipeline.engine.subset.cross_tenant import OtherTenant
from repro_pipeline.engine.subset.json_references import count_not_fitting
from repro_pipeline.engine.subset.predicate_functions import require_selecting_functions
from repro_pipeline.engine.subset.roots import (
    configured_edge_policies,
    configured_roots,
    uses_tenant_placeholder,
)
from repro_pipeline.engine.subset.tenant import (
    configured_tenant,
    other_tenants,
    require_left_out_cleanly,
    require_tenant_roots,
    tenant_warnings,
)
from repro_pipeline.engine.subset.virtual_references import declared_at, with_virtual_foreign_keys


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
    other_tenants: tuple[OtherTenant, ...] = ()  # reached by the closure, copied or left out by the policy
    # For each reference held in JSON, the rows of the closure whose value at its path is no key of the
    # referenced type (a non-uuid string for a uuid key): followed nowhere, copied as they are.
    json_values_not_fitting: Mapping[ForeignKey, int] = field(default_factory=dict)

    @property
    def created_tables(self) -> list[TableName]:
        """Every table the target gets: all but those with strategy ``exclude``."""
        return [name for name, masking in self.mask_plan.tables.items() if masking.strategy != "exclude"]

    @property
    def excluded_tables(self) -> list[TableName]:
        """The tables with strategy ``exclude``, and their partitions (which pg_dump would otherwise dump and
        attach to an absent table)."""
        return _excluded_tables(self.catalog, self.mask_plan)


def plan_subset(
    snapshot: SourceSnapshot,
    config: ReproConfig,
    salt: Secret,
    organization_id: int,
    target: TargetServerFacts | None = None,
) -> SubsetPlan:
    """The plan, refused before anything is written when the source's schema cannot be replicated (no
    pg_dump for the source's version; with ``target``, an extension the target server lacks)."""
    role, superuser = source_role(snapshot.conn)
    if superuser and config.mask_rules.require_least_privilege:
        raise StandbyNotReady(
            f"the source role {role} is a superuser, and mask-rules.yaml sets require_least_privilege: true",
            "connect as a role with SELECT on the tenant's tables and pg_monitor (not a superuser), or set "
            "require_least_privilege: false",
        )
    require_schema_fits(snapshot.conn, target)
    catalog = with_virtual_foreign_keys(config, read_catalog(snapshot.conn))
    mask_plan = mask_plan_of(config, catalog, salt)
    _require_consistent_references(config, catalog, mask_plan)
    _require_nothing_kept_depends_on_excluded(snapshot, config, _excluded_tables(catalog, mask_plan))
    if config.mask_rules.strict_autodetect:
        require_covered(detect(snapshot.conn, catalog, config), config)
    roots = configured_roots(config, catalog)
    require_selecting_functions(snapshot.conn, roots)
    copied = [name for name, masking in mask_plan.tables.items() if masking.copies_rows]
    for root in roots:
        if root.table not in copied:
            raise ConfigError(
                f"{root.where}: {root.table} is a subset root but its strategy is "
                f"{mask_plan.for_table(root.table).strategy}: a table that gets no rows is not walked",
                f"remove the root of {root.table}, or give the table strategy transform",
            )
    has_placeholder = uses_tenant_placeholder(roots)
    tenant = configured_tenant(config, catalog)
    walk = partial(
        compute_closure,
        snapshot.conn,
        catalog,
        roots,
        organization_id,
        copied_tables=copied,
        edge_policies=configured_edge_policies(config, catalog),
        check_roots=lambda root_keys: require_tenant_roots(
            config, tenant, root_keys, organization_id, has_placeholder
        ),
    )
    closure = walk()
    crossing = other_tenants(snapshot.conn, catalog, closure, organization_id, tenant)
    if crossing.left_out and tenant.cross_tenant_references == "null":
        # Walked again without those rows: what only they brought (their parents) is not copied either.
        closure = walk(left_out=crossing.left_out)
        require_left_out_cleanly(catalog, closure, organization_id, tenant)
    if masks_free_text(config):
        # ner_mask replaces the originals of the masked columns inside text: read from the closure's rows.
        dictionary = read_free_text_dictionary(
            snapshot.conn,
            config,
            catalog,
            mask_plan,
            lambda table: closure.row_conditions(table, organization_id, config.mask_rules.batch_size),
        )
        mask_plan = mask_plan_of(config, catalog, salt, mask_plan.pseudonym_key, dictionary)
    not_fitting = count_not_fitting(
        snapshot.conn,
        catalog,
        copied,
        lambda table: closure.row_conditions(table, organization_id, config.mask_rules.batch_size),
    )
    return SubsetPlan(
        organization_id=organization_id,
        catalog=catalog,
        mask_plan=mask_plan,
        closure=closure,
        config_hash=config.fingerprint(),
        salt_fingerprint=salt.fingerprint(),
        warnings=(
            *([superuser_warning(role)] if superuser else []),
            *tenant_warnings(closure, organization_id, tenant, crossing),
            *_warnings(catalog, mask_plan, closure, roots),
            *(
                f"{rows} row(s) of {fk.child} hold a value in {fk.json_path} that is not a {fk.parent} key "
                f"({fk.json_path.key_type}): not followed, copied as they are"
                for fk, rows in not_fitting.items()
                if rows and fk.json_path
            ),
        ),
        replicate_all_indexes=config.mask_rules.replicate_all_indexes,
        other_tenants=crossing.others,
        json_values_not_fitting=not_fitting,
    )


def mask_plan_of(
    config: ReproConfig,
    catalog: Catalog,
    salt: Secret,
    pseudonym_key: Secret | None = None,
    free_text: FreeTextDictionary | None = None,
) -> MaskPlan:
    """The plan's masks, as each load worker builds them again (maskers are closures: they do not pickle),
    with the pseudonym key the plan resolved and the ``ner_mask`` dictionary it read."""
    return _without_dangling_references(
        config, catalog, build_mask_plan(config, catalog, salt, pseudonym_key, free_text)
    )


def _excluded_tables(catalog: Catalog, mask_plan: MaskPlan) -> list[TableName]:
    excluded = [name for name, masking in mask_plan.tables.items() if masking.strategy == "exclude"]
    return [*excluded, *(partition for name in excluded for partition in catalog.tables[name].partitions)]


def _require_nothing_kept_depends_on_excluded(
    snapshot: SourceSnapshot, config: ReproConfig, excluded: list[TableName]
) -> None:
    """A table left out takes its views and the foreign keys to it along; anything else of the schema that
    needs it (a function of its row type, a policy reading it) would fail the load, so it is refused now."""
    dependents = objects_depending_on(snapshot.conn, excluded)
    if dependents:
        shown = "; ".join(dependents[:5]) + (
            f"; and {len(dependents) - 5} more" if len(dependents) > 5 else ""
        )
        raise ConfigError(
            f"{config.mask_rules_doc.path}: the schema has objects that need a table with strategy exclude, "
            f"which the repro could not create without it: {shown}",
            "give that table strategy empty instead (it is created, without rows), or copy it",
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
    found.extend(
        f"{len(values)} value(s) of {child} via {name} reference no row on the source: copied as they are"
        for (child, name), values in sorted(closure.dangling.items())
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
        if fk.json_path:
            raise ConfigError(
                f"{declared_at(config, catalog, fk)}: {fk.parent} has strategy {parent.strategy}, but "
                f"{fk.child} is copied and its {fk.json_path} references it: the copies would reference "
                "rows the repro database does not have",
                f"copy {fk.parent} (strategy transform), give {fk.child} strategy {parent.strategy} too, or "
                "remove this virtual_foreign_keys entry",
            )
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
    return replace(mask_plan, tables=tables)


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
        if fk.json_path:
            _require_unmasked_json_reference(config, catalog, fk, fk.json_path, (child, parent))
            continue
        for child_column, parent_column in zip(fk.child_columns, fk.parent_columns, strict=True):
            child_mask, parent_mask = child.masker_for(child_column), parent.masker_for(parent_column)
            if child_mask is parent_mask is None:
                continue
            if any(_masked(child_mask, probe) != _masked(parent_mask, probe) for probe in _PROBES):
                scoped = _described(child, child_column) + _described(parent, parent_column)
                raise ConfigError(
                    f"{config.mask_rules_doc.path}: {fk.child}.{child_column} and {fk.parent}.{parent_column} "
                    f"are masked differently, but {fk.name} joins them: the copy's foreign key would break",
                    "hmac_hash is scoped to its column and takes no seed_alias, so a key and its references "
                    "cannot share it: use hash on both (the same in every column), or pseudonym with a shared "
                    "seed_alias"
                    if any(action.startswith("hmac_hash") for action in scoped)
                    else "give both columns the same rule with a shared seed_alias (or neither a rule)",
                )


def _described(masking: TableMasking, column: str) -> list[str]:
    """What the plan does to ``column`` (``fake:email``, ``hmac_hash (hex)``, ...)."""
    return [described.action for described in masking.columns if described.column == column]


def _require_unmasked_json_reference(
    config: ReproConfig,
    catalog: Catalog,
    fk: ForeignKey,
    path: JsonPath,
    maskings: tuple[TableMasking, TableMasking],
) -> None:
    """A reference held in JSON is copied as it is, so neither the value at its path nor the key it
    references may be masked (keys are not, unless a rule says so): probes through both maskers show it.
    A rule that writes the whole document as NULL is fine: the copy then holds no reference."""
    (child, parent), (key,) = maskings, fk.parent_columns
    document_masker, key_masker = child.masker_for(path.column), parent.masker_for(key)
    for probe in _JSON_PROBES:
        document: Any = probe
        for name in reversed(path.keys):
            document = {name: document}
        masked = _masked(document_masker, json.dumps(document))
        if masked is not None and _value_at(json.loads(masked), path.keys) != probe:
            described = ", ".join(c.action for c in child.columns if c.column == path.column)
            raise ConfigError(
                f"{declared_at(config, catalog, fk)}: {fk.child}.{path.column} is masked ({described}) in a "
                f"way that changes or removes the value at $.{'.'.join(path.keys)}, which references "
                f"{fk.parent}({key}): the copies would reference rows that do not exist",
                "leave the reference unmasked: remove the json_mask path (or the column rule) that covers "
                "it, or remove this virtual_foreign_keys entry",
            )
    if any(_masked(key_masker, str(probe)) != str(probe) for probe in _JSON_PROBES):
        raise ConfigError(
            f"{declared_at(config, catalog, fk)}: {fk.parent}.{key} is masked, but the references to it in "
            f"{fk.child}.{path} are copied as they are: they would reference rows that do not exist",
            f"remove the rule on {fk.parent}.{key} in mask-rules.yaml (keys are not masked), or remove this "
            "virtual_foreign_keys entry",
        )


_JSON_PROBES: tuple[Any, ...] = ("repro-probe", 4242, "00000000-0000-4000-8000-000000004242")


def _value_at(document: Any, keys: tuple[str, ...]) -> Any:
    for name in keys:
        if not isinstance(document, dict) or name not in document:
            return None
        document = document[name]
    return document


def _masked(masker: ValueMasker | None, value: str) -> str | None:
    return value if masker is None else masker(value)
