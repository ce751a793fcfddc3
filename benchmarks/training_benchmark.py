"""Training benchmark: one plain (no Dagster) training cycle on synthetic tables of growing size.

Stages timed: time split, each family's training, evaluation (every model on the holdout,
paired bootstrap with 1,000 resamples and McNemar). Each size runs in a fresh process so its
peak resident memory (``ru_maxrss``) is its own.

    OMP_NUM_THREADS=2 python benchmarks/training_benchmark.py --sizes 100000 1000000 [--demo]

Baseline to compare against later: the same cycle run as Dagster assets (to be added).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import resource
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))

import numpy as np
import pandas as pd

from retraining_assets.core.dataset import DatasetSpec
from retraining_assets.core.evaluation import compare_on_holdout
from retraining_assets.core.training import (
    BASE_FAMILIES,
    FAMILIES,
    split_by_time,
    train_ensemble,
    train_model,
)

T = TypeVar("T")
N_NUMERIC, CATEGORY_SIZES = 20, (3, 5, 8, 12, 30)


def make_synthetic(n: int, seed: int = 0) -> tuple[pd.DataFrame, DatasetSpec]:
    """``n`` rows over 12 months: 20 numeric and 5 categorical features, a binary target from a
    logistic score with an interaction and category effects (so trees and the MLP both have
    something to find), 2% missing values in a few columns."""
    rng = np.random.default_rng(seed)
    numeric = rng.normal(size=(n, N_NUMERIC))
    numeric[:, 5:10] = np.exp(numeric[:, 5:10] * 0.5)  # a few skewed columns
    frame = pd.DataFrame(numeric, columns=[f"num_{i:02d}" for i in range(N_NUMERIC)])
    logit = numeric[:, :6] @ np.array([0.8, -0.6, 0.5, 0.4, -0.3, 0.3]) + 0.7 * numeric[:, 0] * (
        numeric[:, 1] > 0
    )
    for i, size in enumerate(CATEGORY_SIZES):
        codes = rng.integers(0, size, n)
        frame[f"cat_{i}"] = pd.Series(np.char.add(f"c{i}_", codes.astype(str)))
        logit += rng.normal(0, 0.4, size)[codes]
    for column in ("num_03", "num_07", "cat_2"):
        frame.loc[rng.random(n) < 0.02, column] = None
    frame["target"] = (rng.random(n) < 1 / (1 + np.exp(-(logit - 0.5)))).astype(int)
    seconds = np.sort(rng.uniform(0, 365 * 86400, n))
    frame["event_time"] = pd.Timestamp("2025-01-01") + pd.to_timedelta(seconds, unit="s")
    spec = DatasetSpec(
        time_column="event_time",
        target="target",
        task="binary",
        numeric_features=tuple(frame.columns[:N_NUMERIC]),
        categorical_features=tuple(f"cat_{i}" for i in range(len(CATEGORY_SIZES))),
        classes=("0", "1"),
    )
    return frame, spec


def _timed(timings: dict[str, float], stage: str, work: Callable[[], T]) -> T:
    started = time.perf_counter()
    result = work()
    timings[stage] = time.perf_counter() - started
    return result


def run_plain_cycle(
    frame: pd.DataFrame,
    spec: DatasetSpec,
    families: Sequence[str] = FAMILIES,
    *,
    seed: int = 0,
    n_resamples: int = 1000,
) -> dict[str, float]:
    """Seconds per stage of split -> train each family -> evaluate on the holdout.

    The evaluation needs a champion; the first trained family stands in for it, which costs
    the same as a real champion (one more model scored and bootstrapped).
    """
    timings: dict[str, float] = {}
    split = _timed(timings, "split", lambda: split_by_time(frame, spec))
    models = {}
    for family in [f for f in BASE_FAMILIES if f in families]:
        models[family] = _timed(
            timings, f"train {family}", lambda f=family: train_model(f, split, spec, seed=seed)
        )
    if "ensemble" in families:
        members = list(models.values())
        models["ensemble"] = _timed(
            timings, "train ensemble", lambda: train_ensemble(members, split, spec)
        )
    champion = next(iter(models.values()))
    comparison = _timed(
        timings,
        "evaluate + bootstrap",
        lambda: compare_on_holdout(
            models, split.holdout, spec, "roc_auc", champion=champion, n_resamples=n_resamples
        ),
    )
    timings["total"] = sum(timings.values())
    timings["holdout roc_auc (best)"] = comparison.candidate_value or float("nan")
    return timings


def _measure_size(n: int, families: Sequence[str], seed: int) -> dict[str, float]:
    timings: dict[str, float] = {}
    frame, spec = _timed(timings, "generate (not in total)", lambda: make_synthetic(n, seed))
    generate = timings.pop("generate (not in total)")
    result = run_plain_cycle(frame, spec, families, seed=seed)
    result["generate (not in total)"] = generate
    result["peak RSS (MB)"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def _measure_demo(seed: int) -> dict[str, float]:
    from retraining_assets.core.demo import SPEC, DemoStream

    stream = DemoStream(months=3, rows_per_month=5000, end_month=pd.Timestamp("2026-10-01"))
    frame = pd.concat([stream.generate(offset) for offset in range(3)], ignore_index=True)
    result = run_plain_cycle(frame, SPEC, FAMILIES, seed=seed)
    result["peak RSS (MB)"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def _in_fresh_process(function: Callable[..., dict[str, float]], *args: Any) -> dict[str, float]:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(function, args)


def format_table(columns: dict[str, dict[str, float]]) -> str:
    stages = list(dict.fromkeys(stage for result in columns.values() for stage in result))
    header = ["stage", *columns]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * len(columns)]
    for stage in stages:
        cells = [f"{columns[name].get(stage, float('nan')):.2f}" for name in columns]
        lines.append("| " + " | ".join([stage, *cells]) + " |")
    return "\n".join(lines)


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if "model name" in line)
    except (OSError, StopIteration):
        pass
    return (
        f"{cpu}, nproc={os.cpu_count()}, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, "
        f"Python {platform.python_version()}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--demo", action="store_true", help="also time the demo stream (15k)")
    args = parser.parse_args(argv)
    print(machine(), file=sys.stderr)
    columns: dict[str, dict[str, float]] = {}
    if args.demo:
        columns["demo 3x5,000"] = _in_fresh_process(_measure_demo, args.seed)
        print(f"demo done: {columns['demo 3x5,000']['total']:.1f}s", file=sys.stderr)
    for n in args.sizes:
        columns[f"{n:,} rows"] = _in_fresh_process(_measure_size, n, args.families, args.seed)
        print(f"{n:,} rows done: {columns[f'{n:,} rows']['total']:.1f}s", file=sys.stderr)
    print("seconds per stage (peak RSS in MB)")
    print(format_table(columns))


if __name__ == "__main__":
    main()
