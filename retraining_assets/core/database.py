"""The platform database: one SQLAlchemy URL, SQLite by default, PostgreSQL in production.

The schema is owned by the Alembic migrations in ``retraining_assets/migrations``; code never
calls ``create_all``. SQLite is opened in WAL mode with a busy timeout so the CLI, sensors and
runs can write at the same time.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000


class DatabaseError(RuntimeError):
    """The platform or record database cannot be used; the message masks any password."""


def mask_url(url: str) -> str:
    """The URL as it may appear in a message or log: password replaced by ``***``."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparseable URL still must not leak what looks like a secret
        return url.split("@")[-1] if "@" in url else url


def normalise_url(url: str) -> str:
    """Pin PostgreSQL to psycopg2: SQLAlchemy 2.1 would pick psycopg3 for ``postgresql://``."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg2://" + url.split("://", 1)[1]
    return url


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str) -> sa.Engine:
    """An engine for ``url`` (cached per URL); SQLite files get their folder created.

    A URL SQLAlchemy cannot parse, or whose driver is not installed, is a ``DatabaseError``
    naming the (masked) URL."""
    try:
        return _make_engine(url)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as error:
        reason = str(error).strip().splitlines()[0]
        raise DatabaseError(f"database URL '{mask_url(url)}' is not usable: {reason}") from None


@lru_cache(maxsize=16)
def _make_engine(url: str) -> sa.Engine:
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def check_connection(engine: sa.Engine) -> None:
    """Raise a ``DatabaseError`` naming the (masked) URL when the database is unreachable."""
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        raise DatabaseError(
            f"cannot reach database {engine.url.render_as_string(hide_password=True)}: {reason}"
        ) from None


def _alembic_config(engine: sa.Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: sa.Engine) -> None:
    """Bring the schema to the newest migration (a no-op when it is already there)."""
    check_connection(engine)
    command.upgrade(_alembic_config(engine), "head")


def current_revision(engine: sa.Engine) -> str | None:
    with engine.connect() as connection:
        if not sa.inspect(connection).has_table("alembic_version"):
            return None
        return connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def platform_engine(url: str) -> sa.Engine:
    """The platform database, migrated to the newest schema (once per URL and process)."""
    try:
        engine = make_engine(url)
        _upgraded(url)
    except DatabaseError as error:
        raise DatabaseError(f"platform database (RETRAIN_DATABASE_URL): {error}") from None
    return engine


@lru_cache(maxsize=16)
def _upgraded(url: str) -> bool:
    upgrade(make_engine(url))
    return True
