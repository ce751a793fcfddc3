"""Column profiles (what a reference keeps of a numeric or categorical column), the fitting
options, and how columns are classified and their values extracted for fitting and comparing."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from retraining_assets.core.dataset import is_categorical_dtype, is_numeric_dtype

OTHER = "__other__"  # rare reference categories (and their current counterparts)
UNSEEN = "__unseen__"  # current categories never seen in the reference

Kind = Literal["numeric", "categorical"]


class DriftInputError(ValueError):
    """The comparison is impossible (missing column, empty frame, unreadable file...)."""


@dataclass
class NumericProfile:
    """Reference summary of one numeric column (statistics on non-null values)."""

    sorted_values: np.ndarray  # non-null values incl. ±inf, sorted; a seeded sample if capped
    n_rows: int
    n_null: int
    n_neg_inf: int
    n_pos_inf: int
    mean: float | None  # of the finite values; None when there are none
    std: float | None  # population std (ddof=0) of the finite values
    edges: np.ndarray  # inner PSI bin edges (outer edges are ±inf); bins are [e_k, e_k+1)
    bin_counts: np.ndarray  # reference counts per PSI bin, from *all* non-null values
    sampled: bool = False
    kind: Kind = "numeric"

    @property
    def n_non_null(self) -> int:
        return self.n_rows - self.n_null


@dataclass
class CategoricalProfile:
    """Reference summary of one categorical column; categories are compared by ``str(value)``."""

    categories: list[str]  # kept categories, most frequent first
    counts: np.ndarray  # len(categories) + 1 counts, the last one is OTHER
    n_rows: int
    n_null: int
    vocabulary: list[str] | None  # every category seen, sorted; None above max_vocabulary
    kind: Kind = "categorical"
    _vocab_set: frozenset[str] | None = field(default=None, repr=False, compare=False)

    @property
    def n_non_null(self) -> int:
        return self.n_rows - self.n_null

    def seen(self, name: str) -> bool | None:
        if self.vocabulary is None:
            return None
        if self._vocab_set is None:
            self._vocab_set = frozenset(self.vocabulary)
        return name in self._vocab_set


ColumnProfile = NumericProfile | CategoricalProfile


@dataclass(frozen=True)
class FitOptions:
    """Fitting options; part of the profile content (and therefore of its hash)."""

    n_bins: int = 10
    max_reference_values: int = 2_000_000  # per numeric column; above: seeded sample
    seed: int = 0
    max_categories: int = 100
    min_category_share: float = 0.001  # rarer reference categories fold into OTHER
    max_vocabulary: int = 100_000
    sample_rows: int = 0  # seeded feature rows kept for multivariate drift (0: none, format 1)

    def __post_init__(self) -> None:
        if (
            self.n_bins < 2
            or self.max_reference_values < 1
            or self.max_categories < 1
            or self.sample_rows < 0
        ):
            raise ValueError(f"invalid fit options: {self}")


# --------------------------------------------------------------------------- column kinds


def _resolve_kinds(
    frame: pd.DataFrame,
    numeric: Sequence[str] | None,
    categorical: Sequence[str] | None,
    exclude: set[str],
) -> tuple[dict[str, Kind], list[str]]:
    """Column -> kind. Explicit lists are the complete schema; otherwise kinds follow dtypes."""
    notes: list[str] = []
    if numeric is not None or categorical is not None:
        numeric, categorical = list(numeric or []), list(categorical or [])
        both = sorted(set(numeric) & set(categorical))
        if both:
            raise DriftInputError(f"columns listed as both numeric and categorical: {both}")
        missing = [c for c in numeric + categorical if c not in frame.columns]
        if missing:
            raise DriftInputError(f"columns missing from the reference: {missing}")
        kinds: dict[str, Kind] = {c: "numeric" for c in numeric}
        kinds.update({c: "categorical" for c in categorical})
        return kinds, notes
    kinds = {}
    for name in frame.columns:
        if name in exclude:
            continue
        dtype = frame[name].dtype
        if is_numeric_dtype(dtype):
            kinds[name] = "numeric"
        elif is_categorical_dtype(dtype):
            kinds[name] = "categorical"
        else:
            notes.append(
                f"column {name!r} has unsupported dtype {dtype} and is not monitored; "
                "pass numeric=/categorical= to include it"
            )
    return kinds, notes


def _check_frame(frame: Any, role: str) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise DriftInputError(f"{role} must be a pandas DataFrame, got {type(frame).__name__}")
    if len(frame) == 0:
        raise DriftInputError(f"the {role} frame is empty (0 rows): nothing to compare")
    duplicated = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
    if duplicated:
        raise DriftInputError(f"the {role} frame has duplicated columns: {duplicated}")
    return frame


# --------------------------------------------------------------------------- value extraction


def _numeric_values(values: pd.Series, name: str) -> tuple[np.ndarray, int]:
    """Sorted non-null float64 values and the null count; raises for non-numeric content."""
    dtype = values.dtype
    if isinstance(dtype, np.dtype) and dtype == np.float64:
        x = values.to_numpy()
    elif is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
        x = values.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        try:
            x = pd.to_numeric(values, errors="raise").to_numpy(dtype=np.float64, na_value=np.nan)
        except (ValueError, TypeError) as exc:
            raise DriftInputError(
                f"column {name!r} is numeric in the reference but holds non-numeric values ({exc})"
            ) from exc
    null = np.isnan(x)
    n_null = int(np.count_nonzero(null))
    kept = x[~null] if n_null else x.copy()
    kept.sort()
    return kept, n_null


def _category_counts(values: pd.Series, name: str) -> tuple[list[str], np.ndarray, int, str | None]:
    """Category names (as ``str``), their counts, the null count and a mixed-type note."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    counts = np.bincount(codes + 1, minlength=len(uniques) + 1)  # slot 0 holds the nulls
    raw = np.asarray(uniques, dtype=object)
    note = None
    inferred = pd.api.types.infer_dtype(raw, skipna=True) if len(raw) else "empty"
    if inferred.startswith("mixed"):
        kinds = sorted({type(v).__name__ for v in raw})
        note = (
            f"column {name!r} mixes value types ({', '.join(kinds)}); its categories are "
            "compared by their string form"
        )
    names = [str(v) for v in raw]
    merged: dict[str, int] = {}
    for label, count in zip(names, counts[1:].tolist(), strict=True):
        merged[label] = merged.get(label, 0) + count  # 1 and "1" share a string form
    return list(merged), np.fromiter(merged.values(), np.int64, len(merged)), int(counts[0]), note


