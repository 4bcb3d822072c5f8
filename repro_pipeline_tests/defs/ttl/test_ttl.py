"""The TTL sweep through the Dagster instance: expired repro databases go, others stay."""

from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from psycopg import sql

from repro_pipeline.cli.launch import run_ttl_sweep
from repro_pipeline.definitions import defs
from repro_pipeline.engine.dsn import with_database
from repro_pipeline.engine.repro_databases import lifecycle, logins
from repro_pipeline.engine.repro_databases.manifest import REQUIRED_CHECKS, record_check, write_manifest
from repro_pipeline.engine.repro_databases.secret_sink import FileSecretSink
from repro_pipeline_tests.defs.tenant_repro.conftest import SLACK_TOKEN
from repro_pipeline_tests.defs.tickets.conftest import GITHUB_TOKEN, REPOSITORY
from repro_pipeline_tests.github_api import GitHubApi
from repro_pipeline_tests.repro_databases import new_repro_database
from repro_pipeline_tests.run_records import run_record
from repro_pipeline_tests.slack_api import SlackApi

UNRECORDED = "repro_org451_deadbeef"


def _names(target_admin: psycopg.Connection[tuple[object, ...]]) -> set[str]:
    return {str(name) for (name,) in target_admin.execute("SELECT datname FROM pg_database")}


def test_the_sweep_drops_an_expired_repro_database_and_keeps_an_unexpired_one(
    target_admin: psycopg.Connection[tuple[object, ...]], pipeline_environment: dict[str, str]
) -> None:
    now = datetime.now(UTC)
    handed_off = lifecycle.create_repro_database(
        target_admin,
        organization_id=451,
        run_id=uuid.uuid4().hex,
        ttl=timedelta(hours=48),
        now=now - timedelta(hours=49),
    )
    expired = lifecycle.mark(target_admin, handed_off, "ready")
    alive = new_repro_database(target_admin, now=now)
    # Shaped like ours, but without repro_pipeline's record: never dropped.
    target_admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(UNRECORDED)))
    try:
        # A session still open on the expired database does not keep it alive.
        target_dsn = with_database(pipeline_environment["REPRO_TARGET_DSN"], expired.name)
        with psycopg.connect(target_dsn, autocommit=True) as session:
            session.execute("SELECT 1")
            with dg.instance_for_test() as instance:
                outcome = run_ttl_sweep(instance)
                observations = _observations(instance, "451")
        assert outcome.success
        assert expired.name in outcome.dropped
        names = _names(target_admin)
        assert expired.name not in names
        assert alive.name in names
        assert UNRECORDED in names
        # The organization's partition says its database is gone, and why.
        (dropped,) = [o for o in observations if o.metadata["database"].value == expired.name]
        assert dropped.metadata["status"].value == "dropped"
        assert (
            dropped.metadata["reason"].value
            == f"the TTL sweep: expired {expired.expires_at:%Y-%m-%d %H:%M} UTC"
        )
        assert alive.name not in {o.metadata["database"].value for o in observations}
    finally:
        lifecycle.drop_repro_database(target_admin, alive.name)
        target_admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(UNRECORDED)))


def _observations(instance: dg.DagsterInstance, partition: str) -> list[dg.AssetObservation]:
    """The observations of ``repro_database`` on one partition, newest first."""
    records = instance.fetch_observations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("repro_database"), asset_partitions=[partition]),
        limit=100,
    ).records
    return [record.asset_observation for record in records if record.asset_observation is not None]


