"""Replay a labelled history period by period through the production retraining policies.

The backtest answers "does the retraining policy pay off on this data, and where does it lose?"
with the very code the Dagster pipeline runs: ``RetrainPolicy.decide`` (core/triggers.py) says
when to retrain, ``train_candidates`` trains, ``judge`` with ``PromotionPolicy`` (core/lifecycle.py,
core/promotion.py) says whether the candidate replaces the serving model. Nothing here compares a
signal or a lift with a threshold.

Protocol (prequential: test, then train). The first ``window`` periods train the first model.
For every later period ``p``:

1. the serving model scores ``p``'s rows (its metric on ``p`` is recorded) *before* any training
   sees ``p``'s labels;
2. each policy decides whether to retrain: ``auto`` asks ``RetrainPolicy`` with ``p``'s signals,
   ``static`` never retrains, ``always`` retrains every period;
3. a retraining trains candidates on the ``window`` periods ending with ``p`` and judges them
   against the serving model on the window's time-ordered holdout (the newest rows of ``p``);
   ``auto`` swaps the serving model only on ``PROMOTE`` (``PENDING`` waits for a person who is
   not there, so the champion stays), ``always`` promotes without a gate.

The decision at the last period is taken too (the policy cannot know it is the last), although
no later period shows its effect.

Signals of ``auto`` at ``p``, as the sensors gather them: drift of ``p`` against the serving
model's training-window profile; new records = rows after the last training's window (the
watermark moves with every training, promoted or not, as in production); the live metric = the
serving model's metric on ``p`` against its baseline = its holdout metric when it was judged;
the schedule (off unless ``schedule=True``) is due at the first period of each calendar month.
The cooldown is zero: periods are replayed, not sensor ticks.

Metric rule: a period is scored only when it has at least ``MIN_PERIOD_ROWS`` labelled rows and
the metric is defined on them (AUC needs both classes, R² a non-constant target; accuracy, log
loss, Brier, F1, RMSE and MAE are defined on a single class). Other periods are left out of the
mean, counted in ``skipped_periods``, give no drift or performance signal, but still count as
new records.

Bad input raises ``BacktestError`` naming the column or period. Rows out of time order are
sorted (stable) and the fact is noted in ``BacktestResult.notes``; rows with a null target are
unlabelled records and are left out (also noted); a period whose target is null in every row is
an error.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from retraining_assets.core.dataset import (
    DatasetError,
    DatasetSpec,
    class_labels,
    label_strings,
    parse_timestamps,
)
from retraining_assets.core.drift import DriftThresholds, ReferenceProfile
from retraining_assets.core.evaluation import compute_metric, default_primary_metric, get_metric
from retraining_assets.core.evaluation import truth as metric_truth
from retraining_assets.core.lifecycle import Judgement, judge
from retraining_assets.core.pipeline import drift_thresholds, promotion_policy, retrain_policy
from retraining_assets.core.promotion import PromotionPolicy, Verdict
from retraining_assets.core.reference import fit_drift_profile
from retraining_assets.core.sources import SourceError, read_table
from retraining_assets.core.training import (
    Split,
    TrainedModel,
    TrainingError,
    split_by_time,
    train_candidates,
)
from retraining_assets.core.triggers import RetrainPolicy, Signals
from retraining_assets.settings import Settings, load_settings

PERIOD_FREQUENCIES = {"month": "M", "week": "W", "day": "D"}
POLICIES: tuple[str, ...] = ("auto", "static", "always")
DEFAULT_FAMILIES: tuple[str, ...] = ("xgboost",)  # the fastest family; pass more to compare
MIN_PERIOD_ROWS = 30  # fewer labelled rows make a period's metric mostly noise
ALWAYS_REASON = "always: retrains every period (baseline, no gate)"
POLICY_COLORS = {"auto": "#4c72b0", "static": "#8c8c8c", "always": "#dd8452"}

Progress = Callable[[int, int, str], None]


class BacktestError(ValueError):
    """Data or arguments a backtest cannot run on; the message names the column or period."""


# --- results ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class PeriodRow:
    """One policy at one period: the serving model's score, then the policy's action."""

    period: str  # start date of the period, YYYY-MM-DD (as the pipeline's partition keys)
    rows: int
    serving_version: int
    serving_family: str
    serving_window: tuple[str, str]  # first and last period the serving model trained on
    metric: float | None
    skipped: str | None  # why the metric was not computed
    retrained: bool
    reasons: tuple[str, ...]
    decision: str | None  # Verdict value, None without a retraining
    lift: float | None  # the best candidate's relative lift over the serving model

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
        }


@dataclass
class PolicyResult:
    name: str
    rows: list[PeriodRow] = field(default_factory=list)

    @property
    def scored(self) -> list[float]:
        return [row.metric for row in self.rows if row.metric is not None]

    @property
    def mean_metric(self) -> float | None:
        return float(np.mean(self.scored)) if self.scored else None

    @property
    def retrains(self) -> int:
        return sum(row.retrained for row in self.rows)

    @property
    def promotions(self) -> int:
        """The first model counts as one promotion in every policy."""
        return 1 + sum(row.decision == Verdict.PROMOTE.value for row in self.rows)

    @property
    def skipped_periods(self) -> int:
        return sum(row.metric is None for row in self.rows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean_metric": self.mean_metric,
            "retrains": self.retrains,
            "promotions": self.promotions,
            "skipped_periods": self.skipped_periods,
            "rows": [row.to_dict() for row in self.rows],
        }


@dataclass
class BacktestResult:
    """Every policy's rows; ``to_dict`` is the JSON the CLI writes."""

    metric: str
    higher_is_better: bool
    policies: dict[str, PolicyResult]
    period: str
    window: int
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
            "policies": {name: policy.to_dict() for name, policy in self.policies.items()},
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def summary(self) -> str:
        """A plain-text table: one line per policy."""
        lines = [f"{'policy':<8} {'mean ' + self.metric:>14} {'retrains':>9} {'promotions':>11}"]
        for name, policy in self.policies.items():
            mean = "n/a" if policy.mean_metric is None else f"{policy.mean_metric:.4f}"
            lines.append(f"{name:<8} {mean:>14} {policy.retrains:>9} {policy.promotions:>11}")
        skipped = max(p.skipped_periods for p in self.policies.values())
        lines.append(f"{self.periods} {self.period}s scored, {skipped} skipped")
        return "\n".join([*lines, *self.notes])

    def plot(self, path: str | Path) -> Path:
        """A PNG of each policy's metric per period, with retraining (open circle) and
        promotion (filled star) markers."""
        path = Path(path)
        fig = Figure(figsize=(max(8.0, 0.28 * self.periods), 4.5))
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


