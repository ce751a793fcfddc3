"""A record's label is seen exactly ``RETRAIN_LABEL_DELAY`` after its timestamp."""

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from retraining_assets.core.labels import (
    label_cutoff,
    labelled,
    labels_complete_period,
    parse_label_delay,
)
from retraining_assets.core.timescales import TimeScales


def test_label_delay_hides_exactly_the_labels_newer_than_the_delay():
    frame = pd.DataFrame({"ts": pd.date_range("2024-01-01", periods=60, freq="D"), "y": range(60)})
    now = datetime(2024, 3, 1)
    mask = labelled(frame, "ts", now, parse_label_delay("30d"))
    assert frame.loc[mask, "ts"].max() == pd.Timestamp("2024-01-31")  # exactly 30 days back
    assert (frame.loc[~mask, "ts"] > pd.Timestamp("2024-01-31")).all()
    assert mask.sum() == 31
    assert labelled(frame, "ts", now, parse_label_delay("0")).all()


def test_calendar_month_delay_and_time_zones():
    delay = parse_label_delay("1M")
    assert label_cutoff(datetime(2024, 3, 31), delay) == datetime(2024, 2, 29)
    frame = pd.DataFrame({"ts": pd.to_datetime(["2024-02-28", "2024-03-01"]).tz_localize("UTC")})
    now = datetime(2024, 3, 31, tzinfo=UTC)
    assert labelled(frame, "ts", now, delay).tolist() == [True, False]


@pytest.mark.parametrize("text", [None, "", "0", " 0 "])
def test_no_delay(text):
    assert parse_label_delay(text) is None


def test_a_bad_delay_says_what_a_duration_is():
    with pytest.raises(ValueError, match="not a duration"):
        parse_label_delay("a month")


def test_the_labels_complete_period_is_the_newest_that_ended_by_now_minus_the_delay():
    scales = TimeScales(period="monthly")
    start, delay = datetime(2024, 1, 1), parse_label_delay("1M")
    # April ends on May 1; with a month's delay its labels are all in on June 1, not before
    assert labels_complete_period(scales, datetime(2024, 6, 1), delay, start) == datetime(
        2024, 4, 1
    )
    before = datetime(2024, 5, 31, 23, 59, 59)
    assert labels_complete_period(scales, before, delay, start) == datetime(2024, 3, 1)
    # no delay: the newest complete period, the one the monitoring schedule just monitored
    assert labels_complete_period(scales, datetime(2024, 6, 1), None, start) == datetime(2024, 5, 1)
    assert scales.newest_complete_period(datetime(2024, 6, 1), start) == datetime(2024, 5, 1)


def test_a_daily_period_ending_exactly_at_now_minus_the_delay_is_complete():
    scales, start, delay = (
        TimeScales(period="daily"),
        datetime(2024, 1, 1),
        parse_label_delay("36h"),
    )
    now = datetime(2024, 3, 11, 12)  # minus 36h: March 10, 00:00, the end of March 9
    assert labels_complete_period(scales, now, delay, start) == datetime(2024, 3, 9)
    earlier = now - timedelta(microseconds=1)
    assert labels_complete_period(scales, earlier, delay, start) == datetime(2024, 3, 8)


def test_no_period_is_labels_complete_before_the_first_has_its_labels():
    scales, start = TimeScales(period="monthly"), datetime(2024, 1, 15)
    delay = parse_label_delay("30d")
    assert labels_complete_period(scales, datetime(2024, 3, 1), delay, start) is None  # Jan 31
    assert labels_complete_period(scales, datetime(2024, 3, 2), delay, start) == datetime(
        2024, 1, 1
    )
