"""The bench's report: JSON (every figure) and Markdown (the goal table, the runs and their load averages,
where the time goes), written with the chart under ``bench-results/<UTC timestamp>/``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import TypeAdapter

from repro_pipeline_tests.bench.figures import DagsterFigures, PhaseMemory, RunFigures, TenantFigures
from repro_pipeline_tests.bench.goals import GoalResult


@dataclass(frozen=True)
class BenchReport:
    started_at: str  # UTC, ISO 8601
    quick: bool
    source_spec: dict[str, float]
    source_rows: int
    source_ready_seconds: float  # starting the bench stack and building or finding its source
    cpu_count: int
    runs: tuple[RunFigures, ...]
    goals: tuple[GoalResult, ...]


_ADAPTER = TypeAdapter(BenchReport)


def to_json(report: BenchReport) -> str:
    return _ADAPTER.dump_json(report, indent=2).decode()


def from_json(text: str) -> BenchReport:
    return _ADAPTER.validate_json(text)


def write_report(report: BenchReport, folder: Path, chart: Callable[[BenchReport, Path], None]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(to_json(report) + "\n", encoding="utf-8")
    (folder / "report.md").write_text(render_markdown(report), encoding="utf-8")
    chart(report, folder / "where-the-time-goes.png")


def render_markdown(report: BenchReport) -> str:
    runs = report.runs
    run_columns = " | ".join(f"run {run.number}" for run in runs)
    rule = "|---" * (len(runs) + 1) + "|"
    lines = [
        f"# make bench, {report.started_at}{' (--quick)' if report.quick else ''}",
        "",
        f"Source: {report.source_rows:,} rows ({_spec(report.source_spec)}), ready in "
        f"{report.source_ready_seconds:.1f} s; {report.cpu_count} cores. "
        + "; ".join(
            f"{tenant.label} organization {tenant.organization}: {tenant.engine.rows:,} rows"
            for tenant in runs[0].tenants
        )
        + ".",
        "",
        "## Goals (issue 11)",
        "",
        f"| goal | before (issue 11) | target | {run_columns} | verdict |",
        "|---|---|---|" + "---|" * len(runs) + "---|",
    ]
    for goal in report.goals:
        values = " | ".join(
            f"{_value(value, goal.unit)} {verdict}" if value is not None else verdict
            for value, verdict in zip(goal.values, goal.verdicts, strict=True)
        )
        lines.append(f"| {goal.label} | {goal.before} | {goal.target} | {values} | **{goal.verdict}** |")
    lines += [
        "",
        "## Runs",
        "",
        "| run | started (UTC) | load average before it (1, 5, 15 min) |",
        "|---|---|---|",
    ]
    lines += [
        f"| {run.number} | {run.started_at} | {' / '.join(f'{load:.2f}' for load in run.load_average)} |"
        for run in runs
    ]
    for label in (tenant.label for tenant in runs[0].tenants):
        tenants = [run.tenant(label) for run in runs]
        lines += ["", f"## Where the time goes: {label} (organization {tenants[0].organization})", ""]
        lines += [f"| measure | {run_columns} |", rule]
        lines += [f"| {name} | {' | '.join(cells)} |" for name, cells in _tenant_rows(tenants)]
    lines += [
        "",
        "Ratios are ours over the baseline measured in the same run: the floor copies the same rows unmasked "
        "with binary COPY into bare tables, then adds their keys, unique constraints and foreign keys; the "
        "count(*) is one hand-written server-side query over the closure's rows. The leak check includes "
        "reading the originals from the source. Each measure ran in a process of its own (its peak RSS). The engine "
        "step's peak RSS by phase is its process's peak while the phase ran (the kernel's peak started over when "
        "it began), and in brackets how far above the resident set at its start: the originals the leak check "
        "reads before the load stay held through it, as in the asset.",
        "",
    ]
    return "\n".join(lines)


def _tenant_rows(tenants: Sequence[TenantFigures]) -> list[tuple[str, list[str]]]:
    def row(name: str, cell: Callable[[TenantFigures], str]) -> tuple[str, list[str]]:
        return name, [cell(tenant) for tenant in tenants]

    rows = [
        row("rows", lambda t: f"{t.engine.rows:,}"),
        row(
            "floor (copy + constraints)",
            lambda t: (
                f"{t.floor.seconds:.2f} s ({t.floor.copy_seconds:.2f} + {t.floor.constraint_seconds:.2f})"
            ),
        ),
        row("closure", lambda t: f"{t.engine.closure_seconds:.2f} s ({t.engine.closure_passes} passes)"),
        row("count(*) of the same rows", lambda t: f"{t.engine.count_seconds:.2f} s"),
        row("closure / count(*)", lambda t: f"{t.engine.closure_seconds / t.engine.count_seconds:.1f}x"),
        row("masked load", lambda t: f"{t.engine.load_seconds:.2f} s"),
        row(
            "load phases",
            lambda t: ", ".join(
                f"{name} {seconds:.2f} s" for name, seconds in t.engine.load_phase_seconds.items()
            ),
        ),
        row("masked load rows/s", lambda t: f"{t.engine.rows_per_second:,.0f}"),
        row("masked load / floor", lambda t: f"{t.engine.load_seconds / t.floor.seconds:.2f}x"),
    ]
    checks = tenants[0].engine.check_seconds
    rows += [(f"check {name}", [f"{t.engine.check_seconds[name]:.2f} s" for t in tenants]) for name in checks]

    def dagster_row(name: str, cell: Callable[[DagsterFigures, TenantFigures], str]) -> tuple[str, list[str]]:
        return name, ["-" if t.dagster is None else cell(t.dagster, t) for t in tenants]

    rows += [
        dagster_row("Dagster end to end", lambda d, t: f"{d.seconds:.2f} s"),
        dagster_row("Dagster / floor", lambda d, t: f"{d.seconds / t.floor.seconds:.2f}x"),
        dagster_row(
            "Dagster process in all (start, imports, run)", lambda d, t: f"{d.process_seconds:.2f} s"
        ),
        dagster_row("  launch (until the first step)", lambda d, t: f"{d.launch_seconds:.2f} s"),
    ]
    steps = next((t.dagster.step_seconds for t in tenants if t.dagster is not None), {})
    rows += [
        (
            f"  step {step}",
            ["-" if t.dagster is None else f"{t.dagster.step_seconds.get(step, 0.0):.2f} s" for t in tenants],
        )
        for step in steps
    ]
    rows += [
        dagster_row("  teardown (after the last step)", lambda d, t: f"{d.teardown_seconds:.2f} s"),
        row(
            "peak RSS: floor / engine step / Dagster run",
            lambda t: (
                f"{t.floor.peak_rss_mb:.0f} / {t.engine.peak_rss_mb:.0f} / "
                + (f"{t.dagster.peak_rss_mb:.0f}" if t.dagster else "-")
                + " MB"
            ),
        ),
        row(
            "peak RSS of the step's child processes (the largest: fork server, worker, pg_dump)",
            lambda t: f"{t.engine.child_peak_rss_mb:.0f} MB",
        ),
    ]
    phases = tenants[0].engine.phase_memory
    rows += [
        (
            f"  engine step's peak RSS in {phase} (its growth)",
            [_phase_memory(t.engine.phase_memory.get(phase)) for t in tenants],
        )
        for phase in phases
    ]
    return rows


def _phase_memory(memory: PhaseMemory | None) -> str:
    return "-" if memory is None else f"{memory.peak_mb:.0f} MB (+{memory.growth_mb:.0f})"


def _value(value: float, unit: str) -> str:
    if unit == " rows/s":
        return f"{value:,.0f} rows/s"
    if unit == "x":
        return f"{value:.3f}x"  # three decimals: 1.5004x is shown missing 1.5x, not as 1.50x
    return f"{value:.1f}{unit}"


def _spec(spec: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:g}" for name, value in spec.items())