# --- the periods -----------------------------------------------------------------------------
@dataclass(frozen=True)
class _Periods:
    """The labelled rows cut into consecutive calendar periods (empty periods included)."""

    labels: list[str]
    frames: list[pd.DataFrame]

    def __len__(self) -> int:
        return len(self.labels)

    def window(self, last: int, size: int) -> pd.DataFrame:
        return pd.concat(self.frames[last - size + 1 : last + 1], ignore_index=True)

    def rows_between(self, first: int, last: int) -> int:
        return sum(len(frame) for frame in self.frames[first : last + 1])


def _prepare(
    frame: pd.DataFrame, spec: DatasetSpec, period: str, notes: list[str]
) -> tuple[_Periods, DatasetSpec]:
    """Check columns and timestamps, order rows by time and cut them into periods."""
    if period not in PERIOD_FREQUENCIES:
        raise BacktestError(f"period must be one of {list(PERIOD_FREQUENCIES)}, got {period!r}")
    missing = [c for c in (spec.time_column, spec.target, *spec.features) if c not in frame]
    if missing:
        raise BacktestError(f"missing columns {missing} in the data")
    times = _timestamps(frame[spec.time_column], spec.time_column)
    frame = frame.assign(**{spec.time_column: times})
    if not times.is_monotonic_increasing:
        frame = frame.sort_values(spec.time_column, kind="stable", ignore_index=True)
        notes.append(f"rows were not in '{spec.time_column}' order: sorted by it")
    if len(frame) == 0:
        raise BacktestError("the data holds no rows")
    if spec.task != "regression" and not spec.classes:
        spec = replace(spec, classes=class_labels(frame[spec.target]))
    return _cut(frame, spec, PERIOD_FREQUENCIES[period], notes), spec


