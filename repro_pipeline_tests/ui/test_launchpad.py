"""An on-call engineer's journey in the Dagster UI, in headless Chromium: add an organization's partition, launch
it from the tenant job's launchpad, see the run succeed, read the closure's metadata, the load's per-table
figures and the partition's checks, execute the checks again, see the partition's database dropped, and try a
key that is not an organization id. Every step leaves a screenshot in ui-screenshots/."""

from __future__ import annotations

import re
import subprocess
from typing import Any

import psycopg
import pytest

from repro_pipeline.embedded.stack import Stack
from repro_pipeline.embedded.synthetic import SourceSummary
from repro_pipeline.engine.repro_databases import lifecycle
from repro_pipeline_tests.conftest import PROJECT_ROOT
from repro_pipeline_tests.ui.conftest import SCREENSHOTS

RUN_TIMEOUT_MS = 180_000
ENDED = re.compile(r"^(Success|Failure)$")
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
    browser_page: Any, dagster_ui: str, source: SourceSummary, stack: Stack, ui_environment: dict[str, str]
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
    assert _run_status(page) == "Success"
    _screenshot(page, "03-run-succeeded")

    page.goto(f"{dagster_ui}/assets/tenant_closure?view=events&partition={key}")
    page.get_by_text("rows_by_table").wait_for()
    _screenshot(page, "04-closure-metadata")

    page.goto(f"{dagster_ui}/assets/repro_database?view=checks")
    page.get_by_text("Passed").first.wait_for()
    # The four checks of every load passed; repro_query is skipped: the run had no bug query.
    expect(page.get_by_text("Succeeded", exact=True)).to_have_count(4)
    _screenshot(page, "05-partition-checks")

    page.goto(f"{dagster_ui}/assets/repro_database?view=events&partition={key}")
    page.get_by_text("load_by_table").wait_for()
    expect(page.get_by_text("public.invoices", exact=True)).to_be_visible()
    _screenshot(page, "06-load-by-table")

    _execute_checks_of_the_partition(page, dagster_ui)
    _drop_the_partitions_database(page, dagster_ui, key, stack, ui_environment)
    _an_invalid_key_fails_fast_with_a_clear_message(page, dagster_ui)


def _run_status(page: Any) -> str:
    """The run's status tag, beside its id, once it reads Success or Failure."""
    ended = page.get_by_text(ENDED)
    ended.first.wait_for(timeout=RUN_TIMEOUT_MS)
    return str(ended.first.inner_text())


def _open_latest_run(page: Any, dagster_ui: str) -> None:
    """The newest run, from the runs list (the toast that links to a launched run lasts a few seconds)."""
    page.goto(f"{dagster_ui}/runs")
    page.get_by_role("link", name="View", exact=True).first.click()
    page.wait_for_url(re.compile(r"/runs/[0-9a-f-]+"))


def _execute_checks_of_the_partition(page: Any, dagster_ui: str) -> None:
    """Dagster 1.13 disables a partitioned check's own "Execute" (its tooltip says why), and its "Execute all"
    launches the checks with no partition: the step refuses that run in one message saying how to choose
    the organization. No page of the UI runs the checks of one partition alone (the run's re-execute menu
    keeps its missing partition); a materialization from the launchpad runs them, as the first run did."""
    from playwright.sync_api import expect

    page.goto(f"{dagster_ui}/assets/repro_database?view=checks&checkDetail=zero_fk_orphans")
    # Its icon makes the button's accessible name other than its text.
    execute = page.locator("button", has_text=re.compile(r"^Execute$"))
    expect(execute).to_be_disabled()
    execute.hover(force=True)
    page.get_by_text("Executing checks on their own for partitioned assets is not yet supported").wait_for()
    _screenshot(page, "07-check-execute-disabled")

    page.get_by_role("button", name="Execute all").click()
    page.get_by_text("Launched run").wait_for()
    _open_latest_run(page, dagster_ui)
    assert _run_status(page) == "Failure"
    page.get_by_text("this run has no partition").first.wait_for()
    _screenshot(page, "08-checks-without-partition-refused")


def _drop_the_partitions_database(
    page: Any, dagster_ui: str, key: str, stack: Stack, ui_environment: dict[str, str]
) -> None:
    """`repro-pipeline drop`, as a user runs it beside the UI: the partition's latest event says so."""
    with psycopg.connect(stack.target_admin_dsn, autocommit=True) as admin:
        (database,) = [
            db.name for db in lifecycle.list_repro_databases(admin) if str(db.organization_id) == key
        ]
    dropped = subprocess.run(
        [str(PROJECT_ROOT / ".venv" / "bin" / "repro-pipeline"), "drop", database],
        env=ui_environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert dropped.returncode == 0, dropped.stderr
    page.goto(f"{dagster_ui}/assets/repro_database?view=events&partition={key}")
    page.get_by_text(f"{database} dropped: dropped on request").wait_for()
    _screenshot(page, "09-partition-database-dropped")


def _an_invalid_key_fails_fast_with_a_clear_message(page: Any, dagster_ui: str) -> None:
    """Dagster's partition dialog takes any name (it has no hook to validate one): `abc` is added, and its run
    fails in its first step with one message saying what a key is; the TTL sweep removes the key later."""
    page.goto(f"{dagster_ui}/assets/standby_health")
    page.get_by_role("button", name="Materialize…").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text(re.compile(r"^\W*add a partition", re.IGNORECASE)).first.click()
    page.get_by_placeholder("name").fill("abc")
    _screenshot(page, "10-invalid-key-typed")
    page.get_by_role("button", name="Save", exact=True).click()
    page.get_by_text("Add a partition for").wait_for(state="hidden")
    page.get_by_role("button", name="Launch 1 run").click()
    page.get_by_text("Launched run").wait_for()
    _open_latest_run(page, dagster_ui)
    assert _run_status(page) == "Failure"
    page.get_by_text("organization id 'abc' is not a positive integer").first.wait_for()
    _screenshot(page, "11-invalid-key-run-refused")
