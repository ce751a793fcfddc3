"""Rollout plans: the strategy (immediate, canary, gradual, A/B), its steps, and what is
compared; parsed from the settings with errors that name the field."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any, Literal

from retraining_assets.core.strategies import Strategy, share_problem


class RolloutPlanError(ValueError):
    """A rollout plan in the settings is invalid; the message names the field."""


@dataclass(frozen=True)
class RolloutStep:
    """One traffic level: the challenger's share, and how long/how much data before moving on.

    ``min_samples`` counts outcomes in *each* arm that has traffic (the challenger's is the
    binding one at small shares).
    """

    share: float
    min_hours: float = 0.0
    min_samples: int = 0


_STEP_KEYS = {"share", "min_hours", "min_samples"}
AB_SHARE = 0.5
"""An A/B test's challenger share: an even split gives the most power for a given amount of
traffic (the first step of a ramp is a canary's share, not a test's)."""
_DEFAULT_SHARE = {Strategy.CANARY: 0.05, Strategy.AB: AB_SHARE}


@dataclass(frozen=True)
class RolloutPlan:
    """How a challenger is rolled out and judged.

    * ``immediate``: one step at 100 %.
    * ``canary``: one small step (default 5 %) guarded by the rollback test, then promotion.
    * ``gradual``: increasing shares, each held for ``min_hours`` and ``min_samples``.
    * ``ab``: a fixed split (default 50 %) until the challenger wins or ``max_samples`` is hit.

    ``promote_rule``: ``"not_worse"`` (default except ``ab``) promotes once the final step's
    minimum duration and sample are reached and the challenger is not significantly worse
    (power comes from ``min_samples``); ``"better"`` (default for ``ab``) promotes only when the
    challenger is significantly better in the metric's good direction.
    """

    strategy: Strategy
    steps: tuple[RolloutStep, ...]
    metric: Literal["binary", "continuous"] = "binary"
    higher_is_better: bool = True
    promote_rule: Literal["not_worse", "better"] = "not_worse"
    sequential: bool = True
    alpha: float = 0.05
    tau: float = 0.1
    max_samples: int | None = None
    champion: str = "champion"
    challenger: str = "challenger"

    def __post_init__(self) -> None:
        object.__setattr__(self, "strategy", _choice("strategy", self.strategy, Strategy))
        object.__setattr__(self, "steps", tuple(self.steps))
        if not self.steps:
            raise RolloutPlanError("steps: a plan needs at least one step")
        if (problem := share_problem([step.share for step in self.steps])) is not None:
            index, message = problem
            raise RolloutPlanError(f"steps[{index}].share {message}")
        for i, step in enumerate(self.steps):
            if step.min_hours < 0 or step.min_samples < 0:
                raise RolloutPlanError(f"steps[{i}]: min_hours and min_samples must be >= 0")
        if self.strategy is Strategy.IMMEDIATE and self.steps != (RolloutStep(1.0),):
            raise RolloutPlanError("immediate: the only step is share 1.0")
        if self.strategy in (Strategy.CANARY, Strategy.AB) and len(self.steps) != 1:
            raise RolloutPlanError(f"{self.strategy}: exactly one step (a fixed share)")
        _choice("metric", self.metric, ("binary", "continuous"))
        _choice("promote_rule", self.promote_rule, ("not_worse", "better"))
        if not 0.0 < self.alpha < 0.5:
            raise RolloutPlanError(f"alpha must be in (0, 0.5), got {self.alpha}")
        if not self.tau > 0:
            raise RolloutPlanError(f"tau must be > 0, got {self.tau}")
        if self.max_samples is not None and self.max_samples <= 0:
            raise RolloutPlanError(f"max_samples must be > 0, got {self.max_samples}")
        if not self.champion or self.champion == self.challenger:
            raise RolloutPlanError("champion and challenger must be distinct non-empty names")

    @classmethod
    def from_dict(cls, settings: Mapping[str, Any]) -> RolloutPlan:
        """Parse ``{"strategy": "gradual", "steps": [{"share": 0.05, ...}, ...], ...}``.

        ``canary`` and ``ab`` take ``share``, ``min_hours`` and ``min_samples`` at the top
        level instead of ``steps``. Unknown keys are errors (a typo must not silently fall
        back to a default).
        """
        if not isinstance(settings, Mapping):
            raise RolloutPlanError(f"a rollout plan must be a mapping, got {type(settings)}")
        raw = dict(settings)
        if "strategy" not in raw:
            raise RolloutPlanError("strategy is required: immediate, canary, gradual or ab")
        strategy = _choice("strategy", raw.pop("strategy"), Strategy)
        common = {f for f in cls.__dataclass_fields__ if f not in ("strategy", "steps")}
        allowed = common | ({"steps"} if strategy is Strategy.GRADUAL else set())
        if strategy in (Strategy.CANARY, Strategy.AB):
            allowed |= _STEP_KEYS
        unknown = sorted(set(raw) - allowed)
        if unknown:
            raise RolloutPlanError(f"{strategy}: unknown keys {unknown}; allowed {sorted(allowed)}")
        if strategy is Strategy.GRADUAL:
            if not isinstance(raw.get("steps"), list | tuple) or not raw["steps"]:
                raise RolloutPlanError("gradual: steps must be a non-empty list of steps")
            steps = [_parse_step(f"steps[{i}]", s) for i, s in enumerate(raw.pop("steps"))]
        elif strategy is Strategy.IMMEDIATE:
            steps = [RolloutStep(1.0)]
        else:
            step = {k: raw.pop(k) for k in _STEP_KEYS if k in raw}
            step.setdefault("share", _DEFAULT_SHARE[strategy])
            steps = [_parse_step(str(strategy), step)]
            if strategy is Strategy.AB:
                raw.setdefault("promote_rule", "better")
        typed = {k: _typed(k, v) for k, v in raw.items()}
        return cls(strategy=strategy, steps=tuple(steps), **typed)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["strategy"] = str(self.strategy)
        out["steps"] = [asdict(s) for s in self.steps]
        return out

    @property
    def final_step(self) -> int:
        return len(self.steps) - 1

    def _check_step(self, step: int) -> RolloutStep:
        if not 0 <= step < len(self.steps):
            raise IndexError(f"step {step} is outside this plan's steps 0..{self.final_step}")
        return self.steps[step]

    def share_at(self, step: int) -> float:
        """The challenger's traffic share at ``step`` (0-based)."""
        return self._check_step(step).share

    def weights_at(self, step: int) -> dict[str, float]:
        """Router weights at ``step``: ``Router(salt, plan.weights_at(step))``."""
        share = self.share_at(step)
        return {self.challenger: share, self.champion: 1.0 - share}

    def step_timed(self, step: int, elapsed: timedelta | float) -> bool:
        """Whether ``step`` has run for its minimum time (``elapsed``: timedelta or hours)."""
        return _hours(elapsed) >= self._check_step(step).min_hours

    def step_ready(self, step: int, elapsed: timedelta | float, samples: int) -> bool:
        """Whether ``step`` has run long enough on enough outcomes per arm."""
        enough = samples >= self._check_step(step).min_samples
        return self.step_timed(step, elapsed) and enough


