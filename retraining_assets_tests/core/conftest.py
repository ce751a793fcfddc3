"""Fixtures of the core tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from retraining_assets.core.database import platform_engine
from retraining_assets.core.registry import Registry


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Registry:
    """An empty registry on the platform database: SQLite, then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        engine = request.getfixturevalue("platform_db")
    else:
        engine = platform_engine(request.getfixturevalue("postgres_database"))
    return Registry(engine, tmp_path / "artifacts")
