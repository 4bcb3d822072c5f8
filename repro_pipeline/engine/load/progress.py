"""How far the load has got, table by table, reported at a steady pace: when a table's copy begins, every few
seconds while it runs, and when it is done (with the rows the target stored)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from psycopg import sql

from repro_pipeline.engine.source.catalog import Table, TableName
from repro_pipeline.engine.subset.closure import TableRows

REPORT_EVERY_SECONDS = 2.0


@dataclass(frozen=True)
class TableProgress:
    table: TableName
    rows: int  # copied so far; when ``finished``, the rows the target stored
    total_rows: int  # the closure's count for the table
    seconds: float  # since the table's copy began
    finished: bool

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    @property
    def rate(self) -> str:
        """Its rows/s, or nothing when its time is too short to give one (a table of a few rows)."""
        return (
            f"{self.rows_per_second:,.0f} rows/s" if self.rows and self.seconds >= MEASURABLE_SECONDS else ""
        )

    def line(self) -> str:
        """One plain line for logs and terminals."""
        state = "done" if self.finished else "copying"
        return (
            f"{self.table}: {self.rows}/{self.total_rows} rows in {self.seconds:.2f} s "
            f"({', '.join(filter(None, (self.rate, state)))})"
        )


MEASURABLE_SECONDS = 0.01  # the line's precision: a shorter time would show as 0.00 s


ProgressCallback = Callable[[TableProgress], None]


@dataclass
class _Running:
    total_rows: int
    began: float
    rows: int = 0
    reported_at: float = 0.0


@dataclass
class ProgressPacer:
    """Turns row counts, as they come, into ``TableProgress`` calls no more often than ``every_seconds``
    per table, and a last one per table when it is done."""

    report: ProgressCallback
    every_seconds: float = REPORT_EVERY_SECONDS
    clock: Callable[[], float] = time.monotonic
    _running: dict[TableName, _Running] = field(default_factory=dict)

    def started(self, table: TableName, total_rows: int) -> None:
        running = self._running[table] = _Running(total_rows, began=self.clock())
        self._report(table, running, finished=False)

    def copied(self, table: TableName, rows: int) -> None:
        running = self._running[table]
        running.rows = rows
        if self.clock() - running.reported_at >= self.every_seconds:
            self._report(table, running, finished=False)

    def tick(self) -> None:
        """Report each running table whose last report is older than the pace, even without new rows."""
        for table, running in list(self._running.items()):
            if self.clock() - running.reported_at >= self.every_seconds:
                self._report(table, running, finished=False)

    def finished(self, table: TableName, rows: int) -> None:
        running = self._running.pop(table)
        running.rows = rows
        self._report(table, running, finished=True)

    def _report(self, table: TableName, running: _Running, *, finished: bool) -> None:
        now = self.clock()
        running.reported_at = now
        self.report(TableProgress(table, running.rows, running.total_rows, now - running.began, finished))


Batch = tuple[sql.Composed, dict[str, Any]]


def counted(batches: Iterable[tuple[Batch, int]], copied: Callable[[int], None]) -> Iterator[Batch]:
    """The batches, calling ``copied`` with the rows of those already copied each time the next is asked
    for (the copy asks for a batch once the one before is written)."""
    rows = 0
    for batch, batch_rows in batches:
        if rows:
            copied(rows)
        yield batch
        rows += batch_rows


def batches_with_rows(
    rows: TableRows, table: Table, organization_id: int, batch_size: int
) -> Iterator[tuple[Batch, int]]:
    """The row conditions of ``rows`` of ``table``, each with the rows it selects, built as they are asked for."""
    return zip(rows.conditions(table, organization_id, batch_size), rows.batch_rows(batch_size), strict=True)
