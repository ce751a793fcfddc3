"""``<p>/backtest_report``: the pipeline's own records replayed with its own settings, its plot
and JSON served by the report server and linked from the metadata."""

from __future__ import annotations

import json

import dagster as dg
import pytest

from retraining_assets.core.backtest import run_backtest
from retraining_assets.core.pipeline import demo_pipeline
from retraining_assets.definitions import build_definitions
from retraining_assets.defs.assets.backtest import DEFAULT_POLICIES
from retraining_assets.defs.jobs import backtest_job_name
from retraining_assets_tests.conftest import SMALL_STREAM
from retraining_assets_tests.reports_client import serving_reports

KEY = dg.AssetKey(["demo", "backtest_report"])


@pytest.fixture
def pipeline(settings, platform_db):
    """The demo over six months of the small stream: a 3-month window and three months after."""
    SMALL_STREAM.seed_database(platform_db)
    return demo_pipeline(settings, SMALL_STREAM)


@pytest.fixture
def backtested(settings, pipeline):
    defs = build_definitions(settings, [pipeline])
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def(backtest_job_name("demo")).execute_in_process(
            instance=instance
        )
        assert result.success
        event = instance.get_latest_materialization_event(KEY)
        yield pipeline, result.run_id, event.asset_materialization.metadata


def test_the_backtest_is_the_cli_backtest_with_the_pipelines_settings(backtested) -> None:
    pipeline, _run, metadata = backtested
    with serving_reports(pipeline.settings) as get:
        replayed = get(metadata["result_json"].value).json()
    # `retrain backtest` with the options that spell out the pipeline's monthly settings
    scales = pipeline.timescales
    assert (scales.period, scales.drift_window, str(scales.training_window)) == ("monthly", 1, "3M")
    expected = run_backtest(
        pipeline.source.load(), pipeline.spec, settings=pipeline.settings, period="month",
        window=3, drift_window=1, schedule=scales.schedule, families=["xgboost"],
        policies=DEFAULT_POLICIES,
    )  # fmt: skip
    assert replayed == json.loads(expected.to_json())
    assert metadata["families"].value == "xgboost"  # one family unless asked for more
    summary = metadata["summary"].value
    for policy in DEFAULT_POLICIES:
        assert f"| {policy} |" in summary
    mean = expected.policies["auto"].mean_metric
    assert metadata[f"mean_{expected.metric}_auto"].value == pytest.approx(mean)


def test_the_plot_opens_from_the_metadata_and_shows_inline(backtested) -> None:
    pipeline, run_id, metadata = backtested
    plot = metadata["plot"].value
    folder = f"{pipeline.settings.reports_url}/reports/demo/backtests/{run_id}"
    assert plot == f"{folder}/backtest.png"
    # short Markdown pointing at the served file: the UI renders it inline (under 1,000 chars)
    assert metadata["plot_preview"].value == f"![backtest]({plot})"
    with serving_reports(pipeline.settings) as get:
        response = get(plot)
    assert response.headers["content-type"] == "image/png"
    assert response.content.startswith(b"\x89PNG")


def test_no_automatic_job_materializes_the_backtest(settings) -> None:
    defs = build_definitions(settings)
    for job in defs.resolve_all_job_defs():
        selected = job.asset_layer.selected_asset_keys
        assert (KEY in selected) == (job.name in (backtest_job_name("demo"), "__ASSET_JOB")), job
    repository = defs.get_repository_def()
    targets = {schedule.job_name for schedule in repository.schedule_defs}
    targets |= {target.job_name for sensor in repository.sensor_defs for target in sensor.targets}
    assert "demo_retraining_job" in targets
    assert backtest_job_name("demo") not in targets


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"policies": ["auto", "sometimes"]}, "demo/backtest_report: policies must be distinct"),
        ({"families": ["svm"]}, "demo/backtest_report: families: ['svm'] are not trained"),
    ],
)
def test_a_bad_config_fails_the_run_with_one_line_naming_the_field(
    settings, pipeline, config, message
) -> None:
    defs = build_definitions(settings, [pipeline])
    run_config = {"ops": {"demo__backtest_report": {"config": config}}}
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def(backtest_job_name("demo")).execute_in_process(
            instance=instance, run_config=run_config, raise_on_error=False
        )
        assert not result.success
        (failure,) = [e for e in result.all_events if e.is_step_failure]
        description = failure.step_failure_data.user_failure_data.description
        assert description.startswith(message) and "\n" not in description
        assert instance.get_latest_materialization_event(KEY) is None
