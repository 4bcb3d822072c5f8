"""Subset roots from ``commercial-extensions.yaml``, checked against the catalog and the tenant."""

from __future__ import annotations

from repro_pipeline.engine.config import ReproConfig
from repro_pipeline.engine.errors import ConfigError
from repro_pipeline.engine.source.catalog import Catalog
from repro_pipeline.engine.subset.closure import EdgeKey, EdgePolicy, Root
from repro_pipeline.engine.subset.predicate import Predicate


def configured_roots(config: ReproConfig, catalog: Catalog) -> list[Root]:
    doc = config.extensions_doc
    if not config.extensions.subset:
        raise ConfigError(
            f"{doc.path}: no subset roots: without them the whole database would be copied",
            "add a subset: section, e.g. - table: public.organizations / predicate: id = :organization_id",
        )
    roots: list[Root] = []
    for index, entry in enumerate(config.extensions.subset):
        table = catalog.find(entry.table)
        if table is None:
            raise ConfigError(
                f"{doc.where(['subset', index, 'table'])}: subset[{index}].table: the source has no table "
                f"{entry.table}",
                "write the root table as schema.table, as it is named on the source",
            )
        if table.name in {root.table for root in roots}:
            raise ConfigError(
                f"{doc.where(['subset', index, 'table'])}: subset[{index}].table: {table.name} is a root twice",
                "combine the two predicates with OR in one entry",
            )
        roots.append(Root(table.name, Predicate(entry.predicate), doc.where(["subset", index, "predicate"])))
    return roots


def uses_tenant_placeholder(roots: list[Root]) -> bool:
    return any(root.predicate.uses_placeholder for root in roots)


def configured_edge_policies(config: ReproConfig, catalog: Catalog) -> dict[EdgeKey, EdgePolicy]:
    """The ``foreign_keys:`` rules of commercial-extensions.yaml, each matched to exactly one FK."""
    doc = config.extensions_doc
    policies: dict[EdgeKey, EdgePolicy] = {}
    for index, rule in enumerate(config.extensions.foreign_keys):
        where = doc.where(["foreign_keys", index])
        table = catalog.find(rule.table)
        if table is None:
            raise ConfigError(f"{where}: foreign_keys[{index}].table: the source has no table {rule.table}")
        candidates = [
            fk
            for fk in catalog.referenced_by(table.name)
            if (rule.name is None or fk.name == rule.name)
            and (rule.columns is None or list(fk.child_columns) == rule.columns)
        ]
        if len(candidates) != 1:
            known = "; ".join(
                f"{fk.name} ({', '.join(fk.child_columns)})" for fk in catalog.referenced_by(table.name)
            )
            raise ConfigError(
                f"{where}: foreign_keys[{index}] matches {len(candidates)} foreign keys of {table.name}, not one",
                f"name it with columns: or name:; the foreign keys of {table.name}: {known or 'none'}",
            )
        (fk,) = candidates
        if (fk.child, fk.name) in policies:
            raise ConfigError(f"{where}: foreign_keys[{index}]: a second rule for {fk.name}", "keep one rule")
        if rule.down == "skip" and rule.max_rows_per_parent is not None:
            raise ConfigError(
                f"{where}: foreign_keys[{index}]: down: skip and max_rows_per_parent contradict each other",
                "keep one of them",
            )
        policies[(fk.child, fk.name)] = EdgePolicy(
            follow_down=rule.down == "follow",
            max_rows_per_parent=rule.max_rows_per_parent,
            from_pulled_up_parents=rule.from_pulled_up_parents,
        )
    return policies
