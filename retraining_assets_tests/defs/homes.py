"""A demo state built once and copied for each test: a ``.retrain`` home with its platform
database and Dagster instance, so tests that change it never see each other's changes."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from retraining_assets.cli.common import prepare_dagster_home
from retraining_assets.core.database import platform_engine
from retraining_assets.core.demo import DemoStream
from retraining_assets.core.pipeline import demo_pipeline
from retraining_assets.definitions import build_definitions
from retraining_assets.demo.simulation import PeriodOutcome, Simulation
from retraining_assets.settings import Settings, load_settings


def build_template(
    home: Path, stream: DemoStream, periods: int, **settings: Any
) -> list[PeriodOutcome]:
    """The whole stream in the database and its first ``periods`` periods monitored (the
    first model promoted on the way) under ``home``, on an instance there too; the outcomes."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("DAGSTER_HOME", raising=False)  # the instance under this home, not another
        loaded = load_settings(home=home, **settings)
        patch.setenv("DAGSTER_HOME", str(loaded.dagster_home))
        prepare_dagster_home(loaded)
        engine = platform_engine(loaded.platform_database_url)
        stream.seed_database(engine)
        instance = dg.DagsterInstance.get()
        pipeline = demo_pipeline(loaded, stream)
        simulation = Simulation(build_definitions(loaded, [pipeline]), pipeline, instance)
        simulation.refresh_reference()
        outcomes = [simulation.period(stream.partition_key(offset)) for offset in range(periods)]
        instance.dispose()
        with engine.connect() as connection:  # everything in the database file, for the copy
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    return outcomes


@contextmanager
def copied_state(
    template: Path,
    home: Path,
    stream: DemoStream,
    monkeypatch: pytest.MonkeyPatch,
    **settings: Any,
) -> Iterator[tuple[Settings, Simulation]]:
    """A private copy of ``template`` at ``home``: its settings and a simulation on its own
    Dagster instance (``DAGSTER_HOME`` pointed there through ``monkeypatch``)."""
    shutil.copytree(template, home)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    loaded = load_settings(home=home, **settings)
    monkeypatch.setenv("DAGSTER_HOME", str(loaded.dagster_home))
    instance = dg.DagsterInstance.get()
    pipeline = demo_pipeline(loaded, stream)
    try:
        yield loaded, Simulation(build_definitions(loaded, [pipeline]), pipeline, instance)
    finally:
        instance.dispose()