def test_the_sweep_drops_the_login_of_an_expired_database_and_removes_its_secret_file(
    target_admin: psycopg.Connection[tuple[object, ...]],
    pipeline_environment: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REPRO_SECRET_DIR", str(tmp_path / "secrets"))
    now = datetime.now(UTC)
    expired, alive = (
        new_repro_database(target_admin, now=now - age) for age in (timedelta(hours=49), timedelta(0))
    )
    sink = FileSecretSink(tmp_path / "secrets")
    try:
        for database in (expired, alive):
            target_dsn = with_database(pipeline_environment["REPRO_TARGET_DSN"], database.name)
            with psycopg.connect(target_dsn, autocommit=True) as repro:
                login = logins.issue_login(target_admin, repro, database.name, now + timedelta(hours=1))
            sink.store(database.name, login.dsn(target_dsn))
        with dg.instance_for_test() as instance:
            assert expired.name in run_ttl_sweep(instance).dropped
        assert not sink.path(expired.name).exists() and sink.path(alive.name).exists()
        roles = {str(name) for (name,) in target_admin.execute("SELECT rolname FROM pg_roles")}
        assert logins.login_role(expired.name) not in roles and logins.login_role(alive.name) in roles
    finally:
        lifecycle.drop_repro_database(target_admin, alive.name)


def test_the_sweep_removes_the_login_and_secrets_a_dropped_database_left_and_names_them(
    target_admin: psycopg.Connection[tuple[object, ...]],
    pipeline_environment: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REPRO_SECRET_DIR", str(tmp_path / "secrets"))
    sink = FileSecretSink(tmp_path / "secrets")
    gone = new_repro_database(target_admin, now=datetime.now(UTC))
    target_dsn = with_database(pipeline_environment["REPRO_TARGET_DSN"], gone.name)
    with psycopg.connect(target_dsn, autocommit=True) as repro:
        login = logins.issue_login(target_admin, repro, gone.name, gone.expires_at)
    sink.store(gone.name, login.dsn(target_dsn))
    # Its DROP DATABASE went through; its DROP ROLE and the removal of its DSN did not.
    target_admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(gone.name)))
    crashed = sink.directory / ".repro_org451_00c0ffee.0123456789abcdef.partial"
    crashed.write_text("password=half-written\n")
    foreign = "repro_org451_0badc0de_reader"  # shaped like a login of ours, made by someone else
    target_admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(foreign)))
    try:
        with dg.instance_for_test() as instance:
            assert run_ttl_sweep(instance).success
            (sweep,) = instance.get_runs(dg.RunsFilter(job_name="ttl_sweep"))
            logs = [record.user_message for record in instance.all_logs(sweep.run_id)]
            (output,) = [
                record.dagster_event.step_output_data
                for record in instance.all_logs(sweep.run_id, of_type=dg.DagsterEventType.STEP_OUTPUT)
                if record.dagster_event is not None
            ]
        roles = {str(name) for (name,) in target_admin.execute("SELECT rolname FROM pg_roles")}
        assert logins.login_role(gone.name) not in roles and foreign in roles
        assert not sink.path(gone.name).exists() and not crashed.exists()
        assert output.metadata["leftover_logins_dropped"].value == [logins.login_role(gone.name)]
        assert output.metadata["leftover_secrets_removed"].value == sorted(
            [gone.name, "repro_org451_00c0ffee"]
        )
        assert f"dropped the login {logins.login_role(gone.name)}: its database is gone" in logs
        assert f"removed the DSN kept for {gone.name}: its database is gone" in logs
        assert all("password" not in message for message in logs)
    finally:
        target_admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(foreign)))


def test_the_sweep_runs_hourly() -> None:
    schedule = defs().resolve_schedule_def("ttl_sweep_schedule")
    assert schedule.cron_schedule == "0 * * * *"
    assert schedule.job_name == "ttl_sweep"


def test_the_sweep_retires_and_drops_what_a_run_that_no_longer_runs_left_half_built(
    target_admin: psycopg.Connection[tuple[object, ...]], pipeline_environment: dict[str, str]
) -> None:
    now = datetime.now(UTC)
    with dg.instance_for_test() as instance:
        statuses = (dg.DagsterRunStatus.STARTED, *[dg.DagsterRunStatus.FAILURE] * 3)
        running, killed, checks_failed, handoff_failed = (
            dg.DagsterRun(job_name="tenant_repro", run_id=str(uuid.uuid4()), status=status)
            for status in statuses
        )
        for run in (running, killed, checks_failed, handoff_failed):
            instance.add_run(run)

        def made(run_id: str, status: str, age: timedelta) -> lifecycle.ReproDatabase:
            database = lifecycle.create_repro_database(
                target_admin, organization_id=451, run_id=run_id, ttl=timedelta(hours=48), now=now - age
            )
            return lifecycle.mark(target_admin, database, status)

        loading = made(running.run_id, "loading", timedelta(0))
        abandoned = made(killed.run_id, "loading", timedelta(0))
        checks_errored = made(checks_failed.run_id, "loaded", timedelta(0))
        unknown_old = made(uuid.uuid4().hex, "loaded", timedelta(hours=2))
        unknown_young = made(uuid.uuid4().hex, "loaded", timedelta(minutes=5))
        handed_off = made(uuid.uuid4().hex, "ready", timedelta(hours=2))
        checked = made(handoff_failed.run_id, "loaded", timedelta(0))  # waits for its handoff to be run again
        with psycopg.connect(with_database(pipeline_environment["REPRO_TARGET_DSN"], checked.name)) as conn:
            write_manifest(conn, run_record(checked.run_id))
            for check in REQUIRED_CHECKS:
                record_check(conn, check, passed=True)
        made_here = (loading, abandoned, checks_errored, unknown_old, unknown_young, handed_off, checked)
        try:
            outcome = run_ttl_sweep(instance)
            assert outcome.success
            assert set(outcome.dropped) == {abandoned.name, checks_errored.name, unknown_old.name}
            assert {loading.name, unknown_young.name, handed_off.name, checked.name} <= _names(target_admin)
            statuses_seen = [
                (o.metadata["database"].value, o.metadata["status"].value)
                for o in reversed(_observations(instance, "451"))
            ]
            for gone in (abandoned, checks_errored, unknown_old):
                mine = [status for name, status in statuses_seen if name == gone.name]
                assert mine == ["retired", "dropped"]
            assert {name for name, _ in statuses_seen} == {
                abandoned.name,
                checks_errored.name,
                unknown_old.name,
            }
        finally:
            for database in made_here:
                lifecycle.drop_repro_database(target_admin, database.name)


