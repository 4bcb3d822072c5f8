"""Progress per table at a steady pace, without a database: a clock the test moves by hand."""

from __future__ import annotations

from psycopg import sql

from repro_pipeline.engine.load.progress import ProgressPacer, TableProgress, counted
from repro_pipeline.engine.source.catalog import TableName

INVOICES = TableName("public", "invoices")
USERS = TableName("public", "users")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _pacer() -> tuple[ProgressPacer, Clock, list[TableProgress]]:
    clock, seen = Clock(), []
    return ProgressPacer(seen.append, every_seconds=2.0, clock=clock), clock, seen


def test_a_table_is_reported_when_it_begins_at_most_every_two_seconds_then_when_it_ends() -> None:
    pacer, clock, seen = _pacer()
    pacer.started(INVOICES, 3000)
    for rows in (500, 1000, 1500, 2000):
        clock.now += 0.9
        pacer.copied(INVOICES, rows)
    clock.now += 0.5
    pacer.finished(INVOICES, 2990)
    assert [(p.rows, round(p.seconds, 6), p.finished) for p in seen] == [
        (0, 0.0, False),
        (1500, 2.7, False),
        (2990, 4.1, True),
    ]


def test_a_table_without_new_rows_is_still_reported_at_the_pace() -> None:
    pacer, clock, seen = _pacer()
    pacer.started(INVOICES, 3000)
    pacer.started(USERS, 60)
    pacer.tick()
    assert len(seen) == 2  # the starts only
    clock.now += 2.0
    pacer.tick()
    assert [(p.table, p.finished) for p in seen[2:]] == [(INVOICES, False), (USERS, False)]


def test_a_finished_table_is_reported_once_and_no_more() -> None:
    pacer, clock, seen = _pacer()
    pacer.started(USERS, 60)
    pacer.finished(USERS, 60)
    clock.now += 10
    pacer.tick()
    assert [(p.rows, p.total_rows, p.finished) for p in seen] == [(0, 60, False), (60, 60, True)]


def test_rows_per_second_and_the_line() -> None:
    progress = TableProgress(INVOICES, 3000, 6000, 1.5, finished=False)
    assert progress.rows_per_second == 2000
    assert progress.line() == "public.invoices: 3000/6000 rows in 1.50 s (2,000 rows/s, copying)"
    assert TableProgress(INVOICES, 0, 0, 0.0, finished=True).rows_per_second == 0


def test_a_time_too_short_to_measure_gives_no_rate() -> None:
    """A few rows copied within the line's precision would show "0 rows/s" (or an absurd one): none."""
    assert (
        TableProgress(INVOICES, 60, 60, 0.004, finished=True).line()
        == "public.invoices: 60/60 rows in 0.00 s (done)"
    )
    assert (
        TableProgress(INVOICES, 0, 60, 0.5, finished=False).line()
        == "public.invoices: 0/60 rows in 0.50 s (copying)"
    )
    assert TableProgress(INVOICES, 60, 60, 0.02, finished=True).line() == (
        "public.invoices: 60/60 rows in 0.02 s (3,000 rows/s, done)"
    )


def test_counted_reports_the_rows_of_the_batches_already_copied() -> None:
    reported: list[int] = []
    batches = [((sql.Composed([sql.SQL("true")]), {}), rows) for rows in (10, 10, 3)]
    taken = []
    for batch in counted(batches, reported.append):
        taken.append(batch)
        reported.append(-1)  # the copy of this batch
    assert len(taken) == 3
    assert reported == [-1, 10, -1, 20, -1]
