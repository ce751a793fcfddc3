"""Memory of the monitoring job on one large period from Parquet: the period described (no
frame through the IO manager) against the period materialized as a frame (the baseline).

One daily period of ``--rows`` records (default 2,000,000; 10 numeric and 2 categorical
features, a binary target, a seeded generator) follows a reference day of as many in one
Parquet file (row groups of 250k, in time order). The reference is fitted first (not
measured). Then the monitoring job (``current_data``, ``drift_report``;
``champion_performance`` skips: no champion) runs for the period in a fresh process per
path, whose peak RSS (``resource.getrusage``, the process's own) and wall time are printed:

* the path under test: ``RETRAIN_MATERIALIZE_MAX_ROWS`` below the period: ``current_data``
  counts the period, validates a seeded sample of ``RETRAIN_DRIFT_MAX_RECORDS`` (100k) and
  stores a description as JSON;
* the baseline: ``RETRAIN_MATERIALIZE_MAX_ROWS=0``: the period loaded whole, validated whole
  and stored as Parquet;
* for the record, the state before this change: the same with Dagster's default IO manager,
  which pickles the frame.

``drift_report`` reads the same seeded 100k sample on both paths (only the sampled rows are
kept of each Parquet batch).

    python benchmarks/scale_benchmark_io.py [--rows 2000000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

DAY = datetime(2024, 1, 1)
NUMERIC = tuple(f"x{i}" for i in range(10))
CATEGORICAL = ("colour", "region")


def generate(path: Path, rows: int, reference_rows: int | None = None) -> None:
    """A reference day of ``reference_rows`` (default ``rows``) records and a period day of
    ``rows``, written a row group at a time (bounded memory)."""
    rng = np.random.default_rng(17)
    schema = None
    writer = None
    chunk = 250_000
    for day, day_rows in enumerate((reference_rows or rows, rows)):
        for offset in range(0, day_rows, chunk):
            n = min(chunk, day_rows - offset)
            seconds = np.sort(rng.uniform(offset, offset + n, n) * 86_400 / day_rows)
            frame = pd.DataFrame(
                {"ts": pd.Timestamp(DAY) + pd.Timedelta(days=day) + pd.to_timedelta(seconds, "s")}
            )
            for i, name in enumerate(NUMERIC):
                frame[name] = rng.normal(i * 0.1 * day, 1.0 + i, n)
            frame["colour"] = rng.choice(["red", "green", "blue", "grey"], n)
            frame["region"] = rng.choice([f"r{i}" for i in range(12)], n)
            frame["y"] = (frame["x0"] + rng.normal(0, 1, n) > 0).astype("int64")
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if writer is None:
                schema = table.schema
                writer = pq.ParquetWriter(path, schema)
            writer.write_table(table)
    assert writer is not None
    writer.close()


def definitions(home: Path, path: Path, limit: int):
    from retraining_assets.core.dataset import DatasetSpec
    from retraining_assets.core.pipeline import Pipeline
    from retraining_assets.core.sources import FileRecordSource
    from retraining_assets.definitions import build_definitions
    from retraining_assets.settings import load_settings

    settings = load_settings(
        home=home,
        partition="daily",
        drift_window=1,
        training_window="1d",
        materialize_max_rows=limit,
        model_families=["xgboost"],
    )
    spec = DatasetSpec(
        time_column="ts",
        target="y",
        task="binary",
        numeric_features=NUMERIC,
        categorical_features=CATEGORICAL,
        classes=("0", "1"),
    )
    source = FileRecordSource(path=str(path), time_column="ts")
    pipeline = Pipeline("scale", source, spec, settings, start=f"{DAY:%Y-%m-%d}")
    return build_definitions(settings, [pipeline])


def child(step: str, home: Path, path: Path, limit: int, storage: Path) -> None:
    """One job in this process: the reference or the retraining that registers a champion
    (setup), or the measured monitoring run."""
    import dagster as dg

    defs = definitions(home, path, max(limit, 0))
    if limit < 0:  # before this change: Dagster's default IO manager, the frame pickled
        defs = dg.Definitions(
            assets=defs.assets,
            asset_checks=defs.asset_checks,
            jobs=defs.jobs,
            resources={**defs.resources, "io_manager": dg.FilesystemIOManager()},
        )
    storage.mkdir(parents=True, exist_ok=True)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    with dg.instance_for_test(temp_dir=str(storage)) as instance:
        job, partition = {
            "reference": ("scale_reference_job", None),
            "retraining": ("scale_retraining_job", f"{DAY:%Y-%m-%d}"),
            "monitoring": ("scale_monitoring_job", "2024-01-02"),
        }[step]
        result = defs.resolve_job_def(job).execute_in_process(
            instance=instance, partition_key=partition
        )
        assert result.success
        stored = sorted(p.name for p in (storage / "storage").rglob("2024-01-02*"))
        report = (
            result.asset_value(dg.AssetKey(["scale", "drift_report"]))
            if step == "monitoring"
            else None
        )
    print(
        json.dumps(
            {
                "seconds": time.perf_counter() - started,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "before_job_mb": before,
                "stored": stored,
                # prediction drift is computed only when a champion with scores is registered
                "prediction_drift": (report or {}).get("prediction_drift") is not None,
            }
        )
    )


def run(step: str, home: Path, path: Path, limit: int, storage: Path) -> dict:
    command = [sys.executable, __file__, "--child", step, "--home", str(home)]
    command += ["--path", str(path), "--limit", str(limit), "--storage", str(storage)]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--child", choices=["reference", "retraining", "monitoring"])
    parser.add_argument("--home", type=Path)
    parser.add_argument("--path", type=Path)
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--storage", type=Path)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.home, args.path, args.limit, args.storage)
        return
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        path, home = root / "records.parquet", root / ".retrain"
        generate(path, args.rows)
        print(f"{args.rows:,} records a day, {path.stat().st_size / 1e6:.0f} MB of Parquet")
        setup = run("reference", home, path, 0, root / "reference")
        print(f"reference fitted (not measured): {setup['seconds']:.1f} s")
        results = {}
        described_below = min(1_000_000, args.rows - 1)  # the default, or just below the period
        paths = (("pickle (before)", -1), ("frame (baseline)", 0), ("description", described_below))
        for name, limit in paths:
            results[name] = run("monitoring", home, path, limit, root / name.split()[0])
            r = results[name]
            print(
                f"{name}: peak RSS {r['peak_rss_mb']:.0f} MB ({r['before_job_mb']:.0f} MB "
                f"before the job), {r['seconds']:.1f} s, "
                f"stored {r['stored']}"
            )
        frame, described = results["frame (baseline)"], results["description"]
        print(
            f"peak RSS ratio description / frame: "
            f"{described['peak_rss_mb'] / frame['peak_rss_mb']:.2f}; "
            f"time ratio {described['seconds'] / frame['seconds']:.2f}"
        )
        grown = {name: r["peak_rss_mb"] - r["before_job_mb"] for name, r in results.items()}
        print(
            "growth during the job: "
            + ", ".join(f"{name} {mb:.0f} MB" for name, mb in grown.items())
            + f"; description / frame {grown['description'] / grown['frame (baseline)']:.2f}"
        )


if __name__ == "__main__":
    main()
