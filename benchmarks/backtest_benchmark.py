"""Backtest benchmark: does the retraining policy pay off on real drifting data?

Replays three public datasets month by month (``core/backtest.py``) through the production
policies with default settings and compares ``auto`` (RetrainPolicy + promotion gate) with two
baselines: ``static`` (trained once) and ``always`` (retrained and promoted every month).

Targets per dataset: auto's mean metric >= 97% of always's, with <= 60% of its promotions, and
clearly above static (on weather, which barely drifts, auto should change the model rarely).

    OMP_NUM_THREADS=1 python benchmarks/backtest_benchmark.py [--datasets-dir DIR]
        [--families xgboost] [--plots-dir DIR] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

from retraining_assets.core.backtest import DEFAULT_FAMILIES, BacktestResult, backtest_file
from retraining_assets.settings import load_settings

REPO = Path(__file__).resolve().parents[1]
MIN_SHARE_OF_ALWAYS = 0.97  # auto's mean metric, relative to always's
MAX_PROMOTION_SHARE = 0.60  # auto's promotions, relative to always's


@dataclass(frozen=True)
class Dataset:
    name: str
    path: str  # relative to the datasets folder
    target: str
    drop: tuple[str, ...] = ()
    time_column: str = "ts"


DATASETS = (
    Dataset("elec2", "elec2/elec2.csv.gz", "class"),
    Dataset("bike_sharing", "bike_sharing/bike_hourly.csv.gz", "high_demand", drop=("cnt",)),
    Dataset("weather", "weather_noaa/weather_monthly.csv.gz", "rain"),
)


def targets(result: BacktestResult) -> dict[str, Any]:
    """The three targets, each with the numbers it was judged on."""
    auto, static, always = (result.policies[name] for name in ("auto", "static", "always"))
    better = 1.0 if result.higher_is_better else -1.0
    share = auto.mean_metric / always.mean_metric
    if not result.higher_is_better:  # lower is better: compare always / auto instead
        share = always.mean_metric / auto.mean_metric
    return {
        "auto_vs_always_metric": round(share, 4),
        "metric_target_met": share >= MIN_SHARE_OF_ALWAYS,
        "auto_vs_always_promotions": round(auto.promotions / always.promotions, 4),
        "promotion_target_met": auto.promotions <= MAX_PROMOTION_SHARE * always.promotions,
        "auto_minus_static": round(better * (auto.mean_metric - static.mean_metric), 4),
        "beats_static": better * (auto.mean_metric - static.mean_metric) > 0,
    }


def run(dataset: Dataset, folder: Path, families: tuple[str, ...], plots: Path | None) -> dict:
    started = time.perf_counter()
    result = backtest_file(
        folder / dataset.path,
        dataset.time_column,
        dataset.target,
        drop=dataset.drop,
        families=families,
        settings=load_settings(),
    )
    seconds = time.perf_counter() - started
    if plots:
        result.plot(plots / f"backtest_{dataset.name}.png")
    return {
        "dataset": dataset.name,
        "seconds": round(seconds, 1),
        "notes": result.notes,
        "targets": targets(result),
        **result.to_dict(),
    }


def report(entry: dict) -> None:
    print(f"\n== {entry['dataset']}: {entry['periods']} months scored, {entry['seconds']} s")
    print(f"{'policy':<8} {'mean ' + entry['metric']:>14} {'retrains':>9} {'promotions':>11}")
    for name, policy in entry["policies"].items():
        print(
            f"{name:<8} {policy['mean_metric']:>14.4f} {policy['retrains']:>9} "
            f"{policy['promotions']:>11}"
        )
    causes: dict[str, int] = {}
    for row in entry["policies"]["auto"]["rows"]:
        for reason in row["reasons"]:
            cause = reason.split(":")[0]
            causes[cause] = causes.get(cause, 0) + 1
    decisions: dict[str, int] = {}
    for row in entry["policies"]["auto"]["rows"]:
        if row["decision"]:
            decisions[row["decision"]] = decisions.get(row["decision"], 0) + 1
    print(f"auto's reasons: {causes}; decisions: {decisions}")
    t = entry["targets"]
    print(
        f"targets: auto/always metric {t['auto_vs_always_metric']:.3f} "
        f"({'met' if t['metric_target_met'] else 'MISSED'}, >= {MIN_SHARE_OF_ALWAYS}); "
        f"promotions {t['auto_vs_always_promotions']:.2f} "
        f"({'met' if t['promotion_target_met'] else 'MISSED'}, <= {MAX_PROMOTION_SHARE}); "
        f"auto - static {t['auto_minus_static']:+.4f} "
        f"({'met' if t['beats_static'] else 'MISSED'})"
    )
    for note in entry["notes"]:
        print(f"note: {note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets-dir", type=Path, default=REPO.parent / "shared" / "datasets")
    parser.add_argument("--families", nargs="+", default=list(DEFAULT_FAMILIES))
    parser.add_argument("--only", nargs="+", choices=[d.name for d in DATASETS])
    parser.add_argument("--plots-dir", type=Path, help="write one PNG per dataset here")
    parser.add_argument("--json", type=Path, help="write every result as JSON here")
    args = parser.parse_args()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}; families: {args.families}"
    )
    chosen = [d for d in DATASETS if not args.only or d.name in args.only]
    entries = []
    for dataset in chosen:
        entries.append(run(dataset, args.datasets_dir, tuple(args.families), args.plots_dir))
        report(entries[-1])
    if args.json:
        args.json.write_text(json.dumps(entries, indent=2))


if __name__ == "__main__":
    main()
