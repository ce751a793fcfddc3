"""The current period's drift statistics computed by the engine that holds the data.

The same per-column results the in-memory comparison builds (``core.drift.comparison``),
computed as SQL; ``_assemble_report`` then makes the verdict, the one function for every
engine. Per period: one scan for counts, null and infinity counts, moments and the
reference-binned histogram counts of every numeric column; per numeric column one query over
the union of the profile's reference values and the current column, whose window sums are the
two ECDFs at every value (the KS maximiser ``(i, j)``, exactly the merge kernel's; the
Wasserstein integral; the plot quantiles) — or, for an engine that streams a sorted column
(DuckDB: its sort spills, its window operator does not), ``streamed``, which also counts
both histograms on the sorted batches; else one scan for the plot histograms; a ``GROUP BY`` per
categorical column. Columns of at most ``EXACT_KS_MAX_N`` values (scipy's exact p-value needs
both samples) are fetched and compared by the in-memory code itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from retraining_assets.core.drift.columns import (
    CategoricalProfile,
    ColumnProfile,
    DriftInputError,
    NumericProfile,
    _as_series,
    _inf_counts,
)
from retraining_assets.core.drift.comparison import (
    PLOT_BINS,
    ColumnResult,
    _assemble_report,
    _blank_entry,
    _compare_column,
    _compare_numeric,
    _compare_special,
    _null_rate_test,
    _pooled_std,
    _quantile,
    _special_verdict,
    _untestable,
)
from retraining_assets.core.drift.profile import ReferenceProfile
from retraining_assets.core.drift.report import DriftReport
from retraining_assets.core.drift.stats import (
    EXACT_KS_MAX_N,
    _ks_asymptotic_pvalue,
    _ks_d,
    jensen_shannon_distance,
    population_stability_index,
)
from retraining_assets.core.drift_thresholds import DriftThresholds
from retraining_assets.core.engines.dialect import Dialect
from retraining_assets.core.engines.streamed import streamed_merge


class EngineError(RuntimeError):
    """An engine cannot compute the statistics; the message names the setting or file."""


@dataclass(frozen=True)
class Relation:
    """A period as the engine sees it: a FROM item (``(SELECT ... WHERE time in window) AS
    cur``), its column names, and a printable description."""

    sql: str
    columns: list[str]
    description: str


class Runner(Protocol):
    """One engine session: SQL in, rows out; temporary tables live as long as it does."""

    dialect: Dialect

    def rows(self, sql: str) -> list[tuple[Any, ...]]: ...

    def values(self, sql: str) -> np.ndarray:
        """The first column of the result as float64."""
        ...

    def upload(self, values: np.ndarray) -> str:
        """A temporary table with one DOUBLE column ``v`` holding ``values``; its name."""
        ...


@dataclass
class _Scan:
    non_null: int
    neg: int
    pos: int
    mean: float | None
    std: float | None
    below_edges: list[int]  # non-null values < each PSI edge


def _count(condition: str) -> str:
    return f"COUNT(CASE WHEN {condition} THEN 1 END)"


def _first_scan(
    runner: Runner, relation: Relation, edges: dict[str, np.ndarray]
) -> tuple[int, dict[str, _Scan]]:
    """Rows; per numeric column non-null, -inf and +inf counts, finite mean and population
    std, and the non-null counts below each of its ``edges`` (one scan)."""
    d = runner.dialect
    items, layout, inner = ["COUNT(*)"], [], ["1 AS one"]
    inf = d.number(float("inf"))
    for k, (name, column_edges) in enumerate(edges.items()):
        # the inner projection tests NULL/NaN once per value, not once per edge
        v = d.as_double(d.quote(name))
        inner.append(f"CASE WHEN {d.not_null(v)} THEN {v} END AS n{k}")
        finite = f"CASE WHEN n{k} > -{inf} AND n{k} < {inf} THEN n{k} END"
        items += [
            f"COUNT(n{k})", _count(f"n{k} = -{inf}"), _count(f"n{k} = {inf}"),
            f"AVG({finite})", f"STDDEV_POP({finite})" if d.stddev_pop else "NULL",
        ]  # fmt: skip
        items += [_count(f"n{k} < {d.number(e)}") for e in column_edges]
        layout.append((name, column_edges.size))
    source = f"(SELECT {', '.join(inner)} FROM {relation.sql}) AS scan"
    (row,) = runner.rows(f"SELECT {', '.join(items)} FROM {source}")
    n_rows, position, scans = int(row[0] or 0), 1, {}
    for name, n_edges in layout:
        non_null, neg, pos, mean, std = row[position : position + 5]
        below = [int(x or 0) for x in row[position + 5 : position + 5 + n_edges]]
        position += 5 + n_edges
        scans[name] = _Scan(
            int(non_null or 0), int(neg or 0), int(pos or 0),
            None if mean is None else float(mean), None if std is None else float(std), below,
        )  # fmt: skip
    if not d.stddev_pop:
        _second_moments(runner, relation, scans)
    return n_rows, scans


def _second_moments(runner: Runner, relation: Relation, scans: dict[str, _Scan]) -> None:
    """Population std as numpy computes it (two passes: the mean, then squared deviations)."""
    d, items, names = runner.dialect, [], []
    for name, scan in scans.items():
        if scan.mean is not None:
            v = d.as_double(d.quote(name))
            gap = f"({v} - {d.number(scan.mean)})"
            items.append(f"AVG(CASE WHEN {d.finite(v)} THEN {gap} * {gap} END)")
            names.append(name)
    if items:
        (row,) = runner.rows(f"SELECT {', '.join(items)} FROM {relation.sql}")
        for name, variance in zip(names, row, strict=True):
            scans[name].std = float(np.sqrt(max(float(variance), 0.0)))


@dataclass
class _Merge:
    i: int
    j: int
    w_sum: float | None
    low: float | None  # the current finite values at the plot quantiles
    high: float | None
    below_edges: list[int] | None = None  # counted while streaming (else by the scans)
    plot: tuple[list[int], int] | None = None


def _merge_query(
    runner: Runner, relation: Relation, name: str, prof: NumericProfile, scan: _Scan
) -> _Merge:
    """KS maximiser, Wasserstein integral and plot quantiles from the union's window sums."""
    d = runner.dialect
    ref = prof.sorted_values
    n1, n2 = ref.size, scan.non_null
    ref_neg, ref_pos = _inf_counts(ref)
    n1f, n2f = n1 - ref_neg - ref_pos, n2 - scan.neg - scan.pos
    v = d.as_double(d.quote(name))
    frame = "ORDER BY v RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW"
    ratio = f"ABS({d.as_double('i')} / {n1} - {d.as_double('j')} / {n2})"
    gap = f"{d.as_double(f'ABS((i - {ref_neg}) * {n2f} - (j - {scan.neg}) * {n1f})')}"
    ranks = [round(q * (n2f - 1)) for q in (0.005, 0.995)] if n2f else [0, 0]
    quantile = [
        f"MIN(CASE WHEN a IS NULL AND {d.finite('v')} AND j - {scan.neg} >= {k + 1} THEN v END)"
        for k in ranks
    ]
    if hasattr(runner, "batches"):  # an engine that streams a sorted column (DuckDB)
        low, high = _current_quantiles(runner, relation, v, ranks, scan)
        edges = _plot_edges(ref[ref_neg : n1 - ref_pos], low, high)
        sql = f"SELECT {v} AS v FROM {relation.sql} WHERE {d.not_null(v)} ORDER BY v"
        s = streamed_merge(runner, sql, prof, n2, scan.neg, n2f, edges)  # type: ignore[arg-type]
        return _Merge(s.i, s.j, s.w_sum, low, high, s.below_edges, (s.plot_below, s.plot_at_most))
    table = runner.upload(ref)
    union = f"""
        WITH u AS (
            SELECT v, 1 AS a FROM {table}
            UNION ALL
            SELECT {v} AS v, NULL AS a FROM {relation.sql} WHERE {d.not_null(v)}
        ), c AS {d.materialized}(
            SELECT v, a, COUNT(a) OVER ({frame}) AS i, COUNT(*) OVER ({frame}) AS t,
                   LEAD(v) OVER (ORDER BY v) AS nxt
            FROM u
        ), m AS (SELECT v, a, i, t - i AS j, nxt FROM c)
    """
    key = f"ABS(i * {n2} - j * {n1})"
    aggregates = f"""
        SUM(CASE WHEN {d.finite("v")} AND {d.finite("nxt")} THEN {gap} * (nxt - v) ELSE 0.0 END)
            AS w, {quantile[0]} AS low, {quantile[1]} AS high"""
    # the union is materialised once (PostgreSQL spills it), then read twice
    sql = f"""{union}
        SELECT best.i, best.j, agg.w, agg.low, agg.high
        FROM (SELECT i, j FROM m ORDER BY {key} DESC, {ratio} DESC LIMIT 1) AS best
        CROSS JOIN (SELECT {aggregates} FROM m) AS agg"""
    (row,) = runner.rows(sql)
    i, j, w, low, high = row
    return _Merge(int(i), int(j), None if w is None else float(w), _opt(low), _opt(high))


