"""Permutation importance's time and memory on a wide table: a batch capped by cells against the
former cap by rows, and against scikit-learn's ``permutation_importance``; the same for the
domain classifier's importances (every feature's copy in one call before).

``core.importance`` scores the permuted copies of several features in one model call. Baselines:
the former rule, 250,000 rows per call whatever the table's width (on a 500-column table: 100
features' copies, ~125M cells, in one call), and ``sklearn.inspection.permutation_importance``
(one call per feature and repeat, the same definition). The product caps a call at
``MAX_BATCH_CELLS`` cells. Each variant runs in a fresh process that trains the same seeded
xgboost and then measures the importance: the seconds, and the peak RSS the importance adds
above what training already reached. The two batch rules must give identical numbers.

    OMP_NUM_THREADS=1 python benchmarks/importance_benchmark.py [--rows 6000] [--wide 500]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import resource
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pandas as pd

FORMER_BATCH_ROWS = 250_000  # the rule before: rows per scores call, any width


def make_frame(rows: int, features: int, seed: int = 0) -> pd.DataFrame:
    """Binary features (like a bag of words), a label that depends on the first ten."""
    rng = np.random.default_rng(seed)
    x = (rng.random((rows, features)) < 0.2).astype(np.float64)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(features)])
    frame.insert(0, "ts", pd.date_range("2026-01-01", periods=rows, freq="h"))
    logit = x[:, :10] @ np.linspace(2.0, 0.2, 10) - 1.5
    frame["y"] = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame


def sklearn_importance(model, holdout: pd.DataFrame, spec, repeats: int) -> dict[str, float]:
    """scikit-learn's permutation importance of the same model, metric and repeats."""
    from sklearn.inspection import permutation_importance

    from retraining_assets.core.evaluation import compute_metric, truth

    y = truth(holdout, spec, model)

    class Fitted:  # sklearn wants an estimator with fit; the model is already fitted
        def fit(self, *_args: object) -> Fitted:
            return self

    def score(_estimator, X, _y):
        return compute_metric("accuracy", y, model.scores(X))

    result = permutation_importance(
        Fitted(), holdout, y, scoring=score, n_repeats=repeats, random_state=0
    )
    names = list(holdout.columns)
    return {f: float(result.importances_mean[names.index(f)]) for f in spec.features}


def measure(rows: int, features: int, rule: str, out: multiprocessing.Queue) -> None:
    from retraining_assets.core.dataset import DatasetSpec
    from retraining_assets.core.importance import DEFAULT_REPEATS, permutation_importance
    from retraining_assets.core.permutation_batches import MAX_BATCH_CELLS
    from retraining_assets.core.training import split_for_training, train_model
    from retraining_assets.settings import load_settings

    frame = make_frame(rows, features)
    spec = DatasetSpec.infer(frame, "ts", "y")
    split = split_for_training(load_settings())(frame, spec)
    model = train_model("xgboost", split, spec, seed=0)
    holdout = split.holdout
    cells = FORMER_BATCH_ROWS * len(spec.features) if rule == "former" else MAX_BATCH_CELLS
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    if rule == "sklearn":
        values = sklearn_importance(model, holdout, spec, DEFAULT_REPEATS)
    else:
        values = permutation_importance(model, holdout, spec, "accuracy", max_batch_cells=cells)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out.put({"seconds": seconds, "added_mb": (after - before) / 1024, "values": values})


def measure_classifier(rows: int, features: int, rule: str, out: multiprocessing.Queue) -> None:
    """The domain classifier's importances (``multivariate_drift``) on ``rows`` rows a side,
    one feature shifted; ``former``: every feature's shuffled copy in one predict call."""
    from retraining_assets.core.drift import multivariate

    if rule == "former":
        multivariate.MAX_BATCH_CELLS = 10**15
    reference = make_frame(rows, features, seed=1).drop(columns=["ts", "y"])
    current = make_frame(rows, features, seed=2).drop(columns=["ts", "y"])
    current["f0"] = (np.random.default_rng(3).random(rows) < 0.3).astype(np.float64)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    result = multivariate.multivariate_drift(reference, current, seed=0).classifier
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out.put({"seconds": seconds, "added_mb": (after - before) / 1024, "values": result.importances})


def run(target, rows: int, features: int, rule: str) -> dict:
    """``target(rows, features, rule, queue)`` in a fresh process; what it measured."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=target, args=(rows, features, rule, queue))
    process.start()
    result = queue.get()
    process.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=6000)
    parser.add_argument("--wide", type=int, default=500)
    parser.add_argument("--narrow", type=int, default=12)
    parser.add_argument("--classifier-rows", type=int, default=20_000)
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, {args.rows} rows")  # fmt: skip
    print(f"{'features':>8}  {'rule':<31} {'seconds':>8} {'peak RSS added':>15}  ratio s, RSS")
    rules = (
        ("former", "former: 250,000 rows a call"),
        ("cells", "cells: MAX_BATCH_CELLS"),
        ("sklearn", "sklearn permutation_importance"),
    )
    for features in (args.narrow, args.wide):
        results = {rule: run(measure, args.rows, features, rule) for rule, _ in rules}
        assert results["cells"]["values"] == results["former"]["values"], "a number changed"
        largest = max(
            abs(results["cells"]["values"][f] - results["sklearn"]["values"][f])
            for f in results["cells"]["values"]
        )
        for rule, name in rules:
            result, former = results[rule], results["former"]
            memory = result["added_mb"] / former["added_mb"] if former["added_mb"] else float("nan")
            print(f"{features:>8}  {name:<31} {result['seconds']:>8.2f} "
                  f"{result['added_mb']:>12.0f} MB  {result['seconds'] / former['seconds']:.2f} "
                  f"{memory:.2f}")  # fmt: skip
        print(f"{'':>8}  largest difference from sklearn's (other permutations): {largest:.4f}")
    print(f"domain classifier (multivariate_drift), {args.classifier_rows} rows a side:")
    for features in (args.narrow, args.wide):
        results = {
            rule: run(measure_classifier, args.classifier_rows, features, rule)
            for rule in ("former", "cells")
        }
        assert results["cells"]["values"] == results["former"]["values"], "a number changed"
        for rule, name in (("former", "former: all features a call"), rules[1]):
            result, former = results[rule], results["former"]
            memory = result["added_mb"] / former["added_mb"] if former["added_mb"] else float("nan")
            print(f"{features:>8}  {name:<31} {result['seconds']:>8.2f} "
                  f"{result['added_mb']:>12.0f} MB  {result['seconds'] / former['seconds']:.2f} "
                  f"{memory:.2f}")  # fmt: skip
    print("importances identical under both batch rules")


if __name__ == "__main__":
    main()
