"""Start-up benchmark: what a new process pays before it does anything.

Every ``retrain`` command, every Dagster step process and every code-location load imports
``retraining_assets.definitions``. torch, skops and Great Expectations are imported only where
a model trains or loads or a suite runs; the baseline, in the same run, is the same import with
those three loaded first (as they were at module level before). Fresh interpreters, the
median of ``--repeat`` runs each, and the ratio.

    OMP_NUM_THREADS=1 python benchmarks/startup_benchmark.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time

CASES = {
    "eager torch + skops + GX (baseline)": (
        "import torch, skops.io, great_expectations; import retraining_assets.definitions"
    ),
    "import retraining_assets.definitions": "import retraining_assets.definitions",
    "retrain status, a settings error": None,  # the CLI's own path to its first line
}


def seconds(code: str | None) -> float:
    if code is None:
        command = [os.path.join(os.path.dirname(sys.executable), "retrain"), "status"]
        env = {**os.environ, "RETRAIN_PSI_WARNING": "0.5", "RETRAIN_PSI_ALERT": "0.2"}
    else:
        command, env = [sys.executable, "-c", code], dict(os.environ)
    started = time.perf_counter()
    subprocess.run(command, env=env, capture_output=True, check=False)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()}")
    medians = {}
    for name, code in CASES.items():
        medians[name] = statistics.median(seconds(code) for _ in range(args.repeat))
    baseline = medians["eager torch + skops + GX (baseline)"]
    for name, value in medians.items():
        print(f"{name:<40} {value:6.2f} s   {baseline / value:4.2f}x vs baseline")


if __name__ == "__main__":
    main()
