"""Shared fixtures: isolated settings and state folders, a small demo stream, real PostgreSQL."""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

import pandas as pd
import pytest
import sqlalchemy as sa

from retraining_assets.core.candidates import TrainingWindow, register_candidate
from retraining_assets.core.database import make_engine, mask_url, platform_engine
from retraining_assets.core.demo import SPEC as DEMO_SPEC
from retraining_assets.core.demo import DemoStream
from retraining_assets.core.importance import record_importance
from retraining_assets.core.pipeline import Pipeline, demo_pipeline
from retraining_assets.core.registry import CHAMPION, Actor, ModelVersion, Registry
from retraining_assets.core.training import split_by_time, train_model
from retraining_assets.settings import Settings, load_settings
from retraining_assets_tests.peers import Certificate, SmtpPeer, WebhookPeer, make_certificate

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

POSTGRES_URL = os.environ.get(
    "RETRAIN_TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)
# The real drifting datasets live beside the repository (../shared/datasets) in development and
# CI; RETRAIN_TEST_DATASETS points elsewhere.
DATASETS = Path(
    os.environ.get(
        "RETRAIN_TEST_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets"
    )
)
# A fixed end month keeps partition keys stable whatever day the tests run.
SMALL_STREAM = DemoStream(months=6, rows_per_month=400, end_month=pd.Timestamp("2024-06-01"))
# A pipeline kept on monthly periods (RETRAIN_PARTITION=monthly, the layout before daily
# monitoring): three-month training windows, each month judged on its own. The demo stream's
# Dagster tests use it, one month a period.
MONTHLY = {"partition": "monthly", "training_window": "3M", "drift_window": 1}


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No RETRAIN_* variable of the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith("RETRAIN_") and not name.startswith("RETRAIN_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv("RETRAIN_HOME", str(tmp_path / ".retrain"))


@pytest.fixture
def certificate(tmp_path: Path) -> Certificate:
    """A self-signed certificate for 127.0.0.1 and localhost (the TLS peers' tests)."""
    return make_certificate(tmp_path)


@pytest.fixture
def smtp_server() -> Iterator[SmtpPeer]:
    """A plain SMTP server (no TLS, no login) on a free loopback port."""
    peer = SmtpPeer().start()
    yield peer
    peer.stop()


@pytest.fixture
def webhook_server() -> Iterator[WebhookPeer]:
    """An HTTP server on a free loopback port that records every webhook post."""
    with WebhookPeer() as peer:
        yield peer


def unavailable(message: str) -> NoReturn:
    """A service or file a test needs is missing: fail loudly in CI, skip elsewhere (the
    message says how to run it)."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def elec2() -> Path:
    """The Elec2 dataset. Fails loudly in CI; skips elsewhere, saying how to run."""
    path = DATASETS / "elec2" / "elec2.csv.gz"
    if not path.is_file():
        message = f"{path} not found: set RETRAIN_TEST_DATASETS to the folder holding elec2/"
        unavailable(message)
    return path


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(home=tmp_path / ".retrain", **MONTHLY)


@pytest.fixture
def platform_db(settings: Settings) -> sa.Engine:
    return platform_engine(settings.platform_database_url)


@pytest.fixture
def small_stream() -> DemoStream:
    return SMALL_STREAM


@pytest.fixture
def seeded_demo(settings: Settings, platform_db: sa.Engine) -> Pipeline:
    """The demo pipeline over the small stream, its first three months in the database."""
    SMALL_STREAM.seed_database(platform_db, through=2)
    return demo_pipeline(settings, SMALL_STREAM)


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The PostgreSQL server's URL. Fails loudly in CI; skips elsewhere, saying how to run."""
    engine = make_engine(POSTGRES_URL)
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as error:
        message = (
            f"PostgreSQL is not reachable at {mask_url(POSTGRES_URL)} ({error.orig}). Start it, "
            "or set RETRAIN_TEST_POSTGRES_URL=postgresql+psycopg2://USER:PASSWORD@HOST:PORT/DB"
        )
        unavailable(message)
    return POSTGRES_URL


@pytest.fixture
def postgres_database(postgres_server: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    name = f"retrain_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(postgres_server).set(database=name).render_as_string(False)
    yield url
    make_engine(url).dispose()
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def training_window(
    stream: DemoStream, months: int = 1, *, flipped: bool = False
) -> TrainingWindow:
    """The first ``months`` of a demo stream as a training window; ``flipped`` swaps the
    labels (what a deliberately bad model learns)."""
    frame = pd.concat([stream.generate(month) for month in range(months)], ignore_index=True)
    if flipped:
        frame[DEMO_SPEC.target] = 1 - frame[DEMO_SPEC.target]
    start, end = stream.month_start(0).to_pydatetime(), stream.month_start(months).to_pydatetime()
    fingerprint = f"test-{months}-{flipped}"
    return TrainingWindow(split_by_time(frame, DEMO_SPEC), start, end, fingerprint=fingerprint)


def trained_version(
    registry: Registry,
    stream: DemoStream = SMALL_STREAM,
    *,
    seed: int = 0,
    months: int = 1,
    flipped: bool = False,
    judged_best: bool = True,
) -> int:
    """A real random forest trained on a demo stream's first months, registered as a new
    version of the demo pipeline (the version number); ``judged_best``: with the permutation
    importance the evaluation adds to a run's best candidate, the only kind a champion has been."""
    window = training_window(stream, months, flipped=flipped)
    window = dataclasses.replace(window, fingerprint=f"{window.fingerprint}-{seed}")
    model = train_model("random_forest", window.split, DEMO_SPEC, seed=seed)
    actor = Actor(by="test", actual_user="test")
    version = register_candidate(
        registry, "demo", model, window, DEMO_SPEC, run_id=None, actor=actor
    ).version
    if judged_best:
        record_importance(registry, "demo", version, model, window.split.holdout, DEMO_SPEC, None)
    return version


# What a registered version holds when the test is about the registry's bookkeeping, not the
# model: placeholder bytes and metadata (``trained_version`` registers a real trained model).
PLACEHOLDER_VERSION: dict[str, Any] = {
    "family": "random_forest",
    "model_bytes": b"model-bytes",
    "profile_bytes": b"profile-bytes",
    "params": {"n_estimators": 100},
    "metrics": {"roc_auc": 0.81},
    "train_start": datetime(2024, 1, 1),
    "train_end": datetime(2024, 4, 1),
    "data_fingerprint": "fp-1",
    "code_version": "0.1.0+gabc1234",
    "dataset_spec": {"target": "defaulted", "features": ["age", "income"]},
    "run_id": "run-1",
    "by": "run-1",
    "actual_user": "dagster",
}


def registered_version(
    registry: Registry, pipeline: str = "demo", **overrides: Any
) -> ModelVersion:
    """A new version of ``pipeline`` with placeholder contents; ``overrides`` replace any field
    of ``Registry.register_version``."""
    return registry.register_version(pipeline, **{**PLACEHOLDER_VERSION, **overrides})


def with_champion(registry: Registry, *versions: int, pipeline: str = "demo") -> None:
    """Make each of ``versions`` champion in turn (the alias's history in that order)."""
    current = None
    for version in versions:
        registry.move_alias(
            pipeline, CHAMPION, version, expected_current=current, by="test",
            actual_user="test", reason="test setup",
        )  # fmt: skip
        current = version
