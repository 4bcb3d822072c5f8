"""A real HTTP server on 127.0.0.1 that speaks the part of the GitHub REST API the ticket sensors use:
issues listed by label with ``Link`` pagination, issue events, comments and labels. It records every
request, and answers scripted replies first."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from repro_pipeline_tests.http_server import LocalServer, Request, ScriptedReply, json_reply

_ISSUE_PATH = re.compile(r"/repos/(?P<repo>[^/]+/[^/]+)/issues(?:/(?P<number>\d+)(?P<rest>/.*)?)?")
_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: str


@dataclass
class Issue:
    number: int
    title: str
    body: str
    author: str
    labels: list[str]
    updated_at: str
    pull_request: bool = False
    comments: list[str] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class GitHubApi:
    token: str
    repository: str
    page_size: int = 2  # small, so that a few tickets take several pages
    issues: dict[int, Issue] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)
    scripted: list[ScriptedReply] = field(default_factory=list)
    comment_replies: dict[int, ScriptedReply] = field(default_factory=dict)  # the next comment on an issue
    server: LocalServer | None = None
    _clock: int = 0
    _event_ids: int = 9000
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def answer_next(self, *replies: ScriptedReply) -> None:
        self.scripted.extend(replies)

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return self.server.url

    def open_ticket(
        self, title: str, body: str = "", labels: tuple[str, ...] = (), author: str = "oncall-amy"
    ) -> int:
        number = len(self.issues) + 1
        self.issues[number] = Issue(number, title, body, author, [], self._tick())
        for label in labels:
            self.add_label(number, label)
        return number

    def open_pull_request(self, title: str, labels: tuple[str, ...]) -> int:
        number = self.open_ticket(title, "", labels)
        self.issues[number].pull_request = True
        return number

    def add_label(self, number: int, label: str) -> None:
        issue = self.issues[number]
        issue.labels.append(label)
        self._event_ids += 1
        issue.events.append({"id": self._event_ids, "event": "labeled", "label": {"name": label}})
        issue.updated_at = self._tick()

    def remove_label(self, number: int, label: str) -> None:
        issue = self.issues[number]
        issue.labels.remove(label)
        self._event_ids += 1
        issue.events.append({"id": self._event_ids, "event": "unlabeled", "label": {"name": label}})
        issue.updated_at = self._tick()

    def edit_body(self, number: int, body: str) -> None:
        issue = self.issues[number]
        issue.body = body
        issue.updated_at = self._tick()

    def _tick(self) -> str:
        self._clock += 1
        return (_EPOCH + timedelta(seconds=self._clock)).isoformat().replace("+00:00", "Z")

    def __enter__(self) -> GitHubApi:
        self.server = LocalServer(self._serve).__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.__exit__(None, None, None)

    def _serve(self, request: Request) -> ScriptedReply:
        with self._lock:
            self.requests.append(RecordedRequest(request.method, request.path, request.headers, request.body))
            if self.scripted:
                return self.scripted.pop(0)
            return self._answer(request.method, request.path, request.header("Authorization"), request.body)

    def _answer(self, method: str, target: str, authorization: str | None, body: str) -> ScriptedReply:
        if authorization != f"Bearer {self.token}":
            return json_reply(401, {"message": "Bad credentials"})
        url = urlsplit(target)
        query = {key: values[0] for key, values in parse_qs(url.query).items()}
        match = _ISSUE_PATH.fullmatch(url.path)
        if match is None or match["repo"] != self.repository:
            return json_reply(404, {"message": "Not Found"})
        if match["number"] is None:
            return self._list_issues(url.path, query) if method == "GET" else json_reply(404, {})
        issue = self.issues.get(int(match["number"]))
        if issue is None:
            return json_reply(404, {"message": "Not Found"})
        rest = match["rest"] or ""
        if method == "GET" and rest == "/events":
            return self._page(url.path, query, issue.events)
        if method == "POST" and rest == "/comments" and issue.number in self.comment_replies:
            return self.comment_replies.pop(issue.number)
        if method == "POST" and rest == "/comments":
            issue.comments.append(json.loads(body)["body"])
            issue.updated_at = self._tick()
            return json_reply(201, {"id": len(issue.comments), "body": issue.comments[-1]})
        if method == "POST" and rest == "/labels":
            for label in json.loads(body)["labels"]:
                self.add_label(issue.number, label)
            return json_reply(200, [{"name": label} for label in issue.labels])
        if method == "DELETE" and rest.startswith("/labels/"):
            label = unquote(rest.removeprefix("/labels/"))
            if label not in issue.labels:
                return json_reply(404, {"message": "Label does not exist"})
            self.remove_label(issue.number, label)
            return json_reply(200, [{"name": label} for label in issue.labels])
        return json_reply(404, {"message": "Not Found"})

    def _list_issues(self, path: str, query: dict[str, str]) -> ScriptedReply:
        wanted = [label for label in query.get("labels", "").split(",") if label]
        issues = sorted(
            (i for i in self.issues.values() if all(label in i.labels for label in wanted)),
            key=lambda i: i.number,
            reverse=query.get("direction", "desc") == "desc",
        )
        items = [
            {
                "number": issue.number,
                "html_url": f"https://github.example/{self.repository}/issues/{issue.number}",
                "title": issue.title,
                "body": issue.body or None,
                "user": {"login": issue.author},
                "labels": [{"name": label} for label in issue.labels],
                "state": "open",
                "updated_at": issue.updated_at,
                **({"pull_request": {"url": "..."}} if issue.pull_request else {}),
            }
            for issue in issues
        ]
        return self._page(path, query, items)

    def _page(self, path: str, query: dict[str, str], items: list[dict[str, Any]]) -> ScriptedReply:
        page = int(query.get("page", "1"))
        start = (page - 1) * self.page_size
        headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json; charset=utf-8"),)
        if start + self.page_size < len(items):
            following = urlencode({**query, "page": str(page + 1)})
            headers += (("Link", f'<{self.base_url}{path}?{following}>; rel="next"'),)
        return ScriptedReply(200, json.dumps(items[start : start + self.page_size]).encode(), headers)
