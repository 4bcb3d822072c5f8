"""The load by worker processes that import the load's exported snapshot of the real standby: the same
repro database as one connection makes, progress per table, and a failing worker that fails the load and
leaves no session on the standby."""

from __future__ import annotations

import multiprocessing
import os
import re
import secrets
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from repro_pipeline.embedded.stack import Stack
from repro_pipeline.embedded.synthetic import SourceSummary
from repro_pipeline.engine.config import ReproConfig, load_config
from repro_pipeline.engine.dsn import APPLICATION_NAME, with_database
from repro_pipeline.engine.errors import TargetError
from repro_pipeline.engine.load.loader import LoadReport, load_repro
from repro_pipeline.engine.load.parallel import LoadWorkerError, LoadWorkers, table_jobs
from repro_pipeline.engine.load.plan import SubsetPlan, plan_subset
from repro_pipeline.engine.load.progress import TableProgress
from repro_pipeline.engine.masking.plan import MaskPlan
from repro_pipeline.engine.repro_databases import audit
from repro_pipeline.engine.secrets import Secret
from repro_pipeline.engine.source.catalog import TableName
from repro_pipeline.engine.source.snapshot import open_source_snapshot
from repro_pipeline_tests.conftest import PROJECT_ROOT
from repro_pipeline_tests.engine.load.databases import storage_options
from repro_pipeline_tests.engine.load.processes import children, fork_server_of

CONFIG = PROJECT_ROOT / "config"
BATCH_SIZE = 200  # several batches per big table, so progress comes before a table's end


@pytest.fixture(scope="module")
def config() -> ReproConfig:
    return load_config(CONFIG / "mask-rules.yaml", CONFIG / "commercial-extensions.yaml")


@pytest.fixture(scope="module")
def salt() -> Secret:
    return Secret(secrets.token_hex(32))


