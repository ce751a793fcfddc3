"""The backtest replays the demo stream through the production policies, prequentially."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retraining_assets.core.backtest import (
    POLICIES,
    BacktestError,
    BacktestResult,
    backtest_file,
    run_backtest,
)
from retraining_assets.core.demo import (
    ABRUPT,
    CONCEPT,
    SPEC,
    STABLE,
    TARGET,
    TIME_COLUMN,
    DemoStream,
)
from retraining_assets.settings import load_settings

FAMILIES = ("xgboost",)
STREAM = DemoStream(rows_per_month=400, months=27, end_month=pd.Timestamp("2026-10-01"))
ROW_KEYS = {
    "period",
    "rows",
    "serving_version",
    "serving_family",
    "serving_window",
    "metric",
    "skipped",
    "retrained",
    "reasons",
    "decision",
    "lift",
    "alarm",
    "drift_score",
    "paged",
    "baseline_metric",
    "estimated_metric",
}


def months(*offsets: int) -> pd.DataFrame:
    return pd.concat([STREAM.generate(offset) for offset in offsets], ignore_index=True)


def stable(n: int = 5) -> pd.DataFrame:
    """``n`` months of the stable regime: cheap inputs for the input and rule tests."""
    assert n - 1 <= STABLE.last_offset
    return months(*range(n))


def backtest(frame: pd.DataFrame, **options) -> BacktestResult:
    settings = options.pop("settings", None) or load_settings()
    return run_backtest(frame, SPEC, settings=settings, families=FAMILIES, **options)


@pytest.fixture(scope="module")
def result() -> BacktestResult:
    """The whole 27-month stream, monthly, window 3: 24 scored months."""
    return backtest(months(*range(STREAM.months)))


def test_json_has_the_exact_schema(result: BacktestResult) -> None:
    data = json.loads(result.to_json())
    assert set(data) == {"metric", "higher_is_better", "periods", "settings", "policies"}
    assert (data["metric"], data["higher_is_better"], data["periods"]) == ("accuracy", True, 24)
    # without the new options: today's protocol (monthly, 3 periods, the period's own drift)
    assert data["settings"] == {"period": "month", "training_window": "3M", "drift_window": 1,
                                "drift_min_records": 0, "schedule": "none",
                                "drift_verdict": "weighted", "drift_reference": "training",
                                "drift_notify": "onset", "label_delay": "0"}  # fmt: skip
    assert set(data["policies"]) == set(POLICIES) == {"auto", "monthly", "static", "always"}
    for policy in data["policies"].values():
        assert set(policy) == {"mean_metric", "retrains", "promotions", "skipped_periods",
                               "promotions_at", "retrains_at", "pages", "alarm_quality",
                               "rows"}  # fmt: skip
        assert len(policy["rows"]) == 24
        assert all(set(row) == ROW_KEYS for row in policy["rows"])
        assert [row["period"] for row in policy["rows"]] == [
            STREAM.partition_key(offset) for offset in range(3, STREAM.months)
        ]
        # accuracy pooled over every scored row: each period weighs by its rows
        rows = policy["rows"]
        weighted = sum(row["metric"] * row["rows"] for row in rows) / sum(r["rows"] for r in rows)
        assert policy["mean_metric"] == pytest.approx(weighted)
        assert policy["retrains_at"] == [row["period"] for row in rows if row["retrained"]]
        assert policy["promotions_at"] == [r["period"] for r in rows if r["decision"] == "promote"]
        assert policy["promotions"] == 1 + len(policy["promotions_at"])
        assert all(row["decision"] in (None, "promote", "pending_approval", "reject")
                   for row in policy["rows"])  # fmt: skip


def test_no_model_scores_a_period_it_was_trained_on(result: BacktestResult) -> None:
    for policy in result.policies.values():
        for row in policy.rows:
            first, last = row.serving_window
            assert first <= last < row.period
        # a promotion at p puts a model trained on the window ending with p in service at p + 1
        for before, after in zip(policy.rows, policy.rows[1:], strict=False):
            if before.decision == "promote":
                assert after.serving_window[1] == before.period
            else:
                assert after.serving_version == before.serving_version


def test_static_never_retrains(result: BacktestResult) -> None:
    static = result.policies["static"]
    assert (static.retrains, static.promotions) == (0, 1)
    assert {row.serving_version for row in static.rows} == {1}
    assert all(row.decision is None and row.reasons == () for row in static.rows)


def test_always_retrains_and_promotes_every_period(result: BacktestResult) -> None:
    always = result.policies["always"]
    assert always.retrains == result.periods
    assert always.promotions == result.periods + 1  # the first model counts once
    assert all(row.retrained and row.decision == "promote" for row in always.rows)
    assert all(row.serving_window[1] == before.period
               for before, row in zip(always.rows, always.rows[1:], strict=False))  # fmt: skip


def test_auto_retrains_after_the_concept_drift_and_beats_static(result: BacktestResult) -> None:
    auto, static = result.policies["auto"], result.policies["static"]
    concept = STREAM.partition_key(CONCEPT.first_offset)
    after = [row for row in auto.rows if row.period >= concept]
    causes = {reason.split(":")[0] for row in after if row.retrained for reason in row.reasons}
    assert causes & {"drift", "performance", "volume"}
    assert any(row.decision == "promote" for row in after)
    # the model serving at the end learned the new concept
    assert auto.rows[-1].serving_window[1] >= concept
    assert auto.mean_metric > static.mean_metric
    # the gate kept auto well below one promotion per period
    assert auto.promotions < result.policies["always"].promotions / 2


def test_auto_decisions_come_from_the_retrain_policy(result: BacktestResult) -> None:
    for row in result.policies["auto"].rows:
        assert row.retrained == bool(row.reasons)
        assert (row.decision is not None) == row.retrained
        assert all(r.split(":")[0] in {"drift", "volume", "performance"} for r in row.reasons)


def test_volume_counts_records_since_the_last_training() -> None:
    # with drift and performance out of reach, only volume remains: 400 rows a month and a
    # threshold of 1,000 retrain every third month, counted from the last training
    settings = load_settings(psi_alert=50, psi_warning=50, wasserstein_threshold=50,
                             jensen_shannon_threshold=1, unseen_share_threshold=1,
                             ks_significance=1e-12, performance_degradation=0.99)  # fmt: skip
    auto = backtest(stable(9), settings=settings, policies=("auto",)).policies["auto"]
    assert [row.retrained for row in auto.rows] == [False, False, True, False, False, True]
    assert all(r.startswith("volume: ") for row in auto.rows for r in row.reasons)


def test_schedule_retrains_every_month_when_enabled() -> None:
    auto = backtest(stable(5), policies=("auto",), schedule="monthly").policies["auto"]
    assert all(any(r.startswith("schedule: ") for r in row.reasons) for row in auto.rows)


def test_monthly_policy_retrains_on_the_schedule_alone_with_the_gate(
    result: BacktestResult,
) -> None:
    monthly = result.policies["monthly"]
    assert monthly.retrains == result.periods  # monthly periods: the schedule is due after each
    for row in monthly.rows:
        assert row.reasons == ("schedule: the periodic retraining is due",)
        assert row.decision in ("promote", "pending_approval", "reject")
    assert monthly.promotions < result.policies["always"].promotions


def test_small_periods_have_no_metric_of_their_own_but_count_in_the_mean() -> None:
    frame = stable(6)
    month = frame[TIME_COLUMN].dt.to_period("M") == frame[TIME_COLUMN].iloc[-1].to_period("M")
    small = frame[~month | (frame.index.isin(frame[month].index[:10]))]
    result = backtest(small)
    for policy in result.policies.values():
        last = policy.rows[-1]
        assert (last.rows, last.metric, policy.skipped_periods) == (10, None, 1)
        assert "fewer than 30" in last.skipped
        assert policy.scored_rows == sum(row.rows for row in policy.rows)
        # pooled accuracy = correct rows / rows: the 10-row month adds 0 to 10 correct rows
        correct = sum(row.metric * row.rows for row in policy.rows[:-1])
        small_correct = policy.mean_metric * policy.scored_rows - correct
        assert small_correct == pytest.approx(round(small_correct), abs=1e-6)
        assert 0 <= round(small_correct) <= 10


def test_daily_periods_too_small_for_a_metric_still_give_a_mean() -> None:
    """400 rows a month are 13 a day: no day has a metric of its own, the pool has all."""
    result = backtest(stable(4), period="day", window_days=60, policies=("static",))
    static = result.policies["static"]
    assert static.skipped_periods == result.periods
    assert static.mean_metric is not None and static.mean_metric > 0.6
    assert static.scored_rows == sum(row.rows for row in static.rows) > 0
    assert result.to_dict()["settings"]["training_window"] == "60d"


def test_an_untrainable_later_window_keeps_the_model_and_says_why() -> None:
    """Issue 13: a 1-row month after an empty month must not abort the backtest."""
    frame = stable(5)
    empty = frame[TIME_COLUMN] >= STREAM.month_start(3)
    one_row = frame[empty].iloc[[-1]]  # a single row in month 4, month 3 empty
    result = backtest(pd.concat([frame[~empty], one_row]), window=1, policies=("always",))
    always = result.policies["always"]
    empty_month, last_month = always.rows[-2], always.rows[-1]
    assert (empty_month.rows, last_month.rows) == (0, 1)
    for row in (empty_month, last_month):
        assert not row.retrained and row.decision is None
        assert any(r.startswith("not retrained: the training window") for r in row.reasons)
    assert "single class (none)" in empty_month.reasons[-1]
    assert "(1 rows)" in last_month.reasons[-1]
    assert always.rows[-1].serving_version == always.rows[-2].serving_version
    assert len([note for note in result.notes if "single class" in note]) == 2


def test_single_class_period_skips_auc_but_not_accuracy() -> None:
    frame = stable(5)
    last = frame[TIME_COLUMN] >= STREAM.month_start(4)
    frame = frame[~last | (frame[TARGET].astype(str) == "0")]
    auc = backtest(frame, settings=load_settings(primary_metric="roc_auc"), policies=("static",))
    row = auc.policies["static"].rows[-1]
    assert (row.metric, auc.policies["static"].skipped_periods) == (None, 1)
    assert "roc_auc is undefined" in row.skipped
    accuracy = backtest(frame, policies=("static",)).policies["static"]
    assert accuracy.skipped_periods == 0 and accuracy.rows[-1].metric is not None


def test_rows_out_of_order_are_sorted_and_noted() -> None:
    frame = stable(5)
    shuffled = frame.sample(frac=1.0, random_state=3).reset_index(drop=True)
    ordered, reordered = backtest(frame), backtest(shuffled)
    assert any(f"not in '{TIME_COLUMN}' order" in note for note in reordered.notes)
    assert not ordered.notes
    assert reordered.to_dict() == ordered.to_dict()


def test_progress_reports_every_period() -> None:
    calls: list[tuple[int, int, str]] = []
    backtest(stable(5), progress=lambda done, total, message: calls.append((done, total, message)))
    assert [(done, total) for done, total, _ in calls] == [(1, 3), (2, 3), (3, 3)]
    assert calls[-1][2] == f"month {STREAM.partition_key(4)}"


def test_plot_writes_a_png(result: BacktestResult, tmp_path: Path) -> None:
    path = result.plot(tmp_path / "plots" / "backtest.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- bad input -------------------------------------------------------------------------------
def test_too_few_periods() -> None:
    with pytest.raises(BacktestError, match=r"spans 3 months .* at least window \+ 1 = 4"):
        backtest(stable(3))


def test_period_without_labels() -> None:
    frame = stable(5)
    frame[TARGET] = frame[TARGET].astype("Int64")
    frame.loc[frame[TIME_COLUMN] >= STREAM.month_start(4), TARGET] = None
    with pytest.raises(BacktestError, match=f"period {STREAM.partition_key(4)} has no labels"):
        backtest(frame)


def test_some_unlabelled_rows_are_left_out() -> None:
    frame = stable(5)
    frame[TARGET] = frame[TARGET].astype("Int64")
    frame.loc[frame.index[-5:], TARGET] = None
    result = backtest(frame, policies=("static",))
    assert any("5 rows with a null" in note for note in result.notes)
    last_month = int((frame[TIME_COLUMN] >= STREAM.month_start(4)).sum())
    assert result.policies["static"].rows[-1].rows == last_month - 5


def test_single_class_in_the_training_window_names_the_period() -> None:
    frame = stable(5)
    frame.loc[frame[TIME_COLUMN] < STREAM.month_start(3), TARGET] = 0
    window = f"{STREAM.partition_key(0)} to {STREAM.partition_key(2)}"
    with pytest.raises(BacktestError, match=f"training window {window} has a single class"):
        backtest(frame)


def test_missing_column_is_named() -> None:
    with pytest.raises(BacktestError, match=r"missing columns \['income'\]"):
        backtest(stable(5).drop(columns=["income"]))


def test_unparseable_time_column_is_named() -> None:
    frame = stable(5)
    frame[TIME_COLUMN] = frame[TIME_COLUMN].astype(str)
    frame.loc[7, TIME_COLUMN] = "not a time"
    with pytest.raises(BacktestError, match=f"time column '{TIME_COLUMN}'"):
        backtest(frame)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"period": "quarter"}, "period must be one of"),
        ({"window": 0}, "window must be at least 1"),
        ({"schedule": "hourly"}, "schedule must be monthly or none"),
        ({"period": "day", "window_days": 5, "drift_window": 7}, "shorter than the drift window"),
        ({"policies": ("auto", "sometimes")}, "policies must be distinct names"),
        ({"settings": load_settings(primary_metric="rmse")}, "'rmse' does not apply"),
    ],
)
def test_bad_arguments(options: dict, message: str) -> None:
    with pytest.raises(BacktestError, match=message):
        backtest(stable(5), **options)


def test_backtest_file_infers_the_spec_and_drops_columns(tmp_path: Path) -> None:
    path = tmp_path / "records.csv.gz"
    stable(5).to_csv(path, index=False)
    result = backtest_file(path, TIME_COLUMN, TARGET, drop=["customer_id"], families=FAMILIES)
    assert result.periods == 2
    assert result.policies["static"].rows[0].metric > 0.6
    with pytest.raises(BacktestError, match=r"missing columns \['nope'\]"):
        backtest_file(path, TIME_COLUMN, "nope")
    with pytest.raises(BacktestError, match=r"missing\.csv"):
        backtest_file(tmp_path / "missing.csv", TIME_COLUMN, TARGET)


def test_weekly_periods_are_consecutive_calendar_weeks() -> None:
    result = backtest(stable(2), period="week", policies=("static", "always"))
    labels = pd.to_datetime([row.period for row in result.policies["always"].rows])
    assert (labels.dayofweek == 6).all()  # weeks start on Sunday, as Dagster's partitions
    assert (np.diff(labels.to_numpy()) == np.timedelta64(7, "D")).all()
    assert result.policies["always"].promotions == result.periods + 1


def test_a_lasting_shift_the_last_training_acted_on_is_not_a_reason_again() -> None:
    # as the sensor does (run tag retrain/drifted_features): after a drift-triggered training,
    # the same features still drifting (a shift the champion survives) retrain no more
    settings = load_settings(volume_trigger=10**9, performance_degradation=0.99)
    first = ABRUPT.first_offset
    auto = backtest(months(*range(first - 3, first + 5)), settings=settings,
                    policies=("auto",)).policies["auto"]  # fmt: skip
    drifted = [
        frozenset(reason.removeprefix("drift: drift in ").split(", "))
        for row in auto.rows
        if row.retrained
        for reason in row.reasons
        if reason.startswith("drift: ")
    ]
    assert drifted, "the abrupt shift must trigger a drift retraining"
    assert all(not later <= earlier for earlier, later in itertools.pairwise(drifted))
    assert sum(row.retrained for row in auto.rows) < len(auto.rows)
