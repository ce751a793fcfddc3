"""The Alembic migrations build exactly the schema ``core/schema.py`` declares, on SQLite and
on a real PostgreSQL, and upgrading twice changes nothing."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from retraining_assets.core.database import current_revision, platform_engine, upgrade
from retraining_assets.core.schema import metadata


def _schema_differences(engine: sa.Engine) -> list:
    with engine.connect() as connection:
        return compare_metadata(MigrationContext.configure(connection), metadata)


def test_migrations_build_exactly_the_declared_schema(platform_db: sa.Engine) -> None:
    assert current_revision(platform_db) is not None
    assert _schema_differences(platform_db) == []


@pytest.mark.postgres
def test_migrations_on_postgres(postgres_database: str) -> None:
    engine = platform_engine(postgres_database)
    assert engine.dialect.driver == "psycopg2"
    assert _schema_differences(engine) == []
    upgrade(engine)  # a second upgrade is a no-op
    assert _schema_differences(engine) == []
