"""The demo record table.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "demo_records",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_time", sa.DateTime, nullable=False),
        sa.Column("customer_id", sa.String(32), nullable=False),
        sa.Column("age", sa.Integer, nullable=False),
        sa.Column("income", sa.Float, nullable=False),
        sa.Column("debt_ratio", sa.Float, nullable=False),
        sa.Column("credit_score", sa.Integer, nullable=False),
        sa.Column("loan_amount", sa.Float, nullable=False),
        sa.Column("loan_term", sa.Integer, nullable=False),
        sa.Column("open_accounts", sa.Integer, nullable=False),
        sa.Column("late_payments", sa.Integer, nullable=False),
        sa.Column("utilization", sa.Float, nullable=False),
        sa.Column("employment_years", sa.Float, nullable=True),
        sa.Column("home_ownership", sa.String(16), nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("region", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("defaulted", sa.Integer, nullable=False),
    )
    op.create_index("ix_demo_records_event_time", "demo_records", ["event_time"])


def downgrade() -> None:
    op.drop_index("ix_demo_records_event_time", "demo_records")
    op.drop_table("demo_records")
