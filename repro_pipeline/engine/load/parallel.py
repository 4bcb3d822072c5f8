"""The tables' rows read, masked and written by worker processes at once, all from the load's one snapshot.

The load's source transaction exports its snapshot (``pg_export_snapshot()``, which a hot standby allows) and
each worker imports it (``SET TRANSACTION SNAPSHOT``) in its own REPEATABLE READ READ ONLY session, so every
table is read as the closure saw it, whatever the primary wrote since. The exporting transaction ends once
every worker has imported it. Tables go biggest first to whichever worker is free (longest processing time
first); each is written in its worker's own target transaction, ``TRUNCATE`` then ``COPY ... FREEZE``, on
the tables the committed pre-data created. A worker gets a table as the closure's compact keys and builds each
batch's key array as it copies it. With ``split_tables``, a big table is read in segments of consecutive keys
by several workers at once, each segment written by plain ``COPY`` (others write the table meanwhile).

Workers are processes: the masks are Python, which threads would run on one core at a time. They are forked
from multiprocessing's fork server (the start method Python 3.14 makes Linux's default): a process started
once, before the first load needs it (``start_worker_server``), that imports the load's modules, so a worker
starts in milliseconds instead of the half second of CPU a fresh interpreter and its imports take, and is
forked from a process with no thread and no session of the load's. Each worker gets the DSNs, the config, the
salt and the plan's pseudonym key through a pipe of its own, which the fork server hands it unread (never a
command line, environment or log), and builds the masks again (they are closures, which do not pickle),
checked against the plan's. The first failure stops every worker: their sessions end with their processes, so
nothing is left running on the standby.
"""

from __future__ import annotations

import multiprocessing
import queue
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing import forkserver
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from pathlib import Path

import psycopg
from psycopg import sql

from repro_pipeline.engine import dsn, errors
from repro_pipeline.engine.config import ReproConfig
from repro_pipeline.engine.errors import ReproError, TargetError
from repro_pipeline.engine.load.failures import without_values
from repro_pipeline.engine.load.plan import SubsetPlan, mask_plan_of
from repro_pipeline.engine.load.progress import Batch, ProgressPacer, batches_with_rows, counted
from repro_pipeline.engine.load.transfer import CopiedRows, NulledReference, copy_table
from repro_pipeline.engine.masking.free_text import FreeTextDictionary
from repro_pipeline.engine.masking.plan import ColumnMasking
from repro_pipeline.engine.secrets import Secret
from repro_pipeline.engine.source.catalog import Catalog, Table, TableName
from repro_pipeline.engine.source.snapshot import (
    SessionLimits,
    SourceSnapshot,
    export_snapshot,
    import_snapshot,
    replay_conflict,
)
from repro_pipeline.engine.subset.closure import TableRows

_POLL_SECONDS = 0.2  # how often the main process looks at its workers while no event comes
_STOP_SECONDS = 5.0  # how long a terminated worker gets to end before it is killed
_PARENT_CHECK_SECONDS = 1.0  # how often a waiting worker looks whether the load's main process still runs


class LoadWorkerError(RuntimeError):
    """A load worker's own failure (a bug, not bad input), whose message quotes no row value."""


