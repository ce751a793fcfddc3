"""Is weather's month-to-month drift beyond the variation among its years? KS against a
season-respecting permutation null.

Each "month" of ``weather_monthly.csv.gz`` is one year of days in calendar order. The drift
engine's KS tests treat a month's 363 days as independent draws; consecutive days are not
(lag-1 autocorrelation within a year: wind 0.34, visibility 0.54, sea-level pressure 0.62). This
compares each later month with the three months before it (the reference a monthly retrain
would have) per feature, two ways:

* baseline: ``scipy.stats.ks_2samp``'s asymptotic p-value (what the univariate tests use);
* a stratified block permutation: the year is cut into 14-day blocks, and each permutation
  picks, block position by block position, which of the four years plays "current" (so each
  permuted year still has every season once); p = (1 + #{D_null >= D}) / (1 + permutations).

Both get Benjamini-Hochberg across the features, as the product's tests do; a month "alarms"
when any feature has q < 0.05. Prints the alarm rate of each and the features behind them.

    OMP_NUM_THREADS=1 python benchmarks/weather_block_null.py [--permutations 199] [--block 14]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

FEATURES = ("temp", "dewp", "slp", "visib", "wdsp", "mxspd", "max_temp", "min_temp")
REFERENCE_YEARS = 3
ALPHA = 0.05


def years(path: Path) -> list[pd.DataFrame]:
    frame = pd.read_csv(path, parse_dates=["ts"])
    months = frame.groupby(frame["ts"].dt.to_period("M"))
    return [part.reset_index(drop=True) for _, part in months]


def ks(current: np.ndarray, reference: np.ndarray) -> float:
    return float(stats.ks_2samp(current, reference).statistic)


def block_p_value(
    four: list[np.ndarray], block: int, permutations: int, rng: np.random.Generator
) -> tuple[float, float]:
    """``four`` = three reference years and the current one, last: the asymptotic and the
    stratified block-permutation p-value of the current year's KS distance."""
    length = min(len(year) for year in four)
    aligned = np.stack([year[:length] for year in four])  # year x day of year
    current, reference = aligned[-1], aligned[:-1].ravel()
    observed = ks(current, reference)
    asymptotic = float(stats.ks_2samp(current, reference).pvalue)
    starts = range(0, length, block)
    exceed = 0
    for _ in range(permutations):
        chosen = rng.integers(0, len(four), size=len(starts))  # which year is "current"
        mask = np.zeros(aligned.shape, dtype=bool)
        for start, year in zip(starts, chosen, strict=True):
            mask[year, start : start + block] = True
        exceed += ks(aligned[mask], aligned[~mask]) >= observed
    return asymptotic, (1 + exceed) / (1 + permutations)


def bh(p_values: np.ndarray) -> np.ndarray:
    return stats.false_discovery_control(p_values, method="bh")


def main() -> None:
    default = Path(__file__).resolve().parents[2] / "shared" / "datasets"
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets-dir", type=Path, default=default)
    parser.add_argument("--permutations", type=int, default=199)
    parser.add_argument("--block", type=int, default=14)
    args = parser.parse_args()
    data = years(args.datasets_dir / "weather_noaa" / "weather_monthly.csv.gz")
    rng = np.random.default_rng(0)
    flagged = {"asymptotic": [], "block": []}
    features = {"asymptotic": pd.Series(0, index=FEATURES), "block": pd.Series(0, index=FEATURES)}
    months = range(REFERENCE_YEARS, len(data))
    for m in months:
        p = {"asymptotic": [], "block": []}
        for feature in FEATURES:
            four = [data[k][feature].dropna().to_numpy(float) for k in range(m - 3, m + 1)]
            asymptotic, block = block_p_value(four, args.block, args.permutations, rng)
            p["asymptotic"].append(asymptotic)
            p["block"].append(block)
        for kind, values in p.items():
            significant = bh(np.asarray(values)) < ALPHA
            flagged[kind].append(bool(significant.any()))
            features[kind] += significant.astype(int)
    n = len(months)
    print(f"{n} months, each against the {REFERENCE_YEARS} before it; {args.permutations} "
          f"permutations of {args.block}-day blocks")  # fmt: skip
    for kind, label in (("asymptotic", "KS asymptotic (baseline)"),
                        ("block", "KS, season-respecting block null")):  # fmt: skip
        rate = sum(flagged[kind]) / n
        top = ", ".join(f"{f} {c}" for f, c in features[kind].sort_values(ascending=False).items())
        alarmed = f"months alarmed {sum(flagged[kind]):>2} of {n} ({rate:.2f})"
        print(f"{label:<34} {alarmed}; by feature: {top}")
    ratio = sum(flagged["block"]) / max(sum(flagged["asymptotic"]), 1)
    print(f"ratio block / asymptotic alarm rate: {ratio:.2f}")


if __name__ == "__main__":
    main()
