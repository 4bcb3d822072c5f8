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
    figure, axes = plt.subplots(len(run.tenants), 1, figsize=(12, 3.6 * len(run.tenants)), squeeze=False)
    palette = plt.get_cmap("tab20")
    colors: dict[str, tuple[float, float, float, float]] = {}
    for axis, tenant in zip(axes[:, 0], run.tenants, strict=True):
        bars = _bars(tenant)
        longest = max(sum(seconds for _, seconds in parts) for _, parts in bars)
        for row, (_, parts) in enumerate(bars):
            left = 0.0
            for name, seconds in parts:
                color = colors.setdefault(name, palette(len(colors) % palette.N))
                axis.barh(row, seconds, left=left, color=color, label=name, edgecolor="white")
                if seconds > 0.08 * longest:
                    axis.text(
                        left + seconds / 2,
                        row,
                        f"{name}\n{seconds:.1f} s",
                        ha="center",
                        va="center",
                        fontsize=7,
                    )
                left += seconds
        axis.set_yticks(
            range(len(bars)), [f"{name}\n{sum(s for _, s in parts):.1f} s" for name, parts in bars]
        )
        axis.invert_yaxis()
        axis.set_xlabel("seconds")
        axis.set_title(
            f"{tenant.label}: organization {tenant.organization}, {tenant.engine.rows:,} rows (run {run.number})"
        )
        handles, labels = axis.get_legend_handles_labels()
        unique = dict(zip(labels, handles, strict=True))
        axis.legend(unique.values(), unique.keys(), loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=7)
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
