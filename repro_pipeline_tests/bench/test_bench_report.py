"""The bench's pure parts: goal evaluation, the Markdown report, the JSON round trip, the chart. No timing."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from repro_pipeline_tests.bench.__main__ import main
from repro_pipeline_tests.bench.chart import draw_chart
from repro_pipeline_tests.bench.figures import (
    DagsterFigures,
    EngineFigures,
    FloorFigures,
    PhaseMemory,
    RunFigures,
    TenantFigures,
)
from repro_pipeline_tests.bench.goals import GOALS, MET, MISSED, NOT_MEASURED, evaluate
from repro_pipeline_tests.bench.report import BenchReport, from_json, render_markdown, to_json, write_report

CHECKS = {
    "zero_fk_orphans": 0.5,
    "row_counts_match_closure": 0.1,
    "no_original_pii": 3.0,
    "schema_matches_source": 0.4,
}


def _tenant(
    label: str, organization: int, *, floor: float, load: float, rows: int, rss: float
) -> TenantFigures:
    return TenantFigures(
        label=label,
        organization=organization,
        floor=FloorFigures(
            rows=rows,
            seconds=floor,
            copy_seconds=floor * 0.8,
            constraint_seconds=floor * 0.2,
            peak_rss_mb=60.0,
        ),
        engine=EngineFigures(
            rows=rows,
            closure_seconds=2.0,
            closure_passes=4,
            count_seconds=1.0,
            load_seconds=load,
            load_phase_seconds={"schema": 0.3, "rows": load - 0.5, "post-data": 0.2},
            table_rows={"public.invoices": rows},
            check_seconds=dict(CHECKS),
            peak_rss_mb=rss,
            child_peak_rss_mb=70.0,
            phase_memory={
                "closure": PhaseMemory(60.0, rss - 10),
                "load": PhaseMemory(rss - 20, rss),
                "check schema_matches_source": PhaseMemory(rss + 0.4, rss),
            },
        ),
        dagster=DagsterFigures(
            seconds=floor * 2.5,
            process_seconds=floor * 2.5 + 4.0,
            launch_seconds=1.0,
            step_seconds={"standby_health": 0.2, "tenant_closure_and_repro_database": floor * 2.5 - 1.5},
            teardown_seconds=0.3,
            peak_rss_mb=150.0,
        ),
    )


def _run(number: int, *, whale_load: float = 12.0, whale_rss: float = 100.0) -> RunFigures:
    return RunFigures(
        number=number,
        started_at=f"2026-12-06T20:0{number}:00+00:00",
        load_average=(1.5, 1.25, 0.75),
        tenants=(
            _tenant("mid-size", 451, floor=2.0, load=4.0, rows=13_316, rss=90.0),
            _tenant("whale", 501, floor=8.0, load=whale_load, rows=1_050_000, rss=whale_rss),
        ),
    )


def _goal(key: str, runs: list[RunFigures]) -> tuple[tuple[str, ...], str]:
    result = next(result for result in evaluate(GOALS, runs) if result.key == key)
    return result.verdicts, result.verdict


def test_a_ratio_just_under_or_at_its_goal_is_met_and_just_over_it_missed() -> None:
    # masked load / floor <= 1.5x: the whale's floor is 8 s
    assert _goal("load_vs_floor", [_run(1, whale_load=11.99)]) == ((MET,), MET)
    assert _goal("load_vs_floor", [_run(1, whale_load=12.0)]) == ((MET,), MET)
    assert _goal("load_vs_floor", [_run(1, whale_load=12.01)]) == ((MISSED,), MISSED)
    # peak RSS whale vs mid-size <= 1.2x (mid-size 90 MB), and the whale under 250 MB, strictly
    assert _goal("peak_rss_ratio", [_run(1, whale_rss=107.9)]) == ((MET,), MET)
    assert _goal("peak_rss_ratio", [_run(1, whale_rss=108.1)]) == ((MISSED,), MISSED)
    assert _goal("whale_peak_rss", [_run(1, whale_rss=249.9)])[1] == MET
    assert _goal("whale_peak_rss", [_run(1, whale_rss=250.0)])[1] == MISSED


def test_a_rate_goal_is_met_at_or_above_it() -> None:
    # 1,050,000 rows: 120k rows/s is 8.75 s
    assert _goal("whale_rows_per_second", [_run(1, whale_load=8.74)])[1] == MET
    assert _goal("whale_rows_per_second", [_run(1, whale_load=8.76)])[1] == MISSED


def test_one_missed_run_misses_the_goal_and_an_unmeasured_one_is_said() -> None:
    missed_last = [_run(1, whale_load=11.0), _run(2, whale_load=13.0)]
    missed_first = [_run(1, whale_load=13.0), _run(2, whale_load=11.0)]
    assert _goal("load_vs_floor", missed_last) == ((MET, MISSED), MISSED)
    assert _goal("load_vs_floor", missed_first) == ((MISSED, MET), MISSED)
    without_dagster = replace(_run(1), tenants=tuple(replace(t, dagster=None) for t in _run(1).tenants))
    assert _goal("mid_size_dagster", [without_dagster]) == ((NOT_MEASURED,), NOT_MEASURED)
    assert _goal("mid_size_dagster", [without_dagster, _run(2)]) == ((NOT_MEASURED, MET), MET)


def _report(runs: list[RunFigures]) -> BenchReport:
    return BenchReport(
        started_at="2026-12-06T20:00:00+00:00",
        quick=False,
        source_spec={"scale": 1.0, "whale_scale": 1.0, "organizations": 200},
        source_rows=1_550_000,
        source_ready_seconds=3.5,
        cpu_count=2,
        runs=tuple(runs),
        goals=evaluate(GOALS, runs),
    )


def test_markdown_has_every_goal_with_both_runs_and_the_load_averages() -> None:
    markdown = render_markdown(_report([_run(1, whale_load=11.0), _run(2, whale_load=13.0)]))
    goal_rows = [line for line in markdown.splitlines() if line.startswith("| ") and "**" in line]
    assert len(goal_rows) == len(GOALS)
    assert (
        "| masked load vs the true floor (whale) | 2.9-3.4x (25-27 s vs 9.2 s) | <= 1.5x | 1.375x met | 1.625x MISSED | **MISSED** |"
        in markdown
    )
    assert "95,455 rows/s MISSED" in markdown
    assert "| 1 | 2026-12-06T20:01:00+00:00 | 1.50 / 1.25 / 0.75 |" in markdown
    assert "| 2 | 2026-12-06T20:02:00+00:00 | 1.50 / 1.25 / 0.75 |" in markdown
    assert "## Where the time goes: whale (organization 501)" in markdown
    assert "| check no_original_pii | 3.00 s | 3.00 s |" in markdown
    assert "|   step tenant_closure_and_repro_database | 18.50 s | 18.50 s |" in markdown
    assert "| Dagster process in all (start, imports, run) | 24.00 s | 24.00 s |" in markdown
    assert "|   engine step's peak RSS in closure (its growth) | 90 MB (+30) | 90 MB (+30) |" in markdown
    assert "|   engine step's peak RSS in load (its growth) | 100 MB (+20) | 100 MB (+20) |" in markdown
    assert (
        "| peak RSS of the step's child processes (the largest: fork server, worker, pg_dump) | 70 MB | 70 MB |"
        in markdown
    )
    assert (
        "|   engine step's peak RSS in check schema_matches_source (its growth) | 100 MB (+0) |" in markdown
    )


def test_json_round_trip_gives_the_same_report(tmp_path: Path) -> None:
    report = _report([_run(1), _run(2)])
    assert from_json(to_json(report)) == report
    without_dagster = _report(
        [replace(_run(1), tenants=tuple(replace(t, dagster=None) for t in _run(1).tenants))]
    )
    assert from_json(to_json(without_dagster)) == without_dagster
    write_report(report, tmp_path / "results", draw_chart)
    assert from_json((tmp_path / "results" / "report.json").read_text()) == report
    assert (tmp_path / "results" / "report.md").read_text() == render_markdown(report)
    assert (tmp_path / "results" / "where-the-time-goes.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--runs", "0"], "must be 1 or more"),
        (["--whale-scale", "0"], "--whale-scale must be above 0"),
        (["--whale-scale", "11"], "whale_scale must be >= 0 and <= 10"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_arguments_are_one_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error
