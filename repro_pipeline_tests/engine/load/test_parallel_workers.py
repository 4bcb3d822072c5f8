"""A load worker's wait for its next table, with real processes and queues, without a database."""

from __future__ import annotations

import multiprocessing
import pickle
import queue
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from multiprocessing.queues import Queue
from typing import Any, cast

import pytest
from pyroaring import BitMap64

from repro_pipeline.engine.config import load_config
from repro_pipeline.engine.load.parallel import (
    CopiedTable,
    LoadWorkerError,
    TableJob,
    _Copied,
    _error_of,
    _Finished,
    _gather,
    _Setup,
    _Started,
    _work,
    next_job,
)
from repro_pipeline.engine.load.progress import ProgressPacer, TableProgress
from repro_pipeline.engine.load.transfer import CopiedRows
from repro_pipeline.engine.secrets import Secret
from repro_pipeline.engine.source.catalog import Catalog, TableName
from repro_pipeline.engine.source.snapshot import SessionLimits, SourceSnapshot
from repro_pipeline.engine.subset.closure import SortedBitmap, TableRows
from repro_pipeline_tests.conftest import PROJECT_ROOT

_AT = datetime(2026, 12, 1, tzinfo=UTC)

CONFIG = PROJECT_ROOT / "config"


def test_a_worker_whose_main_process_ended_stops_waiting_for_tables() -> None:
    context = multiprocessing.get_context("spawn")
    ended = context.Process(target=int)
    ended.start()
    ended.join()
    pending: Queue[TableJob | None] = context.Queue()
    with pytest.raises(LoadWorkerError, match="the load's main process ended"):
        next_job(pending, ended)


def test_the_fork_server_is_started_with_the_loads_modules_to_import() -> None:
    """In a process of its own, where no load ran: the workers will not import them again."""
    started = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os\n"
            "from repro_pipeline.engine.load.parallel import start_worker_server\n"
            "from repro_pipeline_tests.engine.load.processes import command_line, fork_server_of\n"
            "start_worker_server()\n"
            "print(command_line(fork_server_of(os.getpid())))\n",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=PROJECT_ROOT,
        timeout=60,
    )
    assert "'repro_pipeline.engine.load.parallel'" in started.stdout


def test_a_worker_takes_the_next_table_or_the_end() -> None:
    context = multiprocessing.get_context("spawn")
    pending: Queue[TableJob | None] = context.Queue()
    pending.put(None)
    assert next_job(pending, multiprocessing.current_process()) is None


def test_a_bug_in_a_worker_is_reported_by_where_it_happened_never_by_its_message() -> None:
    """An exception that is no ReproError may quote a row's values: the main process gets its type and
    place only. Here the worker is given no catalog, so building the masks fails."""
    context = multiprocessing.get_context("spawn")
    pending: Queue[TableJob | None] = context.Queue()
    events: Queue[Any] = context.Queue()
    config = load_config(CONFIG / "mask-rules.yaml", CONFIG / "commercial-extensions.yaml")
    setup = _Setup(
        "postgresql://u:secret-password@127.0.0.1:1/db",
        "postgresql://u:secret-password@127.0.0.1:1/db",
        "127.0.0.1:1/db",
        "00000003-00000002-1",
        SessionLimits(),
        config,
        cast(Catalog, None),
        Secret("s" * 64),
        None,
        None,
    )
    _work(setup, pending, events)
    error = _error_of(events.get(timeout=10))
    assert isinstance(error, LoadWorkerError)
    assert str(error).startswith("a load worker failed with AttributeError at plan.py:")
    assert "NoneType" not in str(error) and "secret-password" not in str(error)


def test_a_whales_table_travels_to_its_worker_as_compact_keys() -> None:
    """What the load's main process sends a worker for a table of 700,000 keys: the closure's bitmap, a few
    hundred bytes here, not the batches' key arrays (about 5 MB of text for these keys)."""
    keys = SortedBitmap(BitMap64(range(1_000_000, 1_700_000)))
    job = TableJob(
        TableName("public", "invoice_line_items"),
        len(keys),
        "transform",
        (),
        TableRows(keys),
        451,
        20_000,
        (),
    )
    sent = pickle.dumps(job)
    assert len(sent) < 10_000
    assert pickle.loads(sent) == job


def test_a_table_read_in_segments_is_reported_as_one_table() -> None:
    """Its progress starts once, counts both segments' rows, and ends once, when the last segment is done,
    with the rows of both, the longer segment's time (they ran at once) and the later end."""
    table = TableName("public", "invoice_line_items")
    jobs = [
        TableJob(table, rows, "transform", (), TableRows(), 451, 200, (), segment, 2)
        for segment, rows in enumerate((100, 60))
    ]
    events: queue.Queue[Any] = queue.Queue()
    for event in (
        _Started(table, 0),
        _Copied(table, 0, 40),
        _Started(table, 1),
        _Copied(table, 1, 30),
        _Finished(table, 1, CopiedTable(CopiedRows(60, 60), 2.0, _AT + timedelta(seconds=3))),
        _Copied(table, 0, 80),
        _Finished(table, 0, CopiedTable(CopiedRows(100, 100), 3.0, _AT + timedelta(seconds=2))),
    ):
        events.put(event)
    seen: list[TableProgress] = []
    copied = _gather(
        cast(SourceSnapshot, None), jobs, [], cast("Queue[Any]", events), ProgressPacer(seen.append, 0.0)
    )
    assert copied == {table: CopiedTable(CopiedRows(160, 160), 3.0, _AT + timedelta(seconds=3))}
    reports = [(p.rows, p.total_rows, p.finished) for p in seen]
    # The pacer, at a pace of 0 s, also reports the running table after each event: the same line again.
    assert [report for i, report in enumerate(reports) if i == 0 or report != reports[i - 1]] == [
        (0, 160, False),
        (40, 160, False),
        (70, 160, False),
        (100, 160, False),
        (140, 160, False),
        (160, 160, True),
    ]