def _current_quantiles(
    runner: Runner, relation: Relation, v: str, ranks: list[int], scan: _Scan
) -> tuple[float | None, float | None]:
    """The finite current values at the plot quantiles' ``ranks``, before the column is
    streamed (the plot edges must be known to count on the batches): two top-N queries
    whose heaps hold only the 0.5% of values beyond each rank. No WHERE clause: with one,
    DuckDB 2.0 reads the whole column (0.2 s, not 0.04 s); the infinities are skipped by
    their counts, NaN ordered with the NULLs last."""
    n2f = scan.non_null - scan.neg - scan.pos
    if not n2f:
        return None, None
    d = runner.dialect
    column = f"(SELECT CASE WHEN {d.not_null(v)} THEN {v} END AS v FROM {relation.sql}) AS c"
    values = []
    for order, offset in (("", scan.neg + ranks[0]), (" DESC", scan.pos + n2f - 1 - ranks[1])):
        sql = f"SELECT v FROM {column} ORDER BY v{order} NULLS LAST LIMIT 1 OFFSET {offset}"
        ((value,),) = runner.rows(sql)
        values.append(_opt(value))
    return values[0], values[1]


def _opt(value: Any) -> float | None:
    return None if value is None else float(value)


def _plot_edges(ref_finite: np.ndarray, low: float | None, high: float | None) -> np.ndarray:
    """``comparison._plot_histogram``'s edges from the reference array and the current
    quantiles (the same values it reads from the sorted current array)."""
    lows = [_quantile(ref_finite, 0.005)] if ref_finite.size else []
    highs = [_quantile(ref_finite, 0.995)] if ref_finite.size else []
    lows += [low] if low is not None else []
    highs += [high] if high is not None else []
    lo, hi = (min(lows), max(highs)) if lows else (0.0, 1.0)
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, PLOT_BINS + 1)


