"""The support channel hears of every failed tenant run: the organization, the failed step, the one-line
reason without secrets, and the run's link when a UI base URL is configured (``REPRO_UI_BASE_URL``).

A run-failure sensor's cursor moves past a run even when its tick fails, so a post Slack refused is logged
and named in the skip reason, not retried.
"""

from __future__ import annotations

import os

import dagster as dg

from repro_pipeline.defs.failure_reasons import first_failure, known_secrets, without
from repro_pipeline.defs.resources import SlackHandoff
from repro_pipeline.defs.slack_messages import failure_message
from repro_pipeline.defs.tenant_repro.jobs import tenant_repro_job
from repro_pipeline.defs.tickets.comments import run_link
from repro_pipeline.defs.tickets.run_sensors import PARTITION_TAG
from repro_pipeline.engine.errors import ReproError


@dg.run_failure_sensor(
    monitored_jobs=[tenant_repro_job],
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Posts each failed tenant run to the support channel: step and one-line reason, no secrets",
)
def slack_failure_notice(context: dg.RunFailureSensorContext, slack: SlackHandoff) -> dg.SkipReason | None:
    run = context.dagster_run
    if not slack.enabled:
        return dg.SkipReason(f"run {run.run_id} failed; Slack is not configured (SLACK_BOT_TOKEN is unset)")
    failure = first_failure(context)
    secrets = known_secrets()
    ui_base_url = os.environ.get("REPRO_UI_BASE_URL", "").strip().rstrip("/")
    message = failure_message(
        organization=run.tags.get(PARTITION_TAG, "unknown"),
        run_id=run.run_id,
        step=failure.step,
        reason=without(failure.reason, secrets),
        run_link=run_link(ui_base_url, run.run_id) if ui_base_url else "",
    )
    try:
        slack.post(message, what="the failed run's notice")
    except ReproError as error:
        context.log.warning(f"the failure of run {run.run_id} was not posted to Slack: {error}")
        return dg.SkipReason(f"the failure of run {run.run_id} was not posted to Slack: {error.problem}")
    return None
