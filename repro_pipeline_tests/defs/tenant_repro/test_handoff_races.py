"""The handoff racing an extension and a retirement on the real target server, through the Dagster instance:
the extension is made while the handoff waits for Slack (between its read of the record and its write)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import dagster as dg
import psycopg
import pytest

from repro_pipeline.cli.launch import hand_off_again
from repro_pipeline.defs.tenant_repro.partitions import ORGANIZATIONS
from repro_pipeline.embedded.stack import Stack
from repro_pipeline.engine.dsn import with_database
from repro_pipeline.engine.repro_databases import lifecycle, logins
from repro_pipeline.engine.repro_databases.manifest import REQUIRED_CHECKS, record_check, write_manifest
from repro_pipeline_tests.advisory_locks import wait_until_blocked_on_the_lock
from repro_pipeline_tests.defs.run_results import step_failure_messages
from repro_pipeline_tests.repro_databases import new_repro_database
from repro_pipeline_tests.run_records import run_record
from repro_pipeline_tests.slack_api import SlackApi, SlackMessage

LONGEST = timedelta(days=90)
Admin = psycopg.Connection[tuple[object, ...]]


@pytest.fixture
def checked(target_admin: Admin, stack: Stack) -> Iterator[lifecycle.ReproDatabase]:
    """A repro database on which every check passed, waiting for its handoff."""
    database = new_repro_database(target_admin, now=datetime.now(UTC))
    with psycopg.connect(with_database(stack.target_admin_dsn, database.name), autocommit=True) as conn:
        write_manifest(conn, run_record(database.run_id))
        for check in REQUIRED_CHECKS:
            record_check(conn, check, passed=True)
    yield lifecycle.mark(target_admin, database, "loaded")
    lifecycle.drop_repro_database(target_admin, database.name)


@pytest.fixture
def while_posting(
    slack_environment: None, slack_api: SlackApi
) -> Iterator[Callable[[Callable[[], None]], None]]:
    """Sets what happens while the handoff waits for Slack's answer."""

    def during(action: Callable[[], None]) -> None:
        def act(message: SlackMessage) -> None:
            action()

        slack_api.while_posting = act

    yield during
    slack_api.while_posting = None


def _hand_off(database: lifecycle.ReproDatabase) -> str | None:
    """The handoff of ``database`` run alone: None when it succeeded, else its failure messages."""
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(ORGANIZATIONS, ["451"])
        result = hand_off_again(451, database.name, instance, console_log_level="WARNING")
        return None if result.success else step_failure_messages(result)


def test_an_extension_made_while_the_handoff_posts_survives_it(
    target_admin: Admin,
    stack: Stack,
    checked: lifecycle.ReproDatabase,
    while_posting: Callable[[Callable[[], None]], None],
) -> None:
    extended: list[lifecycle.ReproDatabase] = []

    def extend() -> None:
        with psycopg.connect(stack.target_admin_dsn, autocommit=True) as operator:
            extended.append(
                lifecycle.extend_ttl(operator, checked.name, timedelta(hours=24), LONGEST, datetime.now(UTC))
            )

    while_posting(extend)
    assert _hand_off(checked) is None
    after = lifecycle.find_repro_database(target_admin, checked.name)
    assert after.status == "ready"
    assert after.expires_at == extended[0].expires_at == checked.expires_at + timedelta(hours=24)
    (valid_until,) = target_admin.execute(
        "SELECT rolvaliduntil FROM pg_roles WHERE rolname = %s", (logins.login_role(checked.name),)
    ).fetchone() or (None,)
    assert valid_until == after.expires_at  # the login lives as long as its database


def test_an_extension_made_before_the_handoff_issues_its_login_sets_the_logins_valid_until(
    target_admin: Admin, stack: Stack, checked: lifecycle.ReproDatabase, slack_environment: None
) -> None:
    """The extension holds the database's lock when the handoff, having read the record, comes to issue the
    login: the login is issued on the record as the extension left it."""
    failures: list[str | None] = []
    with lifecycle.record_lock(target_admin, checked.name):
        handoff = threading.Thread(target=lambda: failures.append(_hand_off(checked)), daemon=True)
        handoff.start()
        wait_until_blocked_on_the_lock(target_admin, checked.name, handoff, 120)
        extended = lifecycle.extend_ttl(
            target_admin, checked.name, timedelta(hours=24), LONGEST, datetime.now(UTC)
        )
    handoff.join(120)
    assert failures == [None]
    after = lifecycle.find_repro_database(target_admin, checked.name)
    assert (after.status, after.expires_at) == ("ready", extended.expires_at)
    (valid_until,) = target_admin.execute(
        "SELECT rolvaliduntil FROM pg_roles WHERE rolname = %s", (logins.login_role(checked.name),)
    ).fetchone() or (None,)
    assert valid_until == extended.expires_at


def test_a_database_retired_before_the_handoff_issues_its_login_gets_none_and_slack_is_not_told(
    target_admin: Admin,
    stack: Stack,
    checked: lifecycle.ReproDatabase,
    slack_api: SlackApi,
    slack_environment: None,
) -> None:
    failures: list[str | None] = []
    posted = len(slack_api.messages)
    with lifecycle.record_lock(target_admin, checked.name):
        handoff = threading.Thread(target=lambda: failures.append(_hand_off(checked)), daemon=True)
        handoff.start()
        wait_until_blocked_on_the_lock(target_admin, checked.name, handoff, 120)
        lifecycle.retire(target_admin, checked, datetime.now(UTC))
    handoff.join(120)
    (failure,) = failures
    assert failure is not None and f"{checked.name} is not handed off: it is retired" in failure
    assert len(slack_api.messages) == posted
    roles = target_admin.execute(
        "SELECT 1 FROM pg_roles WHERE rolname = %s", (logins.login_role(checked.name),)
    )
    assert roles.fetchone() is None


def test_a_database_retired_while_the_handoff_posts_is_not_marked_ready(
    target_admin: Admin,
    stack: Stack,
    checked: lifecycle.ReproDatabase,
    while_posting: Callable[[Callable[[], None]], None],
) -> None:
    def retire() -> None:
        with psycopg.connect(stack.target_admin_dsn, autocommit=True) as operator:
            lifecycle.retire(operator, checked, datetime.now(UTC))

    while_posting(retire)
    failure = _hand_off(checked)
    assert failure is not None and f"{checked.name} was retired meanwhile" in failure
    assert lifecycle.find_repro_database(target_admin, checked.name).status == "failed"
