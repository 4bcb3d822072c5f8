"""The four checks of a loaded repro database, each a verdict with what it found: run by the Dagster asset
checks and by ``repro-pipeline verify`` alike.

They compare the target with one snapshot of the source and the closure computed in it. In a run, that is
the load's own snapshot: the originals are read before the load releases it (``read_originals``), so a row
changed on the source since is compared as it was copied, and the schema is compared with the one the load
applied.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import TupleRow

from repro_pipeline.engine.config import ReproConfig
from repro_pipeline.engine.load.loader import ReplicatedSchema
from repro_pipeline.engine.load.plan import SubsetPlan
from repro_pipeline.engine.load.schema_dump import dump_database_schema
from repro_pipeline.engine.repro_databases.manifest import (
    REQUIRED_CHECKS,
    planned_row_counts,
    recorded_organization,
)
from repro_pipeline.engine.source.catalog import read_catalog
from repro_pipeline.engine.source.snapshot import SourceSnapshot, snapshot_session
from repro_pipeline.engine.verify.counts import count_rows
from repro_pipeline.engine.verify.leaks import Originals, find_leaks, original_values, sensitive_fields
from repro_pipeline.engine.verify.orphans import count_orphans, expected_foreign_keys
from repro_pipeline.engine.verify.schema import compare_schemas

# recorded under these names
ZERO_FK_ORPHANS, ROW_COUNTS_MATCH_CLOSURE, NO_ORIGINAL_PII, SCHEMA_MATCHES_SOURCE = REQUIRED_CHECKS
_ORIGINALS_BATCH_ROWS = 10_000


@dataclass(frozen=True)
class Verdict:
    check: str
    passed: bool
    found: dict[str, Any] = field(default_factory=dict)  # JSON-ready: counts and names, never a value


def read_originals(source: psycopg.Connection[TupleRow], plan: SubsetPlan, config: ReproConfig) -> Originals:
    """What ``no_original_pii`` searches for: read in the plan's snapshot, before the load releases it."""
    return original_values(
        source,
        plan.catalog,
        sensitive_fields(config, plan.catalog),
        lambda table: plan.closure.row_conditions(table, plan.organization_id, _ORIGINALS_BATCH_ROWS),
    )


@contextmanager
def originals_read_meanwhile(
    snapshot: SourceSnapshot, plan: SubsetPlan, config: ReproConfig
) -> Iterator[Future[Originals]]:
    """``read_originals`` in a session of its own on ``snapshot``, in a thread, while the caller goes on (the
    load): its Python work takes the time the load leaves a core idle (its schema, its last big table), not
    the time before the load. Leaving waits for the read; its error is raised by the future's ``result``."""
    with snapshot_session(snapshot) as session, ThreadPoolExecutor(1, "originals") as reader:
        yield reader.submit(_read_then_end, session, plan, config)


def _read_then_end(session: psycopg.Connection[TupleRow], plan: SubsetPlan, config: ReproConfig) -> Originals:
    """The originals, then the session's transaction ended: idle until the load ends, the standby would cut
    it off (``idle_in_transaction_session_timeout``) and hold its snapshot meanwhile."""
    try:
        return read_originals(session, plan, config)
    finally:
        session.rollback()


def verify_repro(
    plan: SubsetPlan,
    originals: Originals,
    schema: ReplicatedSchema,
    target: psycopg.Connection[TupleRow],
    target_dsn: str,
    scan_session: Callable[[], psycopg.Connection[TupleRow]],
) -> tuple[Verdict, Verdict, Verdict, Verdict]:
    """The four verdicts on ``target`` (connected to ``target_dsn``, which pg_dump reads), against the plan,
    the originals and the schema read in its snapshot. The leak scan, the longest check, runs in a thread in
    a session of its own (``scan_session``: another like ``target``) while the others run here."""
    with ThreadPoolExecutor(1, "leak-scan") as scanner:
        leaks = scanner.submit(_leak_scan, originals, scan_session)
        orphans = zero_fk_orphans(plan, target)
        counts = row_counts_match_closure(target)
        return orphans, counts, leaks.result(), schema_matches_source(schema, target_dsn)


