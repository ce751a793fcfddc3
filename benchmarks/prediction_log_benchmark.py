"""Prediction log writes as the table grows: the log's writer with UUIDv7 ids (what the service
hands out) against the baseline, the writer before (SQLAlchemy's ON CONFLICT insert with an
executemany, random UUIDv4 ids), and each change alone; same rows, same run.

    OMP_NUM_THREADS=1 python benchmarks/prediction_log_benchmark.py [--rows 600000]
        [--batch 10000] [--postgres postgresql+psycopg2://postgres@127.0.0.1:5432/postgres]

Each variant fills a fresh platform database (SQLite file, and PostgreSQL when ``--postgres``
is given: a scratch database created and dropped), one transaction per batch, as the log's
writer thread does. On SQLite the two writers are the same statement. Reported: ms per batch
at the start (first 5 batches) and at the end (last 5, the table at its full size), and rows/s
overall.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa

from retraining_assets.core import schema
from retraining_assets.core.database import platform_engine
from retraining_assets.core.prediction_log import Prediction, _row, insert_ignoring_duplicates
from retraining_assets.service.predictions import new_ids

IdMaker = Callable[[int], list[str]]


def uuid4_ids(n: int) -> list[str]:
    return [uuid.uuid4().hex for _ in range(n)]


Writer = Callable[[sa.Connection, sa.Table, list[dict]], None]


def sqlalchemy_executemany(connection: sa.Connection, table: sa.Table, rows: list[dict]) -> None:
    """The baseline writer: SQLAlchemy's ON CONFLICT insert, executed with all the rows."""
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    connection.execute(insert(table).on_conflict_do_nothing(), rows)


VARIANTS: list[tuple[str, IdMaker, Writer]] = [
    ("baseline: uuid4 ids, SQLAlchemy executemany", uuid4_ids, sqlalchemy_executemany),
    ("uuid7 ids, SQLAlchemy executemany", new_ids, sqlalchemy_executemany),
    ("uuid7 ids, the log's writer", new_ids, insert_ignoring_duplicates),
]


def fill(engine: sa.Engine, ids: IdMaker, writer: Writer, rows: int, batch: int) -> list[float]:
    """Seconds per batch while writing ``rows`` predictions."""
    now = datetime(2026, 11, 27)
    seconds = []
    for start in range(0, rows, batch):
        records = [
            _row(Prediction(i, "demo", f"e{start + k}", "champion", 1, None, "1", 0.8, now, None))
            for k, i in enumerate(ids(batch))
        ]
        began = time.perf_counter()
        with engine.begin() as connection:
            for part in range(0, batch, 1000):  # the log's default batch_size per call
                writer(connection, schema.predictions, records[part : part + 1000])
        seconds.append(time.perf_counter() - began)
    return seconds


@contextmanager
def sqlite_database() -> Iterator[sa.Engine]:
    with tempfile.TemporaryDirectory() as folder:
        engine = platform_engine(f"sqlite:///{Path(folder) / 'platform.db'}")
        yield engine
        engine.dispose()


@contextmanager
def postgres_database(url: str) -> Iterator[sa.Engine]:
    name = f"bench_log_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine = platform_engine(sa.make_url(url).set(database=name).render_as_string(False))
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE "{name}"'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=600_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--postgres", default=None, help="A PostgreSQL URL to measure too.")
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}")
    print(f"{args.rows:,} predictions in batches of {args.batch:,}, one transaction each\n")
    databases: list[tuple[str, Callable[[], AbstractContextManager[sa.Engine]]]] = [
        ("sqlite", sqlite_database)
    ]
    if args.postgres:
        databases.append(("postgresql", lambda: postgres_database(args.postgres)))
    header = "| database | writer | ms/batch, first 5 | ms/batch, last 5 | rows/s | vs baseline |"
    print(header)
    print("|---|---|---:|---:|---:|---:|")
    for database, open_database in databases:
        baseline = None
        for name, ids, writer in VARIANTS:
            if database == "sqlite" and writer is insert_ignoring_duplicates:
                continue  # the same statement as the baseline's on SQLite
            with open_database() as engine:
                seconds = fill(engine, ids, writer, args.rows, args.batch)
            rate = args.rows / sum(seconds)
            baseline = baseline or rate
            first = 1000 * sum(seconds[:5]) / 5
            last = 1000 * sum(seconds[-5:]) / 5
            print(
                f"| {database} | {name} | {first:.0f} | {last:.0f} | {rate:,.0f} "
                f"| {rate / baseline:.2f}x |"
            )


if __name__ == "__main__":
    main()
