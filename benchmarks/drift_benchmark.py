"""Benchmark of the drift engine against a naive per-column scipy loop.

Seeded synthetic data: 20 numeric + 5 categorical columns, 6 of them drifted in known ways
(mean shift, 1.5x scale change, mixture tail, Poisson rate, new category, re-weighted
categories). Times ``detect_drift`` (fit + compare), compare-only against a fitted profile,
and the naive loop (``ks_2samp`` + PSI + ``chi2_contingency`` per column) in the same run,
reports peak traced memory and checks that both find the same drifted columns.

    python benchmarks/drift_benchmark.py --sizes 200000 1000000
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial.distance import jensenshannon

from retraining_assets.core.drift import (
    DriftThresholds,
    benjamini_hochberg,
    detect_drift,
    fit_reference,
    population_stability_index,
)

N_NUMERIC, N_CATEGORICAL = 20, 5
EXPECTED_DRIFT = ["num_00", "num_01", "num_02", "num_03", "cat_0", "cat_1"]
CATEGORIES = np.array([f"c{k}" for k in range(12)])


def _numeric(rng: np.random.Generator, k: int, n: int, drifted: bool) -> np.ndarray:
    """Column k's generator; only columns 0-3 change when ``drifted``."""
    if k == 0:  # mean shift of 0.5 std
        return rng.normal(0.5 if drifted else 0.0, 1.0, n)
    if k == 1:  # 1.5x scale change
        return rng.normal(0.0, 1.5 if drifted else 1.0, n)
    if k == 2:  # 25 % of the mass moves to a far tail
        x = rng.lognormal(0.0, 0.5, n)
        if drifted:
            x[rng.random(n) < 0.25] += 3.0
        return x
    if k == 3:  # integer counts (ties): Poisson rate 3 -> 4.5
        return rng.poisson(4.5 if drifted else 3.0, n).astype(np.float64)
    kinds = (
        lambda: rng.normal(k, 1 + k % 3, n),
        lambda: rng.uniform(-k, k, n),
        lambda: rng.exponential(1 + k % 4, n),
        lambda: rng.integers(0, 50, n).astype(np.float64),
    )
    x = kinds[k % len(kinds)]()
    if k % 5 == 0:  # some columns carry nulls
        x[rng.random(n) < 0.02] = np.nan
    return x


def _categorical(rng: np.random.Generator, k: int, n: int, drifted: bool) -> np.ndarray:
    weights = np.geomspace(1.0, 0.02, CATEGORIES.size)
    labels = CATEGORIES
    if k == 0 and drifted:  # a category never seen in the reference takes 15 %
        labels = np.append(CATEGORIES, "brand_new")
        weights = np.append(weights / weights.sum() * 0.85, 0.15)
    if k == 1 and drifted:  # the distribution is re-weighted
        weights = weights[::-1]
    return labels[rng.choice(labels.size, size=n, p=weights / weights.sum())]


