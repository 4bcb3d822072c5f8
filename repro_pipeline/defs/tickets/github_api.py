"""The part of the GitHub REST API the tickets use (GitHub Enterprise speaks it too), through httpx.

Every failure is a ``TicketApiError`` saying what to do: a setting the tracker refused (token, repository,
API URL), a rate limit and when it ends, or a tracker that is down or answered garbage. The token is sent
as a bearer header and appears in no message.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from repro_pipeline.defs.tickets.settings import TicketSettings
from repro_pipeline.engine.errors import ReproError

PER_PAGE = 50
MAX_PAGES = 40  # 2,000 open tickets with the label: more is a runaway pagination, not a support queue
DEFAULT_RATE_LIMIT_WAIT_SECONDS = 60.0


class TicketApiError(ReproError):
    """The tracker did not do what was asked; nothing after it in the tick is done."""


class TicketSettingRefused(TicketApiError):
    """401, 403 or 404: a setting is wrong, and every later tick fails the same way until it is fixed."""


class TicketApiRateLimited(TicketApiError):
    def __init__(self, problem: str, remedy: str, retry_at: float) -> None:
        super().__init__(problem, remedy)
        self.retry_at = retry_at


class TicketApiUnavailable(TicketApiError):
    """A server error, a timeout, a body that is not the API's: the next tick tries again."""


@dataclass(frozen=True)
class Ticket:
    number: int
    url: str
    author: str
    title: str
    body: str
    labels: tuple[str, ...]
    updated_at: str


@dataclass(frozen=True)
class LabelEvent:
    """The latest time the label was put on the ticket: a relabel is a new event, with a new id."""

    id: int
    created_at: str


class TicketApi:
    """One tick's session with the tracker."""

    def __init__(self, settings: TicketSettings) -> None:
        self.settings = settings
        self._origin = urlsplit(settings.api_url)[:2]
        headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "User-Agent": "repro-pipeline",
        }
        if settings.token:
            headers["Authorization"] = f"Bearer {settings.token}"
        self._client = httpx.Client(headers=headers, timeout=settings.timeout_seconds, follow_redirects=False)

    def __enter__(self) -> TicketApi:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._client.close()

    @property
    def _repository_url(self) -> str:
        return f"{self.settings.api_url}/repos/{self.settings.repository}"

    def open_tickets(self) -> list[Ticket]:
        """Open issues with the label, newest first; pull requests (which the endpoint lists too) left out."""
        params = {
            "state": "open",
            "labels": self.settings.label,
            "sort": "created",
            "direction": "desc",
            "per_page": str(PER_PAGE),
        }
        return [
            _ticket(item)
            for item in self._pages(f"{self._repository_url}/issues", params)
            if "pull_request" not in item
        ]

    def latest_label_event(self, number: int) -> LabelEvent | None:
        """The ticket's latest ``labeled`` event of the label, None when the tracker kept none."""
        latest = None
        for item in self._pages(f"{self._repository_url}/issues/{number}/events", {"per_page": "100"}):
            label = item.get("label")
            if (
                item.get("event") == "labeled"
                and isinstance(label, dict)
                and label.get("name") == self.settings.label
            ):
                latest = LabelEvent(_integer(item, "id"), str(item.get("created_at", "")))
        return latest

    def comment(self, number: int, body: str) -> None:
        self._request("POST", f"{self._repository_url}/issues/{number}/comments", json={"body": body})

    def swap_label(self, number: int, removed: str, added: str) -> None:
        """Take ``removed`` off the ticket (gone already is fine) and put ``added`` on."""
        self._request(
            "DELETE",
            f"{self._repository_url}/issues/{number}/labels/{quote(removed, safe='')}",
            missing_ok=True,
        )
        self._request("POST", f"{self._repository_url}/issues/{number}/labels", json={"labels": [added]})

    def _pages(self, url: str, params: Mapping[str, str]) -> Iterator[dict[str, Any]]:
        next_url: str | None = url
        query: Mapping[str, str] | None = params
        for _ in range(MAX_PAGES):
            if next_url is None:
                return
            response = self._request("GET", next_url, params=query)
            items = _json(response, self._where)
            if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
                raise self._garbled("a list of objects was expected")
            yield from items
            next_url = response.links.get("next", {}).get("url")
            query = None  # the next link carries the query
            if next_url is not None and urlsplit(next_url)[:2] != self._origin:
                raise TicketApiUnavailable(
                    f"the ticket API at {self._where} links its next page to another host",
                    "check REPRO_GITHUB_API_URL: the token is only sent to that host",
                )
        raise TicketApiUnavailable(
            f"the ticket API at {self._where} still had pages after {MAX_PAGES}",
            "close tickets or check REPRO_GITHUB_API_URL",
        )

    @property
    def _where(self) -> str:
        return urlsplit(self.settings.api_url).netloc

    def _garbled(self, what: str) -> TicketApiUnavailable:
        return TicketApiUnavailable(
            f"the ticket API at {self._where} answered with a body that is not the API's ({what})",
            "check REPRO_GITHUB_API_URL; the next tick tries again",
        )

    def _request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Mapping[str, Any] | None = None,
        missing_ok: bool = False,
    ) -> httpx.Response:
        try:
            response = self._client.request(method, url, params=params, json=json)
        except httpx.TimeoutException:
            raise TicketApiUnavailable(
                f"the ticket API at {self._where} did not answer within {self.settings.timeout_seconds:g} s",
                "the next tick tries again; check REPRO_GITHUB_API_URL if it persists",
            ) from None
        except httpx.HTTPError as error:
            raise TicketApiUnavailable(
                f"the ticket API at {self._where} could not be reached: {type(error).__name__}",
                "check REPRO_GITHUB_API_URL and the network path to the tracker",
            ) from None
        status = response.status_code
        if status < 300 or (missing_ok and status == 404):
            return response
        path = urlsplit(url).path
        rate_limited_until = _rate_limit_end(response)
        if rate_limited_until is not None:
            raise TicketApiRateLimited(
                f"the ticket API at {self._where} is rate-limiting (HTTP {status}) until "
                f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(rate_limited_until))}",
                "the sensor waits until then; a token of its own gives it a larger quota",
                rate_limited_until,
            )
        if status == 401:
            raise TicketSettingRefused(
                f"the ticket API at {self._where} refused the token (HTTP 401 on {method} {path})",
                f"set GITHUB_TOKEN to a valid token that may read issues and comment on {self.settings.repository}",
            )
        if status == 403:
            raise TicketSettingRefused(
                f"the token may not {method} {path} (HTTP 403)",
                f"give GITHUB_TOKEN issues: read and write on {self.settings.repository}",
            )
        if status == 404:
            raise TicketSettingRefused(
                f"the ticket API at {self._where} has no {path} (HTTP 404)",
                "check REPRO_GITHUB_REPOSITORY (owner/name) and REPRO_GITHUB_API_URL (GitHub Enterprise: "
                "https://HOST/api/v3); a private repository also answers 404 to a token that may not read it",
            )
        raise TicketApiUnavailable(
            f"the ticket API at {self._where} answered HTTP {status} to {method} {path}",
            "the next tick tries again; check the tracker's status if it persists",
        )


