"""Fitting a reference profile: sorted (or seeded-sampled) values and quantile bins per numeric
column, kept categories and a vocabulary per categorical one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from retraining_assets.core.dataset import is_numeric_dtype
from retraining_assets.core.drift.columns import (
    OTHER,
    CategoricalProfile,
    ColumnProfile,
    DriftInputError,
    FitOptions,
    Kind,
    NumericProfile,
    _as_series,
    _bin_counts,
    _category_counts,
    _check_frame,
    _inf_counts,
    _map_columns,
    _numeric_values,
    _resolve_kinds,
    _thread_count,
)
from retraining_assets.core.drift.multivariate import encode_profiled
from retraining_assets.core.drift.profile import ReferenceProfile


def _fit_numeric(values: pd.Series, name: str, options: FitOptions) -> NumericProfile:
    sorted_values, n_null = _numeric_values(values, name)
    n_neg, n_pos = _inf_counts(sorted_values)
    finite = sorted_values[n_neg : sorted_values.size - n_pos]
    if finite.size:
        quantiles = _sorted_quantiles(finite, np.arange(1, options.n_bins) / options.n_bins)
        edges = np.unique(quantiles)  # duplicate edges merged
        mean, std = float(finite.mean()), float(finite.std())
    else:
        edges, mean, std = np.empty(0), None, None
    bin_counts = _bin_counts(sorted_values, edges)
    sampled = sorted_values.size > options.max_reference_values
    if sampled:
        # Sorted indices into a sorted array give a sorted sample directly.
        rng = np.random.default_rng(options.seed)
        index = rng.choice(sorted_values.size, options.max_reference_values, replace=False)
        sorted_values = sorted_values[np.sort(index)]
    return NumericProfile(
        sorted_values=sorted_values, n_rows=len(values), n_null=n_null, n_neg_inf=n_neg,
        n_pos_inf=n_pos, mean=mean, std=std, edges=edges, bin_counts=bin_counts, sampled=sampled,
    )  # fmt: skip


def _sorted_quantiles(sorted_values: np.ndarray, qs: np.ndarray) -> np.ndarray:
    """``np.quantile(sorted_values, qs)`` (linear method, same lerp) without re-partitioning."""
    h = (sorted_values.size - 1) * qs
    lo = np.floor(h).astype(np.int64)
    a = sorted_values[lo]
    b = sorted_values[np.minimum(lo + 1, sorted_values.size - 1)]
    t = h - lo
    diff = b - a
    return np.where(t >= 0.5, b - diff * (1 - t), a + diff * t)


def _fit_categorical(
    values: pd.Series, name: str, options: FitOptions, notes: list[str]
) -> CategoricalProfile:
    names, counts, n_null, note = _category_counts(values, name)
    if note:
        notes.append(note)
    order = np.argsort(-counts, kind="stable")
    total = max(int(counts.sum()), 1)
    kept = [
        int(k)
        for k in order[: options.max_categories]
        if counts[k] / total >= options.min_category_share and names[k] != OTHER
    ]
    other = int(counts.sum() - counts[kept].sum())
    vocabulary = sorted(names) if len(names) <= options.max_vocabulary else None
    if vocabulary is None:
        notes.append(
            f"column {name!r} has {len(names)} distinct reference categories (more than "
            f"max_vocabulary={options.max_vocabulary}); unseen categories cannot be detected"
        )
    return CategoricalProfile(
        categories=[names[k] for k in kept],
        counts=np.append(counts[kept], other).astype(np.int64),
        n_rows=len(values),
        n_null=n_null,
        vocabulary=vocabulary,
    )


def _fit_column(
    values: pd.Series, name: str, kind: Kind, options: FitOptions, notes: list[str]
) -> ColumnProfile:
    if kind == "numeric":
        prof = _fit_numeric(values, name, options)
        if prof.n_non_null == 0:
            notes.append(f"column {name!r} is entirely null in the reference")
        elif prof.std == 0:
            notes.append(
                f"column {name!r} is constant in the reference; its Wasserstein distance is "
                "normalised by the pooled std of both samples"
            )
        return prof
    prof = _fit_categorical(values, name, options, notes)
    if prof.n_non_null == 0:
        notes.append(f"column {name!r} is entirely null in the reference")
    return prof


def _target_kind(series: pd.Series, kind: Kind | Literal["auto"], max_classes: int = 20) -> Kind:
    """Labels: categorical unless continuous; integer/bool labels with few values are classes."""
    if kind != "auto":
        return kind
    if not is_numeric_dtype(series.dtype):
        return "categorical"
    if pd.api.types.is_integer_dtype(series.dtype) and series.nunique() <= max_classes:
        return "categorical"
    return "numeric"


def fit_reference(
    reference: pd.DataFrame,
    numeric: Sequence[str] | None = None,
    categorical: Sequence[str] | None = None,
    *,
    target: pd.Series | np.ndarray | str | None = None,
    scores: pd.Series | np.ndarray | str | None = None,
    target_kind: Kind | Literal["auto"] = "auto",
    n_jobs: int | None = None,
    **options: Any,
) -> ReferenceProfile:
    """Fit the reference profile once.

    Column kinds follow dtypes (numeric dtypes are numeric whatever their cardinality; object,
    string, category and bool are categorical) unless ``numeric``/``categorical`` are given, in
    which case those lists are the complete monitored schema. ``target``/``scores`` are a
    Series/array aligned with nothing in particular, or the name of a column of ``reference``
    (then excluded from the features and looked up by name in current frames).
    ``options``: see :class:`FitOptions` (``n_bins``, ``max_reference_values`` (default 2M
    values per numeric column; above it a seeded uniform sample of the sorted values is kept,
    bins and moments still come from all values), ``seed``, ``max_categories``,
    ``min_category_share``, ``max_vocabulary``, ``sample_rows`` (default 0: rows of the
    reference kept, seeded, for multivariate drift; the pipeline keeps 20,000)).
    ``n_jobs``: threads over columns, as in :func:`compare`; not part of the profile.
    """
    reference = _check_frame(reference, "reference")
    fit_options = FitOptions(**options)
    special = {c for c in (target, scores) if isinstance(c, str)}
    for column in special:
        if column not in reference.columns:
            raise DriftInputError(f"column {column!r} missing from the reference")
    kinds, notes = _resolve_kinds(reference, numeric, categorical, exclude=special)
    if not kinds:
        raise DriftInputError("the reference has no numeric or categorical column to monitor")
    column_notes: list[str] = []

    def fit(name: Any) -> ColumnProfile:
        return _fit_column(reference[name], str(name), kinds[name], fit_options, column_notes)

    names = list(kinds)
    fitted_columns = _map_columns(fit, names, _thread_count(n_jobs, len(reference)))
    columns = dict(zip(names, fitted_columns, strict=True))
    notes.extend(sorted(column_notes))  # sorted: threads append in any order
    fitted = {}
    for role, values in (("target", target), ("scores", scores)):
        if values is None:
            continue
        series = reference[values] if isinstance(values, str) else _as_series(values, role)
        kind = _target_kind(series, target_kind) if role == "target" else "numeric"
        fitted[role] = _fit_column(series, role, kind, fit_options, notes)
    sample = None
    if fit_options.sample_rows:
        rng = np.random.default_rng([fit_options.seed, 2])
        size = min(fit_options.sample_rows, len(reference))
        rows = np.sort(rng.choice(len(reference), size, replace=False))
        sample = encode_profiled(columns, reference.iloc[rows])
    return ReferenceProfile(
        sample=sample,
        columns=columns,
        n_rows=len(reference),
        options=fit_options,
        target=fitted.get("target"),
        scores=fitted.get("scores"),
        target_column=target if isinstance(target, str) else None,
        score_column=scores if isinstance(scores, str) else None,
        warnings=notes,
    )
