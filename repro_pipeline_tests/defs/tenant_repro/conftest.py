"""Fixtures of the tenant runs' tests: a real Slack API on 127.0.0.1, and the environment naming it."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from repro_pipeline_tests.slack_api import SlackApi

SLACK_TOKEN = "xoxb-test-" + "0" * 12


@pytest.fixture(scope="module")
def slack_api() -> Iterator[SlackApi]:
    with SlackApi(token=SLACK_TOKEN) as api:
        yield api


@pytest.fixture(scope="module")
def slack_environment(pipeline_environment: dict[str, str], slack_api: SlackApi) -> Iterator[None]:
    added = {"SLACK_BOT_TOKEN": SLACK_TOKEN, "REPRO_SLACK_API_URL": slack_api.base_url}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)
