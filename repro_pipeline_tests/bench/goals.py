"""Issue 11's goal table: each goal's value in each run, and met / MISSED."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from repro_pipeline_tests.bench.figures import RunFigures

Comparison = Literal["<=", "<", ">="]
MET, MISSED, NOT_MEASURED = "met", "MISSED", "not measured"


@dataclass(frozen=True)
class Goal:
    key: str
    label: str
    before: str  # what issue 11 measured before the work
    comparison: Comparison
    limit: float
    unit: str
    value: Callable[[RunFigures], float | None]

    @property
    def target(self) -> str:
        return f"{self.comparison} {self.limit:g}{self.unit}"

    def met_by(self, value: float) -> bool:
        if self.comparison == "<=":
            return value <= self.limit
        if self.comparison == "<":
            return value < self.limit
        return value >= self.limit


@dataclass(frozen=True)
class GoalResult:
    key: str
    label: str
    before: str
    target: str
    unit: str
    values: tuple[float | None, ...]  # one per run, None where the run did not measure it
    verdicts: tuple[str, ...]
    verdict: str  # MISSED if any run missed it, met if every run that measured it met it


def _whale_dagster_vs_floor(run: RunFigures) -> float | None:
    whale = run.tenant("whale")
    return None if whale.dagster is None else whale.dagster.seconds / whale.floor.seconds


def _mid_size_dagster(run: RunFigures) -> float | None:
    dagster = run.tenant("mid-size").dagster
    return None if dagster is None else dagster.seconds


GOALS: tuple[Goal, ...] = (
    Goal(
        "load_vs_floor",
        "masked load vs the true floor (whale)",
        "2.9-3.4x (25-27 s vs 9.2 s)",
        "<=",
        1.5,
        "x",
        lambda run: run.tenant("whale").engine.load_seconds / run.tenant("whale").floor.seconds,
    ),
    Goal(
        "whale_rows_per_second",
        "whale rows/s through the load",
        "34-42k",
        ">=",
        120_000,
        " rows/s",
        lambda run: run.tenant("whale").engine.rows_per_second,
    ),
    Goal(
        "whale_dagster_vs_floor",
        "whale end to end through Dagster, vs the floor",
        "188-260 s, of which the leak check 106-164 s",
        "<=",
        2.5,
        "x",
        _whale_dagster_vs_floor,
    ),
    Goal(
        "closure_vs_count",
        "closure vs one server-side count(*) over the same rows (whale)",
        "6.1-6.4x",
        "<=",
        2,
        "x",
        lambda run: run.tenant("whale").engine.closure_seconds / run.tenant("whale").engine.count_seconds,
    ),
    Goal(
        "peak_rss_ratio",
        "peak RSS of the engine's step, whale vs mid-size",
        "212 vs 69 MB (3.05x)",
        "<=",
        1.2,
        "x",
        lambda run: run.tenant("whale").engine.peak_rss_mb / run.tenant("mid-size").engine.peak_rss_mb,
    ),
    Goal(
        "whale_peak_rss",
        "peak RSS of the engine's step, whale",
        "212 MB",
        "<",
        250,
        " MB",
        lambda run: run.tenant("whale").engine.peak_rss_mb,
    ),
    Goal(
        "mid_size_dagster",
        "mid-size tenant (451) end to end through Dagster",
        "42-79 s, about 40 s of it process start-up per step",
        "<=",
        15,
        " s",
        _mid_size_dagster,
    ),
)


def evaluate(goals: Sequence[Goal], runs: Sequence[RunFigures]) -> tuple[GoalResult, ...]:
    results = []
    for goal in goals:
        values = tuple(goal.value(run) for run in runs)
        verdicts = tuple(
            NOT_MEASURED if value is None else MET if goal.met_by(value) else MISSED for value in values
        )
        measured = [verdict for verdict in verdicts if verdict != NOT_MEASURED]
        verdict = NOT_MEASURED if not measured else MISSED if MISSED in measured else MET
        results.append(
            GoalResult(goal.key, goal.label, goal.before, goal.target, goal.unit, values, verdicts, verdict)
        )
    return tuple(results)
