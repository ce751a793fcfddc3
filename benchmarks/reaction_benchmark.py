"""Reaction benchmark (issue 15): does the product react within days, not at the month's end?

Backtests, in one run and with the issue's options (``--period day --window-days 90
--drift-window 7 --schedule monthly``, xgboost), the exported demo stream (``DemoStream.export``:
``FILE.csv`` and its ground truth ``FILE.events.json``) and the three real datasets, every
policy side by side: ``auto`` (every trigger + the gate), ``monthly`` (the schedule alone + the
gate), ``static`` and ``always``. Prints every figure and its target:

- reaction on the demo stream: days from each event's onset to ``auto``'s first retraining
  (abrupt covariate shift and concept drift: <= 7) and first promotion (concept drift: <= 14,
  and >= 2x sooner than ``monthly``'s first promotion after the onset);
- accuracy on elec2, bike sharing and the demo stream: ``auto``'s pooled mean >= ``monthly``'s
  - 0.002 and >= 97% of ``always``'s, with <= 2 promotions per month of data, each naming a
  trigger or the schedule; on weather ``auto`` changes the model at most 2x as often as
  ``monthly``;
- the daily backtest of elec2 and of the demo stream each <= 25 minutes.

A day counts from the onset to the end of the period after which the retraining (promotion)
happened: a retraining decided after the onset's own day took 1 day.

    OMP_NUM_THREADS=1 python benchmarks/reaction_benchmark.py [--datasets-dir DIR]
        [--rows 5000] [--months 27] [--only demo elec2 ...] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pandas as pd
from backtest_benchmark import DATASETS, REPO, Dataset

from retraining_assets.core.backtest import BacktestResult, backtest_file
from retraining_assets.core.demo import DemoStream
from retraining_assets.core.triggers import Cause
from retraining_assets.settings import load_settings

OPTIONS = {"period": "day", "window_days": 90, "drift_window": 7, "schedule": "monthly"}
FAMILIES = ("xgboost",)
MAX_RETRAIN_DAYS = 7
MAX_PROMOTION_DAYS = 14
MIN_SPEEDUP = 2.0
METRIC_SLACK = 0.002
MIN_SHARE_OF_ALWAYS = 0.97
MAX_PROMOTIONS_PER_MONTH = 2.0
MAX_WEATHER_CHANGES = 2.0  # auto's promotions, relative to monthly's
MAX_SECONDS = 25 * 60
TRIGGERS = {cause.value for cause in Cause}


def days_after(onset: pd.Timestamp, periods: list[str]) -> float | None:
    """Days from ``onset`` to the end of the first listed day at or after it."""
    after = [pd.Timestamp(p) for p in periods if pd.Timestamp(p) + pd.Timedelta(days=1) > onset]
    if not after:
        return None
    return (after[0] + pd.Timedelta(days=1) - onset) / pd.Timedelta(days=1)


def reaction(result: BacktestResult, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per ground-truth event: each policy's days to its first retraining and promotion."""
    rows = []
    for event in events:
        if event["kind"] == "stable":
            continue
        onset = pd.Timestamp(event["onset"])
        entry: dict[str, Any] = {
            "name": event["name"],
            "kind": event["kind"],
            "onset": event["onset"],
        }
        for name in ("auto", "monthly"):
            policy = result.policies[name]
            entry[f"{name}_retrain_days"] = days_after(onset, policy.retrains_at)
            entry[f"{name}_promotion_days"] = days_after(onset, policy.promotions_at)
        rows.append(entry)
    return rows


def accuracy(result: BacktestResult, months: float) -> dict[str, Any]:
    """The accuracy and promotion targets of one dataset, with the numbers they rest on."""
    means = {name: policy.mean_metric for name, policy in result.policies.items()}
    auto = result.policies["auto"]
    unnamed = [
        row.period
        for row in auto.rows
        if row.decision == "promote" and not {r.split(":")[0] for r in row.reasons} & TRIGGERS
    ]
    return {
        "mean_metric": means,
        "auto_minus_monthly": means["auto"] - means["monthly"],
        "auto_share_of_always": means["auto"] / means["always"],
        "promotions": {name: len(p.promotions_at) for name, p in result.policies.items()},
        "retrains": {name: p.retrains for name, p in result.policies.items()},
        "auto_promotions_per_month": len(auto.promotions_at) / months,
        "promotions_without_a_trigger": unnamed,
    }


