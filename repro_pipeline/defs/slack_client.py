"""Slack's Web API through slack-sdk, with its own retry handlers: connection errors, server errors and rate
limits are retried within a bounded time, and what still fails is one message saying what to do."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.handler import RetryHandler

from repro_pipeline.engine.errors import ConfigError, ReproError

_SLACK_ERROR = re.compile(r"[a-z][a-z0-9_]*")  # Slack's error codes: invalid_auth, channel_not_found
MAX_RETRY_AFTER_SECONDS = 30  # a longer rate limit fails the post now; the handoff can be run again
_RETRIES = 2


class BoundedRateLimitRetry(RateLimitErrorRetryHandler):
    """slack-sdk's rate-limit retry (it sleeps for Retry-After), for waits of ``max_wait_seconds`` at most."""

    def __init__(self, max_wait_seconds: float) -> None:
        super().__init__(max_retry_count=_RETRIES)
        self.max_wait_seconds = max_wait_seconds

    def _can_retry(self, *, state: Any, request: Any, response: Any = None, error: Any = None) -> bool:
        return bool(
            super()._can_retry(state=state, request=request, response=response, error=error)
            and retry_after(response.headers) <= self.max_wait_seconds
        )


def retry_after(headers: dict[str, Any]) -> float:
    """Seconds of a Retry-After header (slack-sdk gives each header as a list); 1 when absent or unreadable."""
    for name, value in headers.items():
        if name.lower() == "retry-after":
            text = value[0] if isinstance(value, list) and value else value
            try:
                return float(str(text))
            except ValueError:
                return 1.0
    return 1.0


def post_message(
    *,
    token: str,
    api_url: str,
    channel: str,
    text: str,
    blocks: Sequence[Mapping[str, Any]] = (),
    what: str = "the handoff message",
) -> str:
    """Post ``text`` (with Block Kit ``blocks``, ``text`` being their fallback) to ``channel`` and return the
    message timestamp. ``what`` names the message in errors."""
    url = urlsplit(api_url)
    if not (
        url.scheme == "https" or (url.scheme == "http" and url.hostname in ("127.0.0.1", "localhost", "::1"))
    ):
        raise ConfigError(
            f"the Slack API URL {api_url!r} is not an https URL (the bot token would travel in clear text)",
            "set REPRO_SLACK_API_URL to Slack's https://slack.com/api/ (or your proxy's https URL)",
        )
    handlers: list[RetryHandler] = [
        ConnectionErrorRetryHandler(max_retry_count=_RETRIES),
        ServerErrorRetryHandler(max_retry_count=_RETRIES),
        BoundedRateLimitRetry(MAX_RETRY_AFTER_SECONDS),
    ]
    client = WebClient(token=token, base_url=api_url.rstrip("/") + "/", timeout=15, retry_handlers=handlers)
    where = urlsplit(api_url).netloc
    try:
        response = client.chat_postMessage(
            channel=channel, text=text, blocks=[dict(block) for block in blocks] or None
        )
    except SlackApiError as exc:
        error = str(exc.response.get("error", "")) if isinstance(exc.response.data, dict) else ""
        if exc.response.status_code == 429 or error == "ratelimited":
            wait = retry_after(dict(exc.response.headers))
            raise ReproError(
                f"Slack rate-limited {what} (Retry-After {wait:g} s)",
                "wait until Slack accepts messages",
            ) from None
        if not _SLACK_ERROR.fullmatch(error):  # not a Slack API reply: a proxy's page, a broken body
            raise ReproError(
                f"Slack at {where} answered HTTP {exc.response.status_code} without a Slack API reply",
                "check REPRO_SLACK_API_URL",
            ) from None
        raise ReproError(
            f"Slack refused {what}: {error}",
            "check SLACK_BOT_TOKEN and that the bot is a member of the channel",
        ) from None
    except ValueError:
        raise ReproError(
            f"Slack at {where} answered with a body that is not JSON",
            "check REPRO_SLACK_API_URL",
        ) from None
    except OSError as exc:
        raise ReproError(
            f"Slack could not be reached at {where}: {type(exc).__name__}",
            "check REPRO_SLACK_API_URL and the network path to Slack",
        ) from None
    return str(response.get("ts", ""))
