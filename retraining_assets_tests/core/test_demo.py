import json
from itertools import pairwise

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from retraining_assets.core.demo import (
    ABRUPT,
    CONCEPT,
    DEMO_EVENTS,
    GRADUAL,
    SPEC,
    STABLE,
    DemoStream,
    last_complete_month,
)
from retraining_assets.core.schema import demo_records

FULL = DemoStream(end_month=pd.Timestamp("2026-10-01"))


def test_default_stream_ends_with_the_last_complete_month() -> None:
    assert last_complete_month(pd.Timestamp("2026-11-27")) == pd.Timestamp("2026-10-01")
    assert last_complete_month(pd.Timestamp("2026-01-01")) == pd.Timestamp("2025-12-01")
    stream = DemoStream()
    assert stream.month_start(stream.months - 1) == last_complete_month()
    assert stream.months >= 24


def test_months_are_deterministic_realistic_and_fit_the_spec() -> None:
    month = FULL.generate(3)
    pd.testing.assert_frame_equal(month, FULL.generate(3))
    assert 4750 <= len(month) <= 5250
    assert SPEC.problems(month) == []
    assert len(SPEC.numeric_features) == 10 and len(SPEC.categorical_features) == 4
    assert month["event_time"].dt.to_period("M").nunique() == 1
    assert 0.2 < month["defaulted"].mean() < 0.5
    assert month["customer_id"].is_unique


def test_events_are_documented_data_in_order() -> None:
    assert [event.kind for event in DEMO_EVENTS] == [
        "stable",
        "gradual_covariate",
        "abrupt_covariate",
        "concept",
    ]
    assert STABLE.last_offset < GRADUAL.first_offset < ABRUPT.first_offset < CONCEPT.first_offset
    assert CONCEPT.first_offset < FULL.months
    assert set(GRADUAL.features + ABRUPT.features) <= set(SPEC.features)


def _mean(offset: int, column: str) -> float:
    return float(FULL.generate(offset)[column].mean())


def test_stable_stretch_does_not_move() -> None:
    for column in SPEC.numeric_features:
        means = [
            _mean(offset, column) for offset in range(STABLE.first_offset, STABLE.last_offset + 1)
        ]
        assert np.ptp(means) < 0.1 * (abs(np.mean(means)) + 1), column


def test_gradual_shift_rises_month_by_month_then_stays() -> None:
    incomes = [
        _mean(offset, "income") for offset in range(GRADUAL.first_offset, GRADUAL.last_offset + 2)
    ]  # the first month rises from its 12th on, the last month ends the rise on its 12th
    assert all(later > earlier for earlier, later in pairwise(incomes[:-1]))
    assert incomes[-2] > 1.25 * incomes[0]
    assert abs(incomes[-1] - incomes[-2]) < 0.03 * incomes[-2]


def _around(event) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows of the event's month and the month before, split at the event's onset."""
    rows = pd.concat([FULL.generate(event.first_offset - 1), FULL.generate(event.first_offset)])
    onset = FULL.onset(event)
    return rows[rows["event_time"] < onset], rows[rows["event_time"] >= onset]


def test_events_start_on_the_12th_of_their_month() -> None:
    for event in (GRADUAL, ABRUPT, CONCEPT):
        onset = FULL.onset(event)
        assert onset == FULL.month_start(event.first_offset) + pd.Timedelta(days=11)
        assert onset.day == 12 and onset == onset.normalize()
    assert FULL.onset(STABLE) == FULL.first_month


def test_abrupt_shift_happens_at_its_onset() -> None:
    before, after = _around(ABRUPT)
    assert FULL.onset(ABRUPT) - before["event_time"].max() < pd.Timedelta(hours=2)
    assert "partner_api" not in set(before["channel"])
    assert (after["channel"] == "partner_api").mean() > 0.3
    assert after["credit_score"].mean() < before["credit_score"].mean() - 30
    assert after["loan_amount"].median() > 1.4 * before["loan_amount"].median()


def test_concept_drift_changes_the_label_relation_not_the_features() -> None:
    before, after = _around(CONCEPT)
    for column in ("utilization", "debt_ratio", "credit_score"):
        assert abs(before[column].mean() - after[column].mean()) < 0.05 * abs(before[column].mean())

    def south_gap(frame: pd.DataFrame) -> float:
        south = frame["region"] == "south"
        return frame.loc[south, "defaulted"].mean() - frame.loc[~south, "defaulted"].mean()

    assert abs(south_gap(before)) < 0.05 and south_gap(after) > 0.25
    assert before["utilization"].corr(before["defaulted"]) > 0.15
    assert abs(after["utilization"].corr(after["defaulted"])) < 0.05


def test_export_writes_the_records_and_the_events_beside_them(tmp_path) -> None:
    stream = DemoStream(months=3, rows_per_month=200, end_month=pd.Timestamp("2026-10-01"))
    csv, events = stream.export(tmp_path / "out" / "stream.csv")
    assert events == tmp_path / "out" / "stream.events.json"
    records = pd.read_csv(csv, parse_dates=["event_time"])
    assert list(records.columns) == ["event_time", "customer_id", *SPEC.features, "defaulted"]
    expected = stream.records()
    assert len(records) == len(expected)
    assert (records["event_time"] == expected["event_time"]).all()
    assert (records["defaulted"] == expected["defaulted"]).all()
    listed = json.loads(events.read_text())
    assert [e["kind"] for e in listed] == [e.kind for e in DEMO_EVENTS]
    assert listed[3] == {
        "name": "recession",
        "kind": "concept",
        "onset": f"{stream.onset(CONCEPT):%Y-%m-%d}",
        "features": [],
    }
    assert listed[2]["features"] == list(ABRUPT.features)
    with pytest.raises(ValueError, match="exported as CSV"):
        stream.export(tmp_path / "stream.parquet")


def test_seeding_is_idempotent_and_new_months_arrive(
    platform_db: sa.Engine, small_stream: DemoStream
) -> None:
    assert small_stream.seed_database(platform_db, through=2) == [0, 1, 2]
    assert small_stream.seed_database(platform_db, through=2) == []
    with platform_db.connect() as connection:
        rows = connection.execute(sa.select(sa.func.count()).select_from(demo_records)).scalar()
    assert rows == sum(len(small_stream.generate(offset)) for offset in range(3))
    assert small_stream.months_present(platform_db) == 3
    assert small_stream.append_next_month(platform_db) == 3
    assert small_stream.months_present(platform_db) == 4
    # beyond the stream's last month the final regime simply continues
    assert small_stream.seed_database(platform_db) == [4, 5]
    assert small_stream.append_next_month(platform_db) == 6
