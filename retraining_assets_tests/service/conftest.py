"""Fixtures of the service tests: small real models, a registry serving them, a live server.

The models (a random forest and XGBoost) are trained once per session on a few hundred demo
rows; each test registers them in its own state folder. Servers run uvicorn on a loopback
socket bound to port 0, in a thread, and are ready when their startup has finished (an event).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from fastapi import FastAPI

from retraining_assets.core.candidates import TrainingWindow, register_candidate
from retraining_assets.core.demo import SPEC, DemoStream
from retraining_assets.core.notify import LogChannel, Notifier
from retraining_assets.core.pipeline import Pipeline, demo_pipeline
from retraining_assets.core.registry import CHAMPION, Actor, Registry
from retraining_assets.core.rollout import RolloutPlan, transitions
from retraining_assets.core.rollout.transitions import Rollout
from retraining_assets.core.training import (
    TrainedModel,
    data_fingerprint,
    split_by_time,
    train_model,
)
from retraining_assets.service.server import LiveServer
from retraining_assets.settings import Settings, load_settings

STREAM = DemoStream(months=3, rows_per_month=300, end_month=pd.Timestamp("2024-03-01"))
ACTOR = Actor(by="ci", actual_user="ci")


@dataclass(frozen=True)
class Trained:
    """Two real models of the demo spec and the rows requests are made from."""

    window: TrainingWindow
    forest: TrainedModel
    boosted: TrainedModel
    frame: pd.DataFrame


@pytest.fixture(scope="session")
def trained() -> Trained:
    frame = pd.concat([STREAM.generate(offset) for offset in range(3)], ignore_index=True)
    split = split_by_time(frame, SPEC)
    window = TrainingWindow(
        split, datetime(2024, 1, 1), datetime(2024, 4, 1), data_fingerprint(frame, SPEC)
    )
    forest = train_model("random_forest", split, SPEC)
    boosted = train_model("xgboost", split, SPEC)
    return Trained(window, forest, boosted, frame)


@dataclass
class Deployed:
    """A state folder whose registry holds v1 (forest, the champion) and v2 (XGBoost)."""

    settings: Settings
    pipeline: Pipeline
    registry: Registry
    trained: Trained

    @property
    def name(self) -> str:
        return self.pipeline.name

    def register(self, model: TrainedModel) -> int:
        return register_candidate(
            self.registry, self.name, model, self.trained.window, SPEC, run_id=None, actor=ACTOR
        ).version

    def move_champion(self, version: int) -> None:
        current = self.registry.get_alias(self.name, CHAMPION)
        self.registry.move_alias(
            self.name,
            CHAMPION,
            version,
            expected_current=None if current is None else current.version,
            by="ci",
            actual_user="ci",
            reason="test",
        )

    def start_rollout(self, version: int, share: float = 0.5) -> Rollout:
        plan = RolloutPlan.from_dict({"strategy": "ab", "share": share})
        notifier = Notifier(self.registry.engine, [LogChannel()])
        return transitions.start_rollout(
            self.registry, notifier, self.name, version, plan, actor=ACTOR, reason="test",
            salt=f"test-v{version}",  # the same routing in every run
        )  # fmt: skip

    def artifact(self, version: int) -> Path:
        record = self.registry.get_version(self.name, version)
        return self.registry.artifact_root / record.artifact_uri


def deploy(settings: Settings, trained: Trained) -> Deployed:
    registry = Registry.from_settings(settings)
    deployed = Deployed(settings, demo_pipeline(settings, STREAM), registry, trained)
    assert deployed.register(trained.forest) == 1
    assert deployed.register(trained.boosted) == 2
    deployed.move_champion(1)
    return deployed


@pytest.fixture
def deployed(tmp_path: Path, trained: Trained) -> Deployed:
    """Refresh 0: every request re-reads the aliases and the rollout (no timing involved)."""
    settings = load_settings(home=tmp_path / ".retrain", serve_refresh_seconds=0)
    return deploy(settings, trained)


@contextmanager
def serving(app: FastAPI) -> Iterator[httpx.Client]:
    """An HTTP client of ``app`` served for real; the server stops (gracefully) on exit."""
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        yield client


def features_of(frame: pd.DataFrame, i: int) -> dict[str, Any]:
    """Row ``i``'s features as JSON values (NaN becomes null)."""
    row = frame.iloc[i]
    out: dict[str, Any] = {}
    for name in SPEC.numeric_features:
        value = float(row[name])
        out[name] = None if math.isnan(value) else value
    for name in SPEC.categorical_features:
        out[name] = None if pd.isna(row[name]) else str(row[name])
    return out


def columns_of(frame: pd.DataFrame, rows: range | list[int]) -> dict[str, list[Any]]:
    """Rows' features as a columnar body's ``features``."""
    singles = [features_of(frame, i) for i in rows]
    return {name: [row[name] for row in singles] for name in SPEC.features}
