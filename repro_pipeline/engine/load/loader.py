"""The masked load into a repro database: the schema's pre-data (by pg_dump), the rows, its post-data, then
the run's record: all in one target transaction with one worker, or the rows by worker processes at once
(``parallel``) between a committed pre-data and the post-data."""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
from psycopg.rows import TupleRow

from repro_pipeline.engine import dsn
from repro_pipeline.engine.load import existing_data, schema
from repro_pipeline.engine.load.autovacuum import HeldOff, hold_off_autovacuum, let_autovacuum_in
from repro_pipeline.engine.load.failures import without_values
from repro_pipeline.engine.load.parallel import LoadWorkers, started_workers, table_jobs
from repro_pipeline.engine.load.plan import SubsetPlan
from repro_pipeline.engine.load.progress import ProgressCallback, ProgressPacer, batches_with_rows, counted
from repro_pipeline.engine.load.schema_dump import (
    DumpTools,
    SchemaScripts,
    dump_schema,
    find_dump_tools,
    runnable,
)
from repro_pipeline.engine.load.target_fit import read_target_server, require_schema_fits
from repro_pipeline.engine.load.transfer import CopiedRows, NulledReference, copy_table
from repro_pipeline.engine.repro_databases import audit
from repro_pipeline.engine.repro_databases.manifest import RunRecord, TableRecord, write_manifest
from repro_pipeline.engine.source.catalog import TableName
from repro_pipeline.engine.source.snapshot import SourceSnapshot
from repro_pipeline.engine.subset.tenant import columns_to_null


@dataclass(frozen=True)
class ReplicatedSchema:
    """The source's schema as the load applies it, and the pg_dump that wrote it, which dumps the repro
    database to compare with it."""

    scripts: SchemaScripts
    tools: DumpTools


@dataclass(frozen=True)
class LoadReport:
    loaded_rows: dict[TableName, int]
    seconds: float
    table_seconds: dict[TableName, float]  # streaming and masking each table's rows
    table_finished_at: dict[TableName, datetime]  # each table's rows written
    # pg_dump and its pre-data section; the rows; the post-data section, sequences and materialized views
    phase_seconds: dict[str, float]
    schema: ReplicatedSchema  # the one applied, from the load's snapshot
    workers: int = 1  # the processes that copied the rows (1: the load's own connections)


