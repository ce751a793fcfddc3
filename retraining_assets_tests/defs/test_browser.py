"""What a person sees in the Dagster UI after the demo, in a real headless Chromium (Debian's
``chromium``, driven by Playwright; never a downloaded browser). Screenshots go to
``test-screenshots/`` (``RETRAIN_TEST_SCREENSHOTS``). Every step waits for what it looks for,
never for a fixed time."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from retraining_assets.defs.assets.promotion import GATE
from retraining_assets.defs.jobs import monitoring_job_name
from retraining_assets_tests.conftest import unavailable
from retraining_assets_tests.defs.ui_state import LOCATION, ROOT, UiState, graphql

CHROMIUM = os.environ.get("RETRAIN_TEST_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
SCREENSHOTS = Path(os.environ.get("RETRAIN_TEST_SCREENSHOTS", ROOT / "test-screenshots"))
WAIT_MS = 120_000  # the first page compiles the UI's queries on a busy 2-core machine

RUN = """
query Run($id: ID!) { runOrError(runId: $id) { ... on Run {
  runId status pipelineName pipelineSnapshotId parentRunId rootRunId
  repositoryOrigin { repositoryLocationName repositoryName } } } }"""

DELETE_RUN = """
mutation Delete($id: String!) { deletePipelineRun(runId: $id) { __typename } }"""

MONITORING_RUNS = """
query Runs($job: String!) { runsOrError(filter: {pipelineName: $job}) {
  ... on Runs { results { runId } } } }"""


# module scope: Playwright's sync loop counts as "running" while it lives, so it must end with
# this file (later files in the same worker call asyncio.run)
@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Headless Chromium. Fails loudly in CI; skips elsewhere, saying how to run it."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if sync_playwright is None or not Path(CHROMIUM).is_file():
        message = (
            f"no browser: needs Chromium at {CHROMIUM} (`apt-get install chromium`, or set "
            "RETRAIN_TEST_CHROMIUM) and Playwright's client (`pip install -e .[dev]`)"
        )
        unavailable(message)
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, ui_state: UiState):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    yield page
    context.close()


def _open(page, ui_state: UiState, path: str) -> None:
    """Open a UI page, past the community dialog of a first visit if it shows."""
    page.goto(ui_state.url + path)
    skip = page.get_by_role("button", name="Skip")
    page.wait_for_load_state("networkidle")
    if skip.is_visible():
        skip.click()


def _shot(page, name: str) -> None:
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def test_the_asset_graph_shows_the_pipeline_by_stage(page, ui_state: UiState) -> None:
    _open(page, ui_state, "/asset-groups")
    for group in ("data", "monitoring", "training", "promotion", "serving"):
        page.get_by_text(f"demo_{group}", exact=True).first.wait_for()
    _shot(page, "lineage")
    _open(page, ui_state, f"/locations/{LOCATION}/asset-groups/demo_promotion")
    for asset in ("model_evaluation", "champion_model"):
        page.get_by_text(asset, exact=True).first.wait_for()
    _shot(page, "promotion-group")


def test_the_demo_runs_are_listed_under_the_monitoring_job(page, ui_state: UiState) -> None:
    job = monitoring_job_name("demo")
    runs = graphql(ui_state.url, MONITORING_RUNS, job=job)["runsOrError"]["results"]
    _open(page, ui_state, f"/locations/{LOCATION}/jobs/{job}/runs")
    for run in runs:  # the Runs tab shows each run by its short id, launched by the schedule
        page.get_by_text(run["runId"][:8], exact=True).first.wait_for()
    page.get_by_text("demo_monitoring_schedule").first.wait_for()
    for partition in ui_state.partitions:
        page.get_by_text(f"partition: {partition}").first.wait_for()
    _shot(page, "monitoring-job-runs")


def test_the_drift_report_opens_from_the_drift_report_metadata(page, ui_state: UiState) -> None:
    partition = ui_state.partitions[-1]
    _open(page, ui_state, f"/assets/demo/drift_report?partition={partition}")
    link = page.locator(f'a[href$="/reports/demo/{partition}/drift.html"]').first
    link.wait_for()
    assert link.get_attribute("href").startswith(f"{ui_state.reports_url}/reports/")
    # the summary plot shows on the asset page itself, no "[Show Markdown]" dialog
    plot = page.locator(f'img[src$="/reports/demo/{partition}/drift.png"]').first
    plot.wait_for()
    plot.scroll_into_view_if_needed()
    _shot(page, "drift-summary-plot")
    _shot(page, "drift-report-metadata")
    with page.context.expect_page() as opened:  # the UI opens links in a new tab
        link.click()
    report = opened.value
    report.wait_for_load_state()
    report.get_by_text("income").first.wait_for()
    assert report.locator("svg").count() >= 14  # a plot per feature
    _shot(report, "drift-report")


def test_the_promotion_check_shows_its_status_on_model_evaluation(page, ui_state: UiState) -> None:
    _open(page, ui_state, "/assets/demo/model_evaluation?view=checks")
    page.get_by_text(GATE).first.wait_for()
    page.get_by_text("This is a non-blocking asset check.").wait_for()
    page.get_by_text("Passed", exact=True).first.wait_for()  # the first model was promoted
    page.get_by_text(ui_state.partitions[-1], exact=True).first.wait_for()
    _shot(page, "promotion-check")


def test_the_timeline_shows_the_demo_runs(page, ui_state: UiState) -> None:
    _open(page, ui_state, "/overview/activity/timeline")
    for job in (monitoring_job_name("demo"), "demo_retraining_job"):
        page.get_by_text(job).first.wait_for()  # a row per job that ran in the last hours
    _shot(page, "timeline")


def test_the_backtest_plot_shows_on_its_asset_and_opens_from_the_link(
    page, ui_state: UiState
) -> None:
    _open(page, ui_state, "/assets/demo/backtest_report")
    png = f"/reports/demo/backtests/{ui_state.backtest_run}/backtest.png"
    preview = page.locator(f'img[src$="{png}"]').first
    preview.wait_for()  # the plot itself, inline
    page.get_by_role("cell", name="static", exact=True).first.wait_for()  # the summary table
    link = page.locator(f'a[href$="{png}"]').first
    link.wait_for()
    preview.scroll_into_view_if_needed()
    _shot(page, "backtest-report-metadata")
    with page.context.expect_page() as opened:
        link.click()
    plot = opened.value
    plot.wait_for_load_state()
    assert plot.url == ui_state.reports_url + png
    assert plot.evaluate("document.contentType") == "image/png"
    assert plot.evaluate("document.images[0].naturalWidth") > 0  # a PNG Chromium decoded


def test_reexecuting_a_demo_run_is_the_same_version_and_launches_a_run(
    page, ui_state: UiState
) -> None:
    parent = ui_state.reference_run  # a run nothing else counts (the reference job's)
    _open(page, ui_state, f"/runs/{parent}")
    # enabled once the UI has matched the run to the loaded job; a different origin or
    # snapshot would put a warning (or error) icon on this button, with "may be a different
    # version" as its tooltip
    button = page.locator("button:enabled", has_text="Re-execute all (*)")
    button.wait_for()
    assert button.locator('[role="img"][aria-label="warning"]').count() == 0
    assert button.locator('[role="img"][aria-label="error"]').count() == 0
    _shot(page, "reexecute-run")
    button.click()
    page.wait_for_url(lambda url: "/runs/" in url and parent not in url)
    child = page.url.split("/runs/")[1].split("?")[0]
    try:
        page.get_by_text("Queued").first.wait_for()  # the instance's run queue holds it
        _shot(page, "reexecuted-run")
        launched = graphql(ui_state.url, RUN, id=child)["runOrError"]
        original = graphql(ui_state.url, RUN, id=parent)["runOrError"]
    finally:  # the instance is shared by the module's tests: put it back as it was
        deleted = graphql(ui_state.url, DELETE_RUN, id=child)["deletePipelineRun"]
    assert deleted["__typename"] == "DeletePipelineRunSuccess", deleted
    assert graphql(ui_state.url, RUN, id=child)["runOrError"] == {}  # RunNotFoundError
    assert launched["parentRunId"] == launched["rootRunId"] == parent
    assert launched["status"] == "QUEUED"  # no daemon here to dequeue it
    for field in ("pipelineName", "pipelineSnapshotId", "repositoryOrigin"):
        assert launched[field] == original[field], field
