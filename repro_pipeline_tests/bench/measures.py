"""What the bench measures of the engine for one tenant, each the body of one child process: the true floor,
and the pipeline's own steps (the closure against one server-side ``count(*)`` of the same rows, the masked
load, each check). Every copy is verified; a wrong one raises ``BenchFailure``."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from repro_pipeline.engine import dsn
from repro_pipeline.engine.config import load_config
from repro_pipeline.engine.load.loader import load_repro
from repro_pipeline.engine.load.parallel import LoadWorkers
from repro_pipeline.engine.load.plan import plan_subset
from repro_pipeline.engine.secrets import Secret
from repro_pipeline.engine.source.snapshot import open_source_snapshot
from repro_pipeline.engine.verify.checks import (
    Verdict,
    no_original_pii,
    read_originals,
    row_counts_match_closure,
    schema_matches_source,
    zero_fk_orphans,
)
from repro_pipeline_tests.bench.child import PhasePeaks
from repro_pipeline_tests.bench.descendants import descendants_peak_rss_mb
from repro_pipeline_tests.bench.floor import copy_floor
from repro_pipeline_tests.bench.source import BenchTenant

CONFIG = Path(__file__).resolve().parents[2] / "config"
MASK_RULES, EXTENSIONS = CONFIG / "mask-rules.yaml", CONFIG / "commercial-extensions.yaml"

# The closure of one organization written by hand as one server-side query: what the FK walk is compared to.
TENANT_ROWS = """
WITH subs AS (SELECT id FROM subscriptions WHERE organization_id = %(org)s),
     inv AS (SELECT id FROM invoices WHERE subscription_id IN (SELECT id FROM subs)),
     usr AS (SELECT id FROM users WHERE organization_id = %(org)s)
SELECT 1
     + (SELECT count(*) FROM subs) + (SELECT count(*) FROM inv) + (SELECT count(*) FROM usr)
     + (SELECT count(*) FROM invoice_line_items WHERE invoice_id IN (SELECT id FROM inv))
     + (SELECT count(*) FROM payment_methods WHERE user_id IN (SELECT id FROM usr))
     + (SELECT count(*) FROM audit_events
        WHERE organization_id = %(org)s AND occurred_at >= now() - interval '90 days')
"""

T = TypeVar("T")


class BenchFailure(Exception):
    """The copy the bench measured is wrong: its figures mean nothing."""


def measure_floor(tenant: BenchTenant) -> dict[str, Any]:
    """The true floor for the tenant's closure (the closure itself is not timed)."""
    config = load_config(MASK_RULES, EXTENSIONS)
    with (
        _scratch_database(tenant, "bench_floor") as target_dsn,
        open_source_snapshot(tenant.standby_dsn) as snapshot,
    ):
        plan = plan_subset(snapshot, config, Secret(tenant.salt), tenant.organization)
        floor = copy_floor(snapshot.conn, target_dsn, plan, config.mask_rules.batch_size)
    if floor["rows"] != plan.closure.total_rows:
        raise BenchFailure(
            f"{tenant.label}: the floor copied {floor['rows']} rows of {plan.closure.total_rows}"
        )
    return floor


