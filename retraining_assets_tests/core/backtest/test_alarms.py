"""alarm_quality on hand-computed cases."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from retraining_assets.core.backtest.alarms import alarm_quality, degraded


@dataclass
class Row:
    metric: float | None
    baseline_metric: float | None
    alarm: bool | None


def test_precision_recall_and_rate_by_hand() -> None:
    rows = [
        Row(0.80, 0.90, True),  # degraded 11%, alarmed: hit
        Row(0.86, 0.90, True),  # 4.4%: not degraded, false alarm
        Row(0.70, 0.90, False),  # degraded, missed
        Row(0.90, 0.90, False),  # quiet and fine
        Row(None, 0.90, True),  # no metric: left out
        Row(0.5, None, True),  # no baseline: left out
    ]
    q = alarm_quality(rows, higher_is_better=True)
    assert q == {"precision": 0.5, "recall": 0.5, "alarm_rate": 0.5, "f1": 0.5, "rows": 4}


def test_lower_is_better_is_reversed() -> None:
    assert degraded(1.10, 1.0, higher_is_better=False)  # rmse up 10%
    assert not degraded(0.90, 1.0, higher_is_better=False)
    assert degraded(0.95, 1.0, higher_is_better=True)  # exactly 5%
    q = alarm_quality([Row(1.2, 1.0, True), Row(0.8, 1.0, True)], higher_is_better=False)
    assert (q["precision"], q["recall"], q["alarm_rate"]) == (0.5, 1.0, 1.0)
    assert q["f1"] == pytest.approx(2 / 3)


def test_zero_denominators_give_zero() -> None:
    assert alarm_quality([], True) == {"precision": 0.0, "recall": 0.0, "alarm_rate": 0.0,
                                       "f1": 0.0, "rows": 0}  # fmt: skip
    quiet = alarm_quality([Row(0.5, 0.9, False)], True)  # degraded, never alarmed
    assert (quiet["precision"], quiet["recall"]) == (0.0, 0.0)
    fine = alarm_quality([Row(0.9, 0.9, True)], True)  # alarmed, never degraded
    assert (fine["precision"], fine["recall"], fine["alarm_rate"]) == (0.0, 0.0, 1.0)