def run(name: str, path: Path, time_column: str, target: str, drop: tuple[str, ...]) -> dict:
    started = time.perf_counter()
    last = [0.0]

    def progress(done: int, total: int, message: str) -> None:
        if time.perf_counter() - last[0] > 60:
            last[0] = time.perf_counter()
            print(f"  {name}: {done}/{total} {message} ({last[0] - started:.0f} s)", flush=True)

    result = backtest_file(
        path, time_column, target, drop=drop, settings=load_settings(), families=FAMILIES,
        progress=progress, **OPTIONS,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    first, last_day = (
        result.policies["auto"].rows[0].period,
        result.policies["auto"].rows[-1].period,
    )
    months = (pd.Timestamp(last_day) - pd.Timestamp(first)).days / 30.44 + 1 / 30.44
    return {"dataset": name, "seconds": seconds, "months": months, "result": result}


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def report(entry: dict[str, Any], events: list[dict[str, Any]] | None) -> dict[str, Any]:
    result: BacktestResult = entry["result"]
    name = entry["dataset"]
    summary = accuracy(result, entry["months"])
    print(f"\n== {name}: {result.periods} days scored ({entry['months']:.1f} months), "
          f"{entry['seconds']:.0f} s (target <= {MAX_SECONDS} s)")  # fmt: skip
    print(result.summary())
    m = summary["mean_metric"]
    print(
        f"auto - monthly {summary['auto_minus_monthly']:+.4f} "
        f"({verdict(summary['auto_minus_monthly'] >= -METRIC_SLACK)}, >= -{METRIC_SLACK}); "
        f"auto / always {summary['auto_share_of_always']:.4f} "
        f"({verdict(summary['auto_share_of_always'] >= MIN_SHARE_OF_ALWAYS)}, "
        f">= {MIN_SHARE_OF_ALWAYS}); auto {m['auto']:.4f}, monthly {m['monthly']:.4f}, "
        f"always {m['always']:.4f}, static {m['static']:.4f}"
    )
    per_month = summary["auto_promotions_per_month"]
    print(
        f"auto promotions {summary['promotions']['auto']} = {per_month:.2f} per month "
        f"({verdict(per_month <= MAX_PROMOTIONS_PER_MONTH)}, <= {MAX_PROMOTIONS_PER_MONTH}); "
        f"promotions without a trigger or the schedule: {summary['promotions_without_a_trigger']}"
    )
    if name == "weather":
        ratio = summary["promotions"]["auto"] / max(1, summary["promotions"]["monthly"])
        print(f"weather: auto changes the model {ratio:.2f}x as often as monthly "
              f"({verdict(ratio <= MAX_WEATHER_CHANGES)}, <= {MAX_WEATHER_CHANGES})")  # fmt: skip
    out = {k: v for k, v in entry.items() if k != "result"} | {"accuracy": summary}
    if events is not None:
        out["reaction"] = reaction(result, events)
        for row in out["reaction"]:
            print(
                f"{row['name']} ({row['kind']}, onset {row['onset']}): auto retrains after "
                f"{row['auto_retrain_days']} days, promotes after {row['auto_promotion_days']}; "
                f"monthly retrains after {row['monthly_retrain_days']}, promotes after "
                f"{row['monthly_promotion_days']}"
            )
            if row["kind"] in ("abrupt_covariate", "concept"):
                days = row["auto_retrain_days"]
                print(f"  first triggered retraining {days} days "
                      f"({verdict(days is not None and days <= MAX_RETRAIN_DAYS)}, "
                      f"<= {MAX_RETRAIN_DAYS})")  # fmt: skip
            if row["kind"] == "concept":
                auto, monthly = row["auto_promotion_days"], row["monthly_promotion_days"]
                speedup = (monthly / auto) if auto and monthly else None
                print(
                    f"  first promotion {auto} days "
                    f"({verdict(auto is not None and auto <= MAX_PROMOTION_DAYS)}, "
                    f"<= {MAX_PROMOTION_DAYS}); monthly's {monthly} days: "
                    f"{speedup and round(speedup, 2)}x sooner "
                    f"({verdict(speedup is not None and speedup >= MIN_SPEEDUP)}, "
                    f">= {MIN_SPEEDUP}x)"
                )
    out["result"] = result.to_dict()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets-dir", type=Path, default=REPO.parent / "shared" / "datasets")
    parser.add_argument("--rows", type=int, default=5000, help="demo records per month")
    parser.add_argument("--months", type=int, default=27, help="months of demo stream")
    names = ["demo", *(d.name for d in DATASETS)]
    parser.add_argument("--only", nargs="+", choices=names)
    parser.add_argument("--json", type=Path, help="write every result as JSON here")
    args = parser.parse_args()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}; families: {list(FAMILIES)}; "
        f"options: {OPTIONS}; settings: holdout {load_settings().holdout_records} records, "
        f"half-life {load_settings().training_half_life}"
    )
    chosen = [n for n in names if not args.only or n in args.only]
    entries = []
    with tempfile.TemporaryDirectory() as folder:
        for name in chosen:
            if name == "demo":
                stream = DemoStream(months=args.months, rows_per_month=args.rows)
                csv, events_path = stream.export(Path(folder) / "demo_stream.csv")
                events = json.loads(events_path.read_text())
                entry = run(name, csv, "event_time", "defaulted", ("customer_id",))
            else:
                dataset: Dataset = next(d for d in DATASETS if d.name == name)
                path = args.datasets_dir / dataset.path
                entry = run(name, path, dataset.time_column, dataset.target, dataset.drop)
                events = None
            entries.append(report(entry, events))
    if args.json:
        args.json.write_text(json.dumps(entries, indent=2, default=str))


if __name__ == "__main__":
    main()
