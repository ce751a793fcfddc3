"""The live experiment of a rollout: the outcomes of its current step, and the decision.

Plain Python, no Dagster. ``measure`` reads the prediction log with aggregate queries (the
outcomes and routed entities of the rollout's current step, never a record) and asks
``core.rollout.decide``, the one place a rollout decision is made. ``Experiment`` renders the
numbers as a markdown table and a plot (matplotlib's object API on the Agg canvas).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy import stats

from retraining_assets.core import prediction_log
from retraining_assets.core.registry import CHALLENGER, CHAMPION, utc_now
from retraining_assets.core.rollout import RolloutDecision, VariantSummary, decide
from retraining_assets.core.rollout.transitions import Rollout
from retraining_assets.core.timestamps import iso_utc

COLORS = {CHAMPION: "#4c72b0", CHALLENGER: "#dd8452"}


@dataclass(frozen=True)
class Experiment:
    """One look at a rollout's current step: per-variant outcomes and routed entities since
    the step began, and what ``decide()`` makes of them."""

    rollout: Rollout
    summaries: dict[str, VariantSummary]
    assignments: dict[str, int]
    decision: RolloutDecision
    measured_at: datetime

    @property
    def metric_name(self) -> str:
        """What the outcome means: correctness (classification) or absolute error."""
        return "accuracy" if self.rollout.plan.metric == "binary" else "absolute error"

    def interval(self, variant: str) -> tuple[float, float]:
        """The variant's mean with a normal-approximation interval at the plan's alpha."""
        s = self.summaries[variant]
        if s.n < 2 or not math.isfinite(s.variance):
            return (-math.inf, math.inf)
        half = float(stats.norm.isf(self.rollout.plan.alpha / 2)) * math.sqrt(s.variance / s.n)
        return s.mean - half, s.mean + half

    def versions(self) -> dict[str, int]:
        return {
            CHAMPION: self.rollout.champion_version,
            CHALLENGER: self.rollout.challenger_version,
        }

    def to_markdown(self) -> str:
        """Per variant: version, traffic share, routed entities, outcomes, mean and interval."""
        level = f"{1 - self.rollout.plan.alpha:.0%}"
        share = self.rollout.share
        lines = [
            f"| variant | version | share | entities | outcomes | {self.metric_name} "
            f"| {level} interval |",
            "|---|---:|---:|---:|---:|---:|---|",
        ]
        for variant, version in self.versions().items():
            s = self.summaries[variant]
            low, high = self.interval(variant)
            shown = f"[{low:.4f}, {high:.4f}]" if math.isfinite(low) else "-"
            mean = f"{s.mean:.4f}" if s.n else "-"
            part = share if variant == CHALLENGER else 1 - share
            lines.append(
                f"| {variant} | v{version} | {part:.1%} | {self.assignments.get(variant, 0):,} "
                f"| {s.n:,} | {mean} | {shown} |"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (non-finite numbers as None)."""
        variants = {
            name: {
                "version": self.versions()[name],
                "entities": self.assignments.get(name, 0),
                "n": s.n,
                "mean": s.mean,
                "interval": list(self.interval(name)),
            }
            for name, s in self.summaries.items()
        }
        return _finite(
            {
                "rollout": self.rollout.to_dict(),
                "variants": variants,
                "decision": self.decision.to_dict(),
                "measured_at": iso_utc(self.measured_at),
            }
        )

    def plot(self, path: Path) -> Path:
        """Each variant's mean with its interval, written as PNG to ``path``."""
        fig = Figure(figsize=(6.0, 3.0), layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        for y, (variant, version) in enumerate(self.versions().items()):
            s = self.summaries[variant]
            if s.n == 0:
                ax.text(
                    0.5,
                    y,
                    f"{variant}: no outcomes yet",
                    va="center",
                    transform=ax.get_yaxis_transform(),
                )
                continue
            low, high = self.interval(variant)
            errors = [[s.mean - low], [high - s.mean]] if math.isfinite(low) else None
            ax.errorbar(s.mean, y, xerr=errors, fmt="o", capsize=6, color=COLORS[variant])
            ax.annotate(f"v{version}, n = {s.n:,}", (s.mean, y), xytext=(0, 8),
                        textcoords="offset points", ha="center", fontsize=8)  # fmt: skip
        ax.set_yticks([0, 1], [CHAMPION, CHALLENGER])
        ax.set_ylim(-0.6, 1.6)
        ax.set_xlabel(f"{self.metric_name} ({1 - self.rollout.plan.alpha:.0%} interval)")
        d = self.decision
        ax.set_title(
            f"rollout {self.rollout.id}, step {d.step + 1}/{len(self.rollout.plan.steps)}: "
            f"{d.action}",
            fontsize=10,
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png", dpi=90)
        return path


def measure(
    engine: sa.Engine, rollout: Rollout, task: str, *, now: datetime | None = None
) -> Experiment:
    """The rollout's current step as the prediction log has it, and the decision on it.

    Only predictions routed by the current step count (their ``rollout_step``): the sequential
    test and the sample ratio check restart with each step, and a service that has not yet
    seen a step change cannot mix the old weights into the new step's counts.
    """
    now = now or utc_now()
    where = {"since": None, "step": rollout.step}
    summaries = prediction_log.variant_summaries(
        engine, rollout.pipeline, rollout.id, task=task, **where
    )
    assignments = prediction_log.assignment_counts(engine, rollout.pipeline, rollout.id, **where)
    decision = decide(
        rollout.plan,
        rollout.step,
        elapsed=now - rollout.step_started_at,
        champion=summaries[CHAMPION],
        challenger=summaries[CHALLENGER],
        assignments=assignments,
    )
    return Experiment(rollout, summaries, assignments, decision, now)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
