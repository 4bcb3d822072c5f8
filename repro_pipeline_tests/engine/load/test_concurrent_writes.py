"""The repro database is one snapshot of the standby, even while the primary keeps writing the tenant.

A writer thread on the primary inserts and deletes invoices (with their line items) and payment methods of
the tenant while ``plan_subset`` and ``load_repro`` read the standby (on one connection, and by two workers
that import the load's exported snapshot), and an observer samples how far the
standby has replayed. The repro database must have no orphan and hold exactly the rows the snapshot held,
although the standby applied some of those writes before the load ended.

The tenant is a copy of organization 451 made for this module (new ids), deleted afterwards: other modules
assert exact facts about 451 itself.
"""

from __future__ import annotations

import random
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

import psycopg
import pytest
from psycopg import sql

from repro_pipeline.embedded.stack import Stack, wait_for_standby_replay
from repro_pipeline.embedded.synthetic import SourceSummary
from repro_pipeline.engine.config import load_config
from repro_pipeline.engine.dsn import with_database
from repro_pipeline.engine.load.loader import LoadReport, load_repro
from repro_pipeline.engine.load.parallel import LoadWorkers
from repro_pipeline.engine.load.plan import SubsetPlan, plan_subset
from repro_pipeline.engine.secrets import Secret
from repro_pipeline.engine.source.catalog import ForeignKey, TableName, read_catalog
from repro_pipeline.engine.source.snapshot import open_source_snapshot
from repro_pipeline.engine.verify.orphans import count_orphans, expected_foreign_keys
from repro_pipeline_tests.conftest import PROJECT_ROOT

CONFIG = PROJECT_ROOT / "config"
COPIED_ORGANIZATION = 451
BATCH_SIZE = 5  # many COPY batches per table, so the load lasts long enough for the writer to act
MAX_WRITES = 300
WRITE_PAUSE = 0.005  # seconds between the writer's transactions

# How the tenant copy is made: each table's rows of 451, with new ids, under the copied parent rows.
# (table, column naming the parent row, parent table, the other columns, copied as they are)
COPY_ORDER = (
    ("users", "organization_id", "organizations", "email, full_name, role"),
    ("subscriptions", "organization_id", "organizations", "plan_code, status"),
    ("invoices", "subscription_id", "subscriptions", "issued_at, total_cents, currency"),
    ("invoice_line_items", "invoice_id", "invoices", "sku, quantity, unit_cents"),
    ("payment_methods", "user_id", "users", "last_four, provider_token"),
    ("audit_events", "organization_id", "organizations", "occurred_at, payload"),
)

# The tenant's rows of the tables the writer changes, by id (the same queries on source and target).
TENANT_IDS = {
    "invoices": """
        SELECT i.id FROM public.invoices i JOIN public.subscriptions s ON s.id = i.subscription_id
        WHERE s.organization_id = %s""",
    "invoice_line_items": """
        SELECT li.id FROM public.invoice_line_items li JOIN public.invoices i ON i.id = li.invoice_id
        JOIN public.subscriptions s ON s.id = i.subscription_id WHERE s.organization_id = %s""",
    "payment_methods": """
        SELECT pm.id FROM public.payment_methods pm JOIN public.users u ON u.id = pm.user_id
        WHERE u.organization_id = %s""",
}


def _tenant_ids(conn: psycopg.Connection[Any], organization_id: int) -> dict[str, set[int]]:
    return {
        table: {row[0] for row in conn.execute(query, (organization_id,))}
        for table, query in TENANT_IDS.items()
    }


def _all_ids(conn: psycopg.Connection[Any], table: str) -> set[int]:
    query = sql.SQL("SELECT id FROM {}").format(sql.Identifier("public", table))
    return {row[0] for row in conn.execute(query)}


def _lsn(text: str) -> int:
    high, low = text.split("/")
    return (int(high, 16) << 32) + int(low, 16)


