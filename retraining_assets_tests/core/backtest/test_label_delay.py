"""The backtest with delayed labels: rows carry the estimate made before the labels, triggers
and training see a label only ``--label-delay`` after its record."""

from __future__ import annotations

import numpy as np
import pandas as pd

from retraining_assets.core.backtest import run_backtest
from retraining_assets.core.demo import SPEC, DemoStream
from retraining_assets.settings import load_settings

STREAM = DemoStream(rows_per_month=400, months=27, end_month=pd.Timestamp("2026-10-01"))


def replay(delay: str, offsets: range) -> dict:
    frame = pd.concat([STREAM.generate(o) for o in offsets], ignore_index=True)
    settings = load_settings(label_delay=delay, volume_trigger=300)
    result = run_backtest(
        frame, SPEC, settings=settings, families=("xgboost",), policies=("auto", "static")
    )
    return result.to_dict()


def test_rows_carry_the_estimate_and_training_waits_for_the_labels():
    delayed = replay("1M", range(0, 8))
    assert delayed["settings"]["label_delay"] == "1M"
    auto = delayed["policies"]["auto"]["rows"]
    estimated = [row["estimated_metric"] for row in auto]
    assert all(isinstance(value, float) for value in estimated)
    # stable months: the estimate made without labels is near the realized metric
    errors = [abs(row["estimated_metric"] - row["metric"]) for row in auto]
    assert np.mean(errors) < 0.05
    # 400 rows a month exceed the volume threshold of 300, but after the first scored month
    # none of its labels has arrived: no new labelled records, no training; a month later
    # they have, and the volume trigger retrains on them
    assert auto[0]["reasons"] == [] and not auto[0]["retrained"]
    assert any(reason.startswith("volume: ") for reason in auto[1]["reasons"])
    assert auto[1]["retrained"]


def test_without_delay_the_training_ends_with_the_period_itself():
    auto = replay("0", range(0, 5))["policies"]["auto"]["rows"]
    assert auto[0]["retrained"] and auto[0]["reasons"][0].startswith("volume: ")
    assert all(row["estimated_metric"] is not None for row in auto)
