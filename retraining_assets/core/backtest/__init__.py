"""Replay a labelled history period by period through the production retraining policies.

The backtest answers "does the retraining policy pay off on this data, and where does it lose?"
with the very code the Dagster pipeline runs: ``RetrainPolicy.decide`` (core/triggers.py) says
when to retrain, ``TimeScales`` (core/timescales.py) cuts the periods and the drift and training
windows, ``train_candidates`` trains, ``judge`` with ``PromotionPolicy`` (core/lifecycle.py,
core/promotion.py) says whether the candidate replaces the serving model. Nothing here compares a
signal or a lift with a threshold.

The four time scales are options: the monitoring period (``period``: day, week or month), the
training window (``window`` periods, or ``window_days`` days), the drift window
(``drift_window`` trailing periods, widened to ``RETRAIN_DRIFT_MIN_RECORDS`` records) and the
schedule (``schedule``: monthly or none). Without the new options the protocol is the original
one: monthly periods, a 3-period window, drift of the period alone, no schedule.

Protocol (prequential: test, then train). The first whole training window trains the first
model. For every later period ``p``:

1. the serving model scores ``p``'s rows *before* any training sees ``p``'s labels;
2. each policy decides whether to retrain after ``p``: ``auto`` asks ``RetrainPolicy`` with the
   signals the sensors would see, ``monthly`` asks it with the monthly schedule alone,
   ``static`` never retrains, ``always`` retrains every period;
3. a retraining trains candidates on the training window ending with ``p`` and judges them
   against the serving model on the window's newest holdout; ``auto`` and ``monthly`` swap the
   serving model only on ``PROMOTE`` (``PENDING`` waits for a person who is not there), ``always``
   promotes without a gate. A window of exactly the rows of the policy's last training is not
   trained again (the pipeline's run keys and fingerprint check); a later window that cannot be
   trained on (a single class, too few rows) keeps the serving model and says why in the row.

Signals of ``auto`` after ``p``, as the sensors gather them: drift of the trailing drift window
against the serving model's training-window profile; the live metric = the serving model's
metric on the rows of that window it did not train on, against its baseline (its holdout metric
when it was judged); new records = rows after the last training's window (the watermark moves
with every training, promoted or not, as in production); the schedule is due when one of its
ticks falls before the next period ends (the tick of 1 June 03:00 retrains on the data through
May). The cooldown (``RETRAIN_RETRAIN_COOLDOWN_HOURS``) counts in data time.

Metrics: a period's own metric needs ``MIN_PERIOD_ROWS`` labelled rows (and a defined metric:
AUC needs both classes); every policy's ``mean_metric`` pools all the rows it scored, so a day
of 20 rows counts as 20 rows.

Bad input raises ``BacktestError`` naming the column or period. Rows out of time order are
sorted (stable) and the fact is noted in ``BacktestResult.notes``; rows with a null target are
unlabelled records and are left out (also noted); a period whose target is null in every row is
an error.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from retraining_assets.core.backtest.periods import BacktestError, Periods, prepare
from retraining_assets.core.backtest.replay import (
    ALWAYS_REASON,
    MIN_PERIOD_ROWS,
    PolicyState,
    Replay,
    _Training,
)
from retraining_assets.core.backtest.results import BacktestResult, PeriodRow, PolicyResult
from retraining_assets.core.dataset import DatasetError, DatasetSpec
from retraining_assets.core.evaluation import get_metric, primary_metric_for
from retraining_assets.core.pipeline import promotion_policy, retrain_policy
from retraining_assets.core.sources import SourceError, read_table
from retraining_assets.core.timescales import (
    PERIOD_NAMES,
    PERIOD_WORDS,
    Duration,
    TimeScaleError,
    TimeScales,
)
from retraining_assets.core.training import split_for_training
from retraining_assets.settings import Settings, load_settings

__all__ = [
    "ALWAYS_REASON",
    "DEFAULT_FAMILIES",
    "MIN_PERIOD_ROWS",
    "POLICIES",
    "BacktestError",
    "BacktestResult",
    "PeriodRow",
    "PolicyResult",
    "backtest_file",
    "backtest_scales",
    "replay_history",
    "run_backtest",
]

POLICIES: tuple[str, ...] = ("auto", "monthly", "static", "always")
DEFAULT_FAMILIES: tuple[str, ...] = ("xgboost",)  # the fastest family; pass more to compare
PERIOD_UNITS = {"hour": (1, "h"), "day": (1, "d"), "week": (7, "d"), "month": (1, "M")}

Progress = Callable[[int, int, str], None]


def backtest_scales(
    settings: Settings,
    period: str = "month",
    window: int = 3,
    window_days: int | None = None,
    drift_window: int | None = None,
    schedule: str = "none",
) -> TimeScales:
    """The backtest's four time scales from its options (see the module docstring)."""
    if period not in PERIOD_NAMES:
        raise BacktestError(f"period must be one of {list(PERIOD_NAMES)}, got {period!r}")
    if window < 1 or (window_days is not None and window_days < 1):
        raise BacktestError(f"window must be at least 1 period or day, got {window_days or window}")
    if schedule not in ("monthly", "none"):
        raise BacktestError(f"schedule must be monthly or none, got {schedule!r}")
    per, unit = PERIOD_UNITS[period]
    training = Duration(window_days, "d") if window_days else Duration(window * per, unit)
    scales = TimeScales(
        period=PERIOD_NAMES[period],
        drift_window=drift_window or 1,
        drift_min_records=settings.drift_min_records if drift_window else 0,
        training_window=training,
        schedule=schedule,
        schedule_hour=settings.retrain_schedule_hour,
    )
    try:
        return scales.validate()
    except TimeScaleError as error:
        raise BacktestError(f"{error.setting.replace('_', ' ')}: {error.problem}") from None


