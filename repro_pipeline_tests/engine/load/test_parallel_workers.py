"""A load worker's wait for its next table, with real processes and queues, without a database."""

from __future__ import annotations

import multiprocessing
from multiprocessing.queues import Queue

import pytest

from repro_pipeline.engine.load.parallel import LoadWorkerError, TableJob, next_job


def test_a_worker_whose_main_process_ended_stops_waiting_for_tables() -> None:
    context = multiprocessing.get_context("spawn")
    ended = context.Process(target=int)
    ended.start()
    ended.join()
    pending: Queue[TableJob | None] = context.Queue()
    with pytest.raises(LoadWorkerError, match="the load's main process ended"):
        next_job(pending, ended)


def test_a_worker_takes_the_next_table_or_the_end() -> None:
    context = multiprocessing.get_context("spawn")
    pending: Queue[TableJob | None] = context.Queue()
    pending.put(None)
    assert next_job(pending, multiprocessing.current_process()) is None
