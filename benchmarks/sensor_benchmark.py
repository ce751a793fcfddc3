"""Retraining sensor benchmark: the volume signal and a whole sensor tick at 10M source rows.

The retraining sensor must finish well inside Dagster's 60 s sensor timeout whatever the size of
the record table: it reads drift metadata from the instance and counts the records newer than
the training watermark with a SQL ``COUNT`` on the indexed time column
(``SqlRecordSource.count_since``). This script builds a table of ``--rows`` records (default
10M, evenly spread over 2023-01..2024-12, time column indexed) in SQLite and in PostgreSQL and
times, in the same run:

* ``count_since`` for a watermark one month before the end (the typical tick: a month of new
  records) and one month after the start (a watermark that fell far behind);
* one full sensor evaluation (``build_sensor_context`` + ``evaluate_tick``) against a real
  SQLite Dagster instance in which a tiny demo pipeline has been monitored and trained (drift
  reports materialized, a champion and a watermark in the registry), with the pipeline's record
  source pointed at the big table;
* the baseline: load the records after the watermark with pandas and count them
  (``len(source.load(watermark, None))``), which is what a naive sensor would do.

    python benchmarks/sensor_benchmark.py [--rows 10000000] [--backends sqlite postgresql]
        [--full-baseline]   # also load ~9.6M rows for the far-behind watermark (slow)

PostgreSQL: a database ``retrain_bench_<random>`` is created on ``--postgres-url`` and dropped.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import secrets
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import dagster as dg
import pandas as pd
import sqlalchemy as sa

from retraining_assets.cli.common import prepare_dagster_home
from retraining_assets.core.database import make_engine, platform_engine
from retraining_assets.core.demo import DemoStream
from retraining_assets.core.pipeline import Pipeline, demo_pipeline
from retraining_assets.core.registry import Registry
from retraining_assets.core.sources import SqlRecordSource
from retraining_assets.definitions import build_definitions
from retraining_assets.demo.simulation import Simulation
from retraining_assets.settings import load_settings

T = TypeVar("T")
TABLE, TIME_COLUMN = "records", "event_time"
START, END = datetime(2023, 1, 1), datetime(2025, 1, 1)  # 24 months of records
# the demo's last month: training on it puts the watermark at the end of 2024-11, one month
# before the big table ends
DEMO = DemoStream(months=3, rows_per_month=400, end_month=pd.Timestamp("2024-11-01"))
FAR_BEHIND = datetime(2023, 2, 1)
POSTGRES_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
REPEATS = 5
SENSOR_TIMEOUT = 60.0


def records_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        TABLE,
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(TIME_COLUMN, sa.DateTime, nullable=False),
        sa.Column("amount", sa.Float),
        sa.Column("score", sa.Float),
        sa.Column("ratio", sa.Float),
        sa.Column("segment", sa.String(8)),
        sa.Column("label", sa.Integer),
    )


def build_sqlite(path: Path, rows: int) -> str:
    """``rows`` records in one ``INSERT … SELECT`` over a recursive CTE (no Python per row),
    then the time index (building it after the load is faster than maintaining it)."""
    url = f"sqlite:///{path}"
    engine = sa.create_engine(url)
    records_table(sa.MetaData()).create(engine)
    engine.dispose()
    step = (END - START).total_seconds() / rows
    connection = sqlite3.connect(path)
    try:
        # a throw-away file: no journal, no fsync while loading
        connection.execute("PRAGMA journal_mode=OFF")
        connection.execute("PRAGMA synchronous=OFF")
        connection.execute(
            f"""
            INSERT INTO {TABLE} ({TIME_COLUMN}, amount, score, ratio, segment, label)
            WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i < ?)
            SELECT
                -- SQLAlchemy's SQLite DateTime text form, so its bound parameters compare right
                strftime('%Y-%m-%d %H:%M:%S', ? + i * ?, 'unixepoch') || '.000000',
                abs(random() % 100000) / 100.0,
                abs(random() % 1000) / 1000.0,
                abs(random() % 1000) / 1000.0,
                'seg' || abs(random() % 8),
                abs(random() % 2)
            FROM seq
            """,
            (rows - 1, START.replace(tzinfo=UTC).timestamp(), step),
        )
        connection.execute(f"CREATE INDEX ix_{TABLE}_{TIME_COLUMN} ON {TABLE} ({TIME_COLUMN})")
        connection.execute("ANALYZE")
        connection.commit()
    finally:
        connection.close()
    return url


@contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """A fresh database ``retrain_bench_<random>``, dropped afterwards whatever happens."""
    name = f"retrain_bench_{secrets.token_hex(4)}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        make_engine(url).dispose()  # the sources' cached engine holds pooled connections
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def build_postgres(url: str, rows: int) -> None:
    """``rows`` records from ``generate_series``, the time index, then ``VACUUM ANALYZE`` so the
    count can be an index-only scan (autovacuum would get there on a real table)."""
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    records_table(sa.MetaData()).create(engine)
    step = (END - START).total_seconds() / rows
    with engine.connect() as connection:
        connection.exec_driver_sql(
            f"""
            INSERT INTO {TABLE} (id, {TIME_COLUMN}, amount, score, ratio, segment, label)
            SELECT i, timestamp '{START:%Y-%m-%d}' + make_interval(secs => i * {step}),
                   round((random() * 1000)::numeric, 2), random(), random(),
                   'seg' || mod(i, 8), (random() < 0.5)::int
            FROM generate_series(0, {rows - 1}) AS i
            """
        )
        connection.exec_driver_sql(
            f"CREATE INDEX ix_{TABLE}_{TIME_COLUMN} ON {TABLE} ({TIME_COLUMN})"
        )
        connection.exec_driver_sql(f"VACUUM ANALYZE {TABLE}")
    engine.dispose()


def timed(work: Callable[[], T]) -> tuple[float, T]:
    started = time.perf_counter()
    result = work()
    return time.perf_counter() - started, result


def repeated(work: Callable[[], object], repeats: int = REPEATS) -> float:
    """Median seconds of ``repeats`` calls (after the caller's warm-up)."""
    return statistics.median(timed(work)[0] for _ in range(repeats))


@dataclasses.dataclass
class DemoState:
    """A real Dagster instance in which the tiny demo was monitored and trained."""

    settings_home: Path
    pipeline: Pipeline
    simulation: Simulation
    watermark: datetime


def prepare_demo(home: Path) -> DemoState:
    # monthly periods: three months of demo records make one whole training window
    settings = load_settings(
        home=home,
        partition="monthly",
        training_window="3M",
        drift_window=1,
        model_families=["xgboost"],
    )
    prepare_dagster_home(settings)
    DEMO.seed_database(platform_engine(settings.platform_database_url))
    pipeline = demo_pipeline(settings, DEMO)
    simulation = Simulation(
        build_definitions(settings, [pipeline]), pipeline, dg.DagsterInstance.get()
    )
    simulation.refresh_reference()
    for offset in range(DEMO.months):
        simulation.period(DEMO.partition_key(offset))
    watermark = Registry.from_settings(settings).get_watermark(pipeline.name)
    if watermark is None:
        raise RuntimeError("the demo did not train: no watermark to count from")
    return DemoState(home, pipeline, simulation, watermark)


def measure_backend(
    backend: str, url: str, demo: DemoState, full_baseline: bool
) -> dict[str, float | int | str]:
    source = SqlRecordSource(url=url, table=TABLE, time_column=TIME_COLUMN)
    out: dict[str, float | int | str] = {"backend": backend}
    out["first count (reflect + connect)"], _ = timed(lambda: source.count_since(demo.watermark))
    for case, watermark in (("typical", demo.watermark), ("far behind", FAR_BEHIND)):
        out[f"{case}: new records"] = source.count_since(watermark)
        out[f"{case}: count_since s"] = repeated(lambda w=watermark: source.count_since(w))
    out["typical: baseline s"], rows = timed(lambda: len(source.load(demo.watermark, None)))
    if rows != out["typical: new records"]:
        raise AssertionError(f"baseline counted {rows}, count_since {out['typical: new records']}")
    if full_baseline:
        out["far behind: baseline s"], _ = timed(lambda: len(source.load(FAR_BEHIND, None)))

    # the sensor itself, against the instance, with the pipeline's records in the big table
    big = dataclasses.replace(demo.pipeline, source=source)
    simulation = Simulation(build_definitions(big.settings, [big]), big, demo.simulation.instance)
    # a tick on January 1, 2025: the newest complete period is December, a month of new records
    simulation.now = END + timedelta(minutes=15)
    out["first tick s"], request = timed(simulation.tick)
    out["tick s"] = repeated(simulation.tick)
    out["tick outcome"] = _outcome(request)
    return out


def _outcome(result: dg.RunRequest | dg.SkipReason | None) -> str:
    if isinstance(result, dg.RunRequest):
        return f"RunRequest({result.partition_key}, causes={result.tags.get('retrain/causes')})"
    return f"SkipReason({result.skip_message})" if result else "None"


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if "model name" in line)
    except (OSError, StopIteration):
        pass
    return f"{cpu}, nproc={os.cpu_count()}, Python {platform.python_version()}"


