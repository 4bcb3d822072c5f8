"""A repro database's run record for tests that need one without a load."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from repro_pipeline.engine.repro_databases.manifest import RunRecord, TableRecord


def run_record(run_id: str, tables: Sequence[TableRecord] = (), organization_id: int = 451) -> RunRecord:
    now = datetime.now(UTC)
    return RunRecord(
        run_id=run_id,
        organization_id=organization_id,
        config_hash="c" * 16,
        salt_fingerprint="f" * 16,
        source="127.0.0.1:5432/billing",
        source_replay_lsn=None,
        snapshot_at=now,
        closure_passes=1,
        started_at=now,
        tables=tables,
    )
