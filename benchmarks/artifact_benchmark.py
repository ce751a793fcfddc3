"""Artifact benchmark: the non-pickle model files against the pickle baseline, in one run.

For every family trained on the same data, the new format (``model_to_bytes``: a zip of
``model.json``, skops, XGBoost UBJ and .npz files) and the former one (an uncompressed joblib
pickle, what ``model_to_bytes`` wrote before) are written and loaded ``--repeats`` times; the
best time of each is printed with the ratio new / pickle, and the loaded models' holdout scores
are checked identical to the trained ones.

    OMP_NUM_THREADS=1 python benchmarks/artifact_benchmark.py [--sizes 100000] [--repeats 5]

Data: the demo stream (3 months x 5,000 rows, 14 features) and ``make_synthetic`` tables of
``--sizes`` rows (20 numeric + 5 categorical features; see training_benchmark.py).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import joblib
import numpy as np
import pandas as pd

from retraining_assets.core.dataset import DatasetSpec
from retraining_assets.core.training import (
    FAMILIES,
    TrainedModel,
    model_from_bytes,
    model_to_bytes,
    split_by_time,
    train_candidates,
)

sys.path.insert(0, str(Path(__file__).parent))
from sensor_benchmark import machine
from training_benchmark import make_synthetic


def _pickle_bytes(model: TrainedModel) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(model, buffer, compress=0)
    return buffer.getvalue()


def _pickle_load(data: bytes) -> TrainedModel:
    return joblib.load(io.BytesIO(data))


def _best(work: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
    return min(times), result


def measure(frame: pd.DataFrame, spec: DatasetSpec, repeats: int) -> list[dict[str, Any]]:
    """One row per family: size, write and load seconds of both formats."""
    split = split_by_time(frame, spec)
    models = train_candidates(split, spec, FAMILIES, seed=0)
    rows = []
    for family, model in models.items():
        expected = model.scores(split.holdout)
        row: dict[str, Any] = {"family": family}
        for label, write, load in [
            ("new", model_to_bytes, model_from_bytes),
            ("pickle", _pickle_bytes, _pickle_load),
        ]:
            row[f"{label} write"], data = _best(partial(write, model), repeats)
            row[f"{label} load"], loaded = _best(partial(load, data), repeats)
            row[f"{label} MB"] = len(data) / 1e6
            if not np.array_equal(loaded.scores(split.holdout), expected):
                raise SystemExit(f"{family}: {label} format changed the holdout scores")
        rows.append(row)
    return rows


def _print(name: str, rows: list[dict[str, Any]]) -> None:
    print(f"\n{name}")
    print(
        "| family | new MB | pickle MB | size ratio | new write s | pickle write s | write ratio"
        " | new load s | pickle load s | load ratio |"
    )
    print("|---|" + "---:|" * 9)
    for r in rows:
        print(
            f"| {r['family']} | {r['new MB']:.2f} | {r['pickle MB']:.2f} | "
            f"{r['new MB'] / r['pickle MB']:.2f} | {r['new write']:.3f} | {r['pickle write']:.3f}"
            f" | {r['new write'] / r['pickle write']:.1f} | {r['new load']:.3f} | "
            f"{r['pickle load']:.3f} | {r['new load'] / r['pickle load']:.1f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[100_000])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    from retraining_assets.core.demo import SPEC, DemoStream

    print(machine())
    print(f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, best of {args.repeats}")
    stream = DemoStream(months=3, rows_per_month=5000, end_month=pd.Timestamp("2026-10-01"))
    demo = pd.concat([stream.generate(offset) for offset in range(3)], ignore_index=True)
    _print("demo 3x5,000", measure(demo, SPEC, args.repeats))
    for size in args.sizes:
        frame, spec = make_synthetic(size)
        _print(f"synthetic {size:,} rows", measure(frame, spec, args.repeats))


if __name__ == "__main__":
    main()