def _histogram_counts(
    counts_below: list[int], at_most_high: int, n: int
) -> tuple[list[int], list[int]]:
    inner = np.array([*counts_below, at_most_high])
    return np.diff(inner).tolist(), [int(inner[0]), int(n - inner[-1])]


def _plot_scan(
    runner: Runner, relation: Relation, edges: dict[str, np.ndarray]
) -> dict[str, tuple[list[int], int]]:
    if not edges:
        return {}
    d, items, inner = runner.dialect, [], []
    for k, (name, e) in enumerate(edges.items()):
        v = d.as_double(d.quote(name))
        inner.append(f"CASE WHEN {d.finite(v)} THEN {v} END AS f{k}")
        items += [_count(f"f{k} < {d.number(x)}") for x in e[:-1]]
        items.append(_count(f"f{k} <= {d.number(e[-1])}"))
    source = f"(SELECT {', '.join(inner)} FROM {relation.sql}) AS scan"
    (row,) = runner.rows(f"SELECT {', '.join(items)} FROM {source}")
    out, position = {}, 0
    for name, e in edges.items():
        values = [int(x or 0) for x in row[position : position + e.size]]
        out[name] = (values[:-1], values[-1])
        position += e.size
    return out


def _numeric_entry(
    prof: NumericProfile, scan: _Scan, merge: _Merge
) -> tuple[dict[str, Any], np.ndarray | None]:
    """``_compare_numeric``'s entry (without the plot counts) from the engine's results."""
    entry = _blank_entry("numeric")
    ref = prof.sorted_values
    entry.update(n_reference=prof.n_non_null, n_current=scan.non_null)
    ref_neg, ref_pos = _inf_counts(ref)
    ref_finite = ref[ref_neg : ref.size - ref_pos]
    n2f = scan.non_null - scan.neg - scan.pos
    d = _ks_d(merge.i, merge.j, ref.size, scan.non_null)
    cur_bins = np.diff(np.array([0, *scan.below_edges, scan.non_null])).astype(np.int64)
    entry.update(
        ks_statistic=d,
        ks_pvalue=_ks_asymptotic_pvalue(d, ref.size, scan.non_null),
        psi=population_stability_index(prof.bin_counts, cur_bins),
        jensen_shannon=jensen_shannon_distance(prof.bin_counts, cur_bins),
        reference_mean=prof.mean,
        reference_std=prof.std,
        inf_reference=prof.n_neg_inf + prof.n_pos_inf,
        inf_current=scan.neg + scan.pos,
    )
    entry["p_value"] = entry["ks_pvalue"]
    ready = n2f and ref_finite.size and prof.mean is not None and prof.std is not None
    if ready and merge.w_sum is not None and scan.mean is not None and scan.std is not None:
        w = merge.w_sum / (ref_finite.size * n2f)
        scale = prof.std or _pooled_std(
            ref_finite.size, prof.mean, prof.std, n2f, scan.mean, scan.std
        )
        entry.update(
            wasserstein_raw=w,
            wasserstein=w / scale if scale > 0 else 0.0,
            current_mean=scan.mean,
            current_std=scan.std,
        )
    return entry, cur_bins