@pytest.fixture
def empty_database(stack: Stack) -> Iterator[Callable[[], str]]:
    """Makes empty databases on the target server; drops them afterwards."""
    made: list[str] = []

    def make() -> str:
        name = f"parallel_test_{secrets.token_hex(4)}"
        with psycopg.connect(stack.target_admin_dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        made.append(name)
        return with_database(stack.target_admin_dsn, name)

    yield make
    with psycopg.connect(stack.target_admin_dsn, autocommit=True) as admin:
        for name in made:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def _load(
    stack: Stack,
    target_dsn: str,
    config: ReproConfig,
    salt: Secret,
    workers: int,
    on_progress: Callable[[TableProgress], None] | None = None,
    plan_change: Callable[[SubsetPlan], SubsetPlan] = lambda plan: plan,
    min_rows_each: int = 1,  # 451 is small: as many workers as asked for, whatever its size
    split_tables: bool = False,
) -> tuple[SubsetPlan, LoadReport]:
    with open_source_snapshot(stack.standby_dsn) as snapshot:
        plan = plan_change(plan_subset(snapshot, config, salt, 451))
        report = load_repro(
            snapshot,
            target_dsn,
            plan,
            run_id="parallel-test",
            started_at=datetime.now(UTC),
            batch_size=BATCH_SIZE,
            workers=LoadWorkers(workers, config, salt, min_rows_each, split_tables),
            on_progress=on_progress,
        )
    return plan, report


def _contents(target_dsn: str, tables: list[TableName]) -> dict[TableName, list[tuple[Any, ...]]]:
    with psycopg.connect(target_dsn) as conn:
        return {
            table: conn.execute(sql.SQL("SELECT * FROM {} ORDER BY 1").format(table.identifier)).fetchall()
            for table in tables
        }


def _standby_sessions(stack: Stack) -> int:
    """The standby's sessions of repro_pipeline, other than the one asking."""
    with psycopg.connect(stack.standby_dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND pid <> pg_backend_pid()",
            (APPLICATION_NAME,),
        ).fetchone()
    assert row is not None
    return int(row[0])


def _wait_for_no_standby_session(stack: Stack, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while (left := _standby_sessions(stack)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert left == 0, f"{left} session(s) of the load are left on the standby"


@pytest.mark.parametrize("split_tables", [False, True])
def test_two_workers_make_the_same_repro_database_as_one(
    stack: Stack,
    source: SourceSummary,
    config: ReproConfig,
    salt: Secret,
    empty_database: Any,
    split_tables: bool,
) -> None:
    """Split, each table of two rows or more is read in two segments, one by each worker at once."""
    one, two = empty_database(), empty_database()
    plan, alone = _load(stack, one, config, salt, workers=1)
    _, parallel = _load(stack, two, config, salt, workers=2, split_tables=split_tables)
    assert parallel.loaded_rows == alone.loaded_rows
    assert (alone.workers, parallel.workers) == (1, 2)
    assert sum(alone.loaded_rows.values()) == plan.closure.total_rows
    assert _contents(two, plan.created_tables) == _contents(one, plan.created_tables)
    _wait_for_no_standby_session(stack)


@pytest.mark.parametrize(("min_rows_each", "expected_workers"), [(1, 2), (1_000_000, 1)])
def test_workers_are_forked_from_the_server_started_before_the_closure(
    stack: Stack,
    source: SourceSummary,
    config: ReproConfig,
    salt: Secret,
    empty_database: Any,
    min_rows_each: int,
    expected_workers: int,
) -> None:
    """``start_server`` starts one fork server (this process's child); the load's workers are its children,
    not fresh interpreters of this process's, and none outlives the load (none for 451 too small for them)."""
    one, forked = empty_database(), empty_database()
    plan, _ = _load(stack, one, config, salt, workers=1)
    workers = LoadWorkers(2, config, salt, min_rows_each)
    workers.start_server()
    server = fork_server_of(os.getpid())
    workers_seen: set[int] = set()
    forked_by_server: set[int] = set()

    def record_workers(progress: TableProgress) -> None:
        workers_seen.update(
            child.pid
            for child in multiprocessing.active_children()
            if child.name.startswith("repro_pipeline load worker") and child.pid
        )
        forked_by_server.update(children(server))

    with open_source_snapshot(stack.standby_dsn) as snapshot:
        report = load_repro(
            snapshot,
            forked,
            plan_subset(snapshot, config, salt, 451),
            run_id="forked-test",
            started_at=datetime.now(UTC),
            batch_size=BATCH_SIZE,
            workers=workers,
            on_progress=record_workers,
        )
    assert report.workers == expected_workers
    assert len(workers_seen) == (expected_workers if expected_workers > 1 else 0)
    assert workers_seen <= forked_by_server
    assert fork_server_of(os.getpid()) == server  # one server for every load of the process
    assert not [c for c in multiprocessing.active_children() if c.name.startswith("repro_pipeline load")]
    assert _contents(forked, plan.created_tables) == _contents(one, plan.created_tables)
    _wait_for_no_standby_session(stack)


@pytest.mark.parametrize(("workers", "split_tables"), [(1, False), (2, False), (2, True)])
def test_progress_ends_each_table_with_the_rows_loaded(
    stack: Stack,
    source: SourceSummary,
    config: ReproConfig,
    salt: Secret,
    empty_database: Any,
    workers: int,
    split_tables: bool,
) -> None:
    """Split, a table's progress is its segments' rows together, and it ends once, when both are done."""
    seen: list[TableProgress] = []
    plan, report = _load(
        stack, empty_database(), config, salt, workers, on_progress=seen.append, split_tables=split_tables
    )
    finished = {progress.table: progress for progress in seen if progress.finished}
    assert {table: progress.rows for table, progress in finished.items()} == report.loaded_rows
    assert {table: progress.total_rows for table, progress in finished.items()} == {
        table: plan.closure.row_counts.get(table, 0) for table in plan.created_tables
    }
    assert len(seen) == len(finished) + sum(not progress.finished for progress in seen)
    for table, last in finished.items():  # the last report of a table is its end
        assert [p for p in seen if p.table == table][-1] is last
        rows = [p.rows for p in seen if p.table == table]
        assert rows == sorted(rows), f"{table}'s progress went back: {rows}"


def test_a_split_table_is_read_in_segments_holding_each_key_once(
    stack: Stack, source: SourceSummary, config: ReproConfig, salt: Secret
) -> None:
    with open_source_snapshot(stack.standby_dsn) as snapshot:
        plan = plan_subset(snapshot, config, salt, 451)
    jobs = table_jobs(plan, BATCH_SIZE, lambda name: [], lambda rows: 2 if rows >= 1_000 else 1)
    assert [job.total_rows for job in jobs] == sorted((job.total_rows for job in jobs), reverse=True)
    for table in plan.created_tables:
        parts = sorted((job for job in jobs if job.table == table), key=lambda job: job.segment)
        count = plan.closure.row_counts.get(table, 0)
        if not count:
            assert parts == []
            continue
        assert [(job.segment, job.segments) for job in parts] == (
            [(0, 2), (1, 2)] if count >= 1_000 else [(0, 1)]
        )
        keys = [key for job in parts for key in job.rows.keys]
        assert keys == list(plan.closure.keys.get(table, keys))
        assert sum(job.total_rows for job in parts) == count


def test_a_worker_killed_mid_load_fails_the_load_and_leaves_no_session_on_the_standby(
    stack: Stack, source: SourceSummary, config: ReproConfig, salt: Secret, empty_database: Any
) -> None:
    command_lines: list[str] = []

    def kill_a_worker(progress: TableProgress) -> None:
        for child in multiprocessing.active_children():
            if child.name.startswith("repro_pipeline load worker") and child.pid:
                command_lines.append(Path(f"/proc/{child.pid}/cmdline").read_bytes().decode())
                os.kill(child.pid, signal.SIGKILL)
                return

    with pytest.raises(TargetError, match=r"a load worker ended unexpectedly \(exit code -9\)"):
        _load(stack, empty_database(), config, salt, workers=2, on_progress=kill_a_worker)
    assert not [c for c in multiprocessing.active_children() if c.name.startswith("repro_pipeline load")]
    assert command_lines and stack.password not in command_lines[0]  # the DSNs went through a pipe
    _wait_for_no_standby_session(stack)


def test_a_worker_losing_its_target_session_fails_the_load_naming_the_table(
    stack: Stack, source: SourceSummary, config: ReproConfig, salt: Secret, empty_database: Any
) -> None:
    target_dsn = empty_database()

    def end_the_workers_target_sessions(progress: TableProgress) -> None:
        with psycopg.connect(target_dsn, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL"
            )

    with pytest.raises(TargetError) as failure:
        _load(stack, target_dsn, config, salt, workers=2, on_progress=end_the_workers_target_sessions)
    assert re.match(r"loading public\.\w+ failed: ", failure.value.problem)
    assert "connection" in failure.value.problem
    assert failure.value.remedy.startswith("the repro database was not handed off")
    _wait_for_no_standby_session(stack)


def test_workers_refuse_masks_other_than_the_config_gives(
    stack: Stack, source: SourceSummary, config: ReproConfig, salt: Secret, empty_database: Any
) -> None:
    """A worker builds the masks again from the config and salt: a plan whose masks were changed since
    (here every table copied as it is) is refused rather than loaded with other masks than the plan's."""

    def unmasked(plan: SubsetPlan) -> SubsetPlan:
        tables = {
            name: replace(masking, maskers={}, columns=()) for name, masking in plan.mask_plan.tables.items()
        }
        return replace(plan, mask_plan=MaskPlan(tables))

    with pytest.raises(
        LoadWorkerError, match=r"the masks a load worker built for public\.\w+ are not the plan's"
    ):
        _load(stack, empty_database(), config, salt, workers=2, plan_change=unmasked)
    _wait_for_no_standby_session(stack)


def test_workers_refuse_another_salt_than_the_plans(
    stack: Stack, source: SourceSummary, config: ReproConfig, salt: Secret, empty_database: Any
) -> None:
    with open_source_snapshot(stack.standby_dsn) as snapshot:
        plan = plan_subset(snapshot, config, salt, 451)
        with pytest.raises(ValueError, match="another config or salt than the plan's"):
            load_repro(
                snapshot,
                empty_database(),
                plan,
                run_id="parallel-test",
                started_at=datetime.now(UTC),
                batch_size=BATCH_SIZE,
                workers=LoadWorkers(2, config, Secret(secrets.token_hex(32)), min_rows_each=1),
            )


def test_autovacuum_is_held_off_the_tables_while_workers_write_them_and_let_in_after(
    stack: Stack, source: SourceSummary, config: ReproConfig, salt: Secret, empty_database: Any
) -> None:
    """A committed table autovacuum took up would hold the post-data's ALTER TABLE back until the server
    cancels it (``deadlock_timeout``): off while the workers write, the source's setting (none) after."""
    target_dsn = empty_database()
    during: dict[str, tuple[list[str] | None, list[str] | None]] = {}

    def read_options(progress: TableProgress) -> None:
        with psycopg.connect(target_dsn, autocommit=True) as conn:
            during.update(storage_options(conn))

    plan, _ = _load(stack, target_dsn, config, salt, workers=2, on_progress=read_options)
    loaded = {str(name) for name in plan.created_tables}
    assert loaded <= set(during)
    assert all(options and "autovacuum_enabled=false" in options for options, _ in during.values())
    with psycopg.connect(target_dsn, autocommit=True) as conn:
        after = storage_options(conn)
    with psycopg.connect(stack.standby_dsn, autocommit=True) as conn:
        assert after == {table: storage_options(conn)[table] for table in after}


def test_a_small_tenant_is_loaded_on_the_loads_own_connection(
    stack: Stack, source: SourceSummary, config: ReproConfig, salt: Secret, empty_database: Any
) -> None:
    """Starting a worker costs more than it saves below ``min_rows_each`` rows per worker."""
    workers_seen: list[int] = []

    def count_workers(progress: TableProgress) -> None:
        workers_seen.append(
            sum(c.name.startswith("repro_pipeline load worker") for c in multiprocessing.active_children())
        )

    plan, report = _load(
        stack, empty_database(), config, salt, workers=2, on_progress=count_workers, min_rows_each=50_000
    )
    assert plan.closure.total_rows < 2 * 50_000
    assert workers_seen and set(workers_seen) == {0}
    assert report.workers == 1
    assert sum(report.loaded_rows.values()) == plan.closure.total_rows


@pytest.mark.parametrize(
    ("count", "rows", "expected"), [(4, 0, 1), (4, 99_999, 1), (4, 100_000, 2), (4, 10**7, 4), (1, 10**7, 1)]
)
def test_workers_for_a_tenant_of_some_rows(
    config: ReproConfig, salt: Secret, count: int, rows: int, expected: int
) -> None:
    assert LoadWorkers(count, config, salt, min_rows_each=50_000).for_rows(rows) == expected


@pytest.mark.parametrize(("workers", "split_tables"), [(1, False), (2, True)])
def test_the_audit_log_has_the_start_then_each_table_as_it_ended(
    stack: Stack,
    source: SourceSummary,
    config: ReproConfig,
    salt: Secret,
    empty_database: Any,
    workers: int,
    split_tables: bool,
) -> None:
    """With workers too, each table's event is written at its end (a split table's: its last segment's)."""
    target = empty_database()
    plan, report = _load(stack, target, config, salt, workers, split_tables=split_tables)
    with psycopg.connect(target) as conn:
        events = conn.execute(
            f"SELECT run_id, event_at, event_type, table_name, rows FROM {audit.TABLE} ORDER BY event_id"
        ).fetchall()
    assert [event[2] for event in events] == ["run.started", *["table.loaded"] * len(plan.created_tables)]
    assert {event[0] for event in events} == {"parallel-test"}
    times = [event[1] for event in events]
    assert times == sorted(times)
    assert {TableName.parse(event[3]): (event[1], event[4]) for event in events[1:]} == {
        table: (report.table_finished_at[table], rows) for table, rows in report.loaded_rows.items()
    }