def _leak_scan(originals: Originals, session: Callable[[], psycopg.Connection[TupleRow]]) -> Verdict:
    with session() as target:
        return no_original_pii(originals, target)


def zero_fk_orphans(plan: SubsetPlan, target: psycopg.Connection[TupleRow]) -> Verdict:
    """Every FK of the source between copied tables is on the target, and no row points at a missing parent
    but those whose reference has no parent on the source either (which the closure found so). A value at the
    JSON path of a reference that is no key of the referenced type points nowhere: counted, not failed on."""
    expected = expected_foreign_keys(plan.catalog, read_catalog(target))
    results = count_orphans(target, (*expected.present, *expected.missing), plan.closure.dangling)
    failing = {str(result.foreign_key): result.orphans for result in results if result.orphans}
    dangling = {str(r.foreign_key): r.dangling_on_source for r in results if r.dangling_on_source}
    not_fitting = {str(r.foreign_key): r.not_fitting_the_key for r in results if r.foreign_key.json_path}
    return Verdict(
        ZERO_FK_ORPHANS,
        passed=not failing and not expected.missing,
        found={
            "foreign_keys_checked": len(results),
            "orphans": sum(failing.values()),
            "failing_foreign_keys": failing,
            "missing_foreign_keys": [str(fk) for fk in expected.missing],
            "dangling_on_source": dangling,
            "json_values_not_fitting_their_key": not_fitting,
        },
    )


def row_counts_match_closure(target: psycopg.Connection[TupleRow]) -> Verdict:
    """Each table holds exactly the rows the source server sent for it in the load's snapshot (COPY's own
    count, recorded by the load), and that count is the closure's too."""
    recorded_organization(target)  # a database without repro_pipeline's record has no plan to compare with
    planned = planned_row_counts(target)
    actual = count_rows(target, sorted(planned))
    mismatches = {
        str(table): {"closure": rows.closure, "source": rows.source, "target": actual.get(table)}
        for table, rows in sorted(planned.items())
        if not rows.closure == rows.source == actual.get(table)
    }
    return Verdict(
        ROW_COUNTS_MATCH_CLOSURE,
        passed=not mismatches and bool(planned),
        found={"tables_checked": len(planned), "mismatches": mismatches},
    )


def no_original_pii(originals: Originals, target: psycopg.Connection[TupleRow]) -> Verdict:
    """No original value of a masked column or JSON path appears anywhere in the target (a one-word original
    found in other text is reported, not failed on), and no masked row still holds its own original."""
    scan = find_leaks(target, read_catalog(target), originals)
    return Verdict(
        NO_ORIGINAL_PII,
        passed=not scan.leaks,
        found={
            "original_values_checked": originals.searched,
            "originals_not_searched": dict(originals.not_searched),
            "regex_masks_that_masked_nothing": originals.masked_nothing,
            "leaking_columns": dict(scan.leaks),
            "one_word_originals_found": dict(scan.common_words),
            "rows_masked_to_their_original_by_chance": dict(scan.kept_by_chance),
        },
    )


def schema_matches_source(schema: ReplicatedSchema, target_dsn: str) -> Verdict:
    """The target's schema, dumped by the pg_dump that wrote the source's, is the source's as the load applied
    it (what the repro leaves out is no difference), line for line apart from comments."""
    comparison = compare_schemas(schema.scripts, dump_database_schema(target_dsn, schema.tools))
    return Verdict(
        SCHEMA_MATCHES_SOURCE,
        passed=comparison.differing_lines == 0 and comparison.lines_compared > 0,
        found={
            "pg_dump_version": schema.tools.major,
            "lines_compared": comparison.lines_compared,
            "differing_lines": comparison.differing_lines,
            "diff": comparison.diff,
        },
    )
