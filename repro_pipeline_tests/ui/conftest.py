"""The UI test's fixtures: `dg dev` on the embedded stack, in its own DAGSTER_HOME on a free port, and a
headless Chromium from the system (Debian's `chromium` package: Playwright never downloads a browser here)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from repro_pipeline.embedded.stack import Stack
from repro_pipeline_tests.conftest import PROJECT_ROOT

WEBSERVER_START_TIMEOUT_SECONDS = 240
SCREENSHOTS = PROJECT_ROOT / "ui-screenshots"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for_webserver(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + WEBSERVER_START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"dg dev exited with {server.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(f"{url}/server_info", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(1)
    pytest.fail(
        f"dg dev did not answer at {url} within {WEBSERVER_START_TIMEOUT_SECONDS} s:\n{log.read_text()[-4000:]}"
    )


@pytest.fixture(scope="session")
def ui_environment(
    stack: Stack, pipeline_environment: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """The environment of `dg dev` and of the commands a user runs beside it: the deployment's, and the UI's
    own Dagster instance (DAGSTER_HOME)."""
    dagster_home = tmp_path_factory.mktemp("dagster_home")
    shutil.copy(PROJECT_ROOT / "dagster_home" / "dagster.yaml", dagster_home / "dagster.yaml")
    environment = {
        **os.environ,
        **pipeline_environment,
        "DAGSTER_HOME": str(dagster_home),
        "VIRTUAL_ENV": str(PROJECT_ROOT / ".venv"),
    }
    environment.pop("SLACK_BOT_TOKEN", None)
    return environment


@pytest.fixture(scope="session")
def dagster_ui(ui_environment: dict[str, str]) -> Iterator[str]:
    """The URL of `dg dev` (webserver and daemon) serving the project, its runs reading the embedded stack."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = Path(ui_environment["DAGSTER_HOME"]) / "dg-dev.log"
    environment = ui_environment
    dg = PROJECT_ROOT / ".venv" / "bin" / "dg"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [str(dg), "dev", "--port", str(port), "--host", "127.0.0.1"],
            cwd=PROJECT_ROOT,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_for_webserver(url, server, log)
        yield url
    finally:
        os.killpg(server.pid, 15)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, 9)
            server.wait()


@pytest.fixture(scope="session")
def browser_page(dagster_ui: str) -> Iterator[Any]:
    """A page of headless Chromium, Debian's package, with generous timeouts for a machine of 2 shared cores."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("no `chromium` on PATH: install Debian's package (`apt-get install -y chromium`)")
    SCREENSHOTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.set_default_timeout(60_000)
        yield page
        browser.close()
