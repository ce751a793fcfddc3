"""Alarm benchmark: which dataset verdict (``RETRAIN_DRIFT_VERDICT``) raises alarms that mean
the model is getting worse?

For each verdict mode, in one run:

- elec2, bike sharing and weather backtested with ``--period month`` (today's protocol
  otherwise: 3-month window, xgboost): the ``static`` policy's ``alarm_quality`` (precision,
  recall, F1: its labels do not depend on the verdict's own retraining), ``auto``'s alarm rate
  on weather (target <= 25%), and the monthly targets (auto >= 97% of always's metric with
  <= 60% of its promotions on elec2 and bike sharing; on weather <= half of always's); with
  accuracy, how many of static's degraded months sampling alone would give (``by_chance``);
- the demo stream (``DemoStream.export``), backtested by day with a 7-day drift window, static
  policy only (its reference never moves, so the alarm is the first model's view): days from
  each covariate event's onset to the first alarm (target <= 7) and alarms in the stable
  stretch (target 0).

Each mode runs under each ``--references`` value (``RETRAIN_DRIFT_REFERENCE``: ``training``,
the default, or ``validated``, labelled ``MODE@validated``). A table with the ratios against
``univariate`` closes the run.

    OMP_NUM_THREADS=1 python benchmarks/alarm_benchmark.py [--modes univariate weighted ...]
        [--only elec2 bike_sharing weather demo] [--references validated training]
        [--json OUT]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pandas as pd
from scipy.stats import binom

from retraining_assets.core.backtest import BacktestResult, backtest_file
from retraining_assets.core.backtest.alarms import DEGRADATION, degraded
from retraining_assets.core.demo import TARGET, TIME_COLUMN, DemoStream
from retraining_assets.core.triggers import relative_drop
from retraining_assets.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[1]
MODES = ("univariate", "weighted", "calibrated", "calibrated+weighted", "multivariate",
         "multivariate+weighted", "estimated", "weighted+estimated")  # fmt: skip
DATASETS = {
    "elec2": ("elec2/elec2.csv.gz", "class", ()),
    "bike_sharing": ("bike_sharing/bike_hourly.csv.gz", "high_demand", ("cnt",)),
    "weather": ("weather_noaa/weather_monthly.csv.gz", "rain", ()),
}
DEMO_OPTIONS = {"period": "day", "window_days": 90, "drift_window": 7, "policies": ("static",)}
MAX_WEATHER_ALARM_RATE = 0.25
MAX_ALARM_DAYS = 7


def monthly(mode_settings: Settings, folder: Path, name: str) -> dict[str, Any]:
    path, target, drop = DATASETS[name]
    started = time.perf_counter()
    result = backtest_file(folder / path, "ts", target, drop=drop, settings=mode_settings)
    auto, always = result.policies["auto"], result.policies["always"]
    share = auto.mean_metric / always.mean_metric
    if not result.higher_is_better:
        share = always.mean_metric / auto.mean_metric
    promotions = auto.promotions / always.promotions
    return {
        "seconds": round(time.perf_counter() - started, 1),
        "static": result.policies["static"].alarm_quality,
        "auto": auto.alarm_quality,
        "auto_vs_always_metric": share,
        "auto_vs_always_promotions": promotions,
        "monthly_targets_met": share >= 0.97 and promotions <= (0.5 if name == "weather" else 0.60),
        "static_drops": drops(result),
        "static_degraded": by_chance(result),
        "mean_metric": {n: p.mean_metric for n, p in result.policies.items()},
        "promotions": {n: p.promotions for n, p in result.policies.items()},
        "auto_alarms": auto.alarms,
        "auto_pages": auto.pages,  # RETRAIN_DRIFT_NOTIFY: the alarms that would have mailed
    }


def drops(result: BacktestResult) -> dict[str, float | None]:
    """How much worse than its baseline the static model really was, and how much its
    estimate said (relative drops, the ``estimated`` gate's measure): why a gate is quiet."""
    rows = [r for r in result.policies["static"].rows
            if r.metric is not None and r.estimated_metric is not None]  # fmt: skip
    if not rows:
        return {"realized_median": None, "estimated_median": None, "estimated_max": None}
    hib = result.higher_is_better
    real = [relative_drop(r.metric, r.baseline_metric, hib) or 0.0 for r in rows]
    est = [relative_drop(r.estimated_metric, r.baseline_metric, hib) or 0.0 for r in rows]
    return {"realized_median": float(np.median(real)), "estimated_median": float(np.median(est)),
            "estimated_max": float(np.max(est))}  # fmt: skip


def by_chance(result: BacktestResult) -> dict[str, float | int | None]:
    """``static``'s degraded rows, and how many of them sampling alone would give: the
    expected count of rows whose accuracy is ``DEGRADATION`` below the baseline when each row's
    correct predictions are Binomial(rows, baseline), nothing having changed (None for other
    metrics). A verdict cannot foretell those, which bounds the F1 any verdict can reach."""
    rows = [r for r in result.policies["static"].rows
            if r.metric is not None and r.baseline_metric is not None]  # fmt: skip
    count = sum(degraded(r.metric, r.baseline_metric, result.higher_is_better) for r in rows)  # type: ignore[arg-type]
    chance = None
    if result.metric == "accuracy":
        chance = float(sum(
            binom.cdf(np.floor((1 - DEGRADATION) * r.baseline_metric * r.rows), r.rows,
                      r.baseline_metric)  # type: ignore[operator]
            for r in rows
        ))  # fmt: skip
    return {"rows": len(rows), "degraded": count, "by_chance": chance}


def demo(mode_settings: Settings, csv: Path, events: list[dict[str, Any]]) -> dict[str, Any]:
    started = time.perf_counter()
    result: BacktestResult = backtest_file(
        csv, TIME_COLUMN, TARGET, drop=("customer_id",), settings=mode_settings, **DEMO_OPTIONS
    )  # type: ignore[arg-type]
    changes = [pd.Timestamp(e["onset"]) for e in events if e["kind"] != "stable"]
    rows = result.policies["static"].rows
    alarmed = [pd.Timestamp(r.period) for r in rows if r.alarm]
    out: dict[str, Any] = {"seconds": round(time.perf_counter() - started, 1), "events": {}}
    for event in events:
        onset = pd.Timestamp(event["onset"])
        if event["kind"] == "stable":
            end = min(changes)  # the stable stretch lasts until the first change
            out["stable_alarms"] = sum(onset <= day < end for day in alarmed)
            out["stable_days"] = sum(onset <= pd.Timestamp(r.period) < end for r in rows)
        elif "covariate" in event["kind"]:
            after = [day for day in alarmed if day + pd.Timedelta(days=1) > onset]
            days = (
                (after[0] + pd.Timedelta(days=1) - onset) / pd.Timedelta(days=1) if after else None
            )
            out["events"][event["name"]] = days
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets-dir", type=Path, default=REPO.parent / "shared" / "datasets")
    parser.add_argument("--modes", nargs="+", default=list(MODES))
    parser.add_argument("--only", nargs="+", default=[*DATASETS, "demo"])
    parser.add_argument("--rows", type=int, default=5000, help="demo records per month")
    parser.add_argument(
        "--references",
        nargs="+",
        default=["training"],
        choices=["validated", "training"],
        help="RETRAIN_DRIFT_REFERENCE values; each mode runs under each ('validated': labelled "
        "MODE@validated)",
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, load {os.getloadavg()}")  # fmt: skip
    base = load_settings()
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as folder:
        csv, events = None, []
        if "demo" in args.only:
            csv, events_path = DemoStream(rows_per_month=args.rows).export(
                Path(folder) / "demo.csv"
            )
            events = json.loads(Path(events_path).read_text())
        for mode, drift_reference in itertools.product(args.modes, args.references):
            settings = base.model_copy(
                update={"drift_verdict": mode, "drift_reference": drift_reference}
            )
            if drift_reference != "training":
                mode = f"{mode}@{drift_reference}"
            entry: dict[str, Any] = {}
            for name in (n for n in DATASETS if n in args.only):
                entry[name] = monthly(settings, args.datasets_dir, name)
                q = entry[name]["static"]
                print(f"{mode:<22} {name:<13} static F1 {q['f1']:.3f} (P {q['precision']:.3f} "
                      f"R {q['recall']:.3f} rate {q['alarm_rate']:.2f}); auto alarm rate "
                      f"{entry[name]['auto']['alarm_rate']:.2f} ({entry[name]['auto_alarms']} "
                      f"alarms, {entry[name]['auto_pages']} pages); auto/always metric "
                      f"{entry[name]['auto_vs_always_metric']:.3f}, promotions "
                      f"{entry[name]['auto_vs_always_promotions']:.2f}; static drop realized "
                      f"{_num(entry[name]['static_drops']['realized_median'])} vs estimated "
                      f"{_num(entry[name]['static_drops']['estimated_median'])} (median); "
                      f"static degraded {entry[name]['static_degraded']['degraded']} of "
                      f"{entry[name]['static_degraded']['rows']} "
                      f"({_num(entry[name]['static_degraded']['by_chance'])} by sampling alone); "
                      f"{entry[name]['seconds']} s", flush=True)  # fmt: skip
            if csv is not None:
                entry["demo"] = demo(settings, csv, events)
                print(f"{mode:<22} demo          {entry['demo']}", flush=True)
            results[mode] = entry
            if args.json:
                args.json.write_text(json.dumps(results, indent=2, default=str))
    table(results)


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def table(results: dict[str, dict[str, Any]]) -> None:
    names = [n for n in DATASETS if n in next(iter(results.values()))]
    reference = results.get("univariate")

    def mean_f1(entry: dict[str, Any]) -> float | None:
        return sum(entry[n]["static"]["f1"] for n in names) / len(names) if names else None

    print(f"\n{'mode':<22} {'mean static F1':>14} {'vs univariate':>13} {'weather auto rate':>17} "
          f"{'monthly targets':>15} {'demo days':>18} {'stable alarms':>13}")  # fmt: skip
    for mode, entry in results.items():
        f1 = mean_f1(entry)
        diff = f"{f1 - mean_f1(reference):+.3f}" if reference and f1 is not None else "–"
        rate = entry.get("weather", {}).get("auto", {}).get("alarm_rate")
        met = all(entry[n]["monthly_targets_met"] for n in names)
        demo_entry = entry.get("demo", {})
        days = ",".join(str(v) for v in demo_entry.get("events", {}).values())
        print(f"{mode:<22} {f1 if f1 is None else round(f1, 3)!s:>14} {diff:>13} "
              f"{'–' if rate is None else f'{rate:.2f}':>17} {met!s:>15} {days:>18} "
              f"{demo_entry.get('stable_alarms', '–')!s:>13}")  # fmt: skip


if __name__ == "__main__":
    main()
