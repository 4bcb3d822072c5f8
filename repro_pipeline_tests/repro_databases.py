"""Repro databases made for tests directly on the target server, without a load."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg.rows import TupleRow

from repro_pipeline.engine.repro_databases import lifecycle


def new_repro_database(
    target_admin: psycopg.Connection[TupleRow],
    *,
    organization_id: int = 451,
    ttl: timedelta = timedelta(hours=48),
    now: datetime | None = None,
    run_id: str | None = None,
) -> lifecycle.ReproDatabase:
    """An empty repro database with its record, status ``loading``, as a run's first step makes it."""
    return lifecycle.create_repro_database(
        target_admin,
        organization_id=organization_id,
        run_id=run_id or uuid.uuid4().hex,
        ttl=ttl,
        now=now or datetime.now(UTC),
    )
