"""The demo's printed report: the period table and the events' onsets it measures from."""

from __future__ import annotations

from retraining_assets.core.demo import DEMO_EVENTS, DemoStream
from retraining_assets.demo.report import event_onsets, format_table, summary_row
from retraining_assets.demo.simulation import PeriodOutcome


def test_the_demo_table_fits_120_columns_and_shows_warnings_as_warnings() -> None:
    outcome = PeriodOutcome("2026-02-08", None)
    outcome.checks = {"schema": True, "categorical_domains": False, "non_empty": True}
    outcome.metadata = {
        "current_data": {"dagster/row_count": 1190},
        "drift_report": {"drifted_features": ["income", "credit_score", "loan_amount", "channel"]},
        "model_evaluation": {
            "decision": "pending_approval",
            "best_candidate": "random_forest",
            "candidate_value": 0.811,
            "champion_value": 0.803,
            "lift": "+1.00%",
        },
    }
    failed = PeriodOutcome("2026-02-15", None)
    failed.checks = {"non_empty": False, "null_rates": False}
    rows = [summary_row(outcome), summary_row(failed)]
    assert rows[0]["data checks"] == "warn categorical_domains"
    assert rows[1]["data checks"] == "FAIL non_empty; warn null_rates"
    assert rows[0]["decision"] == "pending"
    lines = format_table([row | {"retrain because": "drift,volume,performance"} for row in rows])
    assert max(len(line) for line in lines.splitlines()) <= 120
    assert lines.splitlines()[1].startswith("2026-02-08  1,190")  # dates and counts kept whole


def test_the_demo_measures_reactions_from_the_events_onsets_on_the_12th() -> None:
    stream = DemoStream()
    onsets = event_onsets(stream)
    assert [name for name, _, _ in onsets] == [e.name for e in DEMO_EVENTS if e.kind != "stable"]
    assert all(onset.day == 12 for _, _, onset in onsets)
    assert [onset for _, _, onset in onsets] == sorted(onset for _, _, onset in onsets)