def _as_series(values: pd.Series | np.ndarray | Sequence[Any], name: str) -> pd.Series:
    series = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values))
    if len(series) == 0:
        raise DriftInputError(f"the {name} series is empty")
    return series


PARALLEL_MIN_ROWS = 100_000  # below this, thread start-up costs more than it saves


def _inf_counts(sorted_values: np.ndarray) -> tuple[int, int]:
    n_neg = int(np.searchsorted(sorted_values, -np.inf, side="right"))
    n_pos = int(sorted_values.size - np.searchsorted(sorted_values, np.inf, side="left"))
    return n_neg, n_pos


def _bin_counts(sorted_values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts in bins [-inf, e0), [e0, e1), ..., [e_last, inf] of a sorted array."""
    cuts = np.searchsorted(sorted_values, edges, side="left")
    return np.diff(np.concatenate([[0], cuts, [sorted_values.size]])).astype(np.int64)


def _thread_count(n_jobs: int | None, n_rows: int) -> int:
    """Threads for the per-column work, capped by OMP_NUM_THREADS and the CPU count.

    Default (None): all allowed CPUs from PARALLEL_MIN_ROWS rows on, else 1. Measured on the
    2-CPU benchmark machine: 2 threads cut compare from 0.52 s to 0.28 s at 1M rows and did
    not help at 200k (numpy sorting and the merge kernel release the GIL).
    """
    env = os.environ.get("OMP_NUM_THREADS", "")
    cpus = os.cpu_count() or 1
    limit = min(int(env), cpus) if env.isdigit() and int(env) > 0 else cpus
    wanted = n_jobs if n_jobs is not None else (limit if n_rows >= PARALLEL_MIN_ROWS else 1)
    return max(1, min(wanted, limit))


def _map_columns(fn: Callable[[Any], Any], names: Sequence[Any], jobs: int) -> list[Any]:
    if jobs > 1 and len(names) > 1:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            return list(pool.map(fn, names))
    return [fn(name) for name in names]
