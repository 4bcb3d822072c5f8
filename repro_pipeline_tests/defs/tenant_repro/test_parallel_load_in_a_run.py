"""The load's worker processes inside a real Dagster run (the tenant job's in-process executor): they start
from the run's step, load the partition, and the repro database holds the same rows as a one-connection load's."""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg
import psycopg
import pytest
from psycopg import sql

from repro_pipeline.definitions import tenant_repro_job_def
from repro_pipeline.defs.tenant_repro.partitions import ORGANIZATIONS
from repro_pipeline.embedded.stack import Stack
from repro_pipeline.embedded.synthetic import TABLES
from repro_pipeline.engine.dsn import with_database
from repro_pipeline_tests.defs.run_results import step_failure_messages

ORGANIZATION = "451"


@pytest.fixture(scope="module")
def instance(slack_environment: None) -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        test_instance.add_dynamic_partitions(ORGANIZATIONS, [ORGANIZATION])
        yield test_instance


def _loaded(instance: dg.DagsterInstance, workers: int) -> dict[str, object]:
    """The repro database's materialization metadata of a run whose load has ``workers`` processes (a worker
    per 1,000 rows, so the demo organization's 13,000 rows get them)."""
    target = {
        "load_workers": workers,
        "load_rows_per_worker": 1_000,
    }
    with dg.execute_job(
        dg.reconstructable(tenant_repro_job_def),
        instance=instance,
        tags={"dagster/partition": ORGANIZATION},
        run_config={"resources": {"target": {"config": target}}},
    ) as result:
        assert result.success, step_failure_messages(result)
        for event in result.get_asset_materialization_events():
            materialization = event.step_materialization_data.materialization
            if materialization.asset_key == dg.AssetKey("repro_database"):
                return {name: value.value for name, value in materialization.metadata.items()}
    raise AssertionError("repro_database was not materialized")


def _rows(dsn: str, table: str) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql.SQL("SELECT * FROM {} ORDER BY 1").format(sql.Identifier(table))).fetchall()


def test_workers_in_a_dagster_run_load_the_same_rows_as_one_connection(
    instance: dg.DagsterInstance, stack: Stack
) -> None:
    parallel = _loaded(instance, 2)
    serial = _loaded(instance, 1)
    assert (parallel["load_workers"], serial["load_workers"]) == (2, 1)
    parallel_dsn = with_database(stack.target_admin_dsn, str(parallel["database"]))
    serial_dsn = with_database(stack.target_admin_dsn, str(serial["database"]))
    for table in TABLES:
        rows = _rows(parallel_dsn, table)
        assert rows == _rows(serial_dsn, table), table
    assert parallel["dagster/row_count"] == serial["dagster/row_count"] > 10_000
