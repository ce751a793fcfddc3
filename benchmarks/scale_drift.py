"""`retrain drift` at scale: DuckDB (streamed) against memory (both files loaded whole).

A seeded generator writes a reference and a current Parquet file of N rows x 10 numeric and
2 categorical columns (two numeric columns and one category shifted in the current file),
in row groups of 1M rows so the generator itself stays small. Each engine runs as its own
`retrain drift --json` subprocess; peak RSS is that process's (getrusage of a one-child
wrapper), time is wall time. Baseline: `--engine memory` in the same run. Prints both RSS
figures and times, their ratios, and whether verdicts and KS D are identical.

    python benchmarks/scale_drift.py --rows 2000000 8000000 20000000 [--folder /tmp/x]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

RETRAIN = str(Path(sys.executable).parent / "retrain")
CHUNK = 1_000_000
NUMERIC = [f"x{k}" for k in range(10)]
CATEGORIES = {"channel": ["web", "app", "store", "phone"], "region": [f"r{k}" for k in range(30)]}
WRAPPER = (
    "import resource, subprocess, sys, time; t = time.perf_counter(); "
    "p = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
    "sys.stderr.write(p.stderr); sys.stdout.write(p.stdout); "
    "print('@@', time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,"
    " p.returncode)"
)


def write_file(path: Path, rows: int, seed: int, shifted: bool) -> None:
    rng = np.random.default_rng(seed)
    writer = None
    for start in range(0, rows, CHUNK):
        n = min(CHUNK, rows - start)
        columns: dict[str, pa.Array] = {}
        for k, name in enumerate(NUMERIC):
            shift = 0.05 if shifted and k < 2 else 0.0
            values = rng.normal(shift + k, 1.0 + 0.1 * k, n)
            if k == 9:  # a rounded column: ties
                values = np.round(values, 1)
            columns[name] = pa.array(values)
        for name, labels in CATEGORIES.items():
            weights = np.linspace(1.0, 2.0, len(labels))
            if shifted and name == "channel":
                weights = weights[::-1]
            codes = rng.choice(len(labels), n, p=weights / weights.sum()).astype(np.int32)
            columns[name] = pa.DictionaryArray.from_arrays(pa.array(codes), pa.array(labels))
        table = pa.table(columns)
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=CHUNK)
    assert writer is not None
    writer.close()


def run_engine(reference: Path, current: Path, engine: str, memory_limit: str) -> dict:
    command = [RETRAIN, "drift", str(reference), str(current), "--json", "--engine", engine]
    if engine == "duckdb":
        command += ["--memory-limit", memory_limit]
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    out = subprocess.run(
        [sys.executable, "-c", WRAPPER, *command], capture_output=True, text=True, env=env
    )
    marker = out.stdout.rsplit("@@", 1)
    seconds, rss_kb, code = marker[1].split()
    if int(code) not in (0, 1):
        raise SystemExit(f"{engine} failed ({code}): {out.stderr[-2000:]}{marker[0][-2000:]}")
    report = json.loads(marker[0])
    return {"seconds": float(seconds), "rss_mb": int(rss_kb) / 1024, "report": report}


def summary(report: dict) -> dict:
    return {
        "dataset_drift": report["dataset_drift"],
        "drifted": report["drifted_features"],
        "ks": {n: f["ks_statistic"] for n, f in report["features"].items()},
        "verdicts": {n: f["drifted"] for n, f in report["features"].items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[2_000_000, 8_000_000, 20_000_000])
    parser.add_argument("--folder", type=Path, default=None, help="Default: a temp folder.")
    parser.add_argument("--memory-limit", default="384MB")
    parser.add_argument("--engines", nargs="+", default=["duckdb", "memory"])
    args = parser.parse_args()
    folder = args.folder or Path(tempfile.mkdtemp(prefix="scale-drift-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"load: {os.getloadavg()[0]:.2f} (1 min) on {os.cpu_count()} CPUs; files in {folder}")
    try:
        for rows in args.rows:
            reference, current = folder / f"ref_{rows}.parquet", folder / f"cur_{rows}.parquet"
            started = time.perf_counter()
            if not reference.exists():
                write_file(reference, rows, seed=1, shifted=False)
                write_file(current, rows, seed=2, shifted=True)
            size = (reference.stat().st_size + current.stat().st_size) / 2**20
            print(f"\n{rows:,} rows x 12 columns per file ({size:,.0f} MiB on disk, "
                  f"{time.perf_counter() - started:.0f} s to write)")  # fmt: skip
            results = {}
            for engine in args.engines:
                results[engine] = run_engine(reference, current, engine, args.memory_limit)
                r = results[engine]
                print(f"  {engine:6} {r['seconds']:7.1f} s  peak RSS {r['rss_mb']:7.0f} MB  "
                      f"load {os.getloadavg()[0]:.2f}")  # fmt: skip
            if {"duckdb", "memory"} <= set(results):
                d, m = results["duckdb"], results["memory"]
                same = summary(d["report"]) == summary(m["report"])
                print(f"  duckdb/memory: time {d['seconds'] / m['seconds']:.2f}x, RSS "
                      f"{d['rss_mb'] / m['rss_mb']:.2f}x; identical verdicts and KS D: {same}; "
                      f"drifted: {summary(d['report'])['drifted']}")  # fmt: skip
            if args.folder is None:
                reference.unlink()
                current.unlink()
    finally:
        if args.folder is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
