"""Benchmark of the multivariate drift scores, and how often they flag on real data.

Speed: the drift benchmark's seeded 20 numeric + 5 categorical columns (``make_frame``), a
reference and a current frame of ``--rows`` rows each. The baseline is today's univariate
``detect_drift(reference, current)`` in the same run; timed next to it are the multivariate
verdict alone (domain classifier + reconstruction against the profile's 20,000-row sample:
what ``compare(..., multivariate=True)`` adds) and ``detect_drift(..., multivariate=True)``
end to end. Prints the ratios. Power: the same data also with only a correlation change.

Real data (``--datasets``): consecutive months of elec2, bike sharing and weather
(``../shared/datasets``), each month against the month before: how often the univariate
verdict, the classifier and the reconstruction flag.

    OMP_NUM_THREADS=1 python benchmarks/multivariate_benchmark.py --rows 1000000 --datasets
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from drift_benchmark import _time, make_frame

from retraining_assets.core.drift import detect_drift, fit_reference
from retraining_assets.core.drift.multivariate import MAX_ROWS, profile_drift

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
REAL = {  # file, columns that are not features
    "elec2": ("elec2/elec2.csv.gz", ["ts", "class"]),
    "bike_sharing": ("bike_sharing/bike_hourly.csv.gz", ["ts", "cnt", "high_demand"]),
    "weather": ("weather_noaa/weather_monthly.csv.gz", ["ts", "rain"]),
}


def speed(rows: int, repeat: int) -> None:
    reference = make_frame(rows, seed=1, drifted=False)
    current = make_frame(rows, seed=2, drifted=True)
    detect_drift(reference.head(2000), current.head(2000), multivariate=True)  # warm-up
    profile = fit_reference(reference, sample_rows=MAX_ROWS)
    base, _ = _time(lambda: detect_drift(reference, current), repeat)
    alone, result = _time(lambda: profile_drift(profile.sample, profile.columns, current), repeat)
    full, _ = _time(lambda: detect_drift(reference, current, multivariate=True), repeat)
    print(f"{rows:,} x {reference.shape[1]} reference and current, best of {repeat}")
    print(f"  univariate detect_drift (baseline)          {base:7.2f} s  1.00")
    print(f"  multivariate verdict alone (target <= 5 s)  {alone:7.2f} s  {alone / base:.2f}")
    print(f"  detect_drift(multivariate=True)             {full:7.2f} s  {full / base:.2f}")
    c, r = result.classifier, result.reconstruction
    top = ", ".join(f"{k} {v:.2f}" for k, v in list(c.importances.items())[:6])
    print(f"  shifted data: AUC {c.auc:.3f} p {c.p_value:.1e} drifted {c.drifted}; top {top}")
    print(f"  reconstruction {r.error:.3f} band [{r.lower:.3f}, {r.upper:.3f}] {r.drifted}")
    # power of the capped sample: a correlation change only (marginals kept)
    rng = np.random.default_rng(3)
    corr = reference.sample(n=rows, random_state=4).reset_index(drop=True)
    z = rng.normal(size=rows)
    for k, rho in ((4, 0.3), (8, 0.3)):  # num_04, num_08: normal columns; correlate them
        name = f"num_{k:02d}"
        mu, sd = corr[name].mean(), corr[name].std()
        corr[name] = mu + sd * (rho**0.5 * z + (1 - rho) ** 0.5 * rng.normal(size=rows))
    report = profile.compare(corr, multivariate=True)
    c = report.multivariate.classifier
    print(
        f"  correlation 0.3 between num_04 and num_08 only: univariate drifted "
        f"{report.drifted_features}; AUC {c.auc:.3f} p {c.p_value:.1e} drifted {c.drifted}; "
        f"reconstruction drifted {report.multivariate.reconstruction.drifted}"
    )


def real(period: str) -> None:
    print(f"\nconsecutive {period}s, each against the one before (univariate / classifier / "
          "reconstruction flags)")  # fmt: skip
    for name, (path, drop) in REAL.items():
        frame = pd.read_csv(DATASETS / path, parse_dates=["ts"])
        months = frame["ts"].dt.to_period(period)
        groups = [g.drop(columns=[c for c in drop if c in g]) for _, g in frame.groupby(months)]
        flags = np.zeros(3, dtype=int)
        aucs, start = [], time.perf_counter()
        for before, after in itertools.pairwise(groups):
            report = detect_drift(before, after, multivariate=True)
            m = report.multivariate
            flags += [report.dataset_drift, m.classifier.drifted, m.reconstruction.drifted]
            aucs.append(m.classifier.auc)
        n = len(groups) - 1
        print(
            f"  {name:13s} {n:3d} pairs: univariate {flags[0]}/{n}, classifier {flags[1]}/{n}, "
            f"reconstruction {flags[2]}/{n}; median AUC {np.nanmedian(aucs):.3f} "
            f"({time.perf_counter() - start:.1f} s)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--datasets", action="store_true", help="also the real data sets")
    parser.add_argument("--period", default="M", help="pandas period of the real data (M)")
    args = parser.parse_args()
    print(f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, load {os.getloadavg()}")
    speed(args.rows, args.repeat)
    if args.datasets:
        real(args.period)
    print(f"load at the end {os.getloadavg()}")


if __name__ == "__main__":
    main()
