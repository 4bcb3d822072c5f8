"""Why a run failed, in one line without secrets: what a ticket and the support channel are told."""

from __future__ import annotations

import os
from dataclasses import dataclass

import dagster as dg

from repro_pipeline.defs.resources import STANDBY_DSN_VARIABLE, TARGET_DSN_VARIABLE
from repro_pipeline.engine import dsn


@dataclass(frozen=True)
class FirstFailure:
    step: str  # empty when the run failed before (or outside) any step
    reason: str  # the first line of the error

    @property
    def one_line(self) -> str:
        return f"{self.step}: {self.reason}" if self.step else self.reason


def first_failure(context: dg.RunFailureSensorContext) -> FirstFailure:
    """The first failed step and the first line of its error (a ``ReproError``'s problem, as
    ``reported_as_failure`` raised it); the run's own failure message when no step failed."""
    for event in context.get_step_failure_events():
        data = event.step_failure_data
        if data.error is not None and event.step_key is not None:
            return FirstFailure(event.step_key, data.error.message.strip().split("\n", 1)[0])
    message = context.failure_event.message
    return FirstFailure("", message.strip().split("\n", 1)[0] if message else "")


def one_line_reason(context: dg.RunFailureSensorContext) -> str:
    return first_failure(context).one_line


def known_secrets() -> list[str]:
    """What must never be shown: the servers' passwords and the tokens of the tracker and Slack."""
    secrets = [os.environ.get("GITHUB_TOKEN", ""), os.environ.get("SLACK_BOT_TOKEN", "")]
    urls = [os.environ.get(variable, "") for variable in (STANDBY_DSN_VARIABLE, TARGET_DSN_VARIABLE)]
    secrets += [dsn.parameter(url, "password") or "" for url in urls if url]
    return [secret for secret in secrets if secret]


def without(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
