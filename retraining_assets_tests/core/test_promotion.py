import pytest

from retraining_assets.core.promotion import Evidence, PromotionPolicy, Verdict

POLICY = PromotionPolicy(min_lift=0.05)


def _evidence(**values) -> Evidence:
    base = dict(
        metric="accuracy",
        higher_is_better=True,
        candidate_version=2,
        candidate=0.84,
        champion_version=1,
        champion=0.80,
        lift=0.05,
        ci_low=0.01,
        ci_high=0.07,
    )
    return Evidence(**{**base, **values})


def test_first_model_is_promoted_when_it_beats_the_trivial_baseline() -> None:
    decision = POLICY.decide(
        _evidence(champion=None, champion_version=None, lift=None, ci_low=None, baseline=0.63)
    )
    assert decision.verdict is Verdict.PROMOTE and decision.promote
    assert "first model" in decision.reason


def test_first_model_that_does_not_beat_the_baseline_is_rejected() -> None:
    decision = POLICY.decide(_evidence(champion=None, lift=None, candidate=0.60, baseline=0.63))
    assert decision.verdict is Verdict.REJECT and "trivial baseline" in decision.reason
    assert "RETRAIN_PRIMARY_METRIC" not in decision.reason  # balanced enough: no hint


@pytest.mark.parametrize(("metric", "hint"), [("accuracy", True), ("f1", False)])
def test_on_imbalanced_classes_the_rejection_names_a_metric_that_can_judge(
    metric: str, hint: bool
) -> None:
    # 98.8% of one class: a model that always predicts it is as accurate as a useful one
    evidence = _evidence(metric=metric, champion=None, lift=None, candidate=0.988, baseline=0.988)
    decision = POLICY.decide(evidence)
    assert decision.verdict is Verdict.REJECT
    assert ("majority class scores 98.8%" in decision.reason) is hint
    assert ("RETRAIN_PRIMARY_METRIC=roc_auc" in decision.reason) is hint


@pytest.mark.parametrize(
    ("higher", "value", "floor", "verdict"),
    [
        (True, 0.7, 0.75, Verdict.REJECT),
        (True, 0.8, 0.75, Verdict.PROMOTE),
        (False, 12.0, 10.0, Verdict.REJECT),
        (False, 9.0, 10.0, Verdict.PROMOTE),
    ],
)
def test_first_model_floor_respects_the_metric_direction(higher, value, floor, verdict) -> None:
    evidence = _evidence(
        metric="m",
        higher_is_better=higher,
        candidate=value,
        champion=None,
        lift=None,
        baseline=None,
    )
    assert PromotionPolicy(floor=floor).decide(evidence).verdict is verdict


def test_real_significant_gain_promotes_automatically() -> None:
    decision = POLICY.decide(_evidence(lift=0.06, ci_low=0.02))
    assert decision.verdict is Verdict.PROMOTE and "CI excludes 0" in decision.reason


def test_large_but_uncertain_gain_needs_a_person() -> None:
    decision = POLICY.decide(_evidence(lift=0.08, ci_low=-0.01))
    assert decision.verdict is Verdict.PENDING and "CI includes 0" in decision.reason


def test_small_gain_needs_a_person() -> None:
    decision = POLICY.decide(_evidence(lift=0.02, ci_low=0.005))
    assert decision.verdict is Verdict.PENDING and "below 5%" in decision.reason


@pytest.mark.parametrize("lift", [0.0, -0.03])
def test_tie_or_loss_keeps_the_champion(lift: float) -> None:
    decision = POLICY.decide(_evidence(lift=lift, ci_low=-0.02))
    assert decision.verdict is Verdict.REJECT and "at least as good" in decision.reason


def test_exactly_the_minimum_lift_is_enough() -> None:
    assert POLICY.decide(_evidence(lift=0.05, ci_low=0.001)).verdict is Verdict.PROMOTE


def test_metric_that_could_not_be_computed_is_rejected() -> None:
    decision = POLICY.decide(_evidence(candidate=None))
    assert decision.verdict is Verdict.REJECT and "no accuracy for the candidate" in decision.reason


def test_decision_serialises_with_its_numbers() -> None:
    raw = POLICY.decide(_evidence(lift=0.06, ci_low=0.02)).to_dict()
    assert raw["verdict"] == "promote" and raw["lift"] == 0.06 and raw["champion_version"] == 1
