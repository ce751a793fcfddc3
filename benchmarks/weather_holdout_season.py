"""Which days of the year weather's baseline metric is measured on.

``weather_monthly.csv.gz`` maps one year of daily readings onto each month, in calendar order,
so a row's position within its month is its day of the year. The project's time split holds out
the newest records of the training window: for the static model of ``alarm_benchmark.py``
(xgboost on the first three months) that is the end of one year. This prints the holdout's days
and rain rate against a whole year's, and the static model's accuracy on the later months' early
and late days against the holdout's accuracy (the ``baseline_metric`` a degraded month is 5%
below), and how a month's accuracy follows its rain rate. Baseline: the later months'
whole-year accuracy.

    OMP_NUM_THREADS=1 python benchmarks/weather_holdout_season.py [--datasets-dir DIR]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pandas as pd
from estimation_benchmark import _frame_of, train_on_first_months
from scipy import stats

from retraining_assets.core.backtest.alarms import DEGRADATION, degraded
from retraining_assets.core.evaluation import truth

WEATHER = ("weather", "weather_noaa/weather_monthly.csv.gz", "rain", ())


def day_of_year(frame: pd.DataFrame) -> np.ndarray:
    """Each row's position within its month: its day in the year mapped onto that month."""
    return frame.groupby(frame["ts"].dt.to_period("M")).cumcount().to_numpy()


def main() -> None:
    default = Path(__file__).resolve().parents[2] / "shared" / "datasets"
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets-dir", type=Path, default=default)
    args = parser.parse_args()
    frame, spec = _frame_of(WEATHER, args.datasets_dir)
    scored = train_on_first_months(frame, spec)
    holdout, model = scored.split.holdout, scored.model
    days = day_of_year(frame)[frame.index.isin(holdout.index)]
    baseline = float(np.mean(model.scores(holdout).argmax(axis=1) == truth(holdout, spec, model)))
    rain, everywhere = holdout[spec.target].mean(), frame[spec.target].mean()
    print(f"holdout: {len(holdout)} rows, days {days.min()}-{days.max()} of its year, "
          f"rain rate {rain:.3f} (all rows {everywhere:.3f})")  # fmt: skip
    print(f"holdout accuracy (static's baseline_metric): {baseline:.4f}")
    correct = scored.scores.argmax(axis=1) == scored.y
    later_days = day_of_year(scored.later)
    split = int(days.min())
    for name, rows in (("whole years (baseline)", slice(None)),
                       (f"days 0-{split - 1}", later_days < split),
                       (f"days {split}-", later_days >= split)):  # fmt: skip
        print(f"later months, {name:<22} accuracy {correct[rows].mean():.4f}")
    monthly = pd.Series(correct).groupby(scored.month).mean()
    rain_rate = scored.later.groupby(scored.month)[spec.target].mean().reindex(monthly.index)
    rho, p_value = stats.spearmanr(rain_rate, monthly)
    print(f"later months: Spearman(rain rate, accuracy) {rho:.2f} (p {p_value:.1g})")
    worse = monthly.map(lambda accuracy: degraded(accuracy, baseline, higher_is_better=True))
    print(f"rain rate of the degraded months {rain_rate[worse].round(3).tolist()}, "
          f"median of all {rain_rate.median():.3f}")  # fmt: skip
    count = int(worse.sum())
    below = f"later months {DEGRADATION:.0%} or more below the holdout's accuracy"
    print(f"{below}: {count} of {len(monthly)}")


if __name__ == "__main__":
    main()
