"""The sweep removes partitions whose key names no organization and that never materialized; an
organization's key, and any key with a materialization, stays. Real Dagster instance, real target."""

from __future__ import annotations

import dagster as dg

from repro_pipeline.cli.launch import run_ttl_sweep
from repro_pipeline.defs.tenant_repro.partitions import ORGANIZATIONS
from repro_pipeline.defs.tenant_repro.repro_database import TENANT_CLOSURE


def test_the_sweep_removes_keys_that_are_not_organization_ids_and_never_materialized(
    pipeline_environment: dict[str, str],
) -> None:
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(ORGANIZATIONS, ["abc", "451;drop", "451", "0451", "legacy"])
        # A key an older version accepted and materialized keeps its history.
        instance.report_runless_asset_event(dg.AssetMaterialization(TENANT_CLOSURE, partition="legacy"))

        outcome = run_ttl_sweep(instance)

        assert outcome.success
        assert sorted(instance.get_dynamic_partitions(ORGANIZATIONS)) == ["451", "legacy"]
        (sweep,) = instance.get_runs(dg.RunsFilter(job_name="ttl_sweep"))
        logs = "\n".join(record.user_message for record in instance.all_logs(sweep.run_id))
        assert "removed the partitions 'abc', '451;drop', '0451'" in logs