def _timestamps(values: pd.Series, column: str) -> pd.Series:
    nulls = int(values.isna().sum())
    if nulls:
        raise BacktestError(f"time column '{column}' is null in {nulls} rows")
    if pd.api.types.is_datetime64_dtype(values):
        return values
    try:
        return parse_timestamps(values)
    except (ValueError, TypeError) as error:
        raise BacktestError(f"time column '{column}' has unparseable values: {error}") from None


def _cut(frame: pd.DataFrame, spec: DatasetSpec, freq: str, notes: list[str]) -> _Periods:
    times = frame[spec.time_column]
    spans = pd.period_range(times.iloc[0].to_period(freq), times.iloc[-1].to_period(freq))
    bounds = np.searchsorted(times.to_numpy(), spans.start_time.to_numpy(), side="left")
    bounds = [*bounds.tolist(), len(frame)]
    labels = [f"{start:%Y-%m-%d}" for start in spans.start_time]
    frames, unlabelled = [], 0
    for label, first, end in zip(labels, bounds[:-1], bounds[1:], strict=True):
        part = frame.iloc[first:end]
        labelled = part[spec.target].notna()
        if len(part) and not labelled.any():
            raise BacktestError(
                f"period {label} has no labels: target '{spec.target}' is null in all "
                f"{len(part)} rows"
            )
        unlabelled += int((~labelled).sum())
        frames.append(part[labelled].reset_index(drop=True))
    if unlabelled:
        notes.append(f"{unlabelled} rows with a null '{spec.target}' were left out (unlabelled)")
    return _Periods(labels, frames)


# --- models shared by the policies -----------------------------------------------------------
@dataclass(frozen=True)
class _Model:
    """A trained model as the backtest knows it: a fake registry version and its window."""

    version: int
    model: TrainedModel
    window: tuple[int, int]  # period indices, inclusive

    @property
    def family(self) -> str:
        return self.model.family


@dataclass(frozen=True)
class _Serving:
    """What a policy serves: the model and its baseline (its holdout metric when judged)."""

    model: _Model
    baseline: float | None


@dataclass
class _Training:
    """Candidates trained on one window. Training is deterministic in (window, seed), so the
    policies that retrain at the same period share the candidates instead of training twice."""

    periods: _Periods
    spec: DatasetSpec
    families: tuple[str, ...]
    size: int
    seed: int
    _candidates: dict[int, tuple[Split, dict[str, _Model]]] = field(default_factory=dict)
    _profiles: dict[int, ReferenceProfile] = field(default_factory=dict)
    _next_version: int = 1

    def candidates(self, last: int) -> tuple[Split, dict[str, _Model]]:
        """The time split and the candidates of the window ending with period ``last``."""
        if last not in self._candidates:
            self._candidates[last] = self._train(last)
        return self._candidates[last]

    def profile(self, last: int) -> ReferenceProfile:
        """The drift profile of the window ending with ``last`` (what drift compares with)."""
        if last not in self._profiles:
            frame = self.periods.window(last, self.size)
            self._profiles[last] = fit_drift_profile(frame, self.spec)
        return self._profiles[last]

    def describe(self, last: int) -> str:
        first = self.periods.labels[last - self.size + 1]
        return f"the training window {first} to {self.periods.labels[last]}"

    def _train(self, last: int) -> tuple[Split, dict[str, _Model]]:
        frame = self.periods.window(last, self.size)
        where = self.describe(last)
        if self.spec.task != "regression":
            present = label_strings(frame[self.spec.target]).unique()
            if len(present) < 2:
                found = repr(present[0]) if len(present) else "none"
                raise BacktestError(
                    f"{where} has a single class ({found}) in target '{self.spec.target}'"
                )
        try:
            split = split_by_time(frame, self.spec)
            trained = train_candidates(split, self.spec, self.families, seed=self.seed)
        except TrainingError as error:
            raise BacktestError(f"cannot train on {where}: {error}") from error
        models = {}
        for name, model in trained.items():
            models[name] = _Model(self._next_version, model, (last - self.size + 1, last))
            self._next_version += 1
        return split, models


# --- the replay ------------------------------------------------------------------------------
@dataclass
class _PolicyState:
    name: str
    serving: _Serving
    last_training: int  # index of the last period any training of this policy saw
    result: PolicyResult


@dataclass(frozen=True)
class _Action:
    retrain: bool
    reasons: tuple[str, ...] = ()


