"""A ticket's whole life through a real ``dagster-daemon``: labelled, accepted, run on the stack, ready, its
label swapped; a ticket without an organization refused. And a failed run's one-line reason on its ticket."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import psycopg
import pytest
import yaml

from repro_pipeline.cli.launch import run_ttl_sweep
from repro_pipeline.cli.run_report import GUIDE_BUG_QUERY
from repro_pipeline.definitions import defs, tenant_repro_job_def
from repro_pipeline.defs.tenant_repro.partitions import ORGANIZATIONS
from repro_pipeline.defs.tickets.run_sensors import ticket_failure_comment, ticket_of
from repro_pipeline.embedded.stack import Stack
from repro_pipeline.embedded.synthetic import SourceSummary
from repro_pipeline.engine.repro_databases import lifecycle
from repro_pipeline_tests.conftest import PROJECT_ROOT
from repro_pipeline_tests.defs.tickets.conftest import GITHUB_TOKEN, REPOSITORY, UI_BASE_URL
from repro_pipeline_tests.github_api import GitHubApi

LABEL = "needs-repro-db"


def _wait_for(condition: Callable[[], bool], what: str, log: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} never happened; daemon log:\n{log.read_text()[-3000:]}")
        time.sleep(1)


BUG_QUERY_BODY = (
    f"The totals disagree with the line items.\n\nrepro_query:\n```sql\n{GUIDE_BUG_QUERY.strip()}\n```\n"
)


def test_a_tickets_life_through_a_real_daemon(
    ticket_environment: dict[str, str],
    github: GitHubApi,
    stack: Stack,
    source: SourceSummary,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = yaml.safe_load((PROJECT_ROOT / "dagster_home" / "dagster.yaml").read_text())
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(settings))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with dg.DagsterInstance.get():
        pass  # its SQLite storage made now: the daemon's threads would race to create it
    accepted = github.open_ticket(
        "Invoice totals off for org 451", body=BUG_QUERY_BODY, labels=(LABEL, "org:451")
    )
    refused = github.open_ticket("Something is broken", body="Please look", labels=(LABEL,))
    writing = "repro_query:\n```sql\nWITH fixed AS (UPDATE invoices SET total_cents = 0 RETURNING id) SELECT * FROM fixed\n```"
    refused_query = github.open_ticket("Totals wrong", body=writing, labels=(LABEL, "org:451"))
    log = tmp_path / "daemon.log"
    with log.open("w") as daemon_log:
        daemon = subprocess.Popen(
            [Path(sys.executable).parent / "dagster-daemon", "run", "-w", PROJECT_ROOT / "workspace.yaml"],
            cwd=PROJECT_ROOT,
            stdout=daemon_log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_for(lambda: len(github.issues[accepted].comments) >= 2, "the ready comment", log)
        finally:
            daemon.terminate()
            daemon.wait(timeout=60)
    with dg.DagsterInstance.get() as instance:
        (run,) = instance.get_runs()
        assert run.status == dg.DagsterRunStatus.SUCCESS
        assert instance.get_dynamic_partitions(ORGANIZATIONS) == ["451"]
        assert run.tags["repro/ticket_number"] == str(accepted)
        assert run.tags["repro/ticket_url"] == f"https://github.example/{REPOSITORY}/issues/{accepted}"
        assert run.tags["repro/ticket_author"] == "oncall-amy"
    first, ready = github.issues[accepted].comments
    assert first.startswith("**Accepted:** building a masked repro database of organization 451")
    assert ready.startswith("**Ready:** repro database `repro_org451_")
    assert re.search(r"DSN in /\S+/repro_org451_\w+\.dsn\. Expires ", ready), ready
    assert f"Run: {UI_BASE_URL}/runs/{run.run_id}" in ready
    planted = len(source.planted_invoice_ids)
    assert f"\n\nBug query: the query returns {planted} rows: the bug reproduces.\n\nRun: " in ready
    assert github.issues[accepted].labels == ["org:451", "repro-db-ready"]
    (refusal,) = github.issues[refused].comments
    assert refusal.startswith("**Not started:** the ticket names no organization")
    (query_refusal,) = github.issues[refused_query].comments
    assert query_refusal.startswith(
        "**Not started:** the ticket's repro_query is refused: it holds a data-modifying UPDATE"
    )
    for comment in [first, ready, refusal, query_refusal]:
        assert GITHUB_TOKEN not in comment and stack.password not in comment
        assert "postgresql://" not in comment
    assert GITHUB_TOKEN not in log.read_text()
    database = ready.split("`")[1]
    with psycopg.connect(stack.target_admin_dsn, autocommit=True) as admin:
        (made,) = [db for db in lifecycle.list_repro_databases(admin) if db.name == database]
        lifecycle.mark(admin, made, "ready", expires_at=datetime.now(UTC) - timedelta(minutes=1))
    with dg.DagsterInstance.get() as instance:
        assert database in run_ttl_sweep(instance).dropped
    expired = github.issues[accepted].comments[-1]
    assert expired.startswith(f"**Expired:** repro database `{database}` of organization 451 expired")


def test_a_failed_run_tells_its_ticket_the_one_line_reason(
    ticket_environment: dict[str, str],
    github: GitHubApi,
    stack: Stack,
    instance: dg.DagsterInstance,
) -> None:
    number = github.open_ticket("Invoice totals off", labels=(LABEL, "org:451"))
    instance.add_dynamic_partitions(ORGANIZATIONS, ["451"])
    tags = {
        "dagster/partition": "451",
        "repro/ticket_number": str(number),
        "repro/ticket_repository": REPOSITORY,
    }
    with psycopg.connect(stack.standby_dsn, autocommit=True) as standby:
        standby.execute("SELECT pg_wal_replay_pause()")
        try:
            with dg.execute_job(
                dg.reconstructable(tenant_repro_job_def), instance=instance, tags=tags
            ) as run:
                assert not run.success
                context = dg.build_run_status_sensor_context(
                    sensor_name=ticket_failure_comment.name,
                    dagster_event=run.get_run_failure_event(),
                    dagster_instance=instance,
                    dagster_run=run.dagster_run,
                    resources=defs().resources,
                ).for_run_failure()
                assert ticket_failure_comment(context) is None
        finally:
            standby.execute("SELECT pg_wal_replay_resume()")
    (comment,) = github.issues[number].comments
    assert comment.startswith(
        "**Failed:** the repro database of organization 451 was not built: standby_health:"
    )
    assert "is not a caught-up hot standby: WAL replay is paused" in comment
    assert "what to do" not in comment  # one line
    assert f"Run: {UI_BASE_URL}/runs/" in comment
    assert GITHUB_TOKEN not in comment and stack.password not in comment
    assert github.issues[number].labels == [LABEL, "org:451"]  # not swapped


@pytest.mark.parametrize(
    ("tags", "acted_on"),
    [
        ({"repro/ticket_number": "7", "repro/ticket_repository": REPOSITORY}, True),
        ({"repro/ticket_number": "7"}, True),
        ({"repro/ticket_number": "7", "repro/ticket_repository": "other/private"}, False),
        ({"repro/ticket_number": "7/../../labels", "repro/ticket_repository": REPOSITORY}, False),
        ({}, False),
    ],
    ids=["ours", "repository-implied", "another-repository", "not-a-number", "no-ticket"],
)
def test_only_a_ticket_of_the_configured_repository_hears_from_a_run(
    ticket_environment: dict[str, str], tags: dict[str, str], acted_on: bool
) -> None:
    run = dg.DagsterRun(job_name="tenant_repro", tags={"dagster/partition": "451", **tags})
    ticket = ticket_of(run)
    assert (not isinstance(ticket, str)) == acted_on
    if acted_on:
        assert not isinstance(ticket, str) and ticket[1] == 7 and ticket[0].repository == REPOSITORY
