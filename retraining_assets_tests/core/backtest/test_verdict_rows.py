"""Every backtest row carries the drift verdict of its period; the verdict follows the setting."""

from __future__ import annotations

import pytest

from retraining_assets.core.backtest import BacktestResult, run_backtest
from retraining_assets.core.backtest.alarms import alarm_quality
from retraining_assets.core.demo import ABRUPT, SPEC, STABLE
from retraining_assets.core.triggers import relative_drop
from retraining_assets.settings import load_settings
from retraining_assets_tests.core.backtest.test_backtest import STREAM, months


def backtest(verdict: str, **update: object) -> BacktestResult:
    settings = load_settings().model_copy(update={"drift_verdict": verdict, **update})
    frame = months(*range(STABLE.last_offset - 2, ABRUPT.first_offset + 3))
    return run_backtest(frame, SPEC, settings=settings, families=("xgboost",))


@pytest.fixture(scope="module")
def univariate() -> BacktestResult:
    return backtest("univariate")


def test_rows_have_alarm_score_and_baseline(univariate: BacktestResult) -> None:
    assert univariate.settings["drift_verdict"] == "univariate"
    for policy in univariate.policies.values():
        for row in policy.rows:
            assert isinstance(row.alarm, bool) and row.drift_score is not None
            assert row.baseline_metric is not None
        assert policy.to_dict()["alarm_quality"] == alarm_quality(policy.rows, True)
    static = univariate.policies["static"].rows
    # static's reference never changes: one baseline, the first model's
    assert len({row.baseline_metric for row in static}) == 1
    # the abrupt covariate shift raises static's alarm from its onset month on
    abrupt = STREAM.partition_key(ABRUPT.first_offset + 1)
    assert all(row.alarm for row in static if row.period >= abrupt)
    # auto acts on the same alarm its rows report
    auto = univariate.policies["auto"].rows
    assert all(row.alarm for row in auto if any(r.startswith("drift") for r in row.reasons))


def test_the_backtest_honours_the_verdict_setting(univariate: BacktestResult) -> None:
    weighted = backtest("weighted")
    assert weighted.settings["drift_verdict"] == "weighted"
    plain = [r.drift_score for r in univariate.policies["static"].rows]
    scores = [r.drift_score for r in weighted.policies["static"].rows]
    assert scores != plain  # the weighted share, not the plain one
    assert all(0.0 <= s <= 1.0 for s in scores)


def test_the_backtest_gates_the_alarm_with_the_estimated_metric() -> None:
    # one month per drift window (no widening), so the gate's estimate is the row's; a 3%
    # limit, which the static model's estimate passes in some of its drifted months only
    limit = 0.03
    plain = backtest("univariate", drift_min_records=0)
    gated = backtest("estimated", drift_min_records=0, performance_degradation=limit)
    assert gated.settings["drift_verdict"] == "estimated"
    rows = list(zip(plain.policies["static"].rows, gated.policies["static"].rows, strict=True))
    assert any(g.alarm for _, g in rows) and any(p.alarm and not g.alarm for p, g in rows)
    for p, g in rows:
        assert g.drift_score == p.drift_score and g.estimated_metric is not None
        drop = relative_drop(g.estimated_metric, g.baseline_metric, gated.higher_is_better)
        assert g.alarm is (p.alarm and drop >= limit)


@pytest.mark.parametrize("drift_reference", ["validated", "training"])
def test_a_kept_champion_s_alarm_compares_with_the_window_it_was_judged_on(
    univariate: BacktestResult, drift_reference: str
) -> None:
    # an unreachable bar: auto retrains on the abrupt shift but keeps serving the first model
    kept = backtest("univariate", promotion_min_lift=100.0, drift_reference=drift_reference)
    assert kept.settings["drift_reference"] == drift_reference
    static, auto = kept.policies["static"].rows, kept.policies["auto"].rows
    assert {row.serving_version for row in auto} == {static[0].serving_version}
    first = next(i for i, row in enumerate(auto) if row.decision is not None)
    pairs = list(zip(static, auto, strict=True))
    # up to its first judgement (and its row), auto compares with the first model's window
    assert all(s.drift_score == a.drift_score for s, a in pairs[: first + 1])
    after = pairs[first + 1 :]
    if drift_reference == "training":  # the same model, the same reference: static's alarm
        assert all(s.alarm == a.alarm and s.drift_score == a.drift_score for s, a in after)
        return
    # from the judged window on, the drift the champion was judged on no longer counts (the
    # demo's later shifts still alarm): a smaller drifted share than static's, never larger
    assert any(a.drift_score < s.drift_score for s, a in after)
    assert all(a.drift_score <= s.drift_score for s, a in after)
    # static never retrains, so its reference and alarms do not depend on the setting
    assert [r.alarm for r in univariate.policies["static"].rows] == [s.alarm for s in static]


def test_static_s_lasting_alarm_pages_once_unless_every_period_is_asked_for(
    univariate: BacktestResult,
) -> None:
    """``static`` never changes its reference: its abrupt-shift alarm is one episode, mailed
    at its first month (and when a feature joins), not every month (``core.notify.paging``)."""
    static = univariate.policies["static"].rows
    first = next(i for i, row in enumerate(static) if row.alarm)
    assert static[first].paged and all(not r.paged for r in static if not r.alarm)
    assert univariate.policies["static"].pages < sum(bool(r.alarm) for r in static)
    assert univariate.policies["static"].to_dict()["pages"] == univariate.policies["static"].pages
    # the CLI's table shows both: the alarms and the mails they would have sent
    line = next(x for x in univariate.summary().splitlines() if x.startswith("static"))
    alarms = sum(bool(r.alarm) for r in static)
    assert line.split()[-2:] == [str(alarms), str(univariate.policies["static"].pages)]
    every = backtest("univariate", drift_notify="every").policies["static"].rows
    assert [r.paged for r in every] == [bool(r.alarm) for r in every]
