"""The monitoring job for one 20M-row Parquet period on 2 cores: peak RSS and time, against the
same job on a 2M-row period loaded in memory (the baseline), in the same run.

Data: ``scale_benchmark_io.generate`` (seeded): a reference day of 2M records and a period day
of ``--rows`` (default 20,000,000), 10 numeric + 2 categorical features and a binary target, in
one Parquet file under ``--data`` (default /work/scale-data, deleted at the end). First (not
measured) the retraining job runs for the reference day: it trains an XGBoost candidate on it,
promotes it (the first champion) and fits the reference with the champion's training scores.
Each measured run is a fresh process that builds the definitions with a file source and
executes the monitoring job (``current_data``, ``drift_report`` with prediction drift: the
champion scores the seeded drift sample, ``champion_performance``, ``estimated_performance``)
for the period through a real Dagster instance; peak RSS is ``getrusage(RUSAGE_SELF)`` of that
process. ``--no-champion`` fits the reference alone (the figure before prediction drift).

* 20M, pushed down: the period above ``RETRAIN_MATERIALIZE_MAX_ROWS`` (described, validated on
  the seeded sample), drift through the engine ``auto`` picks (DuckDB above 1M records);
* 2M, in memory (baseline): ``RETRAIN_MATERIALIZE_MAX_ROWS=0``: loaded whole, validated whole,
  stored as Parquet.

    python benchmarks/scale_monitoring.py [--rows N] [--data DIR] [--no-champion]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale_benchmark_io import generate, run  # the same generator and child process

BASELINE_ROWS = 2_000_000


def measure(folder: Path, rows: int, limit: int, champion: bool) -> dict:
    path, home = folder / "records.parquet", folder / ".retrain"
    folder.mkdir(parents=True, exist_ok=True)
    generate(path, rows, reference_rows=BASELINE_ROWS)
    print(
        f"{rows:,} records in the period, {path.stat().st_size / 1e6:.0f} MB of Parquet", flush=True
    )
    setup = run("retraining" if champion else "reference", home, path, 0, folder / "setup")
    print(f"{'champion trained' if champion else 'reference fitted'} (not measured): "
          f"{setup['seconds']:.1f} s", flush=True)  # fmt: skip
    result = run("monitoring", home, path, limit, folder / "monitoring")
    assert result["prediction_drift"] == champion, result
    path.unlink()  # the disk is shared
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--data", type=Path, default=Path("/work/scale-data"))
    parser.add_argument("--no-champion", dest="champion", action="store_false")
    args = parser.parse_args()
    champion = "with a champion (prediction drift)" if args.champion else "without a champion"
    print(f"monitoring {champion}", flush=True)
    args.data.mkdir(parents=True, exist_ok=True)
    try:
        large = measure(args.data / "large", args.rows, 1_000_000, args.champion)
        print(f"{args.rows:,} pushed down: peak RSS {large['peak_rss_mb']:.0f} MB, "
              f"{large['seconds']:.1f} s", flush=True)  # fmt: skip
        base = measure(args.data / "baseline", BASELINE_ROWS, 0, args.champion)
        print(f"{BASELINE_ROWS:,} in memory (baseline): peak RSS {base['peak_rss_mb']:.0f} MB, "
              f"{base['seconds']:.1f} s", flush=True)  # fmt: skip
        print(
            f"ratio {args.rows // BASELINE_ROWS}x the rows pushed down / baseline: peak RSS "
            f"{large['peak_rss_mb'] / base['peak_rss_mb']:.2f}, time "
            f"{large['seconds'] / base['seconds']:.2f}; target peak RSS <= 2048 MB: "
            f"{'met' if large['peak_rss_mb'] <= 2048 else 'missed'}"
        )
    finally:
        shutil.rmtree(args.data, ignore_errors=True)


if __name__ == "__main__":
    main()