def make_frame(n: int, seed: int, drifted: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data: dict[str, Any] = {f"num_{k:02d}": _numeric(rng, k, n, drifted) for k in range(N_NUMERIC)}
    for k in range(N_CATEGORICAL):
        data[f"cat_{k}"] = pd.Series(_categorical(rng, k, n, drifted), dtype="string")
    return pd.DataFrame(data)


def naive_drift(reference: pd.DataFrame, current: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Per-column loop over plain scipy/numpy calls: the baseline to beat.

    Same verdict rule as the engine minus Wasserstein (BH q < 0.05 and PSI >= 0.2 or JS >= 0.1).
    """
    out = {}
    for name in reference.columns:
        ref, cur = reference[name].dropna(), current[name].dropna()
        if pd.api.types.is_numeric_dtype(ref.dtype):
            ks = stats.ks_2samp(ref.to_numpy(), cur.to_numpy())
            edges = np.unique(np.quantile(ref, np.arange(1, 10) / 10))
            bins = np.concatenate([[-np.inf], edges, [np.inf]])
            # [e_k, e_k+1) bins as the engine uses: np.histogram is right-open except the last.
            ref_counts = np.histogram(ref, bins)[0]
            cur_counts = np.histogram(cur, bins)[0]
            out[name] = {"p": ks.pvalue, "ks": ks.statistic}
        else:
            ref_vc, cur_vc = ref.value_counts(), cur.value_counts()
            table = pd.concat([ref_vc, cur_vc], axis=1).fillna(0).to_numpy(dtype=np.float64).T
            out[name] = {"p": stats.chi2_contingency(table).pvalue, "ks": np.nan}
            ref_counts, cur_counts = table
        out[name]["psi"] = population_stability_index(ref_counts, cur_counts)
        out[name]["js"] = float(jensenshannon(ref_counts, cur_counts, base=2))
    q = benjamini_hochberg([v["p"] for v in out.values()])
    for value, q_value in zip(out.values(), q, strict=True):
        value["drifted"] = bool(q_value < 0.05 and (value["psi"] >= 0.2 or value["js"] >= 0.1))
    return out


def _time(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def _peak(fn: Callable[[], Any]) -> float:
    """Peak bytes allocated (numpy buffers are traced) while ``fn`` runs."""
    gc.collect()
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def run(n: int, repeat: int) -> list[dict[str, Any]]:
    reference = make_frame(n, seed=1, drifted=False)
    current = make_frame(n, seed=2, drifted=True)
    input_bytes = int(
        reference.memory_usage(deep=True).sum() + current.memory_usage(deep=True).sum()
    )
    thresholds = DriftThresholds()
    detect_drift(reference.head(2000), current.head(2000))  # JIT/cache warm-up, not timed

    naive_s, naive = _time(lambda: naive_drift(reference, current), repeat)
    profile = fit_reference(reference)
    rows = []
    cases: list[tuple[str, Callable[[], Any]]] = [
        ("naive scipy loop", lambda: naive_drift(reference, current)),
        ("detect_drift (1 thread)", lambda: detect_drift(reference, current, n_jobs=1)),
        ("detect_drift (2 threads)", lambda: detect_drift(reference, current, n_jobs=2)),
        ("compare only (1 thread)", lambda: profile.compare(current, thresholds, n_jobs=1)),
        ("compare only (2 threads)", lambda: profile.compare(current, thresholds, n_jobs=2)),
    ]
    report = None
    for label, fn in cases:
        seconds, result = (naive_s, naive) if label.startswith("naive") else _time(fn, repeat)
        if label.startswith("detect"):
            report = result
        rows.append(
            {
                "n": n,
                "case": label,
                "seconds": seconds,
                "speedup": naive_s / seconds,
                "peak_mb": _peak(fn) / 2**20,
                "peak_ratio": _peak(fn) / input_bytes if not label.startswith("naive") else None,
                "input_mb": input_bytes / 2**20,
            }
        )
    assert report is not None
    ours = sorted(report.drifted_features)
    theirs = sorted(k for k, v in naive.items() if v["drifted"])
    ks_gap = max(
        abs(report.features[k]["ks_statistic"] - v["ks"])
        for k, v in naive.items()
        if v["ks"] == v["ks"]
    )
    psi_gap = max(abs(report.features[k]["psi"] - v["psi"]) for k, v in naive.items())
    js_gap = max(abs(report.features[k]["jensen_shannon"] - v["js"]) for k, v in naive.items())
    print(f"\nn={n}: engine drifted {ours}\n        naive drifted  {theirs}")
    print(f"        expected       {sorted(EXPECTED_DRIFT)}")
    print(
        f"        max |diff| engine vs naive: KS D {ks_gap:.1e}, PSI {psi_gap:.1e}, JS {js_gap:.1e}"
    )
    if ours != theirs or ours != sorted(EXPECTED_DRIFT):
        raise SystemExit("drifted columns disagree")
    _optional_competitors(reference, current)
    return rows


def _optional_competitors(reference: pd.DataFrame, current: pd.DataFrame) -> None:
    try:
        from evidently import Report  # type: ignore[import-not-found]
        from evidently.presets import DataDriftPreset  # type: ignore[import-not-found]
    except ImportError:
        print("        evidently not installed: skipped")
        return
    start = time.perf_counter()
    Report([DataDriftPreset()]).run(current_data=current, reference_data=reference)
    print(f"        evidently DataDriftPreset: {time.perf_counter() - start:.1f} s")


def print_table(rows: list[dict[str, Any]]) -> None:
    print(f"\nmachine: {os.cpu_count()} CPUs, {_cpu_model()}; OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS', 'unset')}")  # fmt: skip
    print("| rows per frame | case | seconds | speed-up vs naive | peak traced MB | peak / input |")
    print("|---:|---|---:|---:|---:|---:|")
    for r in rows:
        ratio = "–" if r["peak_ratio"] is None else f"{r['peak_ratio']:.2f}"
        print(
            f"| {r['n']:,} | {r['case']} | {r['seconds']:.2f} | {r['speedup']:.1f}x | "
            f"{r['peak_mb']:.0f} | {ratio} |"
        )
    sizes = sorted({r["n"] for r in rows})
    for n in sizes:
        print(f"input arrays at n={n:,}: {next(r['input_mb'] for r in rows if r['n'] == n):.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[200_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3, help="best of N timings")
    args = parser.parse_args()
    rows = [row for n in args.sizes for row in run(n, args.repeat)]
    print_table(rows)


if __name__ == "__main__":
    main()
