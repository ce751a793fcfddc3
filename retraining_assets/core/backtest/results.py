"""What a backtest returns: a row per policy and period, pooled metrics, JSON and a plot."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from retraining_assets.core.backtest.alarms import alarm_quality
from retraining_assets.core.evaluation import compute_metric
from retraining_assets.core.promotion import Verdict

POLICY_COLORS = {"auto": "#4c72b0", "static": "#8c8c8c", "always": "#dd8452", "monthly": "#55a868"}


@dataclass(frozen=True)
class PeriodRow:
    """One policy at one period: the serving model's score, then the policy's action."""

    period: str  # start of the period, YYYY-MM-DD (as the pipeline's partition keys)
    rows: int
    serving_version: int
    serving_family: str
    serving_window: tuple[str, str]  # first day and last period the serving model trained on
    metric: float | None
    skipped: str | None  # why the period's own metric was not computed
    retrained: bool
    reasons: tuple[str, ...]
    decision: str | None  # Verdict value, None without a retraining
    lift: float | None  # the best candidate's relative lift over the serving model
    # the drift verdict on this period against the serving model's reference, before its labels
    alarm: bool | None = None  # None: the drift window held too few rows
    drift_score: float | None = None  # the dataset score the verdict used
    paged: bool = False  # the alarm would have mailed administrators (RETRAIN_DRIFT_NOTIFY)
    baseline_metric: float | None = None  # the serving model's metric at its evaluation
    # the serving model's primary metric on this period estimated before its labels (CBPE/DLE)
    estimated_metric: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "rows": self.rows,
            "serving_version": self.serving_version,
            "serving_family": self.serving_family,
            "serving_window": list(self.serving_window),
            "metric": self.metric,
            "skipped": self.skipped,
            "retrained": self.retrained,
            "reasons": list(self.reasons),
            "decision": self.decision,
            "lift": self.lift,
            "alarm": self.alarm,
            "drift_score": self.drift_score,
            "paged": self.paged,
            "baseline_metric": self.baseline_metric,
            "estimated_metric": self.estimated_metric,
        }


@dataclass
class PolicyResult:
    """One policy's rows, and every row it scored (pooled for ``mean_metric``)."""

    name: str
    metric: str
    rows: list[PeriodRow] = field(default_factory=list)
    higher_is_better: bool = True
    _truth: list[np.ndarray] = field(default_factory=list, repr=False)
    _scores: list[np.ndarray] = field(default_factory=list, repr=False)

    def pool(self, truth: np.ndarray, scores: np.ndarray) -> None:
        """Add a period's scored rows to the pooled metric (any number of rows)."""
        if len(truth):
            self._truth.append(truth)
            self._scores.append(scores)

    @property
    def scored_rows(self) -> int:
        return int(sum(len(truth) for truth in self._truth))

    @property
    def mean_metric(self) -> float | None:
        """The metric on every scored row pooled: a day of 20 rows counts as 20 rows."""
        if not self._truth:
            return None
        return compute_metric(
            self.metric, np.concatenate(self._truth), np.concatenate(self._scores)
        )

    @property
    def retrains(self) -> int:
        return sum(row.retrained for row in self.rows)

    @property
    def promotions_at(self) -> list[str]:
        """The periods after which a candidate replaced the serving model."""
        return [row.period for row in self.rows if row.decision == Verdict.PROMOTE.value]

    @property
    def retrains_at(self) -> list[str]:
        return [row.period for row in self.rows if row.retrained]

    @property
    def alarms(self) -> int:
        """Periods whose drift verdict raised the alarm."""
        return sum(bool(row.alarm) for row in self.rows)

    @property
    def pages(self) -> int:
        """Alarms that would have mailed administrators (``core.notify.paging``)."""
        return sum(row.paged for row in self.rows)

    @property
    def promotions(self) -> int:
        """The first model counts as one promotion in every policy."""
        return 1 + len(self.promotions_at)

    @property
    def alarm_quality(self) -> dict[str, float]:
        """How well this policy's alarms foretold its serving model's degradation."""
        return alarm_quality(self.rows, self.higher_is_better)

    @property
    def skipped_periods(self) -> int:
        return sum(row.metric is None for row in self.rows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean_metric": self.mean_metric,
            "retrains": self.retrains,
            "promotions": self.promotions,
            "skipped_periods": self.skipped_periods,
            "promotions_at": self.promotions_at,
            "pages": self.pages,
            "retrains_at": self.retrains_at,
            "alarm_quality": self.alarm_quality,
            "rows": [row.to_dict() for row in self.rows],
        }


