"""The tenant job: one organization's repro database, from the standby health check to the handoff."""

import dagster as dg

from repro_pipeline.defs.tenant_repro.load_step import GROUP
from repro_pipeline.defs.tenant_repro.partitions import PARTITION_KEY_HELP

# Every run of the job carries this tag, however the job is launched (its launchpad, the ticket sensor, the
# CLI), so the run queue (dagster.yaml `concurrency.runs.tag_concurrency_limits`) can cap how many runs read
# the standby at once. "Materialize" on an asset's own page launches Dagster's ad-hoc asset job, without it.
# One key, not one value per standby: the standby a run reads is resolved when the run starts
# (REPRO_STANDBY_DSN), after the tag is fixed, and an instance serves one standby.
READS_STANDBY_TAG = "repro/reads_standby"

tenant_repro_job = dg.define_asset_job(
    "tenant_repro",
    selection=dg.AssetSelection.groups(GROUP),
    description="Build one organization's masked repro database from the standby and hand it off. "
    f"{PARTITION_KEY_HELP}",
    tags={"dagster/max_retries": 0, READS_STANDBY_TAG: "true"},
    # The steps run one after the other (each needs the one before it), so a process per step would only add
    # a Python and code-location start-up to each: the run's own process runs them all.
    executor_def=dg.in_process_executor,
)
