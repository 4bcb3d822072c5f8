"""The TTL sweep through the Dagster instance: expired repro databases go, others stay."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import dagster as dg
import psycopg
import pytest
from psycopg import sql

from repro_pipeline.definitions import defs
from repro_pipeline.defs.launch import run_ttl_sweep
from repro_pipeline.engine import repro_databases
from repro_pipeline.stack import Stack


@pytest.fixture
def admin(stack: Stack) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with psycopg.connect(stack.target_admin_dsn, autocommit=True) as conn:
        yield conn


def _names(admin: psycopg.Connection[tuple[object, ...]]) -> set[str]:
    return {str(name) for (name,) in admin.execute("SELECT datname FROM pg_database")}


def test_the_sweep_drops_an_expired_repro_database_and_keeps_an_unexpired_one(
    admin: psycopg.Connection[tuple[object, ...]], pipeline_environment: dict[str, str]
) -> None:
    now = datetime.now(UTC)
    expired = repro_databases.create_repro_database(
        admin,
        organization_id=451,
        run_id=uuid.uuid4().hex,
        ttl=timedelta(hours=48),
        now=now - timedelta(hours=49),
    )
    alive = repro_databases.create_repro_database(
        admin, organization_id=451, run_id=uuid.uuid4().hex, ttl=timedelta(hours=48), now=now
    )
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier("repro_org451_notours1")))
    try:
        with psycopg.connect(f"{pipeline_environment['REPRO_TARGET_DSN'].rsplit('/', 1)[0]}/{expired.name}"):
            pass  # an open session must not keep the expired database alive
        with dg.instance_for_test() as instance:
            outcome = run_ttl_sweep(instance)
        assert outcome.success
        assert expired.name in outcome.dropped
        names = _names(admin)
        assert expired.name not in names
        assert alive.name in names
        assert "repro_org451_notours1" in names  # no repro_pipeline record: never dropped
    finally:
        repro_databases.drop_repro_database(admin, alive.name)
        admin.execute("DROP DATABASE IF EXISTS repro_org451_notours1")


def test_the_sweep_runs_hourly() -> None:
    schedule = defs.resolve_schedule_def("ttl_sweep_schedule")
    assert schedule.cron_schedule == "0 * * * *"
    assert schedule.job_name == "ttl_sweep"