def rollout_metric(task: str) -> tuple[Literal["binary", "continuous"], bool]:
    """What a rollout compares per served prediction, and whether higher is better: whether
    the predicted class was right (classification), or the absolute error (regression)."""
    return ("continuous", False) if task == "regression" else ("binary", True)


def _choice(name: str, value: Any, allowed: Any) -> Any:
    options = [str(getattr(a, "value", a)) for a in allowed]
    if str(value) not in options:
        raise RolloutPlanError(f"{name} must be one of {options}, got {value!r}")
    return allowed(value) if isinstance(allowed, type) else value


def _number(path: str, value: Any, kind: type = float) -> Any:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or (kind is int and float(value) != int(value)) or not math.isfinite(value):
        raise RolloutPlanError(f"{path} must be a finite {kind.__name__}, got {value!r}")
    return kind(value)


def _parse_step(path: str, raw: Any) -> RolloutStep:
    if not isinstance(raw, Mapping):
        raise RolloutPlanError(f"{path} must be a mapping with a share, got {raw!r}")
    unknown = sorted(set(raw) - _STEP_KEYS)
    if unknown:
        raise RolloutPlanError(f"{path}: unknown keys {unknown}; allowed {sorted(_STEP_KEYS)}")
    if "share" not in raw:
        raise RolloutPlanError(f"{path}.share is required")
    return RolloutStep(
        share=_number(f"{path}.share", raw["share"]),
        min_hours=_number(f"{path}.min_hours", raw.get("min_hours", 0.0)),
        min_samples=_number(f"{path}.min_samples", raw.get("min_samples", 0), int),
    )


def _typed(key: str, value: Any) -> Any:
    if key in ("higher_is_better", "sequential"):
        if not isinstance(value, bool):
            raise RolloutPlanError(f"{key} must be true or false, got {value!r}")
        return value
    if key in ("alpha", "tau"):
        return _number(key, value)
    if key == "max_samples":
        return None if value is None else _number(key, value, int)
    if not isinstance(value, str):
        raise RolloutPlanError(f"{key} must be a string, got {value!r}")
    return value


def _hours(elapsed: timedelta | float) -> float:
    return elapsed.total_seconds() / 3600 if isinstance(elapsed, timedelta) else float(elapsed)
