"""Tenants: one dynamic partition per organization, keyed by its numeric id.

Dagster's dynamic partitions take no description, so the key's meaning is said wherever a user types one:
the job's and each asset's description start with ``PARTITION_KEY_HELP``.
"""

import dagster as dg

from repro_pipeline.engine.errors import TenantError
from repro_pipeline.engine.subset.tenant import parse_organization_id

ORGANIZATIONS = "organizations"
organizations = dg.DynamicPartitionsDefinition(name=ORGANIZATIONS)

PARTITION_KEY_HELP = (
    "Partition key: the organization's numeric id, digits only (for example 451), its id in the tenant "
    "table (public.organizations by default). Add one with the partition dialog's name field, or with "
    "`repro-pipeline materialize <id>`."
)

# Who answers for the assets in the UI's owner column and filters: the support-repro on-call.
OWNERS = ["team:support-repro"]


def organization_of(context: dg.AssetExecutionContext) -> int:
    """The organization id of the run's partition, checked before any database is touched.

    A run may have no partition: the UI's "Execute all" on the checks of a partitioned asset launches one
    (its single-check "Execute" is disabled for partitioned assets), and Dagster's own error for it is a
    traceback."""
    if not context.has_partition_key:
        raise TenantError(
            "this run has no partition: the tenant assets and their checks work on one organization, chosen "
            "as the run's partition",
            "launch the tenant_repro job from its launchpad with the organization's id as the partition (or "
            '`repro-pipeline materialize <id>`); the UI\'s "Execute all" of the checks cannot choose one',
        )
    return parse_organization_id(context.partition_key)
