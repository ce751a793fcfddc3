"""Router assignment rates on one core against a pure-Python GrowthBook-style baseline.

    OMP_NUM_THREADS=1 python benchmarks/router_benchmark.py [--n 1000000] [--repeat 3]

Baseline: GrowthBook's hash v2 (FNV-1a 32 over UTF-16 code units, twice, 10,000 buckets) and
its range lookup written in plain Python, which is what its Python SDK does per call; the
``growthbook`` package's own ``gbhash``/``chooseVariation`` (a dev dependency) are timed too.
Every engine's assignments are checked against the baseline's (and the SDK's) before timing.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np

from retraining_assets.core.rollout import Router

WEIGHTS = {"champion": 0.9, "challenger": 0.1}
SALT = "bench"


def python_assign(salt: str, ids: Sequence[Any], names: Sequence[str], ends: Sequence[float]):
    """GrowthBook v2 hash + bucket ranges, plain Python, one id at a time (ids below 2**53)."""
    out = []
    for entity_id in ids:
        text = f"{salt}:{entity_id}"
        raw = text.encode() if text.isascii() else text.encode("utf-16-le")
        units = raw if text.isascii() else [raw[k] | raw[k + 1] << 8 for k in range(0, len(raw), 2)]
        h = 0x811C9DC5
        for b in units:
            h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
        g = 0x811C9DC5
        for b in str(h).encode():
            g = ((g ^ b) * 0x01000193) & 0xFFFFFFFF
        n = (g % 10000) / 10000
        out.append(next(name for name, end in zip(names, ends, strict=True) if n < end))
    return out


def growthbook_assign() -> Callable[[str, Sequence[Any], list[float]], list[int]] | None:
    """The growthbook package's own hash + variation choice, if it is installed."""
    try:
        from growthbook.core import chooseVariation, gbhash, getBucketRanges
    except ImportError:
        return None
    return partial(_growthbook_run, gbhash, chooseVariation, getBucketRanges)


def _growthbook_run(
    hash_fn: Callable, choose: Callable, ranges_fn: Callable, salt: str, ids: Sequence[Any],
    weights: list[float],
) -> list[int]:  # fmt: skip
    ranges = ranges_fn(len(weights), 1.0, weights)
    return [choose(hash_fn(f"{salt}:", str(i), 2), ranges) for i in ids]


def best_of(repeat: int, fn: Callable[[], Any]) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline-n", type=int, help="ids for the slow paths (default: --n)")
    args = parser.parse_args()
    args.baseline_n = args.baseline_n or args.n
    rng = np.random.default_rng(2026)
    int_ids = rng.integers(0, 10**12, args.n)
    cases = {
        "str (list)": [f"user-{i}" for i in int_ids],
        "int (numpy int64)": int_ids,
    }
    cases["str (numpy unicode)"] = np.array(cases["str (list)"])
    cases["non-ASCII str (list)"] = [f"ユーザー-{i}" for i in int_ids]  # UTF-16 code units
    router = Router(SALT, WEIGHTS)
    names = list(router.ranges)  # challenger first, as laid out on the bucket line
    ends = [router.ranges[v][1] / 10_000 for v in names]
    weights = [WEIGHTS[v] for v in names]
    gb = growthbook_assign()
    print(
        f"nproc={os.cpu_count()} OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')} "
        f"n={args.n:,} baseline_n={args.baseline_n:,} growthbook={'yes' if gb else 'no'}"
    )
    router.assign_many(cases["str (list)"][:10])  # compile / load the numba kernels
    router.assign(0)
    rows = []
    for label, ids in cases.items():
        small = ids[: args.baseline_n]
        small_list = small.tolist() if isinstance(small, np.ndarray) else small
        reference = python_assign(SALT, small_list, names, ends)
        assert router.assign_many(small).tolist() == reference, label
        assert router.assign_many(small, engine="numpy").tolist() == reference, label
        assert [router.assign(i) for i in small_list[:10_000]] == reference[:10_000], label
        base = args.baseline_n / best_of(
            1, lambda s=small_list: python_assign(SALT, s, names, ends)
        )
        timings = {
            "batch (numba)": args.n / best_of(args.repeat, lambda i=ids: router.assign_many(i)),
            "batch (numpy)": args.n
            / best_of(args.repeat, lambda i=ids: router.assign_many(i, engine="numpy")),
            "single (assign)": args.baseline_n
            / best_of(args.repeat, lambda s=small_list: [router.assign(i) for i in s]),
        }
        if gb is not None:
            assert gb(SALT, small_list[:10_000], weights) == [
                names.index(v) for v in reference[:10_000]
            ], label
            timings["growthbook SDK"] = args.baseline_n / best_of(
                1, lambda s=small_list: gb(SALT, s, weights)
            )
        rows.append((label, "pure-Python FNV baseline", base, 1.0))
        rows.extend((label, name, rate, rate / base) for name, rate in timings.items())
    print("| ids | path | ids/s | vs pure-Python baseline |\n|---|---|---:|---:|")
    for label, name, rate, ratio in rows:
        print(f"| {label} | {name} | {rate / 1e6:.2f} M | {ratio:.1f}x |")


if __name__ == "__main__":
    main()
