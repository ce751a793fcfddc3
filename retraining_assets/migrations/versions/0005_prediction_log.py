"""The prediction log: every served prediction and the outcome observed for it.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "predictions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("pipeline", sa.String(128), nullable=False),
        sa.Column("entity_id", sa.String(255), nullable=False),
        sa.Column("variant", sa.String(32), nullable=False),
        sa.Column("model_version", sa.Integer, nullable=False),
        sa.Column("rollout_id", sa.Integer, nullable=True),
        sa.Column("rollout_step", sa.Integer, nullable=True),
        sa.Column("label", sa.String(255), nullable=True),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_index(
        "ix_predictions_rollout", "predictions", ["pipeline", "rollout_id", "rollout_step"]
    )
    op.create_index("ix_predictions_entity", "predictions", ["pipeline", "entity_id", "created_at"])
    op.create_table(
        "prediction_outcomes",
        sa.Column("prediction_id", sa.String(32), primary_key=True),
        sa.Column("pipeline", sa.String(128), nullable=False),
        sa.Column("label", sa.String(255), nullable=True),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("received_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("prediction_outcomes")
    op.drop_index("ix_predictions_entity", "predictions")
    op.drop_index("ix_predictions_rollout", "predictions")
    op.drop_table("predictions")