def _rate_limit_end(response: httpx.Response) -> float | None:
    """When a 403 or 429 rate limit ends (epoch seconds), or None when the answer is not a rate limit."""
    if response.status_code not in (403, 429):
        return None
    now = time.time()
    retry_after = response.headers.get("Retry-After")
    if retry_after is not None:
        try:
            return now + max(float(retry_after), 0.0)
        except ValueError:
            return now + DEFAULT_RATE_LIMIT_WAIT_SECONDS
    if response.headers.get("X-RateLimit-Remaining") == "0":
        try:
            return max(float(response.headers.get("X-RateLimit-Reset", "")), now)
        except ValueError:
            return now + DEFAULT_RATE_LIMIT_WAIT_SECONDS
    if response.status_code == 429:
        return now + DEFAULT_RATE_LIMIT_WAIT_SECONDS
    return None


def _json(response: httpx.Response, where: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise TicketApiUnavailable(
            f"the ticket API at {where} answered with a body that is not JSON",
            "check REPRO_GITHUB_API_URL; the next tick tries again",
        ) from None


def _integer(item: Mapping[str, Any], key: str) -> int:
    value = item.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise TicketApiUnavailable(
            f"the ticket API answered an item without an integer {key!r}",
            "check REPRO_GITHUB_API_URL; the next tick tries again",
        )
    return value


def _ticket(item: Mapping[str, Any]) -> Ticket:
    user = item.get("user")
    labels = item.get("labels")
    return Ticket(
        number=_integer(item, "number"),
        url=str(item.get("html_url", "")),
        author=str(user.get("login", "")) if isinstance(user, dict) else "",
        title=str(item.get("title") or ""),
        body=str(item.get("body") or ""),
        labels=tuple(
            str(label.get("name", "")) if isinstance(label, dict) else str(label)
            for label in (labels if isinstance(labels, list) else [])
        ),
        updated_at=str(item.get("updated_at", "")),
    )
