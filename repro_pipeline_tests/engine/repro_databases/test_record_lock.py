"""Changes of a repro database's record racing on the real target server: each holds the database's advisory
lock and reads the record again under it, so none undoes another. The interleavings are forced with events
and a second session holding the lock, never with sleeps."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from repro_pipeline.embedded.stack import Stack
from repro_pipeline.engine.errors import TargetError
from repro_pipeline.engine.repro_databases import lifecycle
from repro_pipeline_tests.advisory_locks import wait_until_blocked_on_the_lock

LONGEST = timedelta(days=90)
WAIT = 30.0  # seconds before a test gives up on a thread reaching the state it waits for

Admin = psycopg.Connection[tuple[object, ...]]


@pytest.fixture
def connect(stack: Stack) -> Iterator[Callable[[], Admin]]:
    """Sessions on the target server's admin database, as many as a test needs, all closed after it."""
    opened: list[Admin] = []

    def session() -> Admin:
        opened.append(psycopg.connect(stack.target_admin_dsn, autocommit=True))
        return opened[-1]

    yield session
    for conn in opened:
        conn.close()


@pytest.fixture
def database(connect: Callable[[], Admin]) -> Iterator[lifecycle.ReproDatabase]:
    admin = connect()
    made = lifecycle.create_repro_database(
        admin, organization_id=451, run_id=uuid.uuid4().hex, ttl=timedelta(hours=48), now=datetime.now(UTC)
    )
    yield made
    lifecycle.drop_repro_database(admin, made.name)


class Worker(threading.Thread):
    """Runs ``work`` in a thread of its own and keeps what it returned or raised."""

    def __init__(self, work: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.work = work
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self.work()
        except BaseException as error:
            self.error = error

    def outcome(self) -> Any:
        self.join(WAIT)
        assert not self.is_alive(), "the worker did not finish"
        if self.error is not None:
            raise self.error
        return self.result


def _record(admin: Admin, name: str) -> lifecycle.ReproDatabase:
    return lifecycle.find_repro_database(admin, name)


def test_a_status_written_after_an_extension_keeps_the_extension(
    connect: Callable[[], Admin], database: lifecycle.ReproDatabase
) -> None:
    """The handoff read the record before an extension, and marks it ready after: the extension stays."""
    handoff, operator = connect(), connect()
    extended = lifecycle.extend_ttl(operator, database.name, timedelta(hours=24), LONGEST, datetime.now(UTC))
    ready = lifecycle.mark(
        handoff, database, "ready"
    )  # ``database``: the record as read before the extension
    assert ready.expires_at == extended.expires_at == database.expires_at + timedelta(hours=24)
    assert _record(operator, database.name) == replace(extended, status="ready")


def test_a_status_change_waits_for_an_extension_between_its_read_and_its_write(
    connect: Callable[[], Admin], database: lifecycle.ReproDatabase
) -> None:
    extension_read, extension_may_write = threading.Event(), threading.Event()

    def extend_slowly(current: lifecycle.ReproDatabase) -> lifecycle.ReproDatabase:
        extension_read.set()
        assert extension_may_write.wait(WAIT)
        return replace(current, expires_at=current.expires_at + timedelta(hours=24))

    extension = Worker(lambda: lifecycle.update_record(connect(), database.name, extend_slowly))
    extension.start()
    assert extension_read.wait(WAIT)
    handoff = Worker(lambda: lifecycle.mark(connect(), database, "ready"))
    handoff.start()
    wait_until_blocked_on_the_lock(connect(), database.name, handoff, WAIT)
    extension_may_write.set()
    extension.outcome()
    handoff.outcome()
    after = _record(connect(), database.name)
    assert (after.status, after.expires_at) == ("ready", database.expires_at + timedelta(hours=24))


def test_the_sweep_does_not_drop_a_database_extended_after_it_listed_it(
    connect: Callable[[], Admin], database: lifecycle.ReproDatabase
) -> None:
    now = datetime.now(UTC)
    operator = connect()
    lifecycle.mark(operator, database, "ready", expires_at=now - timedelta(minutes=1))
    with lifecycle.record_lock(operator, database.name):  # an extension in progress
        sweep = Worker(lambda: lifecycle.drop_expired(connect(), now))
        sweep.start()
        wait_until_blocked_on_the_lock(connect(), database.name, sweep, WAIT)
        lifecycle.extend_ttl(operator, database.name, timedelta(hours=2), LONGEST, now)
    swept = sweep.outcome()
    assert database.name not in {dropped.name for dropped in swept.databases}
    assert _record(operator, database.name).expires_at == now + timedelta(hours=2)


def test_the_sweep_drops_a_database_still_expired_once_it_holds_its_lock(
    connect: Callable[[], Admin], database: lifecycle.ReproDatabase
) -> None:
    now = datetime.now(UTC)
    operator = connect()
    lifecycle.mark(operator, database, "ready", expires_at=now - timedelta(minutes=1))
    with lifecycle.record_lock(operator, database.name):  # a change that leaves it expired
        sweep = Worker(lambda: lifecycle.drop_expired(connect(), now))
        sweep.start()
        wait_until_blocked_on_the_lock(connect(), database.name, sweep, WAIT)
        lifecycle.mark(operator, database, "ready")
    assert database.name in {dropped.name for dropped in sweep.outcome().databases}
    assert (
        operator.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database.name,)).fetchone() is None
    )