def run_backtest(
    frame: pd.DataFrame,
    spec: DatasetSpec,
    *,
    settings: Settings,
    period: str = "month",
    window: int = 3,
    window_days: int | None = None,
    drift_window: int | None = None,
    schedule: str = "none",
    families: Sequence[str] = DEFAULT_FAMILIES,
    policies: Sequence[str] = POLICIES,
    progress: Progress | None = None,
    seed: int = 0,
) -> BacktestResult:
    """Replay ``frame`` period by period through each policy (see the module docstring)."""
    scales = backtest_scales(settings, period, window, window_days, drift_window, schedule)
    return replay_history(
        frame, spec, scales, settings=settings, families=families, policies=policies,
        progress=progress, seed=seed,
    )  # fmt: skip


def replay_history(
    frame: pd.DataFrame,
    spec: DatasetSpec,
    scales: TimeScales,
    *,
    settings: Settings,
    families: Sequence[str] = DEFAULT_FAMILIES,
    policies: Sequence[str] = POLICIES,
    progress: Progress | None = None,
    seed: int = 0,
) -> BacktestResult:
    """``run_backtest`` on given time scales: a pipeline's own (``Pipeline.timescales``, any
    schedule), so the replay cuts the periods and windows its sensors and jobs do."""
    started = time.perf_counter()
    period = PERIOD_WORDS[scales.period]
    _check_arguments(families, policies)
    notes: list[str] = []
    periods, spec = prepare(frame, spec, scales, notes)
    first = _first_training(periods, period)
    metric = _metric(settings, spec)
    replay = Replay(
        periods=periods,
        spec=spec,
        training=_Training(periods, spec, tuple(families), split_for_training(settings), seed),
        retrain_policy=retrain_policy(settings),
        promotion_policy=promotion_policy(settings),
        thresholds=settings.drift_thresholds(),
        metric=metric,
        seed=seed,
        notes=notes,
        verdict=settings.drift_verdict,
        drift_reference=settings.drift_reference,
        drift_notify=settings.drift_notify,
        weighted_share=settings.drift_weighted_share,
        label_delay=settings.label_delay_duration,
    )
    report = progress or (lambda _done, _total, _message: None)
    total = len(periods) - first
    window_0 = replay.training.window(first)
    judgement, serving = replay.judge(window_0, None)
    if not judgement.decision.promote:
        notes.append(
            f"the promotion gate would not promote the first model ({judgement.decision.reason}); "
            "it serves anyway so that the policies can be compared"
        )
    states = [
        PolicyState(
            name,
            serving,
            window_0,
            PolicyResult(name, metric, higher_is_better=replay.higher_is_better),
        )
        for name in policies
    ]
    report(1, total, f"first model trained on {replay.training.describe(window_0)}")
    for index in range(first + 1, len(periods)):
        for state in states:
            replay.step(state, index)
        report(index - first + 1, total, f"{period} {periods.labels[index]}")
    return BacktestResult(
        metric=metric,
        higher_is_better=replay.higher_is_better,
        policies={state.name: state.result for state in states},
        period=period,
        settings={
            "period": period,
            "training_window": str(scales.training_window),
            "drift_window": scales.drift_window,
            "drift_min_records": scales.drift_min_records,
            "schedule": scales.schedule,
            "drift_verdict": settings.drift_verdict,
            "drift_reference": settings.drift_reference,
            "drift_notify": settings.drift_notify,
            "label_delay": settings.label_delay,
        },
        families=tuple(families),
        notes=notes,
        seconds=time.perf_counter() - started,
    )


def _first_training(periods: Periods, period: str) -> int:
    """The index of the first period whose training window is whole; one must follow it."""
    scales = periods.scales
    start = scales.first_training_period(periods.data_start)
    first = periods.starts.index(start) if start in periods.starts else len(periods)
    if first + 1 >= len(periods):
        labels = periods.labels
        # the window's periods up to and with ``start`` (also when the data ends before it)
        window = len(list(scales.periods(periods.data_start, scales.period_end(start))))
        raise BacktestError(
            f"the data spans {len(periods)} {period}s ({labels[0]} to {labels[-1]}); a backtest "
            f"needs a whole training window ({scales.training_window}) and a {period} after it: "
            f"at least window + 1 = {window + 1} {period}s"
        )
    return first


def _check_arguments(families: Sequence[str], policies: Sequence[str]) -> None:
    if not families:
        raise BacktestError("at least one model family is needed")
    unknown = [p for p in policies if p not in POLICIES]
    if unknown or not policies or len(set(policies)) != len(policies):
        raise BacktestError(f"policies must be distinct names from {list(POLICIES)}: {policies}")


def _metric(settings: Settings, spec: DatasetSpec) -> str:
    """The promotion's primary metric, checked against the task."""
    name = primary_metric_for(spec.task, settings.primary_metric)
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
    settings: Settings | None = None,
    **options: object,
) -> BacktestResult:
    """Backtest a CSV (also gzipped) or Parquet file; the spec is inferred from the whole
    file (every column but the time column, the target and ``drop`` is a feature).
    ``options`` are ``run_backtest``'s."""
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
    return run_backtest(frame, spec, settings=settings or load_settings(), **options)  # type: ignore[arg-type]
