"""Drift bands calibrated on the reference's own periods."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retraining_assets.core.backtest.periods import prepare
from retraining_assets.core.backtest.replay import _Training
from retraining_assets.core.dataset import DatasetSpec
from retraining_assets.core.drift import fit_reference
from retraining_assets.core.drift.calibration import (
    DEFAULT_PERIODS,
    CalibrationBands,
    CalibrationError,
    calibrate,
    reference_periods,
    split_by_time,
)
from retraining_assets.core.reference import Reference
from retraining_assets.core.timescales import Duration, TimeScales
from retraining_assets.core.training import split_by_time as time_split


def period(seed: int, n: int = 800) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "x": rng.normal(0.3 * seed, 1, n),
        "c": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]),
    })  # fmt: skip


def test_bands_contain_each_reference_period_against_the_rest() -> None:
    periods = [period(s) for s in range(4)]
    bands = calibrate(periods, fit_reference)
    assert bands.periods == 4 and set(bands.bands) == {"x", "c"}
    assert set(bands.bands["x"]) == {"psi", "jensen_shannon", "wasserstein"}
    for k, part in enumerate(periods):
        rest = pd.concat([p for j, p in enumerate(periods) if j != k])
        entry = fit_reference(rest).compare(part).features
        for name in ("x", "c"):
            for statistic, band in bands.bands[name].items():
                assert entry[name][statistic] <= band
    # the period means move by 0.3 std each: the band is wide where the data moves
    assert bands.band("x", "wasserstein") > 0.3
    assert CalibrationBands.from_dict(bands.to_dict()) == bands


def test_too_few_periods_is_an_error_that_says_why() -> None:
    with pytest.raises(CalibrationError, match="1 reference period"):
        calibrate([period(0), period(1, n=10)], fit_reference)


def test_split_by_time_cuts_equal_durations() -> None:
    frame = pd.DataFrame({"t": pd.date_range("2026-01-01", periods=90, freq="D"), "x": 1.0})
    parts = split_by_time(frame, "t", 3)
    assert [len(p) for p in parts] == [30, 30, 30]
    assert sum(len(p) for p in split_by_time(frame, "t", 4)) == 90


SPEC = DatasetSpec("t", "y", "classification", ("x",), ("c",))


def stream(days: int = 120, per_day: int = 40) -> pd.DataFrame:
    """A slowly moving stream: the reference's weekly chunks differ a little."""
    rng = np.random.default_rng(7)
    n = days * per_day
    days_in = pd.to_timedelta(np.sort(rng.uniform(0, days, n)), "D").floor("s")
    t = pd.Timestamp("2026-01-01") + days_in
    x = rng.normal(np.linspace(0, 1, n), 1)
    return pd.DataFrame({
        "t": t, "x": x, "c": rng.choice(["a", "b"], n),
        "y": np.where(x + rng.normal(0, 1, n) > 0.5, "yes", "no"),
    })  # fmt: skip


def test_reference_periods_are_drift_windows_of_monitoring_periods_or_equal_time() -> None:
    frame = stream(days=28)
    weekly = reference_periods(frame, "t", TimeScales(period="daily", drift_window=7))
    assert len(weekly) == 4  # 28 days: four drift windows of 7 daily periods
    assert sum(len(p) for p in weekly) == len(frame)
    assert all(pd.to_datetime(p["t"]).max() - pd.to_datetime(p["t"]).min()
               < pd.Timedelta(days=7) for p in weekly)  # fmt: skip
    # a reference shorter than two drift windows: the equal-time split, as without scales
    monthly = reference_periods(frame, "t", TimeScales(period="monthly", drift_window=1))
    assert len(monthly) == DEFAULT_PERIODS == len(reference_periods(frame, "t", None))


@pytest.mark.parametrize(
    "scales",
    [TimeScales(period="daily", drift_window=7), TimeScales(period="weekly", drift_window=1),
     TimeScales(period="monthly", drift_window=1)],
)  # fmt: skip
def test_the_pipeline_and_the_backtest_calibrate_the_same_bands(scales: TimeScales) -> None:
    scales = TimeScales(**{**scales.__dict__, "training_window": Duration(90, "d")})
    periods, spec = prepare(stream(), SPEC, scales, [])
    training = _Training(periods, spec, ("random_forest",), time_split, seed=0)
    window = training.window(len(periods) - 1)
    frame = periods.frame.iloc[slice(*window.rows)]
    backtest, why = training.bands(window)
    pipeline = Reference.fit(frame, spec, window.start, window.end, "test", scales=scales)
    assert why is None and pipeline.calibration_skipped is None
    assert pipeline.calibration == backtest
    assert (
        backtest.periods
        == len(reference_periods(frame, "t", scales))
        > DEFAULT_PERIODS - (scales.period == "monthly")
    )
