"""An on-call engineer's journey in the Dagster UI, in headless Chromium: add an organization's partition, launch
it from the tenant job's launchpad, see the run succeed, read the closure's metadata and the partition's checks,
and try a key that is not an organization id. Every step leaves a screenshot in ui-screenshots/."""

from __future__ import annotations

import re
from typing import Any

import pytest

from repro_pipeline.embedded.synthetic import SourceSummary
from repro_pipeline_tests.ui.conftest import SCREENSHOTS

RUN_TIMEOUT_MS = 180_000
LAUNCHPAD = "/locations/repro_pipeline/jobs/tenant_repro/playground"


def _screenshot(page: Any, name: str) -> None:
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def _dismiss_welcome(page: Any) -> None:
    """A fresh browser first gets Dagster's newsletter dialog, over whatever page it opens."""
    skip = page.get_by_role("button", name="Skip")
    skip.click()
    skip.wait_for(state="hidden")


@pytest.mark.ui
def test_partition_added_launched_and_inspected_in_the_ui(
    browser_page: Any, dagster_ui: str, source: SourceSummary
) -> None:
    from playwright.sync_api import expect

    page = browser_page
    key = str(source.demo_organization_id)

    page.goto(f"{dagster_ui}/assets/standby_health")
    _dismiss_welcome(page)
    page.get_by_role("button", name="Materialize…").click()
    # In the dialog, the link itself: the asset's description also tells how to add a partition.
    dialog = page.get_by_role("dialog")
    dialog.get_by_text(re.compile(r"^\W*add a partition", re.IGNORECASE)).first.click()
    page.get_by_placeholder("name").fill(key)
    _screenshot(page, "01-add-partition")
    page.get_by_role("button", name="Save", exact=True).click()
    page.get_by_text("Add a partition for").wait_for(state="hidden")
    page.keyboard.press("Escape")

    page.goto(f"{dagster_ui}{LAUNCHPAD}")
    page.get_by_placeholder("Partition").fill(key)
    page.get_by_text(key, exact=True).last.click()
    page.get_by_text(f"partition: {key}").wait_for()
    _screenshot(page, "02-launchpad")
    page.get_by_role("button", name="Launch Run").click()
    page.wait_for_url(re.compile(r"/runs/"))
    # The run's status tag beside its id ends as Success or Failure.
    ended = page.get_by_text(re.compile(r"^(Success|Failure)$"))
    ended.first.wait_for(timeout=RUN_TIMEOUT_MS)
    assert ended.first.inner_text() == "Success"
    _screenshot(page, "03-run-succeeded")

    page.goto(f"{dagster_ui}/assets/tenant_closure?view=events&partition={key}")
    page.get_by_text("rows_by_table").wait_for()
    _screenshot(page, "04-closure-metadata")

    page.goto(f"{dagster_ui}/assets/repro_database?view=checks")
    page.get_by_text("Passed").first.wait_for()
    # The four checks of every load passed; repro_query is skipped: the run had no bug query.
    expect(page.get_by_text("Succeeded", exact=True)).to_have_count(4)
    _screenshot(page, "05-partition-checks")

    # The launchpad reopens on the last run's tab, its partition chosen: typing waits until it has loaded.
    page.goto(f"{dagster_ui}{LAUNCHPAD}")
    page.get_by_text(f"partition: {key}").wait_for()
    page.get_by_placeholder("Partition").click()
    page.get_by_placeholder("Partition").fill("abc")
    page.get_by_text("No presets.").wait_for()
    _screenshot(page, "06-invalid-key")
