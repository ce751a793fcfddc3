"""The replay: each policy scores a period, then acts on it, period after period."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

import numpy as np
import pandas as pd

from retraining_assets.core.backtest.periods import BacktestError, Periods
from retraining_assets.core.backtest.results import PeriodRow, PolicyResult
from retraining_assets.core.dataset import DatasetSpec, label_strings
from retraining_assets.core.drift import DriftReport, DriftThresholds, ReferenceProfile
from retraining_assets.core.drift.calibration import (
    CalibrationBands,
    CalibrationError,
    calibrate,
    reference_periods,
)
from retraining_assets.core.drift.dataset_verdict import (
    DEFAULT_WEIGHTED_SHARE,
    Alarm,
    EstimateGate,
    dataset_alarm,
    parse_mode,
)
from retraining_assets.core.estimation import PerformanceEstimator, fit_model_estimator
from retraining_assets.core.evaluation import compute_metric, get_metric
from retraining_assets.core.evaluation import truth as metric_truth
from retraining_assets.core.importance import permutation_importance
from retraining_assets.core.labels import LabelDelay, label_cutoff
from retraining_assets.core.lifecycle import Judgement, judge
from retraining_assets.core.notify.paging import Episode, page
from retraining_assets.core.promotion import PromotionPolicy, Verdict
from retraining_assets.core.reference import fit_drift_profile
from retraining_assets.core.revalidation import moves_reference
from retraining_assets.core.timescales import TimeScales
from retraining_assets.core.training import Split, TrainedModel, TrainingError, train_candidates
from retraining_assets.core.triggers import Cause, RetrainPolicy, Signals

MIN_PERIOD_ROWS = 30  # fewer labelled rows make a period's metric mostly noise
ALWAYS_REASON = "always: retrains every period (baseline, no gate)"
Splitter = Callable[[pd.DataFrame, DatasetSpec], Split]


@dataclass(frozen=True)
class Window:
    """A training window: its time bounds, its row range and the period it ends with."""

    start: datetime
    end: datetime
    rows: tuple[int, int]
    last: int  # index of the period the window ends with


@dataclass(frozen=True)
class _Model:
    """A trained model as the backtest knows it: a fake registry version and its window."""

    version: int
    model: TrainedModel
    window: Window

    @property
    def family(self) -> str:
        return self.model.family


@dataclass(frozen=True)
class _Serving:
    """What a policy serves: the model, its baseline (its holdout metric when judged) and the
    window drift is measured against (``RETRAIN_DRIFT_REFERENCE``)."""

    model: _Model
    baseline: float | None
    revalidated: Window | None = None  # the newest window it was judged on and kept

    @property
    def reference(self) -> Window:
        return self.revalidated or self.model.window


@dataclass
class _Training:
    """Candidates trained on one window. Training is deterministic in (rows, seed), so the
    policies that retrain on the same rows share the candidates instead of training twice."""

    periods: Periods
    spec: DatasetSpec
    families: tuple[str, ...]
    split: Splitter
    seed: int
    _candidates: dict[tuple[int, int], tuple[Split, dict[str, _Model]]] = field(
        default_factory=dict
    )
    _profiles: dict[tuple[int, int], ReferenceProfile] = field(default_factory=dict)
    _bands: dict[tuple[int, int], tuple[CalibrationBands | None, str | None]] = field(
        default_factory=dict
    )
    _importances: dict[int, tuple[dict[str, float] | None, str | None]] = field(
        default_factory=dict
    )
    _estimators: dict[int, PerformanceEstimator] = field(default_factory=dict)
    _next_version: int = 1

    def window(self, last: int) -> Window:
        scales, periods = self.periods.scales, self.periods
        start, end = scales.training_window_of(periods.starts[last], periods.data_start)
        return Window(start, end, periods.span(start, end), last)

    def describe(self, window: Window) -> str:
        first = f"{window.start:%Y-%m-%d}"
        return f"the training window {first} to {self.periods.labels[window.last]}"

    def candidates(self, window: Window) -> tuple[Split, dict[str, _Model]]:
        """The time split and the candidates of ``window``."""
        if window.rows not in self._candidates:
            self._candidates[window.rows] = self._train(window)
        return self._candidates[window.rows]

    def profile(self, window: Window) -> ReferenceProfile:
        """The drift profile of ``window`` (what drift compares with)."""
        if window.rows not in self._profiles:
            frame = self.periods.frame.iloc[slice(*window.rows)]
            self._profiles[window.rows] = fit_drift_profile(frame, self.spec)
        return self._profiles[window.rows]

    def bands(self, window: Window) -> tuple[CalibrationBands | None, str | None]:
        """The drift bands of ``window``, its rows cut as the pipeline cuts its reference
        (``reference_periods``), or None and why not."""
        if window.rows not in self._bands:
            frame = self.periods.frame.iloc[slice(*window.rows)]
            chunks = reference_periods(frame, self.spec.time_column, self.periods.scales)
            try:
                bands = calibrate(chunks, lambda f: fit_drift_profile(f, self.spec))
                self._bands[window.rows] = (bands, None)
            except CalibrationError as error:
                self._bands[window.rows] = (None, str(error))
        return self._bands[window.rows]

    def importances(self, model: _Model, metric: str) -> tuple[dict[str, float] | None, str | None]:
        """The model's permutation importance on its holdout, as the registry stores it."""
        if model.version not in self._importances:
            split, _ = self.candidates(model.window)
            try:
                value = permutation_importance(
                    model.model, split.holdout, self.spec, metric, seed=self.seed
                )
                self._importances[model.version] = (value, None)
            except ValueError as error:
                self._importances[model.version] = (None, str(error))
        return self._importances[model.version]

    def estimator(self, model: _Model) -> PerformanceEstimator:
        """The model's CBPE / DLE estimator fitted on its holdout, as the registry stores it."""
        if model.version not in self._estimators:
            split, _ = self.candidates(model.window)
            self._estimators[model.version] = fit_model_estimator(
                model.model, split.holdout, self.spec
            )
        return self._estimators[model.version]

    def _train(self, window: Window) -> tuple[Split, dict[str, _Model]]:
        frame = self.periods.frame.iloc[slice(*window.rows)].reset_index(drop=True)
        where = self.describe(window)
        if self.spec.task != "regression":
            present = label_strings(frame[self.spec.target]).unique()
            if len(present) < 2:
                found = repr(present[0]) if len(present) else "none"
                raise BacktestError(
                    f"{where} has a single class ({found}) in target '{self.spec.target}' "
                    f"({len(frame)} rows)"
                )
        try:
            split = self.split(frame, self.spec)
            trained = train_candidates(split, self.spec, self.families, seed=self.seed)
        except TrainingError as error:
            raise BacktestError(f"cannot train on {where}: {error}") from error
        models = {}
        for name, model in trained.items():
            models[name] = _Model(self._next_version, model, window)
            self._next_version += 1
        return split, models