def _categorical_series(runner: Runner, relation: Relation, name: str) -> pd.Series:
    """The column's value counts from a ``GROUP BY``, as a categorical series of the same
    values (one byte per row for up to 127 categories), so the in-memory categorical code
    compares it unchanged."""
    q = runner.dialect.quote(name)
    rows = runner.rows(f"SELECT {q}, COUNT(*) FROM {relation.sql} GROUP BY {q}")
    values, counts, n_null = [], [], 0
    for value, count in rows:
        if value is None or (isinstance(value, float) and value != value):
            n_null += int(count)
        else:
            values.append(value)
            counts.append(int(count))
    order = sorted(range(len(values)), key=lambda k: (-counts[k], str(values[k])))
    codes_type = np.min_scalar_type(-max(len(values), 1))
    codes = np.repeat(np.arange(len(values), dtype=codes_type), [counts[k] for k in order])
    codes = np.concatenate([codes, np.full(n_null, -1, dtype=codes_type)])
    categories = pd.Index([values[k] for k in order], dtype=object)
    return pd.Series(pd.Categorical.from_codes(codes, categories=categories))


@dataclass
class _Pending:
    prof: NumericProfile
    scan: _Scan
    merge: _Merge
    entry: dict[str, Any]
    cur_bins: np.ndarray
    edges: np.ndarray