@pytest.fixture(scope="module")
def tenant(stack: Stack, source: SourceSummary) -> Iterator[int]:
    """A new organization holding a copy of 451's rows, on the primary and replayed on the standby."""
    with psycopg.connect(stack.primary_dsn, autocommit=True) as conn, conn.transaction():
        row = conn.execute(
            "INSERT INTO organizations (tenant_slug, legal_name, created_at) "
            "SELECT 'concurrent-writes-' || %s, legal_name || ' (copy)', created_at FROM organizations "
            "WHERE id = %s RETURNING id",
            (secrets.token_hex(4), COPIED_ORGANIZATION),
        ).fetchone()
        assert row is not None
        organization_id = int(row[0])
        conn.execute(
            "CREATE TEMP TABLE organizations_map ON COMMIT DROP AS SELECT %s::bigint AS old_id, %s::bigint AS new_id",
            (COPIED_ORGANIZATION, organization_id),
        )
        for table, parent_column, parent, columns in COPY_ORDER:
            conn.execute(
                f"CREATE TEMP TABLE {table}_map ON COMMIT DROP AS "
                f"SELECT c.id AS old_id, nextval(pg_get_serial_sequence('public.{table}', 'id')) AS new_id "
                f"FROM public.{table} c JOIN {parent}_map p ON p.old_id = c.{parent_column}"
            )
            conn.execute(
                f"INSERT INTO public.{table} (id, {parent_column}, {columns}) OVERRIDING SYSTEM VALUE "
                f"SELECT m.new_id, p.new_id, {columns} FROM public.{table} c "
                f"JOIN {table}_map m ON m.old_id = c.id JOIN {parent}_map p ON p.old_id = c.{parent_column}"
            )
    wait_for_standby_replay(stack, timeout=30)
    try:
        yield organization_id
    finally:
        with psycopg.connect(stack.primary_dsn, autocommit=True) as conn, conn.transaction():
            conn.execute(
                "DELETE FROM invoice_line_items WHERE invoice_id IN (SELECT i.id FROM invoices i "
                "JOIN subscriptions s ON s.id = i.subscription_id WHERE s.organization_id = %s)",
                (organization_id,),
            )
            conn.execute(
                "DELETE FROM invoices WHERE subscription_id IN "
                "(SELECT id FROM subscriptions WHERE organization_id = %s)",
                (organization_id,),
            )
            conn.execute(
                "DELETE FROM payment_methods WHERE user_id IN (SELECT id FROM users WHERE organization_id = %s)",
                (organization_id,),
            )
            for table in ("audit_events", "subscriptions", "users"):
                conn.execute(f"DELETE FROM {table} WHERE organization_id = %s", (organization_id,))
            conn.execute("DELETE FROM organizations WHERE id = %s", (organization_id,))
        # The copy's rows were the tables' last pages, and its temporary tables the catalogs' (pg_class,
        # pg_depend...): vacuumed now, while no test reads the standby, their truncation (an ACCESS EXCLUSIVE
        # lock the standby replays) cannot cancel a later test's pg_dump there, as autovacuum's did a minute
        # later ("conflict with recovery: User was holding a relation lock for too long").
        with psycopg.connect(stack.primary_dsn, autocommit=True) as conn:
            conn.execute("VACUUM")
        wait_for_standby_replay(stack, timeout=30)


@dataclass(frozen=True)
class Commit:
    """One committed transaction of the writer. Times are ``time.monotonic()`` on this machine."""

    action: str  # "insert invoice", "delete invoice", "insert payment method", "delete payment method"
    invoice_id: int | None
    line_item_ids: tuple[int, ...]
    payment_method_id: int | None
    began: float  # before the transaction's first statement was sent
    committed: float  # after COMMIT returned
    lsn: int  # the primary's WAL position after COMMIT: a standby replayed this far has the commit


