"""The model registry: versions, aliases with their full history, audit log, approvals and the
training watermark.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

VERSION_FK = (["pipeline", "version"], ["model_versions.pipeline", "model_versions.version"])


def upgrade() -> None:
    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("pipeline", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("family", sa.String(64), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("metrics", sa.JSON, nullable=False),
        sa.Column("train_start", sa.DateTime, nullable=True),
        sa.Column("train_end", sa.DateTime, nullable=True),
        sa.Column("data_fingerprint", sa.String(128), nullable=False),
        sa.Column("code_version", sa.String(128), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=True),
        sa.Column("artifact_uri", sa.Text, nullable=False),
        sa.Column("artifact_sha256", sa.String(64), nullable=False),
        sa.Column("artifact_size", sa.BigInteger, nullable=False),
        sa.Column("profile_hash", sa.String(128), nullable=True),
        sa.Column("profile_uri", sa.Text, nullable=True),
        sa.Column("profile_sha256", sa.String(64), nullable=True),
        sa.Column("dataset_spec", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("pipeline", "version", name="uq_model_versions_pipeline_version"),
    )
    op.create_table(
        "aliases",
        sa.Column("pipeline", sa.String(128), primary_key=True),
        sa.Column("alias", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("moved_at", sa.DateTime, nullable=False),
        sa.Column("moved_by", sa.String(255), nullable=False),
        sa.ForeignKeyConstraint(*VERSION_FK, name="fk_aliases_model_version"),
    )
    op.create_table(
        "alias_history",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("pipeline", sa.String(128), nullable=False),
        sa.Column("alias", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=True),
        sa.Column("previous_version", sa.Integer, nullable=True),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("claimed_by", sa.String(255), nullable=False),
        sa.Column("actual_user", sa.String(255), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
    )
    op.create_index("ix_alias_history_pipeline_alias", "alias_history", ["pipeline", "alias"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("pipeline", sa.String(128), nullable=False),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=True),
        sa.Column("claimed_by", sa.String(255), nullable=False),
        sa.Column("actual_user", sa.String(255), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("details", sa.JSON, nullable=True),
    )
    op.create_index("ix_audit_log_pipeline", "audit_log", ["pipeline"])
    op.create_table(
        "approvals",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("pipeline", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("decision", sa.JSON, nullable=False),
        sa.Column("requested_at", sa.DateTime, nullable=False),
        sa.Column("requested_by", sa.String(255), nullable=False),
        sa.Column("resolved_at", sa.DateTime, nullable=True),
        sa.Column("resolved_by", sa.String(255), nullable=True),
        sa.Column("resolved_actual_user", sa.String(255), nullable=True),
        sa.Column("resolution_reason", sa.Text, nullable=True),
        sa.UniqueConstraint("pipeline", "version", name="uq_approvals_pipeline_version"),
        sa.ForeignKeyConstraint(*VERSION_FK, name="fk_approvals_model_version"),
    )
    op.create_table(
        "training_watermarks",
        sa.Column("pipeline", sa.String(128), primary_key=True),
        sa.Column("watermark", sa.DateTime, nullable=False),
        sa.Column("run_id", sa.String(64), nullable=True),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("training_watermarks")
    op.drop_table("approvals")
    op.drop_index("ix_audit_log_pipeline", "audit_log")
    op.drop_table("audit_log")
    op.drop_index("ix_alias_history_pipeline_alias", "alias_history")
    op.drop_table("alias_history")
    op.drop_table("aliases")
    op.drop_table("model_versions")