def measure_engine(
    tenant: BenchTenant,
    worker_count: int | None = None,
    min_rows_each: int = LoadWorkers.min_rows_each,
) -> dict[str, Any]:
    """The pipeline's step as the asset runs it, timed part by part: closure, originals, masked load (with the
    asset's load workers, by default one per core), checks; and the closure's hand-written ``count(*)`` in the
    same snapshot. The peak RSS of its child processes (the load's fork server and workers, pg_dump) is the largest of theirs: the
    process's own leaves them out. The process's own is also split by phase (``phase_memory``)."""
    config = load_config(MASK_RULES, EXTENSIONS)
    peaks = PhasePeaks()
    workers = LoadWorkers(worker_count or os.cpu_count() or 1, config, Secret(tenant.salt), min_rows_each)
    workers.start_server()  # before the closure, as the asset does: the workers' imports run beside it
    with (
        descendants_peak_rss_mb() as child_peak_rss_mb,
        _scratch_database(tenant, "bench_load") as target_dsn,
    ):
        with open_source_snapshot(tenant.standby_dsn) as snapshot:
            closure_seconds, plan = _timed(
                lambda: plan_subset(snapshot, config, Secret(tenant.salt), tenant.organization),
                peaks,
                "closure",
            )
            count_seconds, counted = _timed(
                lambda: _tenant_rows(snapshot.conn, tenant.organization), peaks, "count(*)"
            )
            if plan.closure.total_rows != counted:
                raise BenchFailure(
                    f"{tenant.label}: the closure holds {plan.closure.total_rows} rows, count(*) {counted}"
                )
            originals_seconds, originals = _timed(
                lambda: read_originals(snapshot.conn, plan, config), peaks, "originals"
            )
            load_seconds, load = _timed(
                lambda: load_repro(
                    snapshot,
                    target_dsn,
                    plan,
                    run_id="bench",
                    started_at=datetime.now(UTC),
                    batch_size=config.mask_rules.batch_size,
                    workers=workers,
                ),
                peaks,
                "load",
            )
        with dsn.connect(target_dsn, role="repro database", autocommit=True) as target:
            checks = _checks(
                tenant,
                peaks,
                {
                    "zero_fk_orphans": lambda: zero_fk_orphans(plan, target),
                    "row_counts_match_closure": lambda: row_counts_match_closure(target),
                    "no_original_pii": lambda: no_original_pii(originals, target),
                    "schema_matches_source": lambda: schema_matches_source(load.schema, target_dsn),
                },
            )
    rows = sum(load.loaded_rows.values())
    if rows != plan.closure.total_rows:
        raise BenchFailure(f"{tenant.label}: the load wrote {rows} rows of {plan.closure.total_rows}")
    # The leak check as the asset runs it: the originals read from the source, then the target searched.
    checks["no_original_pii"] += originals_seconds
    return {
        "rows": rows,
        "closure_seconds": closure_seconds,
        "closure_passes": plan.closure.passes,
        "count_seconds": count_seconds,
        "load_seconds": load_seconds,
        "load_phase_seconds": dict(load.phase_seconds),
        "table_rows": {str(name): count for name, count in load.loaded_rows.items()},
        "check_seconds": checks,
        "load_workers": load.workers,
        "child_peak_rss_mb": child_peak_rss_mb(),
        "phase_memory": peaks.phases,
        "peak_rss_mb": peaks.overall_mb,
    }


def _checks(
    tenant: BenchTenant, peaks: PhasePeaks, checks: dict[str, Callable[[], Verdict]]
) -> dict[str, float]:
    seconds: dict[str, float] = {}
    for name, check in checks.items():
        seconds[name], verdict = _timed(check, peaks, f"check {name}")
        if not verdict.passed:
            found = {key: value for key, value in verdict.found.items() if key != "diff"}
            raise BenchFailure(f"{tenant.label}: the check {name} failed on the bench's copy: {found}")
    return seconds


def _tenant_rows(conn: psycopg.Connection[TupleRow], organization: int) -> int:
    row = conn.execute(TENANT_ROWS, {"org": organization}).fetchone()
    assert row is not None
    return int(row[0])


def _timed(action: Callable[[], T], peaks: PhasePeaks, phase: str) -> tuple[float, T]:
    with peaks.phase(phase):
        began = time.perf_counter()
        result = action()
        return time.perf_counter() - began, result


@contextmanager
def _scratch_database(tenant: BenchTenant, prefix: str) -> Iterator[str]:
    """An empty database on the target server for one measure, dropped afterwards."""
    name = f"{prefix}_{tenant.organization}_{secrets.token_hex(3)}"
    with dsn.connect(tenant.target_admin_dsn, role="target server", autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield dsn.with_database(tenant.target_admin_dsn, name)
    finally:
        with dsn.connect(tenant.target_admin_dsn, role="target server", autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