class _Background(threading.Thread):
    """A thread that runs ``work`` until stopped; its exception is raised again when it is joined."""

    def __init__(self, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.stopping = threading.Event()
        self.error: BaseException | None = None

    def work(self) -> None:
        raise NotImplementedError

    def run(self) -> None:
        try:
            self.work()
        except BaseException as exc:
            self.error = exc

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stopping.set()
        self.join(timeout=30)
        assert not self.is_alive(), f"{self.name} did not stop"
        if self.error is not None:
            raise self.error


class Writer(_Background):
    """Autocommit transactions on the primary that add and remove rows of the tenant, in rotation."""

    ACTIONS = ("insert invoice", "delete invoice", "insert payment method", "delete payment method")

    def __init__(self, primary_dsn: str, organization_id: int) -> None:
        super().__init__("writer")
        self.dsn = primary_dsn
        self.organization_id = organization_id
        self.commits: list[Commit] = []
        self.random = random.Random(451)

    def work(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            org = (self.organization_id,)
            subscriptions = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM subscriptions WHERE organization_id = %s ORDER BY id", org
                )
            ]
            users = [
                r[0] for r in conn.execute("SELECT id FROM users WHERE organization_id = %s ORDER BY id", org)
            ]
            # Only rows that existed before the writer started are deleted, so no row is both added and
            # removed by it: each commit has one visible effect to look for.
            ids = _tenant_ids(conn, self.organization_id)
            invoices = sorted(ids["invoices"])
            payment_methods = sorted(ids["payment_methods"])
            self.random.shuffle(invoices)
            self.random.shuffle(payment_methods)
            for n in range(MAX_WRITES):
                if self.stopping.is_set():
                    return
                action = self.ACTIONS[n % len(self.ACTIONS)]
                if action == "delete payment method" and not payment_methods:
                    action = "insert payment method"
                began = time.monotonic()
                with conn.transaction():
                    invoice_id, line_items, payment_method_id = self._write(
                        conn, action, subscriptions, users, invoices, payment_methods
                    )
                committed = time.monotonic()
                row = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
                assert row is not None
                self.commits.append(
                    Commit(action, invoice_id, line_items, payment_method_id, began, committed, _lsn(row[0]))
                )
                time.sleep(WRITE_PAUSE)

    def _write(
        self,
        conn: psycopg.Connection[Any],
        action: str,
        subscriptions: list[int],
        users: list[int],
        invoices: list[int],
        payment_methods: list[int],
    ) -> tuple[int | None, tuple[int, ...], int | None]:
        if action == "insert invoice":
            row = conn.execute(
                "INSERT INTO invoices (subscription_id, issued_at, total_cents) VALUES (%s, now(), 300) RETURNING id",
                (self.random.choice(subscriptions),),
            ).fetchone()
            assert row is not None
            line_items = conn.execute(
                "INSERT INTO invoice_line_items (invoice_id, sku, quantity, unit_cents) "
                "SELECT %s, 'concurrent-write', q, 100 FROM generate_series(1, 2) q RETURNING id",
                (row[0],),
            ).fetchall()
            return row[0], tuple(r[0] for r in line_items), None
        if action == "delete invoice":
            invoice = invoices.pop()
            line_items = conn.execute(
                "DELETE FROM invoice_line_items WHERE invoice_id = %s RETURNING id", (invoice,)
            ).fetchall()
            assert conn.execute("DELETE FROM invoices WHERE id = %s", (invoice,)).rowcount == 1
            return invoice, tuple(r[0] for r in line_items), None
        if action == "insert payment method":
            row = conn.execute(
                "INSERT INTO payment_methods (user_id, last_four, provider_token) "
                "VALUES (%s, '4242', 'tok_concurrent_' || md5(random()::text)) RETURNING id",
                (self.random.choice(users),),
            ).fetchone()
            assert row is not None
            return None, (), row[0]
        payment_method = payment_methods.pop()
        assert conn.execute("DELETE FROM payment_methods WHERE id = %s", (payment_method,)).rowcount == 1
        return None, (), payment_method

    def wait_for_commits(self, count: int, timeout: float = 30) -> Commit:
        deadline = time.monotonic() + timeout
        while len(self.commits) < count:
            assert self.error is None and self.is_alive(), f"the writer stopped early: {self.error!r}"
            assert time.monotonic() < deadline, f"the writer made {len(self.commits)} commits in {timeout} s"
            time.sleep(0.01)
        return self.commits[count - 1]


