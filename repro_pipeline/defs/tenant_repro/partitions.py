"""Tenants: one dynamic partition per organization, keyed by its numeric id.

Dagster's dynamic partitions take no description, so the key's meaning is said wherever a user types one:
the job's and each asset's description start with ``PARTITION_KEY_HELP``.
"""

import dagster as dg

ORGANIZATIONS = "organizations"
organizations = dg.DynamicPartitionsDefinition(name=ORGANIZATIONS)

PARTITION_KEY_HELP = (
    "Partition key: the organization's numeric id, digits only (for example 451), its id in the tenant "
    "table (public.organizations by default). Add one with the partition dialog's name field, or with "
    "`repro-pipeline materialize <id>`."
)

# Who answers for the assets in the UI's owner column and filters: the support-repro on-call.
OWNERS = ["team:support-repro"]
