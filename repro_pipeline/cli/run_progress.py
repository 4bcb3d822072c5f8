"""A Dagster run's progress while it runs, for the CLI that launched it: its steps as they start and end,
its checks' verdicts, and the load's per-table progress (the lines the load step logs), read from the
instance's event log by a thread beside the run."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import dagster as dg
from dagster._core.events import DagsterEventType

from repro_pipeline.cli.progress import ProgressDisplay
from repro_pipeline.cli.run_report import check_label
from repro_pipeline.engine.load.progress import TableProgress
from repro_pipeline.engine.source.catalog import TableName

POLL_SECONDS = 0.5
# TableProgress.line() read back: "schema.table: rows/total rows in 1.23 s (1,234 rows/s, copying)", the rate
# left out when the time is too short to give one.
_PROGRESS_LINE = re.compile(
    r"^(?P<schema>[^.]+)\.(?P<name>.+): (?P<rows>\d+)/(?P<total>\d+) rows in (?P<seconds>[\d.]+) s "
    r"\((?:[\d,.]+ rows/s, )?(?P<state>copying|done)\)$"
)


def parse_progress_line(text: str) -> TableProgress | None:
    """The TableProgress a load step logged as ``TableProgress.line()``, or None for any other message."""
    found = _PROGRESS_LINE.match(text)
    if found is None:
        return None
    return TableProgress(
        TableName(found["schema"], found["name"]),
        int(found["rows"]),
        int(found["total"]),
        float(found["seconds"]),
        finished=found["state"] == "done",
    )


@dataclass
class RunProgress:
    """Shows the news of the run of ``job_name`` for ``partition`` created after ``since``."""

    display: ProgressDisplay
    job_name: str
    partition: str
    since: datetime = field(default_factory=lambda: datetime.now(UTC))
    _run_id: str | None = None
    _cursor: str | None = None

    def poll(self, instance: dg.DagsterInstance) -> None:
        if self._run_id is None:
            runs = instance.get_run_records(
                dg.RunsFilter(
                    job_name=self.job_name,
                    tags={"dagster/partition": self.partition},
                    created_after=self.since,
                ),
                limit=1,
            )
            if not runs:
                return
            self._run_id = runs[0].dagster_run.run_id
            self.display.note(f"run {self._run_id} started")
        connection = instance.get_records_for_run(self._run_id, cursor=self._cursor)
        self._cursor = connection.cursor
        for record in connection.records:
            self._show(record.event_log_entry)

    def _show(self, entry: dg.EventLogEntry) -> None:
        event = entry.dagster_event
        if event is None:
            progress = parse_progress_line(entry.user_message)
            if progress is not None:
                self.display.table(progress)
            elif _level(entry.level) == logging.WARNING:  # the steps' own; errors come with the failure
                self.display.note(f"warning: {entry.user_message}")
            return
        step = event.step_key or ""
        if event.event_type == DagsterEventType.STEP_START:
            self.display.note(f"step {step} started")
        elif event.event_type == DagsterEventType.STEP_SUCCESS:
            self.display.note(f"step {step} succeeded")
        elif event.event_type == DagsterEventType.STEP_FAILURE:
            self.display.note(f"step {step} failed")
        elif event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.asset_check_evaluation_data
            verdict = "passed" if evaluation.passed else "FAILED"
            self.display.note(f"check {check_label(evaluation.asset_key, evaluation.check_name)} {verdict}")


def _level(level: str | int) -> int:
    """A log entry's level as a number (Dagster keeps some as their names)."""
    number = level if isinstance(level, int) else logging.getLevelName(level)
    return number if isinstance(number, int) else logging.NOTSET


@contextmanager
def watching(progress: RunProgress) -> Iterator[None]:
    """Poll the event log in a thread, with an instance of its own, while the block runs the job."""
    stop = threading.Event()

    def watch() -> None:
        try:
            with dg.DagsterInstance.get() as instance:
                while not stop.wait(POLL_SECONDS):
                    progress.poll(instance)
                progress.poll(instance)  # what came in since the last poll
        except Exception as error:  # the run goes on and reports itself: only its news is lost
            progress.display.note(f"no more progress shown: {type(error).__name__}")

    watcher = threading.Thread(target=watch, name="run-progress", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        watcher.join(timeout=10)
