"""A record's label is seen exactly ``RETRAIN_LABEL_DELAY`` after its timestamp."""

from datetime import UTC, datetime

import pandas as pd
import pytest

from retraining_assets.core.labels import label_cutoff, labelled, parse_label_delay


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
