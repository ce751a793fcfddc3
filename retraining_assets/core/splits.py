"""The data a training sees: a window split by time into train, validation and holdout.

``split_for_training`` is the one split every training uses (the pipeline's ``training_data``
and the backtest); ``TrainingError`` is raised here first, where training data is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from retraining_assets.core.dataset import DatasetSpec, label_strings, parse_timestamps
from retraining_assets.core.timescales import Duration
from retraining_assets.settings import Settings

HOLDOUT_SHARE = 0.2  # the holdout's largest share of a training window


class TrainingError(ValueError):
    """Data or arguments that cannot be trained on; the message names the problem."""


# --- splitting -------------------------------------------------------------------------------
@dataclass
class Split:
    """Time-ordered parts: train (oldest), valid (early stopping, ensemble weights), holdout
    (the most recent rows; only ever used for evaluation)."""

    train: pd.DataFrame
    valid: pd.DataFrame
    holdout: pd.DataFrame
    train_weight: np.ndarray | None = None  # per train row (mean 1); None: all rows alike

    def describe(self, time_column: str) -> dict[str, dict[str, Any]]:
        """Rows and time range of each part (for metadata)."""
        return {
            name: {
                "rows": len(part),
                "start": str(part[time_column].min()),
                "end": str(part[time_column].max()),
            }
            for name, part in (
                ("train", self.train),
                ("valid", self.valid),
                ("holdout", self.holdout),
            )
        }


def split_by_time(
    frame: pd.DataFrame,
    spec: DatasetSpec,
    valid_share: float = 0.15,
    holdout_share: float = HOLDOUT_SHARE,
    *,
    valid_records: int | None = None,
    holdout_records: int | None = None,
    half_life: timedelta | None = None,
    n_holdout: int | None = None,
) -> Split:
    """Order rows by time; the holdout is the most recent tail, valid the block before it.

    With ``holdout_records`` the holdout is the newest that many rows (at most
    ``holdout_share`` of the window), so a candidate is judged on the newest records, as the
    champion is. With ``valid_records`` the valid part is that many rows (at most
    ``valid_share``). When the window is large enough that the record count, not the share,
    sizes it, those rows are drawn, seeded, from everything before the holdout, in proportion
    to the recency weights: the newest records before the holdout are then trained on, not
    set aside, so a model retrained a few days after a change has seen the change, and early
    stopping and ensemble weights are judged on the mix the fit weighs. A small window keeps
    the block before the holdout: its gap keeps the holdout an honest forecast on an
    autocorrelated series (measured on weather, README "New data can win quickly").

    With ``half_life`` a train row weighs half as much as one ``half_life`` newer (weights
    relative to the newest train row, mean 1), so the recent records dominate the fit.

    ``n_holdout`` fixes the holdout at exactly that many newest rows: a window sampled before
    training (``core.training_sample``) sized it on the whole window and kept it intact.
    """
    if not (0 < valid_share < 1 and 0 < holdout_share < 1 and valid_share + holdout_share < 1):
        raise TrainingError(
            f"valid_share ({valid_share}) and holdout_share ({holdout_share}) must be in (0, 1) "
            "and sum to less than 1"
        )
    require_columns(frame, (spec.time_column, spec.target), "training data")
    nulls = int(frame[spec.target].isna().sum())
    if nulls:
        raise TrainingError(f"target '{spec.target}' is null in {nulls} of {len(frame)} rows")
    if infinite := spec.infinite_values(frame):  # sklearn's own error names no column
        raise TrainingError("training data: " + "; ".join(map(str, infinite)))
    times = frame[spec.time_column]
    if not pd.api.types.is_datetime64_any_dtype(times):
        times = parse_timestamps(times)
    order = np.argsort(times.to_numpy(), kind="stable")
    ordered = frame.iloc[order].reset_index(drop=True)
    n = len(ordered)
    if n_holdout is None:
        n_holdout = holdout_size(n, holdout_records, holdout_share)
    n_valid = _part_size(n, valid_share, valid_records)
    n_train = n - n_holdout - n_valid
    for part, size in (("train", n_train), ("valid", n_valid), ("holdout", n_holdout)):
        if size <= 0:
            raise TrainingError(
                f"the {part} part would be empty: {n} rows with valid_share={valid_share}, "
                f"holdout_share={holdout_share}"
            )
    ordered_times = times.to_numpy()[order]
    n_fit = n_train + n_valid
    if valid_records and n_valid == valid_records:  # sized by records, not capped by share
        is_valid = _weighted_draw(
            n_fit, _recency_weights(ordered_times[:n_fit], half_life), n_valid
        )
    else:  # the block before the holdout, as before records were counted
        is_valid = np.arange(n_fit) >= n_train
    train_rows = np.flatnonzero(~is_valid)
    split = Split(
        train=ordered.iloc[train_rows],
        valid=ordered.iloc[np.flatnonzero(is_valid)],
        holdout=ordered.iloc[n_fit:],
        train_weight=_recency_weights(ordered_times[train_rows], half_life),
    )
    if spec.task != "regression":
        present = label_strings(split.train[spec.target]).unique()
        if len(present) < 2:
            raise TrainingError(
                f"the train part has a single class {present[0]!r} in target '{spec.target}'; "
                "a classifier needs at least two"
            )
    return split


def _weighted_draw(n: int, weights: np.ndarray | None, size: int, seed: int = 0) -> np.ndarray:
    """A mask of ``size`` of ``n`` rows drawn without replacement, each in proportion to its
    weight (uniformly when None); seeded, so a window always splits the same way."""
    p = None if weights is None else weights / weights.sum()
    mask = np.zeros(n, dtype=bool)
    mask[np.random.default_rng(seed).choice(n, size, replace=False, p=p)] = True
    return mask


def _recency_weights(times: np.ndarray, half_life: timedelta | None) -> np.ndarray | None:
    if half_life is None or len(times) == 0:
        return None
    age = (times[-1] - times) / np.timedelta64(half_life)
    weights = np.power(0.5, age.astype(np.float64))
    return weights / weights.mean()


def holdout_size(n: int, records: int | None, share: float = HOLDOUT_SHARE) -> int:
    """The holdout of an ``n``-record window: the newest ``records`` (at most ``share`` of
    the window), or the newest ``share`` when ``records`` is None or 0."""
    return _part_size(n, share, records)


def _part_size(n: int, share: float, records: int | None) -> int:
    by_share = round(n * share)
    return by_share if not records else min(records, by_share)


def split_for_training(settings: Settings) -> Callable[[pd.DataFrame, DatasetSpec], Split]:
    """The split every training uses (pipeline and backtest): ``RETRAIN_HOLDOUT_RECORDS`` and
    ``RETRAIN_VALIDATION_RECORDS`` (0: the old shares, the newest 20% and the 15% before), and
    ``RETRAIN_TRAINING_HALF_LIFE`` (recent records weigh more)."""
    half_life = settings.training_half_life
    return partial(
        split_by_time,
        holdout_records=settings.holdout_records or None,
        valid_records=settings.validation_records or None,
        half_life=Duration.parse(half_life).timedelta() if half_life else None,
    )


def require_columns(frame: pd.DataFrame, columns: Iterable[str], where: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise TrainingError(f"{where}: missing columns {missing}")