@dataclass
class PolicyState:
    name: str
    serving: _Serving
    last_training: Window  # the last window any training of this policy saw
    result: PolicyResult
    drift_acted_on: tuple[str, ...] = ()  # as the sensor's run tag: the drift it trained on
    episode: Episode | None = None  # the drift alarm the last period ended with (paging)


@dataclass(frozen=True)
class _Action:
    retrain: bool
    reasons: tuple[str, ...] = ()
    drifted: tuple[str, ...] = ()  # the drifted features a training would act on


@dataclass
class Replay:
    periods: Periods
    spec: DatasetSpec
    training: _Training
    retrain_policy: RetrainPolicy
    promotion_policy: PromotionPolicy
    thresholds: DriftThresholds
    metric: str
    seed: int
    notes: list[str] = field(default_factory=list)
    verdict: str = "univariate"  # RETRAIN_DRIFT_VERDICT
    drift_reference: str = "training"  # RETRAIN_DRIFT_REFERENCE
    drift_notify: str = "onset"  # RETRAIN_DRIFT_NOTIFY
    weighted_share: float = DEFAULT_WEIGHTED_SHARE
    label_delay: LabelDelay = None  # RETRAIN_LABEL_DELAY
    _scored: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    _drift: dict[tuple[tuple[int, int], int, int], DriftReport] = field(default_factory=dict)
    _alarms: dict[tuple[int, tuple[int, int], int], Alarm | None] = field(default_factory=dict)

    @property
    def scales(self) -> TimeScales:
        return self.periods.scales

    @property
    def higher_is_better(self) -> bool:
        return get_metric(self.metric).higher_is_better

    # -- scoring
    def scored(self, model: _Model, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The truth and the model's scores on period ``index`` (cached: the policies often
        serve the same model)."""
        key = (model.version, index)
        if key not in self._scored:
            frame = self.periods.period(index)
            try:
                self._scored[key] = (
                    metric_truth(frame, self.spec, model.model),
                    model.model.scores(frame),
                )
            except (TrainingError, ValueError) as error:  # e.g. a label the spec does not know
                raise BacktestError(f"period {self.periods.labels[index]}: {error}") from error
        return self._scored[key]

    def metric_on(self, model: _Model, first: int, last: int) -> float | None:
        """The model's metric on periods ``first`` to ``last``; None below MIN_PERIOD_ROWS
        rows or where the metric is undefined (AUC needs both classes)."""
        parts = [self.scored(model, index) for index in range(first, last + 1)]
        truth = np.concatenate([t for t, _ in parts]) if parts else np.array([])
        if len(truth) < MIN_PERIOD_ROWS:
            return None
        value = compute_metric(self.metric, truth, np.concatenate([s for _, s in parts]))
        return value if value is not None and math.isfinite(value) else None

    def estimated_on(self, model: _Model, first: int, last: int) -> float | None:
        """The model's primary metric on periods ``first`` to ``last`` estimated without
        their labels (CBPE / DLE); None where it is not estimable or the rows are too few."""
        estimator = self.training.estimator(model)
        if self.metric not in estimator.metrics or last < first:
            return None
        scores = np.concatenate([self.scored(model, i)[1] for i in range(first, last + 1)])
        if len(scores) < MIN_PERIOD_ROWS:
            return None
        frame = None
        if estimator.method == "dle":
            frame = pd.concat([self.periods.period(i) for i in range(first, last + 1)])
        return estimator.estimate(scores, frame)[self.metric].value

    def labelled_through(self, index: int) -> int:
        """The last period whose labels have all arrived when period ``index`` closes
        (``RETRAIN_LABEL_DELAY``); ``index`` itself without a delay, -1 before any."""
        if self.label_delay is None:
            return index
        cutoff = label_cutoff(self.periods.end(index), self.label_delay)
        done = [i for i in range(index + 1) if self.periods.end(i) <= cutoff]
        return done[-1] if done else -1

    # -- judging a window's candidates
    def judge(self, window: Window, champion: _Model | None) -> tuple[Judgement, _Serving]:
        """Judge the candidates of ``window`` against ``champion`` on the window's newest
        holdout; returns the judgement and what serves if the best candidate is promoted."""
        split, models = self.training.candidates(window)
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
    def decide(self, state: PolicyState, index: int) -> _Action:
        if state.name == "static":
            return _Action(False)
        if state.name == "always":
            return _Action(True, (ALWAYS_REASON,))
        if state.name == "monthly":
            signals = Signals(has_champion=True, scheduled=self._monthly_due(index),
                              **self._clock(state, index))  # fmt: skip
        else:
            signals = self.signals(state, index)
        decision = self.retrain_policy.decide(signals)
        drifted = signals.drifted_features if Cause.DRIFT in decision.causes else ()
        return _Action(decision.retrain, tuple(str(reason) for reason in decision.reasons), drifted)

    def signals(self, state: PolicyState, index: int) -> Signals:
        """What the sensors would see after period ``index``: drift and the live metric of
        the trailing drift window, records after the last training, the schedule."""
        periods, model = self.periods, state.serving.model
        start, _end = self.scales.drift_window_of(
            periods.starts[index], periods.count, periods.data_start
        )
        alarm = self.alarm(state.serving, index)
        # the live metric: the trailing window of the newest period whose labels have all
        # arrived (the period itself without delay), on rows the serving model did not train
        # on; the estimate covers the periods after it (none without delay)
        first = self._index(max(start, model.window.end))
        labelled = self.labelled_through(index)
        live = None
        if labelled >= 0:  # the trailing window of the newest fully labelled period
            labelled_start, _ = self.scales.drift_window_of(
                periods.starts[labelled], periods.count, periods.data_start
            )
            first_labelled = self._index(max(labelled_start, model.window.end))
            if first_labelled <= labelled:
                live = self.metric_on(model, first_labelled, labelled)
        estimated = self.estimated_on(model, max(first, labelled + 1), index)
        cutoff = label_cutoff(periods.end(index), self.label_delay)
        return Signals(
            has_champion=True,
            drift_detected=alarm.alarm if alarm else None,
            drifted_features=tuple(alarm.features) if alarm else (),
            drift_acted_on=state.drift_acted_on,
            new_records=(
                periods.count(state.last_training.end, cutoff)
                if cutoff > state.last_training.end
                else 0
            ),
            live_metric=live,
            estimated_metric=estimated,
            baseline_metric=state.serving.baseline,
            higher_is_better=self.higher_is_better,
            scheduled=self.scales.schedule_due(*self._decision_span(index)),
            **self._clock(state, index),
        )

    def alarm(self, serving: _Serving, index: int) -> Alarm | None:
        """The dataset verdict (``RETRAIN_DRIFT_VERDICT``) on the trailing drift window of
        period ``index`` against the serving model's reference; None when the window is too
        small."""
        reference = serving.reference
        key = (serving.model.version, reference.rows, index)  # a version's baseline is fixed
        if key not in self._alarms:
            start, end = self.scales.drift_window_of(
                self.periods.starts[index], self.periods.count, self.periods.data_start
            )
            report = self._drift_of(reference, start, end)
            self._alarms[key] = (
                None if report is None else self._verdict(serving, report, start, index)
            )
        return self._alarms[key]

    def _verdict(
        self, serving: _Serving, report: DriftReport, start: datetime, index: int
    ) -> Alarm:
        model, parts = serving.model, parse_mode(self.verdict)
        importances, why_not = (None, None)
        if "weighted" in parts:
            importances, why_not = self.training.importances(model, self.metric)
        bands, no_bands = (
            self.training.bands(serving.reference) if "calibrated" in parts else (None, None)
        )
        gate = self._estimate_gate(serving, start, index) if "estimated" in parts else None
        return dataset_alarm(
            report, self.verdict, importances=importances, calibration=bands,
            calibration_skipped=no_bands, importance_skipped=why_not,
            weighted_share=self.weighted_share, estimate=gate,
        )  # fmt: skip

    def _estimate_gate(self, serving: _Serving, start: datetime, index: int) -> EstimateGate:
        """The estimate on the drift window's rows the model did not train on, as the
        ``estimated`` part of the verdict needs it (and why there is none)."""
        model = serving.model
        estimated = self.estimated_on(model, self._index(max(start, model.window.end)), index)
        why = self.training.estimator(model).skipped
        if estimated is None and why is None:
            why = f"{self.metric} is not estimable on this window (too few rows or undefined)"
        return EstimateGate(
            self.retrain_policy, estimated, serving.baseline, self.higher_is_better, why
        )

    def _drift_of(self, window: Window, start: datetime, end: datetime) -> DriftReport | None:
        first, last = self.periods.span(start, end)
        if last - first < MIN_PERIOD_ROWS:
            return None
        key = (window.rows, first, last)
        if key not in self._drift:
            profile = self.training.profile(window)
            self._drift[key] = profile.compare(
                self.periods.frame.iloc[first:last],
                self.thresholds,
                multivariate="multivariate" in self.verdict.split("+"),
            )
        return self._drift[key]

    def _decision_span(self, index: int) -> tuple[datetime, datetime]:
        """A schedule tick in this span is taken after period ``index``: it is the newest
        complete period until the next one ends (the tick of 1 June 03:00 trains on May)."""
        end = self.periods.end(index)
        return end, self.scales.period_end(end)

    def _monthly_due(self, index: int) -> bool:
        monthly = TimeScales(period=self.scales.period, schedule="monthly",
                             schedule_hour=self.scales.schedule_hour)  # fmt: skip
        return monthly.schedule_due(*self._decision_span(index))

    def _clock(self, state: PolicyState, index: int) -> dict[str, datetime]:
        """Data time: the cooldown counts from the end of the last training's window."""
        return {"last_training": state.last_training.end, "now": self.periods.end(index)}

    def _index(self, moment: datetime) -> int:
        """The index of the period starting at ``moment`` (past the last: its length)."""
        return int(np.searchsorted(np.array(self.periods.starts), moment, side="left"))

    def step(self, state: PolicyState, index: int) -> None:
        """Score period ``index`` with the serving model, then let the policy act on it."""
        serving = state.serving
        truth, scores = self.scored(serving.model, index)
        state.result.pool(truth, scores)
        value, skipped = self._period_metric(serving.model, index)
        alarm = self.alarm(serving, index)  # before the period's labels are used
        paging = page(
            state.episode, alarm=bool(alarm and alarm.alarm),
            features=alarm.features if alarm else (), partition=self.periods.labels[index],
            reference=f"v{serving.model.version}:{serving.reference.rows}", mode=self.drift_notify,
        )  # fmt: skip
        state.episode = paging.episode
        estimated = self.estimated_on(serving.model, index, index)
        action = self.decide(state, index)
        decision = lift = None
        retrained, reasons = action.retrain, action.reasons
        if retrained and self.labelled_through(index) < 0:
            retrained = False
            reasons = (*reasons, "not retrained: no period's labels have arrived yet")
        if retrained:
            # a training learns from labelled records only: its window ends with the newest
            # period whose labels have all arrived
            window = self.training.window(self.labelled_through(index))
            if window.rows == state.last_training.rows:
                # the pipeline's run key and fingerprint check train once on the same data
                retrained = False
                reasons = (*reasons, "not retrained: already trained on exactly this window")
        if retrained:
            try:
                judgement, candidate = self.judge(window, serving.model)
            except BacktestError as error:  # a later window: keep serving, say why
                retrained = False
                reasons = (*reasons, f"not retrained: {error}")
                self.notes.append(f"{state.name}, {self.periods.labels[index]}: {error}")
            else:
                state.last_training, state.drift_acted_on = window, action.drifted
                lift = judgement.comparison.lift
                always = state.name == "always"
                verdict = Verdict.PROMOTE if always else judgement.decision.verdict
                decision = verdict.value
                if verdict is Verdict.PROMOTE:
                    state.serving = candidate
                elif moves_reference(self.drift_reference, verdict):
                    # kept after a judgement on this window: drift is measured from it now
                    state.serving = replace(serving, revalidated=window)
        model = serving.model
        state.result.rows.append(
            PeriodRow(
                period=self.periods.labels[index],
                rows=len(truth),
                serving_version=model.version,
                serving_family=model.family,
                serving_window=(
                    f"{model.window.start:%Y-%m-%d}",
                    self.periods.labels[model.window.last],
                ),
                metric=value,
                skipped=skipped,
                retrained=retrained,
                reasons=reasons,
                decision=decision,
                lift=lift,
                alarm=alarm.alarm if alarm else None,
                drift_score=alarm.score if alarm else None,
                paged=paging.reason is not None,
                baseline_metric=serving.baseline,
                estimated_metric=estimated,
            )
        )

    def _period_metric(self, model: _Model, index: int) -> tuple[float | None, str | None]:
        rows = len(self.scored(model, index)[0])
        if rows < MIN_PERIOD_ROWS:
            return None, f"{rows} labelled rows (fewer than {MIN_PERIOD_ROWS})"
        value = self.metric_on(model, index, index)
        if value is None:
            return None, f"{self.metric} is undefined on these rows (e.g. a single class)"
        return value, None
