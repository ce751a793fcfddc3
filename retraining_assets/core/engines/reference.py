"""Fitting a reference profile through an engine, one column at a time, so a reference larger
than memory is never loaded whole.

A numeric column of at most ``max_reference_values`` non-null values is read as one sorted
column and fitted by ``core.drift``'s own fit (the same profile as in memory). A larger one
keeps what the in-memory fit keeps: the seeded sample of the sorted values (the same ranks,
drawn by the same generator, read by ``row_number()`` in the engine, so the KS reference and
therefore D are identical), quantile edges from the values at the exact ranks ``np.quantile``
interpolates between, bin counts over all values and moments computed by the engine.
Categorical columns: a ``GROUP BY`` expanded into a one-byte-per-row categorical series.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from retraining_assets.core.drift.columns import (
    ColumnProfile,
    DriftInputError,
    FitOptions,
    Kind,
    NumericProfile,
    _resolve_kinds,
)
from retraining_assets.core.drift.fit import _fit_column, _sorted_quantiles
from retraining_assets.core.drift.profile import ReferenceProfile
from retraining_assets.core.engines.duckdb_engine import DuckDBRunner
from retraining_assets.core.engines.pushdown import (
    Relation,
    _categorical_series,
    _first_scan,
    _Scan,
)


class _Ranked:
    """Values at some ranks of a sorted column, indexable like the sorted array by those
    ranks: lets ``_sorted_quantiles`` run unchanged on a column that was never loaded."""

    def __init__(self, size: int, ranks: np.ndarray, values: np.ndarray) -> None:
        self.size = size
        self._ranks, self._values = ranks, np.asarray(values, dtype=np.float64)  # ranks sorted

    def __getitem__(self, index: np.ndarray) -> np.ndarray:
        index = np.asarray(index)
        at = np.minimum(np.searchsorted(self._ranks, index), max(self._ranks.size - 1, 0))
        if index.size and not (self._ranks.size and (self._ranks[at] == index).all()):
            raise KeyError("a rank that was not read from the sorted column")
        return self._values[at]


def _sorted_union(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.union1d`` by one sort (numpy 2's hash-based unique took 2.3 s per 2M ranks)."""
    x = np.sort(np.concatenate([a, b]))
    return x[np.concatenate([[True], x[1:] != x[:-1]])] if x.size else x


