"""The window arithmetic of the four time scales: month ends, leap days, UTC, clipping, widening."""

from datetime import UTC, datetime, timedelta

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from retraining_assets.core.sampling import WindowSample
from retraining_assets.core.timescales import (
    PERIOD_NAMES,
    Duration,
    TimeScaleError,
    TimeScales,
)

DAILY = TimeScales()  # daily periods, 7-day drift window, 90d training window, monthly schedule


def test_cli_names_map_to_the_four_periods() -> None:
    assert PERIOD_NAMES == {
        "hour": "hourly",
        "day": "daily",
        "week": "weekly",
        "month": "monthly",
    }


@pytest.mark.parametrize(
    ("text", "end", "start"),
    [
        ("90d", datetime(2024, 3, 1), datetime(2023, 12, 2)),  # 2024 is a leap year
        ("12w", datetime(2024, 3, 1), datetime(2023, 12, 8)),
        ("36h", datetime(2024, 3, 1), datetime(2024, 2, 28, 12)),
        ("1M", datetime(2024, 3, 31), datetime(2024, 2, 29)),  # clipped to the leap day
        ("1M", datetime(2023, 3, 31), datetime(2023, 2, 28)),
        ("3M", datetime(2024, 5, 1), datetime(2024, 2, 1)),
    ],
)
def test_duration_ends_where_it_is_asked_to(text: str, end: datetime, start: datetime) -> None:
    duration = Duration.parse(text)
    assert duration.before(end) == start
    assert str(duration) == text


@pytest.mark.parametrize("bare", ["3", 3, " 12 "])
def test_a_bare_number_is_refused_saying_what_changed(bare: object) -> None:
    with pytest.raises(ValueError, match=r"bare number.*used to count monitoring periods"):
        Duration.parse(bare)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["0d", "90 days", "3m", "d", "-3d"])
def test_a_malformed_duration_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        Duration.parse(text)


@pytest.mark.parametrize(
    ("period", "partitions"),
    [
        ("hourly", dg.HourlyPartitionsDefinition(start_date="2024-02-01-00:00")),
        ("daily", dg.DailyPartitionsDefinition(start_date="2024-02-01")),
        ("weekly", dg.WeeklyPartitionsDefinition(start_date="2024-02-01")),
        ("monthly", dg.MonthlyPartitionsDefinition(start_date="2024-02-01")),
    ],
)
def test_periods_are_dagsters_partitions(period: str, partitions) -> None:
    """Floors, ends and keys agree with Dagster's time-window partitions (weeks start on Sunday,
    months on the 1st), through the leap day of 2024."""
    scales = TimeScales(period=period, drift_window=1)  # type: ignore[arg-type]
    moment = datetime(2024, 2, 29, 17, 45)
    key = partitions.get_partition_key_for_timestamp(moment.replace(tzinfo=UTC).timestamp())
    window = partitions.time_window_for_partition_key(key)
    start = scales.period_start(moment)
    assert start == window.start.replace(tzinfo=None)
    assert scales.period_end(start) == window.end.replace(tzinfo=None)
    assert scales.label(start) == key


def test_month_periods_follow_the_calendar() -> None:
    monthly = TimeScales(period="monthly", drift_window=1)
    starts = list(monthly.periods(datetime(2023, 12, 15), datetime(2024, 3, 1)))
    assert starts == [datetime(2023, 12, 1), datetime(2024, 1, 1), datetime(2024, 2, 1)]
    assert monthly.period_end(datetime(2024, 2, 1)) == datetime(2024, 3, 1)


def test_newest_complete_period() -> None:
    start = datetime(2024, 1, 1)
    assert DAILY.newest_complete_period(datetime(2024, 3, 12, 9), start) == datetime(2024, 3, 11)
    assert DAILY.newest_complete_period(datetime(2024, 3, 12), start) == datetime(2024, 3, 11)
    assert DAILY.newest_complete_period(datetime(2024, 1, 1, 5), start) is None
    monthly = TimeScales(period="monthly", drift_window=1)
    assert monthly.newest_complete_period(datetime(2024, 3, 12), start) == datetime(2024, 2, 1)


def test_training_window_ends_with_the_period_and_is_clipped_at_the_data_start() -> None:
    start, end = DAILY.training_window_of(datetime(2024, 3, 11))
    assert (start, end) == (datetime(2023, 12, 13), datetime(2024, 3, 12))
    data_start = datetime(2024, 1, 1)
    assert DAILY.training_window_of(datetime(2024, 3, 11), data_start)[0] == data_start
    assert not DAILY.can_train(datetime(2024, 3, 11), data_start)
    assert DAILY.can_train(datetime(2024, 3, 30), data_start)  # 2024-03-31 - 90d = 01-01
    assert DAILY.first_training_period(data_start) == datetime(2024, 3, 30)
    assert DAILY.first_training_window(data_start) == (data_start, datetime(2024, 3, 31))


def test_first_training_window_of_monthly_periods() -> None:
    monthly = TimeScales(period="monthly", drift_window=1)
    # January to March 2025 are 90 days; in 2024 (a leap year) they are 91
    assert monthly.first_training_window(datetime(2025, 1, 1)) == (
        datetime(2025, 1, 1),
        datetime(2025, 4, 1),
    )
    assert monthly.first_training_window(datetime(2024, 1, 1)) == (
        datetime(2024, 1, 2),
        datetime(2024, 4, 1),
    )
    assert monthly.training_periods() == 4  # the most months a 90-day window overlaps


