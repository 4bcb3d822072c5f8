"""A PNG of where the time goes: for each tenant, the floor, the engine's step and the Dagster run as bars of
their parts (the last run's figures)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display, no GUI toolkit

import matplotlib.pyplot as plt

from repro_pipeline_tests.bench.figures import TenantFigures
from repro_pipeline_tests.bench.report import BenchReport


def draw_chart(report: BenchReport, path: Path) -> None:
    run = report.runs[-1]
    figure, axes = plt.subplots(len(run.tenants), 1, figsize=(11, 3.2 * len(run.tenants)), squeeze=False)
    for axis, tenant in zip(axes[:, 0], run.tenants, strict=True):
        bars = _bars(tenant)
        for row, (_, parts) in enumerate(bars):
            left = 0.0
            for name, seconds in parts:
                axis.barh(row, seconds, left=left, label=name)
                if seconds > 0.04 * max(sum(s for _, s in p) for _, p in bars):
                    axis.text(left + seconds / 2, row, name, ha="center", va="center", fontsize=7)
                left += seconds
        axis.set_yticks(range(len(bars)), [name for name, _ in bars])
        axis.invert_yaxis()
        axis.set_xlabel("seconds")
        axis.set_title(
            f"{tenant.label}: organization {tenant.organization}, {tenant.engine.rows:,} rows (run {run.number})"
        )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _bars(tenant: TenantFigures) -> list[tuple[str, list[tuple[str, float]]]]:
    engine = tenant.engine
    bars = [
        ("floor", [("copy", tenant.floor.copy_seconds), ("constraints", tenant.floor.constraint_seconds)]),
        (
            "engine step",
            [("closure", engine.closure_seconds)]
            + [(f"load {phase}", seconds) for phase, seconds in engine.load_phase_seconds.items()]
            + [(name, seconds) for name, seconds in engine.check_seconds.items()],
        ),
    ]
    if tenant.dagster is not None:
        bars.append(
            (
                "Dagster run",
                [
                    ("launch", tenant.dagster.launch_seconds),
                    *tenant.dagster.step_seconds.items(),
                    ("teardown", tenant.dagster.teardown_seconds),
                ],
            )
        )
    return bars