@pytest.fixture
def notice_environment(
    pipeline_environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Notices]:
    """Slack and a ticket tracker, both real HTTP servers on 127.0.0.1, named by the environment."""
    with SlackApi(token=SLACK_TOKEN) as slack, GitHubApi(token=GITHUB_TOKEN, repository=REPOSITORY) as github:
        for key, value in {
            "SLACK_BOT_TOKEN": SLACK_TOKEN,
            "REPRO_SLACK_API_URL": slack.base_url,
            "REPRO_GITHUB_API_URL": github.base_url,
            "REPRO_GITHUB_REPOSITORY": REPOSITORY,
            "GITHUB_TOKEN": GITHUB_TOKEN,
            "REPRO_GITHUB_TIMEOUT_SECONDS": "1",
        }.items():
            monkeypatch.setenv(key, value)
        monkeypatch.delenv("REPRO_TICKET_LABEL", raising=False)
        yield Notices(slack, github)


@dataclass(frozen=True)
class Notices:
    slack: SlackApi
    github: GitHubApi


def _expired_databases(
    target_admin: psycopg.Connection[tuple[object, ...]], instance: dg.DagsterInstance, ticket: int
) -> tuple[lifecycle.ReproDatabase, lifecycle.ReproDatabase]:
    """Two handed-off databases past their TTL: one made by a ticket's run, one launched by hand."""
    ticket_tags = {
        "dagster/partition": "451",
        "repro/ticket_number": str(ticket),
        "repro/ticket_repository": REPOSITORY,
    }
    made = []
    for tags in (ticket_tags, {"dagster/partition": "451"}):
        run = dg.DagsterRun(
            job_name="tenant_repro", run_id=str(uuid.uuid4()), status=dg.DagsterRunStatus.SUCCESS, tags=tags
        )
        instance.add_run(run)
        database = lifecycle.create_repro_database(
            target_admin,
            organization_id=451,
            run_id=run.run_id,
            ttl=timedelta(hours=48),
            now=datetime.now(UTC) - timedelta(hours=49),
        )
        made.append(lifecycle.mark(target_admin, database, "ready"))
    return made[0], made[1]


def test_the_sweep_tells_slack_and_the_ticket_that_a_database_expired(
    target_admin: psycopg.Connection[tuple[object, ...]], notice_environment: Notices
) -> None:
    github, slack = notice_environment.github, notice_environment.slack
    ticket = github.open_ticket("Invoice totals off", labels=("repro-db-ready", "org:451"))
    with dg.instance_for_test() as instance:
        from_ticket, by_hand = _expired_databases(target_admin, instance, ticket)
        outcome = run_ttl_sweep(instance)
    assert outcome.success and {from_ticket.name, by_hand.name} <= set(outcome.dropped)
    notices = sorted(message.text for message in slack.messages)
    assert notices == sorted(
        f"repro database {database.name} of organization 451 expired "
        f"({database.expires_at:%Y-%m-%d %H:%M} UTC) and was dropped"
        for database in (from_ticket, by_hand)
    )
    assert all(message.blocks for message in slack.messages)
    (comment,) = github.issues[ticket].comments  # the hand-launched database has no ticket to tell
    assert comment.startswith(f"**Expired:** repro database `{from_ticket.name}` of organization 451 expired")
    assert "label `needs-repro-db` again" in comment
    for secret in (SLACK_TOKEN, GITHUB_TOKEN, "postgresql://"):
        assert secret not in comment and all(secret not in m.raw_body for m in slack.messages)


def test_a_notice_that_cannot_be_given_does_not_stop_the_sweep(
    target_admin: psycopg.Connection[tuple[object, ...]],
    notice_environment: Notices,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        monkeypatch.setenv("REPRO_SLACK_API_URL", f"http://127.0.0.1:{closed.getsockname()[1]}/api/")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_revoked")  # the tracker answers 401
    github = notice_environment.github
    ticket = github.open_ticket("Invoice totals off", labels=("repro-db-ready", "org:451"))
    with dg.instance_for_test() as instance:
        from_ticket, by_hand = _expired_databases(target_admin, instance, ticket)
        outcome = run_ttl_sweep(instance)
        (sweep,) = instance.get_runs(dg.RunsFilter(job_name="ttl_sweep"))
        warnings = [
            record.user_message
            for record in instance.all_logs(sweep.run_id)
            if record.level == logging.WARNING
        ]
    assert outcome.success and {from_ticket.name, by_hand.name} <= set(outcome.dropped)
    assert {from_ticket.name, by_hand.name}.isdisjoint(_names(target_admin))
    assert github.issues[ticket].comments == [] and notice_environment.slack.messages == []
    assert any(f"{by_hand.name}: the expiry notice was not posted to Slack" in w for w in warnings)
    assert any(f"{from_ticket.name}: ticket #{ticket} was not told it expired" in w for w in warnings)
