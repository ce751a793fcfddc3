"""How a candidate that passed the gate reaches traffic: the one list of rollout strategies
(the settings' type, the rollout plan's field, the CLI's choices) and the one rule for a
rollout's shares (the settings' ``rollout_steps`` and every ``RolloutPlan``)."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

__all__ = ["STRATEGIES", "Strategy", "share_problem"]


class Strategy(StrEnum):
    IMMEDIATE = "immediate"
    CANARY = "canary"
    GRADUAL = "gradual"
    AB = "ab"


STRATEGIES: tuple[str, ...] = tuple(strategy.value for strategy in Strategy)


def share_problem(shares: Sequence[float]) -> tuple[int, str] | None:
    """The first share that breaks the rule (each in (0, 1], each above the one before): its
    index and what is wrong; None when every share is fine."""
    previous = 0.0
    for index, share in enumerate(shares):
        if not 0.0 < share <= 1.0:
            return index, f"must be in (0, 1], got {share}"
        if share <= previous:
            return index, f"must be greater than the previous step's ({share} <= {previous})"
        previous = share
    return None
