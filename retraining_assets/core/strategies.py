"""How a candidate that passed the gate reaches traffic: the one list of rollout strategies
(the settings' type, the rollout plan's field, the CLI's choices)."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["STRATEGIES", "Strategy"]


class Strategy(StrEnum):
    IMMEDIATE = "immediate"
    CANARY = "canary"
    GRADUAL = "gradual"
    AB = "ab"


STRATEGIES: tuple[str, ...] = tuple(strategy.value for strategy in Strategy)
