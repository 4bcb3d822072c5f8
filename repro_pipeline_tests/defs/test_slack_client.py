"""The Slack handoff against a real HTTP server on 127.0.0.1 that rate-limits, fails and garbles: retried
within bounds through slack-sdk's handlers, posted once, and otherwise one message saying what to do."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from repro_pipeline.defs.slack_client import post_message
from repro_pipeline.engine.errors import ConfigError, ReproError
from repro_pipeline_tests.slack_api import ScriptedReply, SlackApi

TOKEN = "xoxb-test-" + "1" * 12
JSON = (("Content-Type", "application/json; charset=utf-8"),)


@pytest.fixture
def slack() -> Iterator[SlackApi]:
    with SlackApi(token=TOKEN) as api:
        yield api


def _post(api_url: str) -> str:
    return post_message(token=TOKEN, api_url=api_url, channel="#support-repro", text="Repro DB ready")


def _rate_limited(seconds: str) -> ScriptedReply:
    body = json.dumps({"ok": False, "error": "ratelimited"}).encode()
    return ScriptedReply(429, body, (*JSON, ("Retry-After", seconds)))


def test_a_short_rate_limit_is_waited_out_and_the_message_posted_once(slack: SlackApi) -> None:
    slack.answer_next(_rate_limited("1"))
    assert _post(slack.base_url)
    assert [message.text for message in slack.messages] == ["Repro DB ready"] and slack.requests == 2


def test_server_errors_are_retried(slack: SlackApi) -> None:
    slack.answer_next(ScriptedReply(503, b"busy"), ScriptedReply(500, b"oops"))
    assert _post(slack.base_url)
    assert len(slack.messages) == 1 and slack.requests == 3


def test_a_long_rate_limit_fails_now_and_says_what_to_do(slack: SlackApi) -> None:
    slack.answer_next(_rate_limited("3600"))
    with pytest.raises(ReproError) as raised:
        _post(slack.base_url)
    assert "Slack rate-limited the handoff message (Retry-After 3600 s)" in str(raised.value)
    assert raised.value.remedy == "wait until Slack accepts messages"
    assert slack.messages == [] and slack.requests == 1


def test_server_errors_that_persist_are_one_clear_message(slack: SlackApi) -> None:
    slack.answer_next(*[ScriptedReply(503, b"<html>down</html>")] * 3)
    with pytest.raises(ReproError, match="answered HTTP 503 without a Slack API reply"):
        _post(slack.base_url)
    assert slack.requests == 3 and slack.messages == []


@pytest.mark.parametrize(
    "reply",
    [ScriptedReply(200, b"<html>captive portal</html>"), ScriptedReply(200, b"{not json", JSON)],
    ids=["html", "broken-json"],
)
def test_a_garbled_answer_is_one_clear_message(slack: SlackApi, reply: ScriptedReply) -> None:
    slack.answer_next(reply)
    with pytest.raises(ReproError) as raised:
        _post(slack.base_url)
    assert "Slack at 127.0.0.1" in str(raised.value) and TOKEN not in str(raised.value)


def test_slack_down_is_one_clear_message() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with pytest.raises(ReproError, match=f"Slack could not be reached at 127.0.0.1:{port}"):
        _post(f"http://127.0.0.1:{port}/api/")


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://slack.example/api/", "slack.com/api", "http://slack.example/api/"]
)
def test_a_slack_url_that_is_not_https_is_refused(url: str) -> None:
    with pytest.raises(ConfigError, match="is not an https URL"):
        _post(url)


def test_a_refusal_names_the_slack_error(slack: SlackApi) -> None:
    with pytest.raises(ReproError, match="Slack refused the handoff message: invalid_auth"):
        post_message(token="xoxb-wrong", api_url=slack.base_url, channel="#support-repro", text="x")
