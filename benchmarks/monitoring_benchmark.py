"""Daily monitoring benchmark: one run of the monitoring job (current_data + drift_report +
champion_performance) for a day of ``--rows-per-day`` records (default 100,000).

Target (issue 15): ≤ 10 s on 2 cores. The records are the demo stream's (14 features), eight
days of them in a SQLite table with an indexed time column: each day is one month of the
stream (offsets 0-7, all in its stable stretch) squeezed into a day. The pipeline monitors
daily periods with the default 7-day drift window, so ``drift_report`` and
``champion_performance`` each read 7 × ``--rows-per-day`` records; a first XGBoost champion
is trained on the first seven days (not timed). Timed, in the same run:

* the run under test: day 8 with ``RETRAIN_DRIFT_WINDOW=7``, the window sampled to
  ``RETRAIN_DRIFT_MAX_RECORDS`` (100k) for the statistics and the champion's scores;
* the baseline: the same run on the whole 700k-row window (``RETRAIN_DRIFT_MAX_RECORDS=0``);
* for scale: ``RETRAIN_DRIFT_WINDOW=1``, the period compared on its own.

    python benchmarks/monitoring_benchmark.py [--rows-per-day 100000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import dagster as dg
import pandas as pd
import sqlalchemy as sa

from retraining_assets.cli.common import prepare_dagster_home
from retraining_assets.core.demo import SPEC, TIME_COLUMN, DemoStream
from retraining_assets.core.pipeline import Pipeline
from retraining_assets.core.sources import SqlRecordSource
from retraining_assets.definitions import build_definitions
from retraining_assets.defs.jobs import monitoring_job_name
from retraining_assets.demo.simulation import MONITORING_DELAY, Simulation
from retraining_assets.settings import load_settings

sys.path.insert(0, str(Path(__file__).parent))
from sensor_benchmark import machine

FIRST_DAY = datetime(2024, 1, 1)
DAYS = 8
TABLE = "records"


def build_table(url: str, rows_per_day: int) -> None:
    """Eight days of ``rows_per_day`` demo records, then the time index."""
    stream = DemoStream(rows_per_month=rows_per_day, end_month=pd.Timestamp("2024-12-01"))
    engine = sa.create_engine(url)
    for day in range(DAYS):
        frame = stream.generate(day)
        month = stream.month_start(day)
        share = (frame[TIME_COLUMN] - month) / (month + pd.DateOffset(months=1) - month)
        frame[TIME_COLUMN] = (FIRST_DAY + timedelta(days=day) + share * timedelta(days=1)).dt.floor(
            "s"
        )
        frame.to_sql(TABLE, engine, if_exists="append", index=False, chunksize=50_000)
    with engine.begin() as connection:
        connection.exec_driver_sql(f"CREATE INDEX ix_{TABLE}_time ON {TABLE} ({TIME_COLUMN})")
    engine.dispose()


def simulation(
    home: Path, url: str, drift_window: int, instance: dg.DagsterInstance, max_records: int
) -> Simulation:
    settings = load_settings(
        home=home,
        partition="daily",
        drift_window=drift_window,
        drift_max_records=max_records,
        training_window="7d",
        model_families=["xgboost"],
        volume_trigger=10**9,
        retrain_schedule="none",
    )
    source = SqlRecordSource(url=url, table=TABLE, time_column=TIME_COLUMN)
    pipeline = Pipeline(
        name="demo", source=source, spec=SPEC, settings=settings, start=f"{FIRST_DAY:%Y-%m-%d}"
    )
    return Simulation(build_definitions(settings, [pipeline]), pipeline, instance)


def monitor(sim: Simulation, day: datetime) -> float:
    sim.now = day + timedelta(days=1) + MONITORING_DELAY
    started = time.perf_counter()
    result = sim.launch(monitoring_job_name("demo"), f"{day:%Y-%m-%d}")
    seconds = time.perf_counter() - started
    if not result.success:
        raise RuntimeError(f"the monitoring run of {day:%Y-%m-%d} failed")
    return seconds


BASELINE = "baseline: 7 days, no sample"


def median_run(sim: Simulation, day: datetime, repeats: int) -> float:
    return statistics.median(monitor(sim, day) for _ in range(repeats))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows-per-day", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    print(machine(), file=sys.stderr)
    for name in [name for name in os.environ if name.startswith("RETRAIN_")]:
        del os.environ[name]
    os.environ.pop("DAGSTER_HOME", None)
    with tempfile.TemporaryDirectory(prefix="monitoring_benchmark_") as folder:
        root = Path(folder)
        home = root / "home"
        os.environ["RETRAIN_HOME"] = str(home)
        url = f"sqlite:///{root / 'records.db'}"
        started = time.perf_counter()
        build_table(url, args.rows_per_day)
        print(f"table built in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        prepare_dagster_home(load_settings(home=home))
        instance = dg.DagsterInstance.get()
        windowed = simulation(home, url, 7, instance, 100_000)
        windowed.refresh_reference()
        started = time.perf_counter()
        first = windowed.period(f"{FIRST_DAY + timedelta(days=DAYS - 2):%Y-%m-%d}")  # champion
        if not first.trained:
            raise RuntimeError("no champion was trained on the first seven days")
        print(f"champion trained in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        whole = simulation(home, url, 7, instance, 0)
        single = simulation(home, url, 1, instance, 100_000)
        day = FIRST_DAY + timedelta(days=DAYS - 1)
        monitor(windowed, day)  # warm-up: imports, GX context, first reads
        results = {
            "drift window 7 days (100k sample)": median_run(windowed, day, args.repeats),
            "drift window 1 day": median_run(single, day, args.repeats),
        }
        results[BASELINE] = median_run(whole, day, args.repeats)
        instance.dispose()
    print(f"{args.rows_per_day:,} records a day; median of {args.repeats} monitoring runs")
    print("| monitoring run | records in the window | seconds | target |")
    print("|---|---:|---:|---:|")
    for label, seconds in results.items():
        days = 1 if "1 day" in label else 7
        print(f"| {label} | {days * args.rows_per_day:,} | {seconds:.1f} | ≤ 10 |")
    ratio = results[BASELINE] / results["drift window 7 days (100k sample)"]
    print(f"baseline / drift window 7 days = {ratio:.2f}x faster")


if __name__ == "__main__":
    main()