def replicated_schema(snapshot: SourceSnapshot, plan: SubsetPlan, target_version: int) -> ReplicatedSchema:
    """pg_dump's scripts of the source's schema in the snapshot, limited to what the plan copies, by a pg_dump
    that suits the source and the target server (``server_version`` numbers, as 150004)."""
    tools = find_dump_tools(snapshot.conn.info.server_version // 10000, target_version // 10000)
    scripts = dump_schema(
        snapshot.conn,
        snapshot.dsn,
        tools,
        excluded_tables=plan.excluded_tables,
        all_indexes=plan.replicate_all_indexes,
    )
    return ReplicatedSchema(scripts, tools)


def load_repro(
    snapshot: SourceSnapshot,
    target_dsn: str,
    plan: SubsetPlan,
    *,
    run_id: str,
    started_at: datetime,
    batch_size: int,
    workers: LoadWorkers | None = None,
    on_progress: ProgressCallback | None = None,
    audit_log: bool = True,
    refill: bool = False,
) -> LoadReport:
    """Create and fill the repro database's tables. With one worker (``workers`` None, 1, or a tenant too
    small for more), all in one transaction, so on error nothing is left half done; with more, the tables
    (created by a committed pre-data) are filled by worker processes in their own transactions, and the
    caller drops the database on error. ``on_progress`` sees each table's progress at a steady pace, and
    its end, in this process. With ``audit_log``, the run's record is joined by its audit log: the run's start
    and each table's load.

    ``refill`` (``on_existing_data: truncate``): the tables exist already, defined as the source's (checked
    first); they are emptied and filled again in one transaction by one worker, their schema kept."""
    if refill:
        workers = None  # one transaction: a refused or failed refill leaves the old rows in place
    began = time.perf_counter()
    pacer = ProgressPacer(on_progress) if on_progress else None
    copied: dict[TableName, CopiedRows] = {}
    table_seconds: dict[TableName, float] = {}
    table_finished_at: dict[TableName, datetime] = {}
    worker_count = workers.for_rows(plan.closure.total_rows) if workers is not None else 1
    parallel = workers is not None and worker_count > 1
    jobs = (
        table_jobs(
            plan,
            batch_size,
            lambda name: _nulled_of(plan, name),
            lambda rows: workers.segments_for(rows, worker_count),
        )
        if workers is not None and parallel
        else []
    )
    with (
        (
            started_workers(snapshot, target_dsn, plan, jobs, workers)
            if workers is not None and jobs
            else nullcontext()
        ) as pool,
        dsn.connect(target_dsn, role="repro database") as target,
    ):
        cur = target.cursor()
        require_schema_fits(snapshot.conn, read_target_server(target))
        applied = replicated_schema(snapshot, plan, target.info.server_version)
        scripts = applied.scripts
        target_settings = {str(name) for (name,) in cur.execute("SELECT name FROM pg_settings")}
        aside = None
        if refill:
            existing_data.require_same_definitions(scripts, target_dsn, applied.tools)
            with without_values("emptying the load's tables"):
                aside = existing_data.empty_load_tables(target, plan.created_tables)
        else:
            with without_values("creating the schema (pg_dump's pre-data section)"):
                cur.execute(runnable(scripts.pre_data, target_settings))
        # Read while the source session is open (it ends after the rows). Sequences are not transactional:
        # this is where they stand now, at or past where they stood in the snapshot.
        with without_values("reading the source's sequence positions", source=snapshot.conn):
            positions = schema.source_positions(snapshot.conn, schema.sequences(target))
        rows_began = time.perf_counter()
        held_off: list[HeldOff] = []
        if parallel:
            with without_values("holding autovacuum off the tables until their post-data ends"):
                held_off = hold_off_autovacuum(target, plan.created_tables)
            target.commit()  # the workers' sessions see the tables only once they are committed
            done = pool.copy(snapshot, pacer) if pool else {}
            rows_ended = datetime.now(UTC)
            for name in plan.created_tables:
                copied[name] = done[name].rows if name in done else CopiedRows(0, 0)
                table_seconds[name] = done[name].seconds if name in done else 0.0
                table_finished_at[name] = done[name].finished_at if name in done else rows_ended
                if pacer and name not in done:
                    pacer.started(name, 0)
                    pacer.finished(name, 0)
        else:
            for name in plan.created_tables:
                copied[name], table_seconds[name] = _copy_here(
                    snapshot, target, plan, name, batch_size, pacer
                )
                table_finished_at[name] = datetime.now(UTC)
        # Every row is read: end the source transaction now, so the standby's snapshot is not held (and
        # not cut off by idle_in_transaction_session_timeout) while the target builds keys and indexes.
        snapshot.conn.rollback()
        post_data_began = time.perf_counter()
        if aside is not None:
            with without_values("adding the emptied tables' foreign keys again, enabling their triggers"):
                existing_data.put_back(target, aside)
        else:
            with without_values(
                "adding keys, constraints, indexes and triggers (pg_dump's post-data section)"
            ):
                cur.execute(runnable(scripts.post_data, target_settings))
        with without_values("letting autovacuum in again"):
            let_autovacuum_in(target, held_off)
        with without_values("setting sequence positions and refreshing materialized views"):
            for position in positions:
                cur.execute(schema.set_position(position))
            for (view,) in cur.execute(schema.MATERIALIZED_VIEWS).fetchall():
                cur.execute(schema.refresh(str(view)))
        post_data_ended = time.perf_counter()
        write_manifest(
            target,
            RunRecord(
                run_id=run_id,
                organization_id=plan.organization_id,
                config_hash=plan.config_hash,
                salt_fingerprint=plan.salt_fingerprint,
                source=snapshot.source,
                source_replay_lsn=snapshot.replay_lsn,
                snapshot_at=snapshot.snapshot_at,
                closure_passes=plan.closure.passes,
                started_at=started_at,
                tables=[
                    TableRecord(
                        table=name,
                        strategy=plan.mask_plan.for_table(name).strategy,
                        closure_rows=plan.closure.row_counts.get(name, 0),
                        source_rows=copied[name].read,
                        loaded_rows=copied[name].written,
                        column_actions={c.column: c.action for c in plan.mask_plan.for_table(name).columns},
                    )
                    for name in plan.created_tables
                ],
            ),
        )
        if audit_log:
            audit.create_audit_log(
                target,
                [
                    audit.run_started(run_id, started_at),
                    *(
                        audit.table_loaded(
                            run_id, table_finished_at[name], name, copied[name].written, table_seconds[name]
                        )
                        for name in sorted(plan.created_tables, key=table_finished_at.__getitem__)
                    ),
                ],
            )
    loaded = {name: rows.written for name, rows in copied.items()}
    return LoadReport(
        loaded_rows=loaded,
        seconds=time.perf_counter() - began,
        table_seconds=table_seconds,
        table_finished_at=table_finished_at,
        phase_seconds={
            "schema": rows_began - began,
            "rows": post_data_began - rows_began,
            "post-data": post_data_ended - post_data_began,
        },
        schema=applied,
        workers=len(pool.processes) if pool else 1,
    )


def _copy_here(
    snapshot: SourceSnapshot,
    target: psycopg.Connection[TupleRow],
    plan: SubsetPlan,
    name: TableName,
    batch_size: int,
    pacer: ProgressPacer | None,
) -> tuple[CopiedRows, float]:
    """One table's rows, copied on the load's own connections."""
    masking = plan.mask_plan.for_table(name)
    began = time.perf_counter()
    if pacer:
        pacer.started(name, plan.closure.row_counts.get(name, 0))
    batches = batches_with_rows(
        plan.closure.rows_of(name), masking.table, plan.organization_id, masking.batch_size or batch_size
    )
    with without_values(f"loading {name}", source=snapshot.conn):
        copied = (
            copy_table(
                snapshot.conn,
                target,
                masking,
                counted(batches, lambda rows: pacer.copied(name, rows) if pacer else None),
                _nulled_of(plan, name),
            )
            if masking.copies_rows
            else CopiedRows(0, 0)
        )
    if pacer:
        pacer.finished(name, copied.written)
    return copied, time.perf_counter() - began


def _nulled_of(plan: SubsetPlan, table: TableName) -> list[NulledReference]:
    return [
        NulledReference(fk, columns_to_null(plan.catalog, fk), values)
        for fk, values in plan.closure.nulled.items()
        if fk.child == table
    ]
