"""A label delay through the real definitions at simulated time (``demo.simulation``): each
month is monitored when it ends, on the few labels there are; the labelled-performance
schedule scores the month whose labels have all arrived; the retraining sensor reads its
live metric from that month, its estimate from the newest."""

from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType

import dagster as dg
import pandas as pd
import pytest

from retraining_assets.core.database import platform_engine
from retraining_assets.core.demo import DemoStream
from retraining_assets.core.pipeline import demo_pipeline
from retraining_assets.core.registry import Registry
from retraining_assets.definitions import build_definitions
from retraining_assets.defs.signals import gather_signals
from retraining_assets.demo.simulation import Simulation
from retraining_assets.settings import load_settings
from retraining_assets_tests.conftest import MONTHLY

STREAM = DemoStream(rows_per_month=400, months=5, end_month=pd.Timestamp("2024-05-01"))
# the first champion only (no schedule, no volume retraining): the months are what is scored
DELAYED = {**MONTHLY, "label_delay": "1M", "retrain_schedule": "none", "volume_trigger": 10**6,
           "model_families": ["xgboost"]}  # fmt: skip


def _metadata(result, asset: str) -> dict:
    for event in result.get_asset_materialization_events():
        if event.asset_key.path[-1] == asset:
            materialization = event.step_materialization_data.materialization
            return {k: v.value for k, v in materialization.metadata.items()}
    return {}


@pytest.fixture(scope="module")
def lived(tmp_path_factory: pytest.TempPathFactory) -> Mapping:
    settings = load_settings(home=tmp_path_factory.mktemp("delay") / ".retrain", **DELAYED)
    engine = platform_engine(settings.platform_database_url)
    pipeline = demo_pipeline(settings, STREAM)
    with dg.instance_for_test() as instance:
        simulation = Simulation(build_definitions(settings, [pipeline]), pipeline, instance)
        STREAM.seed_database(engine, through=2)
        simulation.refresh_reference()
        outcomes = {}
        for offset in range(STREAM.months):
            STREAM.seed_database(engine, through=offset)
            outcomes[offset] = simulation.period(STREAM.partition_key(offset))
        signals = gather_signals(
            instance, pipeline, Registry.from_settings(settings),
            simulation.defs.resources["records"].source("demo"), STREAM.partition_key(4),
            window_end=STREAM.month_start(5).to_pydatetime(), now=simulation.now,
        )  # fmt: skip
        yield MappingProxyType({"outcomes": outcomes, "signals": signals, "now": simulation.now})


def test_each_month_is_scored_again_once_its_labels_are_in(lived) -> None:
    outcomes = lived["outcomes"]
    first = outcomes[0].labelled_request  # February 1: January's labels arrive in March
    assert isinstance(first, dg.SkipReason) and outcomes[0].labelled is None
    for offset in range(1, STREAM.months):
        request, run = outcomes[offset].labelled_request, outcomes[offset].labelled
        # a month after the previous month ended, when this one has just ended
        assert request.partition_key == STREAM.partition_key(offset - 1), offset
        assert run is not None and run.success
    assert "no_champion" in outcomes[2].causes  # the first champion, on January to March
    for offset in range(3, STREAM.months):
        monitored = _metadata(outcomes[offset].monitoring, "champion_performance")
        assert monitored["labels_complete"] is False  # its own month's labels are pending
        assert monitored["labelled_rows"] < monitored["n_sampled"]
        labelled = _metadata(outcomes[offset].labelled, "champion_performance")
        assert labelled["labels_complete"] is True, offset
        assert labelled["labelled_rows"] == labelled["n_sampled"]
        realized = _metadata(outcomes[offset].labelled, "estimated_performance")["realized"]
        assert isinstance(realized, float)  # the UI shows it beside the estimate


def test_the_sensor_reads_the_labels_complete_month_and_the_newest_estimate(lived) -> None:
    outcomes, signals = lived["outcomes"], lived["signals"]
    assert lived["now"] == datetime(2024, 6, 1, 0, 15)  # May has just ended
    april = _metadata(outcomes[4].labelled, "champion_performance")  # scored on June 1
    assert signals.live_metric == april["live_metric"]
    may = _metadata(outcomes[4].monitoring, "estimated_performance")
    assert signals.estimated_metric == may["estimated_metric"]
