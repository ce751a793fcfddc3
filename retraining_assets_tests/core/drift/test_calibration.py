"""Drift bands calibrated on the reference's own periods."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retraining_assets.core.drift import fit_reference
from retraining_assets.core.drift.calibration import (
    CalibrationBands,
    CalibrationError,
    calibrate,
    split_by_time,
)


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
