"""The bench's own stack under ``.bench/``, holding the synthetic source and the whale: built once, reused by
the next runs while its spec is the same, rebuilt when it is not (or when the whale's audit events have aged
out of the guide's 90-day root)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from repro_pipeline.embedded.stack import Stack, up, wait_for_standby_replay
from repro_pipeline.embedded.synthetic import DEMO_ORGANIZATION_ID, SourceSpec, SourceSummary, build_source

REPLAY_TIMEOUT_SECONDS = 900


@dataclass(frozen=True)
class BenchTenant:
    """One organization to measure, and where its source and target are; passed to the child processes."""

    label: str  # "mid-size" or "whale"
    organization: int
    standby_dsn: str
    target_admin_dsn: str
    salt: str  # never printed: the bench's own random salt


@dataclass(frozen=True)
class BenchSource:
    stack: Stack
    summary: SourceSummary
    ready_seconds: float  # starting the stack and building (or finding) the source

    def tenants(self, salt: str) -> tuple[BenchTenant, BenchTenant]:
        whale = self.summary.spec.whale_organization_id
        if whale is None:
            raise ValueError("the bench source has no whale: give SourceSpec a whale_scale above 0")
        return (
            BenchTenant(
                "mid-size", DEMO_ORGANIZATION_ID, self.stack.standby_dsn, self.stack.target_admin_dsn, salt
            ),
            BenchTenant("whale", whale, self.stack.standby_dsn, self.stack.target_admin_dsn, salt),
        )


def bench_source(root: Path, spec: SourceSpec) -> BenchSource:
    """The stack in ``root`` running, its source built to ``spec`` and replayed on the standby."""
    began = time.perf_counter()
    stack = up(root)
    summary = build_source(stack.primary_dsn, spec)
    if _whale_events_aged(stack.primary_dsn, spec):
        summary = build_source(stack.primary_dsn, spec, force=True)
    wait_for_standby_replay(stack, timeout=REPLAY_TIMEOUT_SECONDS)
    return BenchSource(stack, summary, time.perf_counter() - began)


def _whale_events_aged(primary_dsn: str, spec: SourceSpec) -> bool:
    """True when some of the whale's audit events are older than 90 days: the whale would shrink."""
    if spec.whale_organization_id is None:
        return False
    with psycopg.connect(primary_dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM audit_events WHERE organization_id = %s AND occurred_at < now() - interval '90 days'",
            [spec.whale_organization_id],
        ).fetchone()
    return row is not None and int(row[0]) > 0
