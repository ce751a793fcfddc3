"""Comparing current data with a reference profile: every statistic per column, then the
verdict (``verdict``) over all of them, in a ``DriftReport``."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats

from retraining_assets.core.drift.columns import (
    OTHER,
    UNSEEN,
    CategoricalProfile,
    ColumnProfile,
    DriftInputError,
    Kind,
    NumericProfile,
    _as_series,
    _bin_counts,
    _category_counts,
    _check_frame,
    _inf_counts,
    _map_columns,
    _numeric_values,
    _thread_count,
)
from retraining_assets.core.drift.kernels import _merge_stats
from retraining_assets.core.drift.multivariate import profile_drift
from retraining_assets.core.drift.report import DriftReport
from retraining_assets.core.drift.stats import (
    _ks_d,
    _ks_test,
    _proportions,
    jensen_shannon_distance,
    population_stability_index,
)
from retraining_assets.core.drift.verdict import (
    _apply_verdict,
    _assign_q_values,
    _dataset_verdict,
    _null_verdict,
)
from retraining_assets.core.drift_thresholds import DriftThresholds

if TYPE_CHECKING:
    from retraining_assets.core.drift.profile import ReferenceProfile

PLOT_BINS = 30
FEATURE_KEYS = (
    "kind", "drifted", "testable", "reason", "exceeded", "psi_warning",
    "p_value", "q_value", "n_reference", "n_current",
    "ks_statistic", "ks_pvalue", "psi", "wasserstein", "wasserstein_raw", "jensen_shannon",
    "chi2_statistic", "chi2_pvalue", "cramers_v", "linf",
    "reference_mean", "current_mean", "reference_std", "current_std",
    "inf_reference", "inf_current", "histogram",
)  # fmt: skip


def _blank_entry(kind: Kind) -> dict[str, Any]:
    entry: dict[str, Any] = dict.fromkeys(FEATURE_KEYS)
    entry.update(kind=kind, drifted=False, testable=True, exceeded=[], psi_warning=False)
    return entry


def _untestable(entry: dict[str, Any], reason: str) -> dict[str, Any]:
    entry.update(testable=False, reason=reason)
    return entry


def _quantile(sorted_values: np.ndarray, q: float) -> float:
    return float(sorted_values[round(q * (sorted_values.size - 1))])


def _plot_histogram(ref: np.ndarray, cur: np.ndarray, prof: NumericProfile) -> dict[str, Any]:
    """Equal-width counts over the robust joint range so plots need no raw data."""
    finite = [s for s in (ref, cur) if s.size]
    lo = min(_quantile(s, 0.005) for s in finite) if finite else 0.0
    hi = max(_quantile(s, 0.995) for s in finite) if finite else 1.0
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, PLOT_BINS + 1)

    def counts(s: np.ndarray) -> tuple[list[int], list[int]]:
        inner = np.searchsorted(s, edges, side="left")
        inner[-1] = np.searchsorted(s, hi, side="right")  # last bin is closed
        return np.diff(inner).tolist(), [int(inner[0]), int(s.size - inner[-1])]

    (ref_counts, ref_out), (cur_counts, cur_out) = counts(ref), counts(cur)
    return {
        "type": "numeric",
        "edges": edges.tolist(),
        "reference": ref_counts,
        "current": cur_counts,
        "reference_outside": ref_out,
        "current_outside": cur_out,
        "psi_edges": prof.edges.tolist(),
        "psi_reference": prof.bin_counts.tolist(),
    }


def _pooled_std(n1: int, m1: float, s1: float, n2: int, m2: float, s2: float) -> float:
    n = n1 + n2
    var = (n1 * s1**2 + n2 * s2**2) / n + n1 * n2 * (m1 - m2) ** 2 / n**2
    return math.sqrt(max(var, 0.0))


def _compare_numeric(prof: NumericProfile, values: pd.Series, name: str) -> dict[str, Any]:
    entry = _blank_entry("numeric")
    try:
        cur, _ = _numeric_values(values, name)
    except DriftInputError as exc:
        return _untestable(entry, str(exc))
    ref = prof.sorted_values
    entry.update(n_reference=prof.n_non_null, n_current=int(cur.size))
    if ref.size == 0 or cur.size == 0:
        side = "reference" if ref.size == 0 else "current"
        return _untestable(entry, f"column {name!r} is entirely null in the {side}")

    cur_neg, cur_pos = _inf_counts(cur)
    ref_neg, ref_pos = _inf_counts(ref)
    cur_finite = cur[cur_neg : cur.size - cur_pos]
    ref_finite = ref[ref_neg : ref.size - ref_pos]
    has_inf = ref_finite.size != ref.size or cur_finite.size != cur.size
    i, j, w = _merge_stats(ref, cur)
    d, pvalue = _ks_test(_ks_d(i, j, ref.size, cur.size), ref, cur)
    cur_bins = _bin_counts(cur, prof.edges)
    entry.update(
        ks_statistic=d,
        ks_pvalue=pvalue,
        psi=population_stability_index(prof.bin_counts, cur_bins),
        jensen_shannon=jensen_shannon_distance(prof.bin_counts, cur_bins),
        reference_mean=prof.mean,
        reference_std=prof.std,
        inf_reference=prof.n_neg_inf + prof.n_pos_inf,
        inf_current=cur_neg + cur_pos,
        histogram={
            **_plot_histogram(ref_finite, cur_finite, prof),
            "psi_current": cur_bins.tolist(),
        },
    )
    entry["p_value"] = entry["ks_pvalue"]
    if cur_finite.size and ref_finite.size and prof.mean is not None and prof.std is not None:
        if has_inf:  # the first pass mixed infinities into the integral
            w = _merge_stats(ref_finite, cur_finite)[2]
        cur_mean, cur_std = float(cur_finite.mean()), float(cur_finite.std())
        scale = prof.std or _pooled_std(
            ref_finite.size, prof.mean, prof.std, cur_finite.size, cur_mean, cur_std
        )
        entry.update(
            wasserstein_raw=w,
            wasserstein=w / scale if scale > 0 else 0.0,
            current_mean=cur_mean,
            current_std=cur_std,
        )
    return entry


def _compare_categorical(
    prof: CategoricalProfile, values: pd.Series, name: str, notes: list[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    entry = _blank_entry("categorical")
    names, counts, _, note = _category_counts(values, name)
    if note:
        notes.append(note)
    n_current = int(counts.sum())
    entry.update(n_reference=prof.n_non_null, n_current=n_current)
    index = {label: k for k, label in enumerate(prof.categories)}
    k_other = len(prof.categories)
    cur = np.zeros(k_other + 2, dtype=np.int64)  # kept..., OTHER, UNSEEN
    unseen_names: dict[str, int] = {}
    for label, count in zip(names, counts.tolist(), strict=True):
        if label in index:
            cur[index[label]] += count
        elif prof.seen(label) is False:
            cur[k_other + 1] += count
            unseen_names[label] = count
        else:
            cur[k_other] += count
    unseen = {
        "share": (cur[-1] / n_current if n_current else 0.0) if prof.vocabulary else None,
        "count": int(cur[-1]),
        "categories": dict(sorted(unseen_names.items(), key=lambda kv: -kv[1])[:20]),
    }
    if prof.n_non_null == 0 or n_current == 0:
        side = "reference" if prof.n_non_null == 0 else "current"
        return _untestable(entry, f"column {name!r} is entirely null in the {side}"), unseen
    ref = np.append(prof.counts, 0)
    table = np.vstack([ref, cur])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] >= 2:
        chi2 = stats.chi2_contingency(table)
        statistic, pvalue = float(chi2.statistic), float(chi2.pvalue)
        cramers_v = float(stats.contingency.association(table, method="cramer"))
    else:  # both samples hold one and the same category: nothing differs
        statistic, pvalue, cramers_v = 0.0, 1.0, 0.0
    labels = [*prof.categories, OTHER, UNSEEN]
    entry.update(
        chi2_statistic=statistic,
        chi2_pvalue=pvalue,
        p_value=pvalue,
        cramers_v=cramers_v,
        psi=population_stability_index(ref, cur),
        jensen_shannon=jensen_shannon_distance(ref, cur),
        linf=float(np.max(np.abs(_proportions(ref) - _proportions(cur)))),
        histogram={
            "type": "categorical",
            "labels": labels,
            "reference": ref.tolist(),
            "current": cur.tolist(),
        },
    )
    return entry, unseen


def _null_rate_test(prof: ColumnProfile, n_null: int, n_rows: int) -> dict[str, Any]:
    """Two-proportion z-test (pooled) on the null shares; equals the uncorrected 2x2 chi2."""
    p1, p2 = prof.n_null / prof.n_rows, n_null / n_rows
    pooled = (prof.n_null + n_null) / (prof.n_rows + n_rows)
    se = math.sqrt(pooled * (1 - pooled) * (1 / prof.n_rows + 1 / n_rows))
    pvalue = float(2 * stats.norm.sf(abs(p2 - p1) / se)) if se > 0 else 1.0
    return {"reference": p1, "current": p2, "change": p2 - p1, "p_value": min(pvalue, 1.0),
            "q_value": None, "changed": False}  # fmt: skip


def _null_count(values: pd.Series) -> int:
    return int(values.isna().sum())


def _compare_column(
    prof: ColumnProfile, values: pd.Series, name: str, notes: list[str]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]:
    """(feature entry, null-rate test, unseen summary or None) for one column."""
    nulls = _null_rate_test(prof, _null_count(values), len(values))
    if isinstance(prof, NumericProfile):
        return _compare_numeric(prof, values, name), nulls, None
    entry, unseen = _compare_categorical(prof, values, name, notes)
    return entry, nulls, unseen


def _resolve_series(
    values: pd.Series | np.ndarray | str | None,
    default_column: str | None,
    current: pd.DataFrame,
    role: str,
) -> pd.Series | None:
    if isinstance(values, str):
        if values not in current.columns:
            raise DriftInputError(f"{role} column {values!r} missing from the current frame")
        return current[values]
    if values is None:  # the fit-time column, when this month has it (labels may come later)
        has_default = default_column is not None and default_column in current.columns
        return current[default_column] if has_default else None
    return _as_series(values, role)


def _compare_special(
    prof: ColumnProfile | None,
    values: pd.Series | None,
    role: str,
    t: DriftThresholds,
    notes: list[str],
) -> dict[str, Any] | None:
    """Prediction or target drift: the feature engine on one series, its own BH family."""
    if prof is None and values is None:
        return None
    if prof is None or values is None:
        missing = "reference profile" if prof is None else "current data"
        notes.append(f"{role} drift skipped: no {role} in the {missing}")
        return None
    return _special_verdict(_compare_column(prof, values, role, notes), t)


ColumnResult = tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]


def _special_verdict(result: ColumnResult, t: DriftThresholds) -> dict[str, Any]:
    entry, nulls, unseen = result
    _assign_q_values([entry, nulls])
    _apply_verdict(entry, unseen, t)
    _null_verdict(nulls, t)
    return {**entry, "null_rate": nulls, "unseen": unseen}


def compare(
    profile: ReferenceProfile,
    current: pd.DataFrame,
    thresholds: DriftThresholds | None = None,
    *,
    target: pd.Series | np.ndarray | str | None = None,
    scores: pd.Series | np.ndarray | str | None = None,
    n_jobs: int | None = None,
    multivariate: bool = False,
) -> DriftReport:
    """Compare a current frame against a fitted profile and return the drift report.

    ``multivariate``: also train the domain classifier and score the PCA reconstruction
    (``core.drift.multivariate``) against the profile's row sample, into
    ``report.multivariate``; off by default (it costs seconds, the univariate tests do not).

    ``target``/``scores``: the current labels/model scores (Series, array or column name);
    by default the columns named at fit time. ``n_jobs``: threads over columns (default: see
    :func:`_thread_count`; always capped by ``OMP_NUM_THREADS``).
    """
    thresholds = thresholds or DriftThresholds()
    current = _check_frame(current, "current")
    missing = [str(c) for c in profile.columns if c not in current.columns]
    if missing:
        raise DriftInputError(f"columns missing from the current frame: {missing}")
    notes = list(profile.warnings)
    special = {profile.target_column, profile.score_column} - {None}
    extra = [str(c) for c in current.columns if c not in profile.columns and c not in special]
    if extra:
        notes.append(f"columns not in the reference profile are ignored: {extra}")

    def run(name: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]:
        return _compare_column(profile.columns[name], current[name], str(name), column_notes)

    column_notes: list[str] = []
    names = list(profile.columns)
    results = _map_columns(run, names, _thread_count(n_jobs, len(current)))
    notes.extend(sorted(column_notes))  # sorted: threads append in any order

    report = _assemble_report(
        profile,
        dict(zip(names, results, strict=True)),
        len(current),
        thresholds,
        notes,
        prediction=lambda: _compare_special(
            profile.scores,
            _resolve_series(scores, profile.score_column, current, "scores"),
            "prediction",
            thresholds,
            notes,
        ),
        target=lambda: _compare_special(
            profile.target,
            _resolve_series(target, profile.target_column, current, "target"),
            "target",
            thresholds,
            notes,
        ),
    )
    if multivariate:
        report.multivariate = profile_drift(
            profile.sample, profile.columns, current, seed=profile.options.seed
        )
    return report


def _assemble_report(
    profile: ReferenceProfile,
    results: dict[str, ColumnResult],
    n_current: int,
    thresholds: DriftThresholds,
    notes: list[str],
    *,
    prediction: Callable[[], dict[str, Any] | None],
    target: Callable[[], dict[str, Any] | None],
) -> DriftReport:
    """The verdict over the per-column statistics, whichever engine computed them (in memory
    here, pushed down to a database or DuckDB in ``core.engines``): one place for both."""
    names = list(results)
    features = {name: r[0] for name, r in results.items()}
    null_rates = {name: r[1] for name, r in results.items()}
    unseen = {name: r[2] for name, r in results.items() if r[2] is not None}
    _assign_q_values([*features.values(), *null_rates.values()])
    for name in names:
        _apply_verdict(features[name], unseen.get(name), thresholds)
        _null_verdict(null_rates[name], thresholds)
    notes.extend(_feature_notes(features, null_rates, unseen))
    dataset_drift, share = _dataset_verdict(features, thresholds, notes)
    prediction_result = prediction()  # after the dataset notes: the notes keep their order
    target_result = target()
    return DriftReport(
        dataset_drift=dataset_drift,
        n_reference=profile.n_rows,
        n_current=n_current,
        features=features,
        drifted_features=[n for n in names if features[n]["drifted"]],
        drift_share=share,
        null_rates=null_rates,
        unseen=unseen,
        prediction_drift=prediction_result,
        target_drift=target_result,
        warnings=notes,
        thresholds=thresholds.to_dict(),
        profile_hash=profile.content_hash,
    )


def _feature_notes(
    features: dict[str, dict[str, Any]],
    null_rates: dict[str, dict[str, Any]],
    unseen: dict[str, dict[str, Any]],
) -> list[str]:
    notes = []
    for name, entry in features.items():
        if not entry["testable"]:
            notes.append(f"column {name!r} not testable: {entry['reason']}")
        elif entry["psi_warning"]:
            notes.append(f"column {name!r}: PSI {entry['psi']:.3f} above the warning tier")
        if entry["inf_current"]:
            notes.append(f"column {name!r}: {entry['inf_current']} infinite values in current")
        if null_rates[name]["changed"]:
            rates = null_rates[name]
            notes.append(
                f"column {name!r}: null rate changed {rates['reference']:.3f} -> "
                f"{rates['current']:.3f}"
            )
        if name in unseen and unseen[name]["count"]:
            shown = ", ".join(map(repr, list(unseen[name]["categories"])[:5]))
            notes.append(f"column {name!r}: {unseen[name]['count']} rows with unseen categories "
                         f"({shown})")  # fmt: skip
    return notes
