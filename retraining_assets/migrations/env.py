"""Alembic environment: runs against the engine handed over by ``core.database.upgrade``."""

from alembic import context

from retraining_assets.core.schema import metadata

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    context.run_migrations()