def report(results: list[dict[str, float | int | str]], demo_tick: float, rows: int) -> None:
    print(f"{rows:,} rows from {START:%Y-%m} to {END - timedelta(days=1):%Y-%m}; watermark typical")
    print(f"tick on the tiny demo table (same instance, trivial count): {demo_tick * 1000:.1f} ms")
    print("| backend | case | new records | count_since ms | baseline s | baseline / count |")
    print("|---|---|---:|---:|---:|---:|")
    for out in results:
        for case in ("typical", "far behind"):
            count = float(out[f"{case}: count_since s"])
            baseline = out.get(f"{case}: baseline s")
            cells = (
                ("–", "–") if baseline is None else (f"{baseline:.2f}", f"{baseline / count:,.0f}x")
            )
            print(
                f"| {out['backend']} | {case} | {out[f'{case}: new records']:,} | "
                f"{count * 1000:.1f} | {cells[0]} | {cells[1]} |"
            )
    print()
    print(
        "| backend | first count ms | first tick ms | tick ms (median) | margin to 60 s | outcome |"
    )
    print("|---|---:|---:|---:|---:|---|")
    for out in results:
        tick, first = float(out["tick s"]), float(out["first tick s"])
        margin = SENSOR_TIMEOUT / max(tick, first)  # the slower (first) tick must fit too
        print(
            f"| {out['backend']} | {float(out['first count (reflect + connect)']) * 1000:.1f} | "
            f"{first * 1000:.1f} | {tick * 1000:.1f} | {margin:,.0f}x | {out['tick outcome']} |"
        )
    for out in results:
        baseline = float(out["typical: baseline s"])
        print(
            f"{out['backend']}: baseline (load a month + len) / tick = "
            f"{baseline / float(out['tick s']):,.1f}x; baseline uses "
            f"{baseline / SENSOR_TIMEOUT:.1%} of the sensor timeout"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument(
        "--backends", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"]
    )
    parser.add_argument("--postgres-url", default=POSTGRES_URL)
    parser.add_argument("--full-baseline", action="store_true")
    args = parser.parse_args(argv)
    print(machine(), file=sys.stderr)
    for name in [name for name in os.environ if name.startswith("RETRAIN_")]:
        del os.environ[name]  # a developer's settings must not leak into the demo state
    os.environ.pop("DAGSTER_HOME", None)
    with tempfile.TemporaryDirectory(prefix="sensor_benchmark_") as folder:
        root = Path(folder)
        os.environ["RETRAIN_HOME"] = str(root / "home")
        seconds, demo = timed(lambda: prepare_demo(root / "home"))
        print(f"demo state ready in {seconds:.1f} s, watermark {demo.watermark}", file=sys.stderr)
        demo.simulation.tick()
        demo_tick = repeated(demo.simulation.tick)
        results = []
        for backend in args.backends:
            if backend == "sqlite":
                seconds, url = timed(lambda: build_sqlite(root / "records.db", args.rows))
                print(f"sqlite table built in {seconds:.1f} s", file=sys.stderr)
                results.append(measure_backend("SQLite", url, demo, args.full_baseline))
            else:
                with postgres_database(args.postgres_url) as url:
                    seconds, _ = timed(lambda u=url: build_postgres(u, args.rows))
                    print(f"postgresql table built in {seconds:.1f} s", file=sys.stderr)
                    results.append(measure_backend("PostgreSQL", url, demo, args.full_baseline))
        demo.simulation.instance.dispose()
    report(results, demo_tick, args.rows)


if __name__ == "__main__":
    main()
