"""A failed tenant run is posted to the support channel by the run-failure sensor: the failed step, the
one-line reason, the run's link; no password, no token."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import psycopg
import pytest

from repro_pipeline.definitions import defs, tenant_repro_job_def
from repro_pipeline.defs.tenant_repro.failure_notices import slack_failure_notice
from repro_pipeline.defs.tenant_repro.partitions import ORGANIZATIONS
from repro_pipeline.embedded.stack import Stack
from repro_pipeline_tests.defs.tenant_repro.conftest import SLACK_TOKEN
from repro_pipeline_tests.slack_api import ScriptedReply, SlackApi

UI_BASE_URL = "http://dagster.example:3000"


@contextmanager
def _failed_run_sensor_context(
    instance: dg.DagsterInstance, stack: Stack
) -> Iterator[tuple[dg.RunFailureSensorContext, str]]:
    """A real run of the tenant job that fails at its first step (the standby's replay paused)."""
    instance.add_dynamic_partitions(ORGANIZATIONS, ["451"])
    with psycopg.connect(stack.standby_dsn, autocommit=True) as standby:
        standby.execute("SELECT pg_wal_replay_pause()")
        try:
            with dg.execute_job(
                dg.reconstructable(tenant_repro_job_def), instance=instance, tags={"dagster/partition": "451"}
            ) as run:
                assert not run.success
                context = dg.build_run_status_sensor_context(
                    sensor_name=slack_failure_notice.name,
                    dagster_event=run.get_run_failure_event(),
                    dagster_instance=instance,
                    dagster_run=run.dagster_run,
                    resources=defs().resources,
                ).for_run_failure()
                yield context, run.run_id
        finally:
            standby.execute("SELECT pg_wal_replay_resume()")


def test_a_failed_run_is_posted_with_its_step_reason_and_link(
    slack_environment: None,
    slack_api: SlackApi,
    stack: Stack,
    instance: dg.DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REPRO_UI_BASE_URL", UI_BASE_URL + "/")
    before = len(slack_api.messages)
    with _failed_run_sensor_context(instance, stack) as (context, run_id):
        assert slack_failure_notice(context) is None
    (message,) = slack_api.messages[before:]
    assert message.text.startswith("Repro run for org 451 failed (step standby_health): ")
    assert "is not a caught-up hot standby: WAL replay is paused" in message.text
    assert "what to do" not in message.text  # one line: the remedy stays in the run
    assert f"Run: {UI_BASE_URL}/runs/{run_id}" in message.text
    facts = str(message.blocks[1])
    assert "`standby_health`" in facts and f"<{UI_BASE_URL}/runs/{run_id}|{run_id}>" in facts
    for secret in (stack.password, SLACK_TOKEN, "postgresql://"):
        assert secret not in message.raw_body


def test_a_failure_slack_refuses_is_a_skip_reason_not_a_crash(
    slack_environment: None,
    slack_api: SlackApi,
    stack: Stack,
    instance: dg.DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("REPRO_UI_BASE_URL", raising=False)
    refusal = ScriptedReply(
        200, b'{"ok": false, "error": "channel_not_found"}', (("Content-Type", "application/json"),)
    )
    with _failed_run_sensor_context(instance, stack) as (context, run_id):
        slack_api.answer_next(refusal)
        skipped = slack_failure_notice(context)
        monkeypatch.delenv("SLACK_BOT_TOKEN")
        unconfigured = slack_failure_notice(context)
    assert isinstance(skipped, dg.SkipReason)
    assert skipped.skip_message == (
        f"the failure of run {run_id} was not posted to Slack: "
        "Slack refused the failed run's notice: channel_not_found"
    )
    assert isinstance(unconfigured, dg.SkipReason) and "SLACK_BOT_TOKEN is unset" in str(
        unconfigured.skip_message
    )
