"""Where the tickets are, read from the environment at each tick: a changed variable needs no reload, and a
bad one fails the tick that reads it, never the code location's load."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from repro_pipeline.defs.settings import positive_setting
from repro_pipeline.engine.errors import ConfigError

DEFAULT_API_URL = "https://api.github.com"
DEFAULT_LABEL = "needs-repro-db"
READY_LABEL = "repro-db-ready"
_REPOSITORY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class TicketSettings:
    api_url: str
    repository: str
    label: str
    ui_base_url: str
    timeout_seconds: float  # for one request; a tracker slower than that skips the tick
    token: str = field(repr=False)  # sent as a bearer token, shown nowhere

    @classmethod
    def from_environment(cls) -> TicketSettings | None:
        """The settings, or None when no repository is configured (the sensor then has nothing to poll)."""
        repository = os.environ.get("REPRO_GITHUB_REPOSITORY", "").strip()
        if not repository:
            return None
        if not _REPOSITORY.fullmatch(repository):
            raise ConfigError(
                f"REPRO_GITHUB_REPOSITORY={repository!r} is not owner/name",
                "set REPRO_GITHUB_REPOSITORY to the tracker's repository, e.g. acme/support",
            )
        api_url = os.environ.get("REPRO_GITHUB_API_URL", "").strip().rstrip("/") or DEFAULT_API_URL
        url = urlsplit(api_url)
        if not (
            url.scheme == "https"
            or (url.scheme == "http" and url.hostname in ("127.0.0.1", "localhost", "::1"))
        ):
            raise ConfigError(
                f"REPRO_GITHUB_API_URL={api_url!r} is not an https URL (the token would travel in clear text)",
                f"set REPRO_GITHUB_API_URL to {DEFAULT_API_URL} or your GitHub Enterprise/Gitea API's https URL",
            )
        return cls(
            api_url=api_url,
            repository=repository,
            label=os.environ.get("REPRO_TICKET_LABEL", "").strip() or DEFAULT_LABEL,
            ui_base_url=os.environ.get("REPRO_UI_BASE_URL", "").strip().rstrip("/"),
            timeout_seconds=positive_setting(None, "REPRO_GITHUB_TIMEOUT_SECONDS", 15),
            token=os.environ.get("GITHUB_TOKEN", ""),
        )