class Counts:
    """Records per day, counted like a SQL COUNT over [start, end); remembers each call."""

    def __init__(self, per_day: dict[datetime, int]) -> None:
        self.per_day = per_day
        self.calls: list[tuple[datetime, datetime]] = []

    def __call__(self, start: datetime, end: datetime) -> int:
        self.calls.append((start, end))
        return sum(n for day, n in self.per_day.items() if start <= day < end)


def test_drift_window_is_the_trailing_periods_when_they_hold_enough_records() -> None:
    days = {datetime(2024, 3, 1) + timedelta(days=i): 100 for i in range(20)}
    window = DAILY.drift_window_of(datetime(2024, 3, 15), Counts(days), datetime(2024, 1, 1))
    assert window == (datetime(2024, 3, 9), datetime(2024, 3, 16))


def test_a_quiet_week_is_widened_a_period_at_a_time_to_enough_records() -> None:
    days = {datetime(2024, 3, 1) + timedelta(days=i): 40 for i in range(20)}
    counts = Counts(days)
    start, end = DAILY.drift_window_of(datetime(2024, 3, 15), counts, datetime(2024, 1, 1))
    assert end == datetime(2024, 3, 16)
    assert start == datetime(2024, 3, 3)  # 13 days of 40 = 520 >= 500; 12 days = 480
    assert [call[0] for call in counts.calls][-1] == start


def test_widening_stops_at_the_data_start() -> None:
    days = {datetime(2024, 3, 1) + timedelta(days=i): 10 for i in range(20)}
    data_start = datetime(2024, 3, 5)
    window = DAILY.drift_window_of(datetime(2024, 3, 8), Counts(days), data_start)
    assert window == (data_start, datetime(2024, 3, 9))


def test_schedule_as_cron_and_its_ticks() -> None:
    assert DAILY.schedule_cron() == "0 3 1 * *"
    assert TimeScales(schedule="none").schedule_cron() is None
    assert TimeScales(schedule="weekly", schedule_hour=5).schedule_cron() == "0 5 * * 0"
    # the tick of 1 March 03:00 falls in the day after February's last day
    assert DAILY.schedule_due(datetime(2024, 3, 1), datetime(2024, 3, 2))
    assert not DAILY.schedule_due(datetime(2024, 2, 29), datetime(2024, 3, 1))
    assert not DAILY.schedule_due(datetime(2024, 3, 2), datetime(2024, 3, 31))
    assert not TimeScales(schedule="none").schedule_due(datetime(2000, 1, 1), datetime(2030, 1, 1))
    custom = TimeScales(schedule="30 6 * * 1")  # Mondays 06:30
    assert custom.schedule_due(datetime(2024, 3, 4), datetime(2024, 3, 5))  # a Monday


@pytest.mark.parametrize(
    ("scales", "setting", "message"),
    [
        (TimeScales(training_window=Duration(5, "d")), "training_window", "shorter than the drift"),
        (TimeScales(schedule="0 3 * *"), "retrain_schedule", "cron"),
        (TimeScales(schedule="every day"), "retrain_schedule", "cron"),
        (TimeScales(period="monthly", drift_window=1, schedule="weekly"), "partition", "coarser"),
        (TimeScales(period="daily", schedule="0 */6 * * *"), "partition", "coarser"),
        (TimeScales(drift_max_records=100), "drift_max_records", "below drift_min_records"),
    ],
)
def test_scales_that_do_not_fit_together_name_the_setting(
    scales: TimeScales, setting: str, message: str
) -> None:
    with pytest.raises(TimeScaleError, match=message) as raised:
        scales.validate()
    assert raised.value.setting == setting


def test_fitting_scales_validate() -> None:
    assert DAILY.validate() is DAILY
    TimeScales(period="monthly", drift_window=1).validate()
    TimeScales(period="hourly", drift_window=24, schedule="0 * * * *").validate()
    TimeScales(schedule="none").validate()


def test_a_large_drift_window_is_sampled_uniformly_and_reproducibly() -> None:
    window = pd.DataFrame({"t": pd.date_range("2024-03-01", periods=7_000, freq="86s")})
    scales = TimeScales(drift_min_records=500, drift_max_records=1_000)
    sample = scales.drift_sample(len(window), "2024-03-07").take(window)
    assert abs(len(sample) - 1_000) <= 2 and sample["t"].is_monotonic_increasing
    again = scales.drift_sample(len(window), "2024-03-07").take(window)
    pd.testing.assert_frame_equal(sample, again)
    other = scales.drift_sample(len(window), "2024-03-08").take(window)
    assert not sample.index.equals(other.index)
    # uniform over the window: each of the seven days keeps about a seventh of the sample
    per_day = sample["t"].dt.day.value_counts()
    assert len(per_day) == 7 and per_day.min() > 130
    assert scales.drift_sample(900, "2024-03-07").take(window.head(900)).equals(window.head(900))
    assert TimeScales(drift_max_records=0).drift_sample(7_000, "x").take(window).equals(window)


@pytest.mark.parametrize("sources", [2, 3, 7, 24])
def test_records_arriving_round_robin_are_sampled_alike(sources: int) -> None:
    """A fixed stride of 7 would read one of 7 interleaved sources only; the sample keeps
    every residue class of positions at the same rate."""
    sample = WindowSample.of(700_000, 100_000, "2024-03-07")
    kept = sample.keeps(np.arange(700_000))
    per_source = np.bincount(np.arange(700_000)[kept] % sources, minlength=sources)
    expected = kept.sum() / sources
    assert np.all(np.abs(per_source - expected) < 0.01 * expected)
