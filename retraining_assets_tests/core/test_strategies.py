"""The one rule for a rollout's shares, as the settings and a rollout plan both apply it."""

from __future__ import annotations

import pytest

from retraining_assets.core.rollout import RolloutPlan, RolloutPlanError
from retraining_assets.core.strategies import share_problem
from retraining_assets.settings import SettingsError, load_settings


@pytest.mark.parametrize(
    ("shares", "problem"),
    [
        ([0.05, 0.25, 1.0], None),
        ([1.0], None),
        ([0.0, 0.5], (0, "must be in (0, 1], got 0.0")),
        ([0.2, 1.5], (1, "must be in (0, 1], got 1.5")),
        ([0.5, 0.2], (1, "must be greater than the previous step's (0.2 <= 0.5)")),
        ([0.5, 0.5], (1, "must be greater than the previous step's (0.5 <= 0.5)")),
    ],
)
def test_each_share_is_in_range_and_above_the_one_before(
    shares: list[float], problem: tuple[int, str] | None
) -> None:
    assert share_problem(shares) == problem


def test_the_settings_and_a_plan_refuse_the_same_shares_with_the_same_reason() -> None:
    with pytest.raises(SettingsError, match=r"RETRAIN_ROLLOUT_STEPS.*share 2 of .* greater than"):
        load_settings(rollout_steps=[0.5, 0.2])
    steps = [{"share": 0.5}, {"share": 0.2}]
    with pytest.raises(RolloutPlanError, match=r"steps\[1\]\.share must be greater than"):
        RolloutPlan.from_dict({"strategy": "gradual", "steps": steps})
    with pytest.raises(SettingsError, match="at least one step"):
        load_settings(rollout_steps=[])
