"""The tenant job: one organization's repro database, from the standby health check to the handoff."""

import dagster as dg

from repro_pipeline.defs.tenant_repro.assets import GROUP

tenant_repro_job = dg.define_asset_job(
    "tenant_repro",
    selection=dg.AssetSelection.groups(GROUP),
    description="Build one organization's masked repro database from the standby and hand it off",
    tags={"dagster/max_retries": 0},
)
