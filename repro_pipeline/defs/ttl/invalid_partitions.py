"""Partition keys that name no organization (``abc``, ``451;drop``, added in the UI's dialog): every run of
them fails on its first step, so without pruning they would stay in the UI as red partitions forever."""

import dagster as dg

from repro_pipeline.defs.tenant_repro.partitions import ORGANIZATIONS
from repro_pipeline.defs.tenant_repro.repro_database import (
    REPRO_DATABASE,
    REPRO_HANDOFF,
    STANDBY_HEALTH,
    TENANT_CLOSURE,
)
from repro_pipeline.engine.errors import TenantError
from repro_pipeline.engine.subset.tenant import parse_organization_id

_TENANT_ASSETS = (STANDBY_HEALTH, TENANT_CLOSURE, REPRO_DATABASE, REPRO_HANDOFF)


def prune_invalid_partitions(instance: dg.DagsterInstance) -> list[str]:
    """Remove the organization partitions whose key is not an organization id and that no run ever
    materialized; return their keys. A key with a materialization stays: its history is kept."""
    keys = instance.get_dynamic_partitions(ORGANIZATIONS)
    invalid = [key for key in keys if not _is_organization_id(key)]
    pruned = [key for key in invalid if not _ever_materialized(instance, key)]
    for key in pruned:
        instance.delete_dynamic_partition(ORGANIZATIONS, key)
    return pruned


def _is_organization_id(key: str) -> bool:
    try:
        parse_organization_id(key)
    except TenantError:
        return False
    return True


def _ever_materialized(instance: dg.DagsterInstance, key: str) -> bool:
    return any(
        instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=[key]), limit=1
        ).records
        for asset_key in _TENANT_ASSETS
    )