def test_the_sweep_does_not_retire_a_database_handed_off_after_it_listed_it(
    connect: Callable[[], Admin], database: lifecycle.ReproDatabase
) -> None:
    """Listed ``loaded`` by a run that finished, without its checks passed as the sweep first saw them; its
    handoff marks it ready while the sweep waits for its lock."""
    operator = connect()
    lifecycle.mark(operator, database, "loaded")
    with lifecycle.record_lock(operator, database.name):
        sweep = Worker(
            lambda: lifecycle.retire_abandoned(
                connect(), lambda run_id: "finished", lambda listed: False, datetime.now(UTC)
            )
        )
        sweep.start()
        wait_until_blocked_on_the_lock(connect(), database.name, sweep, WAIT)
        lifecycle.mark(operator, database, "ready")
    assert database.name not in {retired.name for retired in sweep.outcome().databases}
    assert _record(operator, database.name).status == "ready"


def test_drop_now_waits_for_a_change_in_progress(
    connect: Callable[[], Admin], database: lifecycle.ReproDatabase
) -> None:
    operator = connect()
    with lifecycle.record_lock(operator, database.name):
        drop = Worker(lambda: lifecycle.drop_now(connect(), database.name))
        drop.start()
        wait_until_blocked_on_the_lock(connect(), database.name, drop, WAIT)
        lifecycle.mark(operator, database, "ready")
    assert drop.outcome().status == "ready"  # what it dropped, as it was once the change was written


def test_a_database_retired_meanwhile_is_not_marked_ready(
    connect: Callable[[], Admin], database: lifecycle.ReproDatabase
) -> None:
    admin = connect()
    lifecycle.retire(admin, database, datetime.now(UTC))
    with pytest.raises(TargetError, match="was retired meanwhile") as refused:
        lifecycle.mark(admin, database, "ready")
    assert "materialize repro_database for organization 451 again" in refused.value.remedy
    assert _record(admin, database.name).status == "failed"


def test_the_lock_is_released_when_the_change_fails(
    connect: Callable[[], Admin], database: lifecycle.ReproDatabase
) -> None:
    admin = connect()
    with pytest.raises(TargetError, match="is not one"):
        lifecycle.extend_ttl(admin, database.name, timedelta(hours=-1), LONGEST, datetime.now(UTC))
    key = lifecycle.record_lock_key(database.name)
    other = connect()
    taken = other.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
    other.execute("SELECT pg_advisory_unlock(%s)", (key,))
    assert taken == (True,)


def test_lock_keys_are_fixed_per_name_and_differ_between_names() -> None:
    first, second = (
        lifecycle.record_lock_key("repro_org451_0123abcd"),
        lifecycle.record_lock_key("repro_org451_0123abce"),
    )
    assert first == lifecycle.record_lock_key("repro_org451_0123abcd") != second
    assert all(-(2**63) <= key < 2**63 for key in (first, second))