@dataclass
class BacktestResult:
    """Every policy's rows; ``to_dict`` is the JSON the CLI writes."""

    metric: str
    higher_is_better: bool
    policies: dict[str, PolicyResult]
    period: str  # the CLI's name: day, week or month
    settings: dict[str, Any]  # the four time scales used
    families: tuple[str, ...]
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def periods(self) -> int:
        """Periods scored (after the first training window)."""
        return len(next(iter(self.policies.values())).rows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "higher_is_better": self.higher_is_better,
            "periods": self.periods,
            "settings": self.settings,
            "policies": {name: policy.to_dict() for name, policy in self.policies.items()},
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def summary(self) -> str:
        """A plain-text table: one line per policy."""
        lines = [f"{'policy':<8} {'mean ' + self.metric:>14} {'retrains':>9} {'promotions':>11} "
                 f"{'alarms':>7} {'mails':>6}"]  # fmt: skip
        for name, policy in self.policies.items():
            mean = policy.mean_metric
            shown = "n/a" if mean is None else f"{mean:.4f}"
            lines.append(f"{name:<8} {shown:>14} {policy.retrains:>9} {policy.promotions:>11} "
                         f"{policy.alarms:>7} {policy.pages:>6}")  # fmt: skip
        skipped = max(p.skipped_periods for p in self.policies.values())
        lines.append(
            f"{self.periods} {self.period}s scored ({skipped} with fewer rows than a "
            "per-period metric needs; every row counts in the mean)"
        )
        return "\n".join([*lines, *self.notes])

    def plot(self, path: str | Path) -> Path:
        """A PNG of each policy's metric per period, with retraining (open circle) and
        promotion (filled star) markers."""
        path = Path(path)
        fig = Figure(figsize=(min(40.0, max(8.0, 0.28 * self.periods)), 4.5))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        for name, policy in self.policies.items():
            _plot_policy(ax, name, policy)
        labels = [row.period for row in next(iter(self.policies.values())).rows]
        step = max(1, len(labels) // 24)
        ax.set_xticks(range(0, len(labels), step), labels[::step], rotation=60, fontsize=7)
        direction = "higher" if self.higher_is_better else "lower"
        ax.set_ylabel(f"{self.metric} ({direction} is better)")
        ax.set_title(f"Backtest by {self.period}: serving model's {self.metric} per period")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png", dpi=100)
        return path


def _plot_policy(ax: Any, name: str, policy: PolicyResult) -> None:
    color = POLICY_COLORS.get(name)
    x = np.arange(len(policy.rows))
    y = np.array([np.nan if r.metric is None else r.metric for r in policy.rows])
    mean = policy.mean_metric
    shown = f"{name} (mean {mean:.3f})" if mean is not None else name
    ax.plot(x, y, "-", color=color, label=shown, linewidth=1.5)
    # A decision at p changes the model serving p + 1; markers sit on the deciding period.
    retrained = np.array([r.retrained for r in policy.rows], dtype=bool)
    promoted = np.array([r.decision == Verdict.PROMOTE.value for r in policy.rows], dtype=bool)
    ax.scatter(x[retrained], y[retrained], s=40, facecolors="none", edgecolors=color)
    ax.scatter(x[promoted], y[promoted], s=70, marker="*", color=color)