def _values_at_ranks(
    runner: DuckDBRunner, relation: Relation, name: str, ranks: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The non-null values at the 0-based sorted ``ranks`` of the column and, for each, the
    number of values below it (where its tie group starts): DuckDB sorts (out of core) and
    streams the sorted column in batches; only the wanted ranks are kept."""
    d = runner.dialect
    v = d.as_double(d.quote(name))
    sql = f"SELECT {v} AS v FROM {relation.sql} WHERE {d.not_null(v)} ORDER BY v"
    kept, starts, offset = [], [], 0
    last, last_start = None, 0  # the previous batch's last value and its tie group's start
    for batch in runner.batches(sql):
        values = batch.column(0).to_numpy()
        if values.size == 0:
            continue
        lo, hi = np.searchsorted(ranks, [offset, offset + values.size])
        wanted = values[ranks[lo:hi] - offset]
        local = np.searchsorted(values, wanted, side="left")
        # a tie group that began in an earlier batch starts where it began there
        carried = (local == 0) & (wanted == last)
        starts.append(np.where(carried, last_start, offset + local))
        kept.append(wanted)
        end = int(np.searchsorted(values, values[-1], side="left"))
        last_start = last_start if end == 0 and values[-1] == last else offset + end
        last = values[-1]
        offset += values.size
    if not kept:
        return np.empty(0), np.empty(0, dtype=np.int64)
    return np.concatenate(kept), np.concatenate(starts).astype(np.int64)


def _counts_below(
    ranks: np.ndarray, values: np.ndarray, starts: np.ndarray, n: int, edges: np.ndarray
) -> np.ndarray:
    """Non-null values < each edge from the values known at some ranks, where that decides
    it (an edge equal to a known value, or between two known neighbouring ranks); -1 where it
    does not."""
    idx = np.searchsorted(values, edges, side="left")  # the first known value >= the edge
    out = np.full(edges.size, -1, dtype=np.int64)
    for k, (e, at) in enumerate(zip(edges, idx, strict=True)):
        if at < values.size and values[at] == e:
            out[k] = starts[at]
        elif at == 0:
            out[k] = 0 if values.size and ranks[0] == 0 else -1
        elif at == values.size:
            out[k] = n if ranks[-1] == n - 1 else -1
        elif ranks[at] == ranks[at - 1] + 1:
            out[k] = ranks[at]
    return out


def _fit_large_numeric(
    runner: DuckDBRunner, relation: Relation, name: str, n_rows: int, scan: _Scan,
    options: FitOptions,
) -> NumericProfile:  # fmt: skip
    n = scan.non_null
    n_finite = n - scan.neg - scan.pos
    rng = np.random.default_rng(options.seed)  # as _fit_numeric: one generator per column
    sample = np.sort(rng.choice(n, options.max_reference_values, replace=False))
    qs = np.arange(1, options.n_bins) / options.n_bins
    if n_finite:
        h = (n_finite - 1) * qs
        lo = np.floor(h).astype(np.int64)
        finite_ranks = np.unique(np.concatenate([lo, np.minimum(lo + 1, n_finite - 1)]))
    else:
        finite_ranks = np.empty(0, dtype=np.int64)
    ranks = _sorted_union(sample, finite_ranks + scan.neg)  # -inf values come first
    values, starts = _values_at_ranks(runner, relation, name, ranks)
    by_rank = _Ranked(n, ranks, values)
    sorted_values = by_rank[sample]
    if n_finite:
        finite = _Ranked(n_finite, finite_ranks, by_rank[finite_ranks + scan.neg])
        edges = np.unique(_sorted_quantiles(finite, qs))  # type: ignore[arg-type]
    else:
        edges = np.empty(0)
    # each edge lies between the values at two neighbouring known ranks: no scan to count
    below = _counts_below(ranks, values, starts, n, edges)
    if (below < 0).any():  # not expected; counted by the engine then
        _, with_edges = _first_scan(runner, relation, {name: edges[below < 0]})
        below[below < 0] = with_edges[name].below_edges
    bin_counts = np.diff(np.array([0, *below, n])).astype(np.int64)
    return NumericProfile(
        sorted_values=sorted_values, n_rows=n_rows, n_null=n_rows - n, n_neg_inf=scan.neg,
        n_pos_inf=scan.pos, mean=scan.mean if n_finite else None,
        std=scan.std if n_finite else None, edges=edges, bin_counts=bin_counts, sampled=True,
    )  # fmt: skip


def _numeric_series(runner: DuckDBRunner, relation: Relation, name: str, n_null: int) -> pd.Series:
    d = runner.dialect
    v = d.as_double(d.quote(name))
    # unsorted: the in-memory fit sorts the values itself (a second sort in DuckDB cost 2 s at 2M)
    values = runner.values(f"SELECT {v} FROM {relation.sql} WHERE {d.not_null(v)}")
    return pd.Series(np.concatenate([values, np.full(n_null, np.nan)]))


def _target_kind(runner: DuckDBRunner, relation: Relation, dtype: Any, name: str) -> Kind:
    """``fit._target_kind`` (auto): categorical unless numeric; integers with <= 20 classes."""
    if not pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
        return "categorical"
    if pd.api.types.is_integer_dtype(dtype):
        (row,) = runner.rows(
            f"SELECT COUNT(DISTINCT {runner.dialect.quote(name)}) FROM {relation.sql}"
        )
        if int(row[0]) <= 20:
            return "categorical"
    return "numeric"


def fit_reference_in_engine(
    runner: DuckDBRunner,
    relation: Relation,
    numeric: Sequence[str] | None = None,
    categorical: Sequence[str] | None = None,
    *,
    target: str | None = None,
    **options: Any,
) -> ReferenceProfile:
    """``core.drift.fit_reference`` on a relation, one column at a time (see the module)."""
    fit_options = FitOptions(**options)
    empty = runner.empty_frame(relation)
    if target is not None and target not in empty.columns:
        raise DriftInputError(f"column {target!r} missing from the reference")
    kinds, notes = _resolve_kinds(empty, numeric, categorical, exclude={target} - {None})
    if not kinds:
        raise DriftInputError("the reference has no numeric or categorical column to monitor")
    roles: dict[str, Kind] = dict(kinds)
    if target is not None:
        roles[target] = _target_kind(runner, relation, empty[target].dtype, target)
    numeric_names = [n for n, k in roles.items() if k == "numeric"]
    n_rows, scans = _first_scan(runner, relation, {n: np.empty(0) for n in numeric_names})
    if n_rows == 0:
        raise DriftInputError(f"the reference frame is empty (0 rows): {relation.description}")
    column_notes: list[str] = []
    target_notes: list[str] = []  # in memory the target is fitted last, its notes go last
    fitted: dict[str, ColumnProfile] = {}
    for name, kind in roles.items():
        label = "target" if name == target else name
        sink = target_notes if name == target else column_notes
        if kind == "categorical":
            values = _categorical_series(runner, relation, name)
        elif scans[name].non_null > fit_options.max_reference_values:
            prof = _fit_large_numeric(runner, relation, name, n_rows, scans[name], fit_options)
            if prof.std == 0:
                sink.append(
                    f"column {label!r} is constant in the reference; its Wasserstein distance is "
                    "normalised by the pooled std of both samples"
                )
            fitted[name] = prof
            continue
        else:
            values = _numeric_series(runner, relation, name, n_rows - scans[name].non_null)
        fitted[name] = _fit_column(values, label, kind, fit_options, sink)
    target_profile = fitted.pop(target) if target is not None else None
    return ReferenceProfile(
        columns={name: fitted[name] for name in kinds},
        n_rows=n_rows,
        options=fit_options,
        target=target_profile,
        target_column=target,
        warnings=[*notes, *sorted(column_notes), *target_notes],
    )
