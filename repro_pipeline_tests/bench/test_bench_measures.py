"""The bench's measures on the session's embedded stack: they copy the tenant, verify the copy, fail loudly on
a wrong one and leave no database behind; each child's peak RSS is its own. No timing is asserted."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from repro_pipeline.embedded.stack import Stack
from repro_pipeline.embedded.synthetic import SourceSpec, SourceSummary, build_source
from repro_pipeline.engine.dsn import with_database
from repro_pipeline.engine.verify.checks import Verdict
from repro_pipeline_tests.bench.child import PhasePeaks, run_in_child
from repro_pipeline_tests.bench.measures import BenchFailure, _checks, measure_engine, measure_floor
from repro_pipeline_tests.bench.source import BenchTenant, _whale_events_aged

CHECKS = {"zero_fk_orphans", "row_counts_match_closure", "no_original_pii", "schema_matches_source"}


def _bench_databases(stack: Stack) -> list[str]:
    with psycopg.connect(stack.target_admin_dsn) as conn:
        return [
            str(name)
            for (name,) in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'bench%'")
        ]


def test_floor_and_engine_step_copy_the_same_rows_and_drop_their_databases(
    stack: Stack, source: SourceSummary, salt: str
) -> None:
    tenant = BenchTenant("mid-size", 451, stack.standby_dsn, stack.target_admin_dsn, salt)
    floor = measure_floor(tenant)
    engine = measure_engine(tenant)
    assert floor["rows"] == engine["rows"] == sum(engine["table_rows"].values()) > 10_000
    assert set(engine["check_seconds"]) == CHECKS
    assert set(engine["load_phase_seconds"]) == {"schema", "rows", "post-data"}
    assert set(engine["phase_memory"]) == {"closure", "count(*)", "originals", "load"} | {
        f"check {name}" for name in CHECKS
    }
    assert _bench_databases(stack) == []


def test_the_engine_step_loads_with_the_assets_load_workers(
    stack: Stack, source: SourceSummary, salt: str
) -> None:
    """The asset loads with worker processes: the bench measured the one-connection load until it gave its
    load the asset's workers. Two workers here (a worker per 1,000 rows), in a child as the bench runs it."""
    tenant = BenchTenant("mid-size", 451, stack.standby_dsn, stack.target_admin_dsn, salt)
    engine = run_in_child(measure_engine, tenant, 2, 1_000)
    assert engine["load_workers"] == 2  # as the load reports the processes that copied its rows
    assert engine["child_peak_rss_mb"] > 0
    assert engine["rows"] == sum(engine["table_rows"].values()) > 10_000
    assert _bench_databases(stack) == []


def test_a_failed_check_on_the_bench_copy_stops_the_bench_naming_it() -> None:
    tenant = BenchTenant("whale", 501, "", "", "")
    failing = {"zero_fk_orphans": lambda: Verdict("zero_fk_orphans", False, {"orphans": 3, "diff": "x"})}
    with pytest.raises(BenchFailure, match=r"whale: the check zero_fk_orphans failed .*'orphans': 3"):
        _checks(tenant, PhasePeaks(), failing)
    assert set(
        _checks(tenant, PhasePeaks(), {"zero_fk_orphans": lambda: Verdict("zero_fk_orphans", True)})
    ) == {"zero_fk_orphans"}


def allocate(megabytes: int) -> dict[str, Any]:
    held = bytearray(megabytes * 1024 * 1024)
    return {"held": len(held)}


def test_each_child_reports_its_own_peak_rss() -> None:
    small = run_in_child(allocate, 1)
    large = run_in_child(allocate, 200)
    assert large["held"] == 200 * 1024 * 1024
    assert large["peak_rss_mb"] >= small["peak_rss_mb"] + 190


def allocate_by_phase(megabytes: int) -> dict[str, Any]:
    peaks = PhasePeaks()
    with peaks.phase("large"):
        held = bytearray(megabytes * 1024 * 1024)
        del held
    with peaks.phase("small"):
        kept = bytearray(1024 * 1024)
    return {"phases": peaks.phases, "peak_rss_mb": peaks.overall_mb, "kept": len(kept)}


def test_each_phase_reports_its_own_peak_and_the_child_its_overall_one() -> None:
    """The kernel's peak started over for the small phase: the large phase before it does not show in it,
    and the child's peak still covers both (the kernel's own, read at its end, would miss the large one)."""
    figures = run_in_child(allocate_by_phase, 200)
    large, small = figures["phases"]["large"], figures["phases"]["small"]
    assert large.peak_mb - large.start_mb >= 190
    assert small.peak_mb - small.start_mb < 20
    assert small.peak_mb < large.peak_mb - 150
    assert figures["peak_rss_mb"] >= large.peak_mb


def test_a_whale_whose_events_aged_past_the_90_day_root_is_rebuilt(stack: Stack) -> None:
    spec = SourceSpec(scale=0.05, whale_scale=0.001)
    with psycopg.connect(stack.primary_dsn, autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS bench_aging")
        admin.execute("CREATE DATABASE bench_aging")
    try:
        dsn = with_database(stack.primary_dsn, "bench_aging")
        build_source(dsn, spec)
        assert not _whale_events_aged(dsn, spec)
        assert not _whale_events_aged(dsn, SourceSpec(scale=0.05))
        with psycopg.connect(dsn) as conn:
            conn.execute(
                "UPDATE audit_events SET occurred_at = now() - interval '91 days' "
                "WHERE id = (SELECT max(id) FROM audit_events WHERE organization_id = %s)",
                [spec.whale_organization_id],
            )
        assert _whale_events_aged(dsn, spec)
    finally:
        with psycopg.connect(stack.primary_dsn, autocommit=True) as admin:
            admin.execute("DROP DATABASE IF EXISTS bench_aging WITH (FORCE)")
