"""How long work shows its progress: a rich progress bar per step and per table when stderr is a terminal,
plain lines otherwise (a log, CI, a pipe). Progress always goes to stderr, so stdout stays the result a
script reads."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from repro_pipeline.engine.load.progress import TableProgress
from repro_pipeline.engine.source.catalog import TableName


@dataclass
class Step:
    """One step under way; ``done`` says, in a few words, what it found (shown when it ends)."""

    description: str
    began: float
    result: str = ""

    def done(self, result: str) -> None:
        self.result = result

    def summary(self, now: float) -> str:
        found = f": {self.result}" if self.result else ""
        return f"{self.description}{found} ({now - self.began:.1f} s)"


@dataclass
class ProgressDisplay:
    """Steps (the closure, the checks...) and the load's tables, as bars or as lines."""

    console: Console
    bars: Progress | None
    _tables: dict[TableName, TaskID] = field(default_factory=dict)

    @contextmanager
    def step(self, description: str) -> Iterator[Step]:
        step = Step(description, time.monotonic())
        if self.bars is None:
            self._line(f"{description}...")
            yield step
            self._line(step.summary(time.monotonic()))
            return
        task = self.bars.add_task(description, total=None)
        try:
            yield step
        finally:
            self.bars.update(task, description=step.summary(time.monotonic()), total=1, completed=1)

    def table(self, progress: TableProgress) -> None:
        if self.bars is None:
            self._line(progress.line())
            return
        if progress.table not in self._tables:
            self._tables[progress.table] = self.bars.add_task(str(progress.table), total=progress.total_rows)
        self.bars.update(
            self._tables[progress.table],
            completed=progress.rows,
            total=max(progress.total_rows, progress.rows),
            description=f"{progress.table} ({progress.rate})" if progress.rate else str(progress.table),
        )

    def note(self, text: str) -> None:
        """One line of news (a step began or ended), above the bars or among the lines."""
        self._line(text)

    def _line(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)


@contextmanager
def progress_display(console: Console | None = None, *, quiet: bool = False) -> Iterator[ProgressDisplay]:
    """Bars when ``console`` (stderr by default) is a terminal, lines otherwise; nothing when ``quiet``."""
    console = console or Console(stderr=True)
    if quiet or not console.is_terminal:
        yield ProgressDisplay(Console(file=console.file, quiet=True) if quiet else console, None)
        return
    bars = Progress(
        SpinnerColumn(finished_text="✓"),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        redirect_stdout=False,  # stdout is the result a script reads, never drawn over
    )
    with bars:
        yield ProgressDisplay(console, bars)