def _column_results(
    runner: Runner,
    relation: Relation,
    columns: dict[str, ColumnProfile],
    notes: list[str],
    labels: dict[str, str],
) -> tuple[int, dict[str, ColumnResult]]:
    numeric = {n: p for n, p in columns.items() if isinstance(p, NumericProfile)}
    streams = hasattr(runner, "batches")  # the histograms are counted on the sorted batches
    edges = {n: np.empty(0) if streams else p.edges for n, p in numeric.items()}
    n_rows, scans = _first_scan(runner, relation, edges)
    if n_rows == 0:
        raise DriftInputError(
            f"the current frame is empty (0 rows): nothing to compare ({relation.description})"
        )
    results: dict[str, ColumnResult] = {}
    pending: dict[str, _Pending] = {}
    for name, prof in columns.items():
        label = labels.get(name, name)  # the target's messages say "target", as in memory
        if isinstance(prof, CategoricalProfile):
            results[name] = _compare_column(
                prof, _categorical_series(runner, relation, name), label, notes
            )
            continue
        scan = scans[name]
        nulls = _null_rate_test(prof, n_rows - scan.non_null, n_rows)
        if prof.sorted_values.size == 0 or scan.non_null == 0:
            entry = _blank_entry("numeric")
            entry.update(n_reference=prof.n_non_null, n_current=scan.non_null)
            side = "reference" if prof.sorted_values.size == 0 else "current"
            results[name] = (
                _untestable(entry, f"column {label!r} is entirely null in the {side}"),
                nulls,
                None,
            )
        elif max(prof.sorted_values.size, scan.non_null) <= EXACT_KS_MAX_N:
            v = runner.dialect.as_double(runner.dialect.quote(name))
            values = runner.values(
                f"SELECT {v} FROM {relation.sql} WHERE {runner.dialect.not_null(v)}"
            )
            results[name] = (_compare_numeric(prof, pd.Series(values), label), nulls, None)
        else:
            merge = _merge_query(runner, relation, name, prof, scan)
            if merge.below_edges is not None:
                scan.below_edges = merge.below_edges
            entry, cur_bins = _numeric_entry(prof, scan, merge)
            ref = prof.sorted_values
            ref_neg, ref_pos = _inf_counts(ref)
            edges = _plot_edges(ref[ref_neg : ref.size - ref_pos], merge.low, merge.high)
            pending[name] = _Pending(prof, scan, merge, entry, cur_bins, edges)
            results[name] = (entry, nulls, None)
    plots = _plot_scan(
        runner, relation, {n: p.edges for n, p in pending.items() if p.merge.plot is None}
    )
    for name, item in pending.items():
        if item.merge.plot is not None:
            plots[name] = item.merge.plot
    for name, item in pending.items():
        ref = item.prof.sorted_values
        ref_neg, ref_pos = _inf_counts(ref)
        ref_finite = ref[ref_neg : ref.size - ref_pos]
        below, at_most = plots[name]
        n_finite = item.scan.non_null - item.scan.neg - item.scan.pos
        cur_counts, cur_out = _histogram_counts(below, at_most, n_finite)
        inner = np.searchsorted(ref_finite, item.edges, side="left")
        inner[-1] = np.searchsorted(ref_finite, item.edges[-1], side="right")
        item.entry["histogram"] = {
            "type": "numeric",
            "edges": item.edges.tolist(),
            "reference": np.diff(inner).tolist(),
            "current": cur_counts,
            "reference_outside": [int(inner[0]), int(ref_finite.size - inner[-1])],
            "current_outside": cur_out,
            "psi_edges": item.prof.edges.tolist(),
            "psi_reference": item.prof.bin_counts.tolist(),
            "psi_current": item.cur_bins.tolist(),
        }
    return n_rows, results


def compare_pushdown(
    profile: ReferenceProfile,
    runner: Runner,
    relation: Relation,
    thresholds: DriftThresholds | None = None,
    *,
    ignore: Sequence[str] = (),
    scores: pd.Series | np.ndarray | None = None,
) -> DriftReport:
    """The drift report of ``relation`` against ``profile``, its statistics computed by
    ``runner``'s engine; equal to ``profile.compare(<the relation as a frame>)`` (KS D exactly,
    PSI/JS/chi-square to rounding, the same p-value formulas). Prediction drift needs the
    model's scores on rows: ``scores`` (e.g. on a seeded sample of the period) are compared
    in memory, or it is skipped with a note. ``ignore``: columns of the relation that a frame
    would not hold (a surrogate id)."""
    thresholds = thresholds or DriftThresholds()
    available = [c for c in relation.columns if c not in set(ignore)]
    missing = [str(c) for c in profile.columns if c not in available]
    if missing:
        raise DriftInputError(f"columns missing from the current frame: {missing}")
    notes = list(profile.warnings)
    special = {profile.target_column, profile.score_column} - {None}
    extra = [str(c) for c in available if c not in profile.columns and c not in special]
    if extra:
        notes.append(f"columns not in the reference profile are ignored: {extra}")
    columns: dict[str, ColumnProfile] = dict(profile.columns)
    has_target = profile.target is not None and profile.target_column in available
    if has_target:
        columns[str(profile.target_column)] = profile.target  # type: ignore[assignment]
    column_notes: list[str] = []
    labels = {str(profile.target_column): "target"} if has_target else {}
    n_rows, results = _column_results(runner, relation, columns, column_notes, labels)
    target_result = results.pop(str(profile.target_column)) if has_target else None
    notes.extend(sorted(column_notes))

    def target() -> dict[str, Any] | None:
        if target_result is None:
            return _compare_special(profile.target, None, "target", thresholds, notes)
        return _special_verdict(target_result, thresholds)

    return _assemble_report(
        profile,
        results,
        n_rows,
        thresholds,
        notes,
        prediction=lambda: _compare_special(
            profile.scores,
            None if scores is None else _as_series(scores, "scores"),
            "prediction",
            thresholds,
            notes,
        ),
        target=target,
    )
