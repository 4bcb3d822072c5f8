"""The ticket-label sensor's ticks against a real GitHub API on 127.0.0.1 and the stack's real standby."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import dagster as dg
import psycopg
import pytest

from repro_pipeline.definitions import defs
from repro_pipeline.defs.tenant_repro.partitions import ORGANIZATIONS
from repro_pipeline.defs.tickets import label_sensor
from repro_pipeline.defs.tickets.github_api import MAX_PAGES
from repro_pipeline.defs.tickets.label_sensor import ticket_label_sensor
from repro_pipeline.embedded.stack import Stack, wait_for_standby_replay
from repro_pipeline_tests.defs.tickets.conftest import GITHUB_TOKEN, UI_BASE_URL
from repro_pipeline_tests.github_api import GitHubApi, ScriptedReply

LABEL = "needs-repro-db"


@dataclass(frozen=True)
class Tick:
    run_requests: list[dg.RunRequest]
    cursor: str | None  # the cursor after the tick: the one it was given when it wrote none
    skip_reason: str


def tick(instance: dg.DagsterInstance, cursor: str | None = None) -> Tick:
    """One evaluation, its partitions added to the instance as the daemon adds them."""
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=defs().resources)
    result = ticket_label_sensor(context)
    if isinstance(result, dg.SkipReason):
        return Tick([], cursor, result.skip_message or "")
    assert isinstance(result, dg.SensorResult)
    for request in result.dynamic_partitions_requests or []:
        assert isinstance(request, dg.AddDynamicPartitionsRequest)
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    skipped = result.skip_reason.skip_message if result.skip_reason else ""
    run_requests = [r for r in result.run_requests or [] if isinstance(r, dg.RunRequest)]
    return Tick(run_requests, result.cursor if result.cursor is not None else cursor, skipped or "")


def no_token_but_in_the_header(github: GitHubApi, *ticks: Tick) -> None:
    assert github.requests and all(
        r.headers.get("Authorization") == f"Bearer {GITHUB_TOKEN}" for r in github.requests
    )
    for request in github.requests:
        assert GITHUB_TOKEN not in request.path + request.body
    for outcome in ticks:
        assert GITHUB_TOKEN not in outcome.skip_reason + (outcome.cursor or "")
        for run_request in outcome.run_requests:
            assert GITHUB_TOKEN not in json.dumps(run_request.tags)


def test_without_a_repository_the_sensor_says_what_to_set(
    ticket_environment: dict[str, str], instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REPRO_GITHUB_REPOSITORY")
    assert "set REPRO_GITHUB_REPOSITORY to owner/name" in tick(instance).skip_reason
    monkeypatch.setenv("REPRO_GITHUB_REPOSITORY", "not a repository")
    assert "REPRO_GITHUB_REPOSITORY='not a repository' is not owner/name" in tick(instance).skip_reason
    monkeypatch.setenv("REPRO_GITHUB_REPOSITORY", "acme/support")
    monkeypatch.setenv("REPRO_GITHUB_TIMEOUT_SECONDS", "soon")
    assert "REPRO_GITHUB_TIMEOUT_SECONDS='soon' is not a positive number" in tick(instance).skip_reason


def test_labelled_tickets_become_partitions_and_runs_once(
    ticket_environment: dict[str, str], github: GitHubApi, instance: dg.DagsterInstance
) -> None:
    by_label = github.open_ticket("Invoice totals off", labels=(LABEL, "org:451"), author="oncall-amy")
    by_body = github.open_ticket("Export fails", body="Steps...\norganization_id: 452\n", labels=(LABEL,))
    github.open_ticket("Not for us", labels=("org:453",))
    github.open_pull_request("Fix a typo", labels=(LABEL, "org:454"))
    github.open_ticket("Another org 451 report", labels=("org:451", LABEL))

    first = tick(instance)
    assert sorted((r.partition_key, r.tags["repro/ticket_number"]) for r in first.run_requests) == [
        ("451", "1"),
        ("451", "5"),
        ("452", "2"),
    ]
    assert sorted(instance.get_dynamic_partitions(ORGANIZATIONS)) == ["451", "452"]
    request = next(r for r in first.run_requests if r.tags["repro/ticket_number"] == str(by_label))
    assert request.tags["repro/ticket_url"] == f"https://github.example/acme/support/issues/{by_label}"
    assert request.tags["repro/ticket_author"] == "oncall-amy"
    (accepted,) = github.issues[by_label].comments
    assert accepted.startswith("**Accepted:** building a masked repro database of organization 451")
    assert f"{UI_BASE_URL}/runs?q%5B0%5D=tag%3Arepro%2Fticket_request%3D" in accepted
    assert len(github.issues[by_body].comments) == 1
    assert not github.issues[3].comments and not github.issues[4].comments  # unlabelled; a pull request

    again = tick(instance, first.cursor)
    assert again.run_requests == [] and again.skip_reason == "no ticket with the label has a new label event"
    quiet = tick(instance, again.cursor)
    assert quiet.run_requests == [] and [len(i.comments) for i in github.issues.values()] == [1, 1, 0, 0, 1]
    no_token_but_in_the_header(github, first, again, quiet)


@pytest.mark.parametrize(
    ("labels", "body", "refusal"),
    [
        ((LABEL,), "The invoices are wrong", "the ticket names no organization: add the label `org:451`"),
        ((LABEL, "org:acme"), "", "organization id 'acme' is not a positive integer"),
        ((LABEL, "org:451"), "organization_id: 452", "more than one organization ('451', '452')"),
    ],
)
def test_a_ticket_without_one_valid_organization_is_refused_once_and_runs_once_fixed(
    labels: tuple[str, ...],
    body: str,
    refusal: str,
    ticket_environment: dict[str, str],
    github: GitHubApi,
    instance: dg.DagsterInstance,
) -> None:
    number = github.open_ticket("Invoice totals off", body=body, labels=labels)
    refused = tick(instance)
    assert refused.run_requests == [] and "refused, no run to launch" in refused.skip_reason
    (comment,) = github.issues[number].comments
    assert comment.startswith("**Not started:**") and refusal in comment
    assert instance.get_dynamic_partitions(ORGANIZATIONS) == []

    still = tick(instance, tick(instance, refused.cursor).cursor)
    assert still.run_requests == [] and len(github.issues[number].comments) == 1

    issue = github.issues[number]
    for label in [label for label in issue.labels if label.startswith("org:")]:
        github.remove_label(number, label)
    issue.body = ""
    github.add_label(number, "org:451")  # fixed, the label needs-repro-db left as it was
    fixed = tick(instance, still.cursor)
    assert [r.partition_key for r in fixed.run_requests] == ["451"]
    assert github.issues[number].comments[-1].startswith("**Accepted:**")


# As a browser sends an edited body: CRLF line ends.
QUERY_BODY = (
    "The totals disagree with the line items.\r\n\r\nrepro_query:\r\n```sql\r\n"
    "SELECT i.id FROM invoices i JOIN subscriptions s ON s.id = i.subscription_id\r\n"
    "WHERE s.organization_id = :organization_id\r\n```\r\n"
)


def test_a_tickets_bug_query_reaches_its_run_in_the_run_config(
    ticket_environment: dict[str, str], github: GitHubApi, instance: dg.DagsterInstance
) -> None:
    github.open_ticket("Invoice totals off", body=QUERY_BODY, labels=(LABEL, "org:451"))
    (request,) = tick(instance).run_requests
    query = (
        "SELECT i.id FROM invoices i JOIN subscriptions s ON s.id = i.subscription_id\n"
        "WHERE s.organization_id = :organization_id"
    )
    assert request.run_config == {
        "ops": {"tenant_closure_and_repro_database": {"config": {"repro_query": query}}}
    }
    assert "SELECT" not in json.dumps(request.tags)
    assert dg.validate_run_config(
        defs().resolve_job_def("tenant_repro"), request.run_config
    )  # the step takes it


@pytest.mark.parametrize(
    ("body", "refusal"),
    [
        (
            "repro_query:\n```sql\nDELETE FROM invoices\n```",
            "the ticket's repro_query is refused: it is DELETE, not a SELECT",
        ),
        (
            "repro_query:\n```sql\nSELECT pg_sleep(60)\n```",
            "the ticket's repro_query is refused: it calls pg_sleep(), a function that acts",
        ),
        ("repro_query:\n```sql\n```", "the ticket's repro_query is refused: it is empty"),
        ("repro_query:\nSELECT 1", "the line `repro_query:` is not followed by a fenced code block"),
        (
            "repro_query:\n```sql\nSELECT 1\n```\nrepro_query:\n```sql\nSELECT 2\n```",
            "the ticket has 2 lines `repro_query:`: keep one",
        ),
    ],
    ids=["write", "acting-function", "empty", "not-fenced", "two-queries"],
)
def test_a_ticket_whose_bug_query_is_refused_is_told_why_and_runs_once_fixed(
    body: str,
    refusal: str,
    ticket_environment: dict[str, str],
    github: GitHubApi,
    instance: dg.DagsterInstance,
) -> None:
    number = github.open_ticket("Invoice totals off", body=body, labels=(LABEL, "org:451"))
    refused = tick(instance)
    assert refused.run_requests == [] and "refused, no run to launch" in refused.skip_reason
    (comment,) = github.issues[number].comments
    assert comment.startswith(f"**Not started:** {refusal}")
    assert instance.get_dynamic_partitions(ORGANIZATIONS) == []
    still = tick(instance, refused.cursor)
    assert still.run_requests == [] and len(github.issues[number].comments) == 1

    github.edit_body(number, QUERY_BODY)
    fixed = tick(instance, still.cursor)
    assert [r.partition_key for r in fixed.run_requests] == ["451"]
    assert github.issues[number].comments[-1].startswith("**Accepted:**")


def test_a_relabelled_ticket_runs_again(
    ticket_environment: dict[str, str], github: GitHubApi, instance: dg.DagsterInstance
) -> None:
    number = github.open_ticket("Invoice totals off", labels=(LABEL, "org:451"))
    first = tick(instance)
    github.remove_label(number, LABEL)
    gone = tick(instance, first.cursor)
    assert gone.run_requests == [] and json.loads(gone.cursor or "{}")["tickets"] == {}
    github.add_label(number, LABEL)
    second = tick(instance, gone.cursor)
    (run_again,) = second.run_requests
    (run_first,) = first.run_requests
    assert run_again.partition_key == "451" and run_again.run_key != run_first.run_key
    assert tick(instance, second.cursor).run_requests == []
    assert len(github.issues[number].comments) == 2


def _rate_limit_headers(kind: str) -> tuple[tuple[str, str], ...]:
    if kind == "retry-after":
        return (("Retry-After", "5"),)
    return (("X-RateLimit-Remaining", "0"), ("X-RateLimit-Reset", str(int(time.time()) + 6)))


@pytest.mark.parametrize(
    "fault",
    ["429 retry-after", "403 reset", "500", "malformed", "timeout"],
)
def test_a_failing_tracker_launches_nothing_and_the_next_tick_does_it_all(
    fault: str, ticket_environment: dict[str, str], github: GitHubApi, instance: dg.DagsterInstance
) -> None:
    number = github.open_ticket("Invoice totals off", labels=(LABEL, "org:451"))
    status, _, kind = fault.partition(" ")
    if status in ("429", "403"):
        github.answer_next(
            ScriptedReply(int(status), b'{"message": "rate limit"}', _rate_limit_headers(kind))
        )
    elif status == "500":
        github.answer_next(ScriptedReply(500, b"<html>Unicorn!</html>"))
    elif status == "malformed":
        github.answer_next(ScriptedReply(200, b'[{"number": 1, "title": "cut sh'))
    else:
        github.answer_next(ScriptedReply(200, b"[]", delay_seconds=3))
    skipped = tick(instance)
    assert skipped.run_requests == [] and not github.issues[number].comments
    assert instance.get_dynamic_partitions(ORGANIZATIONS) == []
    if status in ("429", "403"):
        assert "is rate-limiting (HTTP" in skipped.skip_reason
        remembered = json.loads(skipped.cursor or "{}")
        assert remembered["tickets"] == {}  # only the limit's end remembered
        assert remembered["rate_limited_until"] > time.time() + 3  # a slow tick still waits
        asked = len(github.requests)
        waiting = tick(instance, skipped.cursor)
        assert "rate-limiting until" in waiting.skip_reason and len(github.requests) == asked  # not asked
        time.sleep(max(remembered["rate_limited_until"] - time.time(), 0) + 0.2)
    else:
        assert skipped.cursor is None  # unchanged
        expected = {
            "500": "answered HTTP 500",
            "malformed": "not JSON",
            "timeout": "did not answer within 1 s",
        }
        assert expected[status] in skipped.skip_reason
    later = tick(instance, skipped.cursor)
    assert [r.partition_key for r in later.run_requests] == ["451"]
    assert len(github.issues[number].comments) == 1
    no_token_but_in_the_header(github, skipped, later)


def test_a_comment_the_tracker_refuses_mid_tick_holds_back_that_ticket_and_the_next(
    ticket_environment: dict[str, str], github: GitHubApi, instance: dg.DagsterInstance
) -> None:
    for org in (451, 452, 453):
        github.open_ticket(f"org {org}", labels=(LABEL, f"org:{org}"))
    listing_and_events = 2 + 3  # two pages of tickets, then each ticket's events
    github.comment_replies[2] = ScriptedReply(502, b"bad gateway")
    partial = tick(instance)
    assert len(github.requests) == listing_and_events + 2
    assert [r.partition_key for r in partial.run_requests] == ["451"]
    assert list(json.loads(partial.cursor or "{}")["tickets"]) == ["1"]
    rest = tick(instance, partial.cursor)
    assert [r.partition_key for r in rest.run_requests] == ["452", "453"]
    assert [len(i.comments) for i in github.issues.values()] == [1, 1, 1]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"GITHUB_TOKEN": "ghp_wrong" + "0" * 27}, "set GITHUB_TOKEN to a valid token"),
        ({"REPRO_GITHUB_REPOSITORY": "acme/elsewhere"}, "check REPRO_GITHUB_REPOSITORY (owner/name)"),
        ({"REPRO_GITHUB_API_URL": "http://tracker.example.com"}, "REPRO_GITHUB_API_URL='http://tracker"),
    ],
)
def test_a_setting_the_tracker_refuses_is_named(
    change: dict[str, str],
    named: str,
    ticket_environment: dict[str, str],
    github: GitHubApi,
    instance: dg.DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    github.open_ticket("Invoice totals off", labels=(LABEL, "org:451"))
    for key, value in change.items():
        monkeypatch.setenv(key, value)
    skipped = tick(instance)
    assert named in skipped.skip_reason and skipped.run_requests == []
    assert "ghp_" not in skipped.skip_reason


def test_a_token_without_permission_is_named(
    ticket_environment: dict[str, str], github: GitHubApi, instance: dg.DagsterInstance
) -> None:
    github.open_ticket("Invoice totals off", labels=(LABEL, "org:451"))
    github.answer_next(ScriptedReply(403, b'{"message": "Resource not accessible by integration"}'))
    skipped = tick(instance)
    assert "give GITHUB_TOKEN issues: read and write on acme/support" in skipped.skip_reason
    assert GITHUB_TOKEN not in skipped.skip_reason


def test_a_lagging_standby_defers_the_tick(
    ticket_environment: dict[str, str],
    github: GitHubApi,
    instance: dg.DagsterInstance,
    stack: Stack,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REPRO_MAX_REPLAY_LAG_BYTES", "1")
    number = github.open_ticket("Invoice totals off", labels=(LABEL, "org:451"))
    with (
        psycopg.connect(stack.standby_dsn, autocommit=True) as standby,
        psycopg.connect(stack.primary_dsn, autocommit=True) as primary,
    ):
        standby.execute("SELECT pg_wal_replay_pause()")
        try:
            primary.execute("CREATE TABLE repro_test_lag AS SELECT generate_series(1, 1000) AS n")
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                row = standby.execute(
                    "SELECT pg_last_wal_receive_lsn() > pg_last_wal_replay_lsn()"
                ).fetchone()
                if row and row[0]:
                    break
                time.sleep(0.1)
            deferred = tick(instance)
        finally:
            standby.execute("SELECT pg_wal_replay_resume()")
            primary.execute("DROP TABLE IF EXISTS repro_test_lag")
    wait_for_standby_replay(stack)
    assert deferred.run_requests == [] and deferred.cursor is None
    assert deferred.skip_reason.startswith("deferred, nothing launched: the standby")
    assert "WAL replay is paused" in deferred.skip_reason
    assert "bytes of received WAL are not replayed yet" in deferred.skip_reason
    assert stack.password not in deferred.skip_reason
    assert not github.issues[number].comments
    monkeypatch.delenv("REPRO_MAX_REPLAY_LAG_BYTES")
    assert [r.partition_key for r in tick(instance).run_requests] == ["451"]


def test_a_next_page_on_another_host_is_not_followed(
    ticket_environment: dict[str, str], github: GitHubApi, instance: dg.DagsterInstance
) -> None:
    github.open_ticket("Invoice totals off", labels=(LABEL, "org:451"))
    github.answer_next(
        ScriptedReply(200, b"[]", (("Link", '<https://collector.example/issues?page=2>; rel="next"'),))
    )
    skipped = tick(instance)
    assert "links its next page to another host" in skipped.skip_reason and skipped.run_requests == []
    assert len(github.requests) == 1


def test_a_pagination_that_never_ends_is_cut_short(
    ticket_environment: dict[str, str], github: GitHubApi, instance: dg.DagsterInstance
) -> None:
    github.page_size = 1
    for number in range(MAX_PAGES + 1):
        github.open_ticket(f"ticket {number}", labels=(LABEL, "org:451"))
    skipped = tick(instance)
    assert f"still had pages after {MAX_PAGES}" in skipped.skip_reason and skipped.run_requests == []
    assert not any(issue.comments for issue in github.issues.values())


def test_a_slow_tracker_ends_the_tick_in_time_and_the_next_tick_goes_on(
    ticket_environment: dict[str, str],
    github: GitHubApi,
    instance: dg.DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for org in (451, 452, 453):
        github.open_ticket(f"org {org}", labels=(LABEL, f"org:{org}"))
    monkeypatch.setattr(label_sensor, "TICK_BUDGET_SECONDS", 0.6)
    github.comment_replies[1] = ScriptedReply(201, b'{"id": 1}', delay_seconds=0.8)
    first = tick(instance)
    assert [r.partition_key for r in first.run_requests] == ["451"]
    assert list(json.loads(first.cursor or "{}")["tickets"]) == ["1"]
    rest = tick(instance, first.cursor)
    assert [r.partition_key for r in rest.run_requests] == ["452", "453"]
    assert [len(i.comments) for i in github.issues.values()] == [0, 1, 1]  # the slow one was scripted


def test_a_ticket_that_comes_back_with_a_run_already_made_is_not_told_again(
    ticket_environment: dict[str, str], github: GitHubApi, instance: dg.DagsterInstance
) -> None:
    github.open_ticket("Invoice totals off", labels=(LABEL, "org:451"))
    first = tick(instance)
    (request,) = first.run_requests
    instance.add_run(dg.DagsterRun(job_name="tenant_repro", tags={"dagster/run_key": str(request.run_key)}))
    forgotten = tick(instance, cursor=None)  # as if the ticket had left the listing and come back
    assert forgotten.run_requests == []
    assert len(github.issues[1].comments) == 1
    assert list(json.loads(forgotten.cursor or "{}")["tickets"]) == ["1"]
