"""Fixtures of the ticket tests: a real GitHub API on 127.0.0.1, and the environment naming it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from repro_pipeline_tests.github_api import GitHubApi

GITHUB_TOKEN = "ghp_test" + "7" * 28
REPOSITORY = "acme/support"
UI_BASE_URL = "http://dagster.example:3000"


@pytest.fixture
def github() -> Iterator[GitHubApi]:
    with GitHubApi(token=GITHUB_TOKEN, repository=REPOSITORY) as api:
        yield api


@pytest.fixture
def ticket_environment(
    pipeline_environment: dict[str, str], github: GitHubApi, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    environment = {
        "REPRO_GITHUB_API_URL": github.base_url,
        "REPRO_GITHUB_REPOSITORY": REPOSITORY,
        "GITHUB_TOKEN": GITHUB_TOKEN,
        "REPRO_UI_BASE_URL": UI_BASE_URL,
        "REPRO_GITHUB_TIMEOUT_SECONDS": "1",
    }
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("REPRO_TICKET_LABEL", raising=False)
    return environment
