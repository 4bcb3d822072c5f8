"""What one bench run measured, per tenant, as frozen dataclasses (the JSON report is their dump)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FloorFigures:
    rows: int
    seconds: float
    copy_seconds: float
    constraint_seconds: float
    peak_rss_mb: float


@dataclass(frozen=True)
class PhaseMemory:
    """One phase of a measure: the process's resident set when it began, and its peak while it ran (MB)."""

    start_mb: float
    peak_mb: float

    @property
    def growth_mb(self) -> float:
        # The kernel updates the peak as pages are counted, so a phase that grew nothing can read a peak a
        # fraction of a MB under the resident set read just after the reset: no growth, not a negative one.
        return max(0.0, self.peak_mb - self.start_mb)


@dataclass(frozen=True)
class EngineFigures:
    rows: int
    closure_seconds: float
    closure_passes: int
    count_seconds: float
    load_seconds: float
    load_phase_seconds: dict[str, float]
    table_rows: dict[str, int]
    check_seconds: dict[str, float]  # no_original_pii includes reading the originals from the source
    peak_rss_mb: float  # the step's own process; its load workers are below
    load_workers: int = 1
    child_peak_rss_mb: float = (
        0.0  # the largest peak of its child processes: the load's fork server and workers, pg_dump
    )
    # The step's own process, phase by phase (closure, originals, load, each check), in the asset's order: a
    # phase starts from what the ones before it left held (the originals stay held through the load).
    phase_memory: dict[str, PhaseMemory] = field(default_factory=dict)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.load_seconds


@dataclass(frozen=True)
class DagsterFigures:
    seconds: float  # launching the run until its result
    process_seconds: float  # the whole process: its start and imports (dagster, the definitions), and the run
    launch_seconds: float
    step_seconds: dict[str, float]
    teardown_seconds: float
    peak_rss_mb: float


@dataclass(frozen=True)
class TenantFigures:
    label: str  # "mid-size" or "whale"
    organization: int
    floor: FloorFigures
    engine: EngineFigures
    dagster: DagsterFigures | None  # None in reports of runs that did not measure it


@dataclass(frozen=True)
class RunFigures:
    number: int
    started_at: str  # UTC, ISO 8601
    load_average: tuple[float, float, float]  # os.getloadavg() before the run: 1, 5, 15 minutes
    tenants: tuple[TenantFigures, ...]

    def tenant(self, label: str) -> TenantFigures:
        return next(tenant for tenant in self.tenants if tenant.label == label)
