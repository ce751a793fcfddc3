"""Judgements: one row per candidate a promotion decision judged, indexed by run id and by
(pipeline, version), backfilled from the ``decision`` rows of the audit log.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

audit_log = sa.table(
    "audit_log",
    sa.column("id", sa.Integer),
    sa.column("pipeline", sa.String),
    sa.column("at", sa.DateTime),
    sa.column("action", sa.String),
    sa.column("details", sa.JSON),
)


def upgrade() -> None:
    judgements = op.create_table(
        "judgements",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("audit_id", sa.Integer, sa.ForeignKey("audit_log.id"), nullable=False),
        sa.Column("pipeline", sa.String(128), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("decision", sa.JSON, nullable=False),
        sa.Column("scores", sa.JSON, nullable=True),
        sa.Column("judged_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_judgements_run_id", "judgements", ["run_id", "pipeline"])
    op.create_index("ix_judgements_pipeline_version", "judgements", ["pipeline", "version"])
    connection = op.get_bind()
    decisions = (
        sa.select(audit_log).where(audit_log.c.action == "decision").order_by(audit_log.c.id)
    )
    rows = []
    for entry in connection.execute(decisions).all():
        details = entry.details or {}
        scores = (details.get("comparison") or {}).get("scores") or {}
        for model, version in (details.get("versions") or {}).items():
            rows.append(
                {
                    "audit_id": entry.id,
                    "pipeline": entry.pipeline,
                    "run_id": details.get("run_id"),
                    "version": version,
                    "model": model,
                    "decision": details.get("decision") or {},
                    "scores": scores.get(model),
                    "judged_at": entry.at,
                }
            )
    if rows:
        connection.execute(sa.insert(judgements), rows)


def downgrade() -> None:
    op.drop_index("ix_judgements_pipeline_version", "judgements")
    op.drop_index("ix_judgements_run_id", "judgements")
    op.drop_table("judgements")