@dataclass
class _Replay:
    periods: _Periods
    spec: DatasetSpec
    training: _Training
    retrain_policy: RetrainPolicy
    promotion_policy: PromotionPolicy
    thresholds: DriftThresholds
    metric: str
    schedule: bool
    seed: int

    @property
    def higher_is_better(self) -> bool:
        return get_metric(self.metric).higher_is_better

    # -- scoring
    def score(self, model: _Model, index: int) -> tuple[float | None, str | None]:
        """The model's metric on period ``index`` and, when not computable, why not."""
        frame = self.periods.frames[index]
        if len(frame) < MIN_PERIOD_ROWS:
            return None, f"{len(frame)} labelled rows (fewer than {MIN_PERIOD_ROWS})"
        try:
            value = compute_metric(
                self.metric, metric_truth(frame, self.spec, model.model), model.model.scores(frame)
            )
        except (TrainingError, ValueError) as error:  # e.g. a label the spec does not know
            raise BacktestError(f"period {self.periods.labels[index]}: {error}") from error
        if value is None or not math.isfinite(value):
            return None, f"{self.metric} is undefined on these rows (e.g. a single class)"
        return value, None

    # -- judging a window's candidates
    def judge(self, last: int, champion: _Model | None) -> tuple[Judgement, _Serving]:
        """Judge the candidates of the window ending with ``last`` against ``champion``;
        returns the judgement and what serves if the best candidate is promoted."""
        split, models = self.training.candidates(last)
        judgement = judge(
            {name: (m.version, m.model) for name, m in models.items()},
            (champion.version, champion.model) if champion else None,
            split,
            self.spec,
            self.promotion_policy,
            self.metric,
            seed=self.seed,
        )
        best = judgement.comparison.best_candidate
        baseline = judgement.comparison.scores[best][self.metric]
        return judgement, _Serving(models[best], baseline)

    # -- policies
    def decide(self, state: _PolicyState, index: int, live: float | None) -> _Action:
        if state.name == "static":
            return _Action(False)
        if state.name == "always":
            return _Action(True, (ALWAYS_REASON,))
        decision = self.retrain_policy.decide(self.signals(state, index, live))
        return _Action(decision.retrain, tuple(str(reason) for reason in decision.reasons))

    def signals(self, state: _PolicyState, index: int, live: float | None) -> Signals:
        frame = self.periods.frames[index]
        drift = None
        if len(frame) >= MIN_PERIOD_ROWS:
            profile = self.training.profile(state.serving.model.window[1])
            drift = profile.compare(frame, self.thresholds)
        return Signals(
            has_champion=True,
            drift_detected=drift.dataset_drift if drift else None,
            drifted_features=tuple(drift.drifted_features) if drift else (),
            new_records=self.periods.rows_between(state.last_training + 1, index),
            live_metric=live,
            baseline_metric=state.serving.baseline,
            higher_is_better=self.higher_is_better,
            scheduled=self.schedule and self._month_starts(index),
        )

    def _month_starts(self, index: int) -> bool:
        """The monthly schedule is due at the first period of each calendar month."""
        labels = self.periods.labels
        return index == 0 or labels[index][:7] != labels[index - 1][:7]

    def step(self, state: _PolicyState, index: int) -> None:
        """Score period ``index`` with the serving model, then let the policy act on it."""
        serving = state.serving
        value, skipped = self.score(serving.model, index)
        action = self.decide(state, index, value)
        decision = lift = None
        if action.retrain:
            judgement, candidate = self.judge(index, serving.model)
            state.last_training = index
            lift = judgement.comparison.lift
            verdict = Verdict.PROMOTE if state.name == "always" else judgement.decision.verdict
            decision = verdict.value
            if verdict is Verdict.PROMOTE:
                state.serving = candidate
        state.result.rows.append(
            PeriodRow(
                period=self.periods.labels[index],
                rows=len(self.periods.frames[index]),
                serving_version=serving.model.version,
                serving_family=serving.model.family,
                serving_window=tuple(self.periods.labels[i] for i in serving.model.window),
                metric=value,
                skipped=skipped,
                retrained=action.retrain,
                reasons=action.reasons,
                decision=decision,
                lift=lift,
            )
        )