class ReplayObserver(_Background):
    """Samples the standby's ``pg_last_wal_replay_lsn()`` until stopped: (monotonic time, LSN)."""

    def __init__(self, standby_dsn: str) -> None:
        super().__init__("replay observer")
        self.dsn = standby_dsn
        self.samples: list[tuple[float, int]] = []

    def work(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self.stopping.is_set():
                row = conn.execute("SELECT pg_last_wal_replay_lsn()::text").fetchone()
                assert row is not None
                self.samples.append((time.monotonic(), _lsn(row[0])))
                time.sleep(0.005)

    def replayed_by(self, moment: float) -> int:
        """How far the standby had certainly replayed at ``moment`` (a sample is taken before it is kept)."""
        return max((lsn for at, lsn in self.samples if at <= moment), default=0)

    def wait_for(self, lsn: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not self.samples or self.samples[-1][1] < lsn:
            assert self.error is None and self.is_alive(), f"the observer stopped early: {self.error!r}"
            assert time.monotonic() < deadline, (
                f"the standby did not replay the writer's commits in {timeout} s"
            )
            time.sleep(0.01)


@dataclass(frozen=True)
class ConcurrentLoad:
    """What happened when the tenant was planned and loaded while the writer ran."""

    plan: SubsetPlan
    report: LoadReport
    visible: dict[str, set[int]]  # the tenant's ids in the snapshot, read in its transaction after the plan
    loaded: dict[str, set[int]]  # ids in the repro database
    live: dict[str, set[int]]  # the tenant's ids on the standby once it caught up with the writer
    missing_foreign_keys: tuple[ForeignKey, ...]
    orphans: dict[str, int]  # per foreign key of the target
    commits: list[Commit]
    snapshot_taken: float  # a commit that began later is not in the snapshot
    load_ended: float
    replayed_by_load_end: int  # how far the standby had replayed when the load ended

    @property
    def during_load(self) -> list[Commit]:
        return [c for c in self.commits if self.snapshot_taken <= c.began and c.committed <= self.load_ended]

    @property
    def landed(self) -> list[Commit]:
        """Commits made during the load that the standby replayed before the load ended."""
        return [c for c in self.during_load if c.lsn <= self.replayed_by_load_end]


@pytest.fixture(scope="module", params=[1, 2], ids=["one worker", "two workers"])
def concurrent_load(stack: Stack, tenant: int, request: pytest.FixtureRequest) -> Iterator[ConcurrentLoad]:
    """Plan and load the tenant from one standby snapshot while the writer changes it on the primary: on the
    load's own connection, or by two worker processes that import the load's snapshot."""
    config = load_config(CONFIG / "mask-rules.yaml", CONFIG / "commercial-extensions.yaml")
    salt = Secret(secrets.token_hex(32))
    name = f"concurrent_test_{secrets.token_hex(4)}"
    with psycopg.connect(stack.target_admin_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    target_dsn = with_database(stack.target_admin_dsn, name)
    try:
        with Writer(stack.primary_dsn, tenant) as writer, ReplayObserver(stack.standby_dsn) as observer:
            # The standby is applying the writer's commits before the snapshot is taken.
            observer.wait_for(writer.wait_for_commits(5).lsn)
            with open_source_snapshot(stack.standby_dsn) as snapshot:
                snapshot_taken = time.monotonic()
                plan = plan_subset(snapshot, config, salt, tenant)
                visible = _tenant_ids(snapshot.conn, tenant)
                report = load_repro(
                    snapshot,
                    target_dsn,
                    plan,
                    run_id=name,
                    started_at=datetime.now(UTC),
                    batch_size=BATCH_SIZE,
                    workers=LoadWorkers(request.param, config, salt, min_rows_each=1),
                )
                load_ended = time.monotonic()
        wait_for_standby_replay(stack, timeout=30)
        with psycopg.connect(stack.standby_dsn) as standby:
            live = _tenant_ids(standby, tenant)
        with psycopg.connect(target_dsn) as target:
            expected = expected_foreign_keys(plan.catalog, read_catalog(target))
            orphans = count_orphans(target, expected.present)
            loaded = {table: _all_ids(target, table) for table in TENANT_IDS}
        result = ConcurrentLoad(
            plan=plan,
            report=report,
            visible=visible,
            loaded=loaded,
            live=live,
            missing_foreign_keys=expected.missing,
            orphans={str(count.foreign_key): count.orphans for count in orphans},
            commits=writer.commits,
            snapshot_taken=snapshot_taken,
            load_ended=load_ended,
            replayed_by_load_end=observer.replayed_by(load_ended),
        )
        print(
            f"\nplan + load {load_ended - snapshot_taken:.2f} s; the writer made {len(writer.commits)} commits, "
            f"{len(result.during_load)} during the load, {len(result.landed)} of those replayed on the standby "
            "before the load ended"
        )
        yield result
    finally:
        with psycopg.connect(stack.target_admin_dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def test_the_load_is_complete_and_every_foreign_key_holds(concurrent_load: ConcurrentLoad) -> None:
    plan = concurrent_load.plan
    assert concurrent_load.report.loaded_rows == {
        table: len(plan.closure.keys.get(table, ())) for table in plan.created_tables
    }
    assert concurrent_load.missing_foreign_keys == ()
    assert len(concurrent_load.orphans) == 6  # every foreign key of the synthetic schema
    assert concurrent_load.orphans == dict.fromkeys(concurrent_load.orphans, 0)


def test_the_target_holds_exactly_the_rows_of_the_snapshot(concurrent_load: ConcurrentLoad) -> None:
    for table in TENANT_IDS:
        closure = set(concurrent_load.plan.closure.keys[TableName("public", table)])
        assert concurrent_load.loaded[table] == closure == concurrent_load.visible[table], table


def test_writes_the_standby_applied_during_the_load_are_not_in_the_target(
    concurrent_load: ConcurrentLoad,
) -> None:
    # The standby replayed some of the writer's commits while the load ran: a load reading live data would
    # have seen them.
    assert any(commit.invoice_id is not None for commit in concurrent_load.landed), concurrent_load.landed
    # No commit made during the load is in the target; every one of them is on the standby now.
    loaded, live = concurrent_load.loaded, concurrent_load.live
    for commit in concurrent_load.during_load:
        if commit.invoice_id is not None:
            changed = {"invoices": {commit.invoice_id}, "invoice_line_items": set(commit.line_item_ids)}
        else:
            assert commit.payment_method_id is not None
            changed = {"payment_methods": {commit.payment_method_id}}
        for table, ids in changed.items():
            if commit.action.startswith("insert"):
                assert ids.isdisjoint(loaded[table]) and ids <= live[table], commit
            else:
                assert ids <= loaded[table] and ids.isdisjoint(live[table]), commit
    assert live != loaded


def test_the_standby_keeps_replaying_while_the_load_reads_it(concurrent_load: ConcurrentLoad) -> None:
    """Every commit made during the load, up to 0.2 s before its end, was replayed before it ended: the
    load's snapshot does not hold back replay (the stack's standby runs with hot_standby_feedback)."""
    older = [c for c in concurrent_load.during_load if c.committed <= concurrent_load.load_ended - 0.2]
    assert older
    behind = [c for c in older if c.lsn > concurrent_load.replayed_by_load_end]
    assert behind == [], f"the standby had not replayed {len(behind)} of {len(older)} commits"
