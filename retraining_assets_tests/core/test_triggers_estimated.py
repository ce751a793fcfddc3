"""The estimated-degradation cause uses the live metric's rule."""

from retraining_assets.core.triggers import RetrainPolicy, Signals


def test_estimated_degradation_uses_the_same_threshold_as_the_live_metric():
    policy = RetrainPolicy(degradation=0.1)
    for value, fires in ((0.72, True), (0.73, False)):  # baseline 0.8: limit at 0.72
        live = policy.decide(Signals(True, live_metric=value, baseline_metric=0.8))
        estimated = policy.decide(Signals(True, estimated_metric=value, baseline_metric=0.8))
        assert live.retrain is estimated.retrain is fires
    decision = policy.decide(Signals(True, estimated_metric=0.5, baseline_metric=0.8))
    assert decision.causes == ["estimated_degradation"]
    assert "estimated metric 0.5" in decision.summary()
    lower = policy.decide(
        Signals(True, estimated_metric=1.2, baseline_metric=1.0, higher_is_better=False)
    )
    assert lower.causes == ["estimated_degradation"]
