"""``make bench [BENCH_ARGS=--quick]``: issue 11's goals for the mid-size tenant (451) and the whale."""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from pydantic import TypeAdapter

from repro_pipeline.embedded.stack import StackError, down
from repro_pipeline.embedded.synthetic import SourceSpec
from repro_pipeline.engine.errors import ReproError
from repro_pipeline_tests.bench.chart import draw_chart
from repro_pipeline_tests.bench.child import run_in_child
from repro_pipeline_tests.bench.dagster_run import measure_dagster
from repro_pipeline_tests.bench.figures import (
    DagsterFigures,
    EngineFigures,
    FloorFigures,
    RunFigures,
    TenantFigures,
)
from repro_pipeline_tests.bench.goals import GOALS, evaluate
from repro_pipeline_tests.bench.measures import BenchFailure, measure_engine, measure_floor
from repro_pipeline_tests.bench.report import BenchReport, render_markdown, write_report
from repro_pipeline_tests.bench.source import BenchSource, BenchTenant, bench_source

PROJECT_ROOT = Path(__file__).resolve().parents[2]
QUICK_WHALE_SCALE = 0.05
QUICK_SOURCE_SCALE = 0.2

F = TypeVar("F")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    arguments = parser.parse_args(argv)
    quick: bool = arguments.quick
    whale_scale = (
        arguments.whale_scale if arguments.whale_scale is not None else QUICK_WHALE_SCALE if quick else 1.0
    )
    runs = 1 if quick and arguments.runs is None else arguments.runs or 2
    if not whale_scale > 0:
        parser.error(f"--whale-scale must be above 0, got {whale_scale}")
    try:
        spec = SourceSpec(scale=QUICK_SOURCE_SCALE if quick else 1.0, whale_scale=whale_scale)
    except ValueError as exc:
        parser.error(f"--whale-scale: {exc}")
    started_at = datetime.now(UTC)
    stack_root = PROJECT_ROOT / ".bench" / ("stack-quick" if quick else "stack")
    print(f"bench stack {stack_root}: source {spec.to_json()}", flush=True)
    try:
        source, figures = _measure(stack_root, spec, runs)
    except (BenchFailure, ReproError, StackError) as failure:
        print(f"bench failed: {failure}", file=sys.stderr)
        return 1
    report = BenchReport(
        started_at=started_at.isoformat(timespec="seconds"),
        quick=quick,
        source_spec={
            "scale": spec.scale,
            "whale_scale": spec.whale_scale,
            "organizations": spec.organizations,
        },
        source_rows=source.summary.total_rows,
        source_ready_seconds=source.ready_seconds,
        cpu_count=os.cpu_count() or 0,
        runs=figures,
        goals=evaluate(GOALS, figures),
    )
    folder = PROJECT_ROOT / "bench-results" / started_at.strftime("%Y%m%dT%H%M%SZ")
    write_report(report, folder, draw_chart)
    print("\n" + render_markdown(report))
    print(f"written to {folder}/ (report.json, report.md, where-the-time-goes.png)")
    return 0


def _measure(stack_root: Path, spec: SourceSpec, runs: int) -> tuple[BenchSource, tuple[RunFigures, ...]]:
    """The bench stack ready, then every run; its servers are stopped afterwards, their data kept."""
    try:
        source = bench_source(stack_root, spec)
        print(
            f"source ready in {source.ready_seconds:.1f} s ({source.summary.total_rows:,} rows)", flush=True
        )
        dagster_home = Path(tempfile.mkdtemp(prefix="dagster-home-", dir=stack_root.parent))
        try:
            shutil.copy(PROJECT_ROOT / "dagster_home" / "dagster.yaml", dagster_home / "dagster.yaml")
            salt = secrets.token_hex(32)
            return source, tuple(_run(number, source, salt, dagster_home) for number in range(1, runs + 1))
        finally:
            shutil.rmtree(dagster_home, ignore_errors=True)
    finally:
        down(stack_root)


def _run(number: int, source: BenchSource, salt: str, dagster_home: Path) -> RunFigures:
    load_average = os.getloadavg()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    print(
        f"run {number}: load average {load_average[0]:.2f} / {load_average[1]:.2f} / {load_average[2]:.2f}",
        flush=True,
    )
    tenants = tuple(_tenant(tenant, dagster_home) for tenant in source.tenants(salt))
    return RunFigures(number, started_at, load_average, tenants)


def _tenant(tenant: BenchTenant, dagster_home: Path) -> TenantFigures:
    floor = _figures(FloorFigures, tenant, "floor", run_in_child(measure_floor, tenant))
    engine = _figures(EngineFigures, tenant, "engine step", run_in_child(measure_engine, tenant))
    dagster = _figures(
        DagsterFigures, tenant, "Dagster run", run_in_child(measure_dagster, tenant, str(dagster_home))
    )
    return TenantFigures(tenant.label, tenant.organization, floor, engine, dagster)


def _figures(kind: type[F], tenant: BenchTenant, what: str, measured: dict[str, object]) -> F:
    seconds = measured.get("seconds", measured.get("load_seconds"))
    print(f"  {tenant.label} {what}: {seconds:.2f} s, peak RSS {measured['peak_rss_mb']:.0f} MB", flush=True)
    return TypeAdapter(kind).validate_python(measured)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__)
    parser.add_argument(
        "--runs", type=_positive, default=None, help="runs of every measure (default 2, 1 with --quick)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"for development: a smaller source and whale (scale {QUICK_WHALE_SCALE}), one run",
    )
    parser.add_argument(
        "--whale-scale", type=float, default=None, help="the whale's size (1.0: about 1.05M rows)"
    )
    return parser


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


if __name__ == "__main__":
    sys.exit(main())