def run_backtest(
    frame: pd.DataFrame,
    spec: DatasetSpec,
    *,
    settings: Settings,
    period: str = "month",
    window: int = 3,
    families: Sequence[str] = DEFAULT_FAMILIES,
    policies: Sequence[str] = POLICIES,
    schedule: bool = False,
    progress: Progress | None = None,
    seed: int = 0,
) -> BacktestResult:
    """Replay ``frame`` period by period through each policy (see the module docstring)."""
    started = time.perf_counter()
    _check_arguments(window, families, policies)
    notes: list[str] = []
    periods, spec = _prepare(frame, spec, period, notes)
    if len(periods) < window + 1:
        raise BacktestError(
            f"the data spans {len(periods)} {period}s ({periods.labels[0]} to "
            f"{periods.labels[-1]}); a backtest needs at least window + 1 = {window + 1}"
        )
    metric = _metric(settings, spec)
    replay = _Replay(
        periods=periods,
        spec=spec,
        training=_Training(periods, spec, tuple(families), window, seed),
        retrain_policy=replace(retrain_policy(settings), cooldown=timedelta(0)),
        promotion_policy=promotion_policy(settings),
        thresholds=drift_thresholds(settings),
        metric=metric,
        schedule=schedule,
        seed=seed,
    )
    report = progress or (lambda _done, _total, _message: None)
    total = len(periods) - window + 1
    judgement, first = replay.judge(window - 1, None)
    if not judgement.decision.promote:
        notes.append(
            f"the promotion gate would not promote the first model ({judgement.decision.reason}); "
            "it serves anyway so that the policies can be compared"
        )
    states = [_PolicyState(name, first, window - 1, PolicyResult(name)) for name in policies]
    report(1, total, f"first model trained on {replay.training.describe(window - 1)}")
    for index in range(window, len(periods)):
        for state in states:
            replay.step(state, index)
        report(index - window + 2, total, f"{period} {periods.labels[index]}")
    return BacktestResult(
        metric=metric,
        higher_is_better=replay.higher_is_better,
        policies={state.name: state.result for state in states},
        period=period,
        window=window,
        families=tuple(families),
        notes=notes,
        seconds=time.perf_counter() - started,
    )


def _check_arguments(window: int, families: Sequence[str], policies: Sequence[str]) -> None:
    if window < 1:
        raise BacktestError(f"window must be at least 1 period, got {window}")
    if not families:
        raise BacktestError("at least one model family is needed")
    unknown = [p for p in policies if p not in POLICIES]
    if unknown or not policies or len(set(policies)) != len(policies):
        raise BacktestError(f"policies must be distinct names from {list(POLICIES)}: {policies}")


def _metric(settings: Settings, spec: DatasetSpec) -> str:
    """The promotion's primary metric, checked against the task."""
    name = settings.primary_metric or default_primary_metric(spec.task)
    try:
        info = get_metric(name)
    except ValueError as error:
        raise BacktestError(str(error)) from None
    kind = "regression" if spec.task == "regression" else "classification"
    if info.task != kind:
        raise BacktestError(f"metric {name!r} does not apply to a {spec.task} target")
    return name


def backtest_file(
    path: str | Path,
    time_column: str,
    target: str,
    *,
    drop: Sequence[str] = (),
    period: str = "month",
    window: int = 3,
    families: Sequence[str] = DEFAULT_FAMILIES,
    settings: Settings | None = None,
    schedule: bool = False,
    progress: Progress | None = None,
    seed: int = 0,
) -> BacktestResult:
    """Backtest a CSV (also gzipped) or Parquet file; the spec is inferred from the whole
    file (every column but the time column, the target and ``drop`` is a feature)."""
    try:
        frame = read_table(path)
    except SourceError as error:
        raise BacktestError(str(error)) from None
    missing = [c for c in (time_column, target, *drop) if c not in frame.columns]
    if missing:
        raise BacktestError(f"missing columns {missing} in '{path}'")
    try:
        spec = DatasetSpec.infer(frame, time_column, target, drop=list(drop))
    except DatasetError as error:
        raise BacktestError(f"'{path}': {error}") from None
    return run_backtest(
        frame,
        spec,
        settings=settings or load_settings(),
        period=period,
        window=window,
        families=families,
        schedule=schedule,
        progress=progress,
        seed=seed,
    )