@dataclass(frozen=True)
class LoadWorkers:
    """How many processes copy tables at once, and what they need to build the plan's masks again."""

    count: int
    config: ReproConfig
    salt: Secret = field(repr=False)
    # A worker costs a process, two sessions and its masks built again: a tenant with fewer rows than this per
    # worker is loaded by fewer workers, down to the load's own connection.
    min_rows_each: int = 50_000
    # A table of at least twice ``min_rows_each`` rows read in segments of consecutive keys, by as many
    # workers at once, rather than by one worker while the others finish the smaller tables: on the bench's
    # whale the rows took 4.2-4.4 s instead of 4.7 s (its audit log was read by one worker for 2.7 s).
    split_tables: bool = True

    def for_rows(self, rows: int) -> int:
        """How many workers a load of ``rows`` rows gets."""
        return max(1, min(self.count, rows // self.min_rows_each))

    def start_server(self) -> None:
        """Start the process the workers are forked from, if the load may have any, without waiting for it: its
        imports then run while the caller computes the closure."""
        if self.count > 1:
            start_worker_server()

    def segments_for(self, table_rows: int, workers: int) -> int:
        """How many segments a table of ``table_rows`` rows is read in by ``workers`` workers."""
        if not self.split_tables:
            return 1
        return max(1, min(workers, table_rows // self.min_rows_each))


@dataclass(frozen=True)
class CopiedTable:
    rows: CopiedRows
    seconds: float  # reading, masking and writing its rows
    finished_at: datetime  # its rows committed


@dataclass(frozen=True)
class TableJob:
    table: TableName
    total_rows: int  # the closure's, in this job's segment
    strategy: str
    columns: tuple[ColumnMasking, ...]  # the plan's masks, which the worker's must equal
    # The closure's rows as compact keys: the worker builds each batch's condition (its key array) when it
    # copies it, so neither process holds a table's key arrays at once.
    rows: TableRows
    organization_id: int
    batch_size: int
    nulled: tuple[NulledReference, ...]
    segment: int = 0
    # More than one: several workers write the table at once, each in its own transaction, so none may
    # truncate it, nor write its rows frozen (which needs the table truncated in the writing transaction).
    segments: int = 1

    def batches(self, table: Table) -> Iterator[tuple[Batch, int]]:
        return batches_with_rows(self.rows, table, self.organization_id, self.batch_size)


@dataclass(frozen=True)
class _Setup:
    source_dsn: str = field(repr=False)
    target_dsn: str = field(repr=False)
    source: str  # host:port/dbname, for messages
    snapshot_id: str
    limits: SessionLimits
    config: ReproConfig
    catalog: Catalog
    salt: Secret = field(repr=False)
    pseudonym_key: Secret | None = field(repr=False)  # the plan's, not resolved again by each worker
    free_text: FreeTextDictionary | None = field(repr=False)  # the plan's ner_mask dictionary, not read again


@dataclass(frozen=True)
class _Imported:
    pass


@dataclass(frozen=True)
class _Started:
    table: TableName
    segment: int


@dataclass(frozen=True)
class _Copied:
    table: TableName
    segment: int
    rows: int


@dataclass(frozen=True)
class _Finished:
    table: TableName
    segment: int
    copied: CopiedTable


@dataclass(frozen=True)
class _Failed:
    error: str  # the name of a ReproError class, LoadWorkerError, or "" for another exception
    problem: str
    remedy: str


_Event = _Imported | _Started | _Copied | _Finished | _Failed


def table_jobs(
    plan: SubsetPlan,
    batch_size: int,
    nulled: Callable[[TableName], list[NulledReference]],
    segments_for: Callable[[int], int] = lambda rows: 1,
) -> list[TableJob]:
    """One job per table with rows to copy, or per segment of a table ``segments_for`` its rows splits, the
    biggest first."""
    jobs: list[TableJob] = []
    for name in plan.created_tables:
        masking = plan.mask_plan.for_table(name)
        total = plan.closure.row_counts.get(name, 0)
        if not (masking.copies_rows and total):
            continue
        segments = plan.closure.rows_of(name).segments(segments_for(total))
        jobs.extend(
            TableJob(
                name,
                rows.count,
                masking.strategy,
                masking.columns,
                rows,
                plan.organization_id,
                masking.batch_size or batch_size,
                tuple(nulled(name)),
                segment,
                len(segments),
            )
            for segment, rows in enumerate(segments)
        )
    return sorted(jobs, key=lambda job: job.total_rows, reverse=True)


def start_worker_server() -> None:
    """Start the fork server the load's workers are forked from, with the load's modules imported, unless it
    runs already; return at once (it imports them in the background)."""
    _worker_context()
    forkserver.ensure_running()


def _worker_context() -> multiprocessing.context.ForkServerContext:
    context = multiprocessing.get_context("forkserver")
    # Takes effect when the server starts: the first load of this process, or a call before it (a server
    # another part of the process started first keeps its own list: its workers then import these). The
    # main module too, when it is a script (a console script's imports), which each worker would run again.
    context.set_forkserver_preload(["__main__", __name__])
    return context


@dataclass
class WorkerPool:
    """The load's workers: started by ``copy`` (once), stopped when ``started_workers`` is left."""

    jobs: list[TableJob]
    count: int
    setup: _Setup = field(repr=False)
    pending: Queue[TableJob | None] = field(repr=False)
    events: Queue[_Event] = field(repr=False)
    processes: list[BaseProcess] = field(default_factory=list)

    def copy(self, snapshot: SourceSnapshot, pacer: ProgressPacer | None) -> dict[TableName, CopiedTable]:
        """Start the workers and copy every job, once the tables exist for the workers' sessions (the
        pre-data is committed); the snapshot's own transaction ends once every worker has imported it."""
        if self.processes:
            raise RuntimeError("the load's workers are started once")
        context = _worker_context()
        for number in range(self.count):
            process = context.Process(
                target=_work,
                args=(self.setup, self.pending, self.events),
                name=f"repro_pipeline load worker {number}",
            )
            self.processes.append(process)  # stopped on leaving even if its start is interrupted
            process.start()
        for job in [*self.jobs, *[None] * self.count]:
            self.pending.put(job)
        return _gather(snapshot, self.jobs, self.processes, self.events, pacer)


@contextmanager
def started_workers(
    snapshot: SourceSnapshot, target_dsn: str, plan: SubsetPlan, jobs: list[TableJob], workers: LoadWorkers
) -> Iterator[WorkerPool]:
    """As many workers as the tenant's rows warrant (``LoadWorkers.for_rows``) and no more than the jobs,
    to start when the rows are copied (``WorkerPool.copy``), from a fork server started now if it is not yet
    (its imports run while the schema is created); stopped on leaving."""
    if (
        workers.config.fingerprint() != plan.config_hash
        or workers.salt.fingerprint() != plan.salt_fingerprint
    ):
        raise ValueError("the load workers were given another config or salt than the plan's")
    start_worker_server()
    setup = _Setup(
        snapshot.dsn,
        target_dsn,
        snapshot.source,
        export_snapshot(snapshot.conn),
        snapshot.limits,
        workers.config,
        plan.catalog,
        workers.salt,
        plan.mask_plan.pseudonym_key,
        plan.mask_plan.free_text,
    )
    context = _worker_context()
    pending: Queue[TableJob | None] = context.Queue()
    events: Queue[_Event] = context.Queue()
    pool = WorkerPool(jobs, min(workers.for_rows(plan.closure.total_rows), len(jobs)), setup, pending, events)
    try:
        yield pool
    finally:
        _stop(pool.processes)  # the first failure stops every worker
        pending.cancel_join_thread()
        pending.close()
        events.close()


def _gather(
    snapshot: SourceSnapshot,
    jobs: list[TableJob],
    processes: Sequence[BaseProcess],
    events: Queue[_Event],
    pacer: ProgressPacer | None,
) -> dict[TableName, CopiedTable]:
    totals: Counter[TableName] = Counter()
    for job in jobs:
        totals[job.table] += job.total_rows
    segments = Counter(job.table for job in jobs)
    started: set[TableName] = set()
    rows_so_far: dict[TableName, dict[int, int]] = defaultdict(dict)
    finished: dict[TableName, list[CopiedTable]] = defaultdict(list)
    copied: dict[TableName, CopiedTable] = {}
    imported = 0
    while len(copied) < len(totals):
        try:
            event = events.get(timeout=_POLL_SECONDS)
        except queue.Empty:
            _require_running(processes, events)
            event = None
        if isinstance(event, _Failed):
            raise _error_of(event)
        if isinstance(event, _Imported):
            imported += 1
            if imported == len(processes):
                # Every worker holds the snapshot now: the exporting transaction need not sit idle on the
                # standby (and be cut off by idle_in_transaction_session_timeout) until the rows are in.
                snapshot.conn.rollback()
        elif isinstance(event, _Finished):
            finished[event.table].append(event.copied)
            rows_so_far[event.table][event.segment] = event.copied.rows.written
            if len(finished[event.table]) == segments[event.table]:
                copied[event.table] = _whole_table(finished[event.table])
                if pacer:
                    pacer.finished(event.table, copied[event.table].rows.written)
            elif pacer:
                pacer.copied(event.table, sum(rows_so_far[event.table].values()))
        elif isinstance(event, _Started) and event.table not in started:
            started.add(event.table)
            if pacer:
                pacer.started(event.table, totals[event.table])
        elif isinstance(event, _Copied):
            rows_so_far[event.table][event.segment] = event.rows
            if pacer:
                pacer.copied(event.table, sum(rows_so_far[event.table].values()))
        if pacer:
            pacer.tick()
    return copied


def _whole_table(segments: list[CopiedTable]) -> CopiedTable:
    """A table's copy from its segments' (the time: the longest segment's, as they ran at once; its end:
    the last segment's)."""
    return CopiedTable(
        CopiedRows(sum(part.rows.read for part in segments), sum(part.rows.written for part in segments)),
        max(part.seconds for part in segments),
        max(part.finished_at for part in segments),
    )


def _require_running(processes: Sequence[BaseProcess], events: Queue[_Event]) -> None:
    """A worker that ended without reporting a failure was killed (by the system, out of memory, or a
    user): the load cannot finish. (An ended worker's events are all in the queue already.)"""
    for process in processes:
        if process.exitcode not in (None, 0):
            raise TargetError(
                f"a load worker ended unexpectedly (exit code {process.exitcode}) before every table was "
                "loaded",
                "the repro database was not handed off; launch again (a worker the system killed may have "
                "run out of memory: give the load fewer workers or more memory)",
            )
    if all(process.exitcode == 0 for process in processes) and events.empty():
        raise TargetError(
            "the load workers ended before every table was loaded",
            "the repro database was not handed off; launch again",
        )


def _error_of(failure: _Failed) -> Exception:
    kind = getattr(errors, failure.error, None) if failure.error else None
    if isinstance(kind, type) and issubclass(kind, ReproError):
        return kind(failure.problem, failure.remedy)
    return LoadWorkerError(failure.problem)


def _stop(processes: Sequence[BaseProcess]) -> None:
    """End every worker still running: its source and target sessions end with it."""
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        if process.pid is None:
            continue
        process.join(_STOP_SECONDS)
        if process.is_alive():
            process.kill()
            process.join()


def _work(setup: _Setup, pending: Queue[TableJob | None], events: Queue[_Event]) -> None:
    """A worker process: copy the jobs it takes until there are none, or report its first failure."""
    try:
        _copy_jobs(setup, pending, events)
    except ReproError as exc:
        events.put(_Failed(type(exc).__name__, exc.problem, exc.remedy))
    except LoadWorkerError as exc:
        events.put(_Failed(LoadWorkerError.__name__, str(exc), ""))
    except psycopg.errors.SerializationFailure as exc:
        conflict = replay_conflict(setup.source, exc)
        events.put(_Failed(type(conflict).__name__, conflict.problem, conflict.remedy))
    except BaseException as exc:  # a bug: its message may quote a row's values, so only where it happened
        where = traceback.extract_tb(exc.__traceback__)[-1]
        events.put(
            _Failed(
                "",
                f"a load worker failed with {type(exc).__name__} at {Path(where.filename).name}:"
                f"{where.lineno} in {where.name} (its message is not shown: it may quote row values)",
                "",
            )
        )


def next_job(pending: Queue[TableJob | None], parent: BaseProcess | None) -> TableJob | None:
    """The next table to copy, or None when there is none; a worker whose load's main process is gone (a
    killed run) ends rather than wait for ever."""
    while True:
        try:
            return pending.get(timeout=_PARENT_CHECK_SECONDS)
        except queue.Empty:
            if parent is not None and not parent.is_alive():
                raise LoadWorkerError("the load's main process ended") from None


def _copy_jobs(setup: _Setup, pending: Queue[TableJob | None], events: Queue[_Event]) -> None:
    mask_plan = mask_plan_of(setup.config, setup.catalog, setup.salt, setup.pseudonym_key, setup.free_text)
    parent = multiprocessing.parent_process()
    with (
        setup.limits.connect(setup.source_dsn, role="standby") as source,
        dsn.connect(setup.target_dsn, role="repro database") as target,
    ):
        with without_values("importing the load's snapshot", source=source):
            import_snapshot(source, setup.snapshot_id)
        events.put(_Imported())
        while (job := next_job(pending, parent)) is not None:
            masking = mask_plan.for_table(job.table)
            if (masking.strategy, masking.columns) != (job.strategy, job.columns):
                raise LoadWorkerError(f"the masks a load worker built for {job.table} are not the plan's")
            began = time.perf_counter()

            def copied(rows: int, table: TableName = job.table, segment: int = job.segment) -> None:
                if parent is not None and not parent.is_alive():
                    raise LoadWorkerError("the load's main process ended")
                events.put(_Copied(table, segment, rows))

            whole = job.segments == 1
            with without_values(f"loading {job.table}", source=source):
                if whole and not masking.table.partition_by:  # so COPY may write the rows frozen, here
                    target.execute(sql.SQL("TRUNCATE {}").format(masking.table.name.identifier))
                events.put(_Started(job.table, job.segment))
                rows = copy_table(
                    source,
                    target,
                    masking,
                    counted(job.batches(masking.table), copied),
                    job.nulled,
                    freeze=whole,
                )
                target.commit()
            events.put(
                _Finished(
                    job.table, job.segment, CopiedTable(rows, time.perf_counter() - began, datetime.now(UTC))
                )
            )
