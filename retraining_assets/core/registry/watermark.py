"""The training watermark: the newest record time the last registered candidates used."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from retraining_assets.core import schema as tables
from retraining_assets.core.registry.base import RegistryBase
from retraining_assets.core.registry.records import naive_utc
from retraining_assets.core.timestamps import utc_now


class Watermarks(RegistryBase):
    """Set and read the training watermark of each pipeline."""

    def set_watermark(
        self,
        pipeline: str,
        value: datetime,
        *,
        run_id: str | None = None,
        connection: sa.Connection | None = None,
    ) -> None:
        """The newest record time used by the last registered candidates (an upsert)."""
        row = {
            "pipeline": pipeline,
            "watermark": naive_utc(value),
            "run_id": run_id,
            "updated_at": utc_now(),
        }
        with self._writing(connection) as conn:
            insert = _dialect_insert(conn)(tables.training_watermarks).values(row)
            conn.execute(
                insert.on_conflict_do_update(
                    index_elements=[tables.training_watermarks.c.pipeline],
                    set_={
                        key: insert.excluded[key] for key in ("watermark", "run_id", "updated_at")
                    },
                )
            )

    def get_watermark(self, pipeline: str) -> datetime | None:
        """The watermark as naive UTC, None before the first training."""
        with self.engine.connect() as connection:
            return connection.scalar(
                sa.select(tables.training_watermarks.c.watermark).where(
                    tables.training_watermarks.c.pipeline == pipeline
                )
            )


def _dialect_insert(connection: sa.Connection) -> Any:
    """The dialect's INSERT with ``on_conflict_do_update`` (both backends have one)."""
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert
