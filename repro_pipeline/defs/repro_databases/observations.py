"""What became of a repro database, reported on its organization's partition of ``repro_database``.

Dagster keeps a partition "Materialized" after its database is gone: the OSS event log cannot wipe one
partition, and a failed materialization is only recorded by Dagster itself, for a step that planned one
(an op's ``log_event`` takes materializations, observations and check results). So the sweep, the leak
check and the drop report an observation: the partition's latest event says the database was dropped or
retired, and why.
"""

import dagster as dg

from repro_pipeline.defs.tenant_repro.repro_database import REPRO_DATABASE
from repro_pipeline.engine.repro_databases.lifecycle import ReproDatabase


def repro_database_observation(database: ReproDatabase, status: str, reason: str) -> dg.AssetObservation:
    return dg.AssetObservation(
        asset_key=REPRO_DATABASE,
        partition=str(database.organization_id),
        description=f"{database.name} {status}: {reason}",
        metadata={
            "status": status,
            "database": database.name,
            "reason": reason,
            "expires_at": dg.MetadataValue.timestamp(database.expires_at),
        },
    )
