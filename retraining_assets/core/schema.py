"""Tables of the platform database, for queries. The Alembic migrations create them; a test
checks that the migrated schema and these definitions agree."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# The embedded demo stream: a record table like a user's (see core/demo.py).
demo_records = sa.Table(
    "demo_records",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event_time", sa.DateTime, nullable=False, index=True),
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

# --- notification outbox (core/notify.py; migration 0002) ---------------------------------
# Every notification is written here before delivery. ``channel_status`` maps each channel
# name to "pending" | "sent" | "failed" so a retry re-sends only to the channels that failed;
# ``claim_token``/``lease_until`` let exactly one worker deliver a row at a time.
notification_outbox = sa.Table(
    "notification_outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("idempotency_key", sa.String(255), nullable=False),
    sa.Column("event_type", sa.String(64), nullable=False),
    sa.Column("subject", sa.String(500), nullable=False),
    sa.Column("body_text", sa.Text, nullable=False),
    sa.Column("body_html", sa.Text, nullable=False),
    sa.Column("recipients", sa.JSON, nullable=False),
    sa.Column("channels", sa.JSON, nullable=False),
    sa.Column("channel_status", sa.JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("next_attempt_at", sa.DateTime, nullable=True),
    sa.Column("lease_until", sa.DateTime, nullable=True),
    sa.Column("claim_token", sa.String(32), nullable=True),
    sa.Column("sent_at", sa.DateTime, nullable=True),
    sa.UniqueConstraint("idempotency_key", name="uq_notification_outbox_idempotency_key"),
    sa.Index("ix_notification_outbox_due", "status", "next_attempt_at"),
)
# --- end notification outbox ---------------------------------------------------------------

# --- model registry (core/registry.py; migration 0003) -------------------------------------
# Versions are numbered per pipeline; ``aliases`` holds where champion/challenger point now and
# ``alias_history`` every move ever made (MLflow keeps only the former). ``audit_log`` and
# ``alias_history`` are append-only: the registry never updates or deletes their rows.
model_versions = sa.Table(
    "model_versions",
    metadata,
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
    # HMAC-SHA256 with a key outside the database (core/registry/signing.py; migration 0006,
    # which also made the URIs relative to the artifact root)
    sa.Column("artifact_signature", sa.String(64), nullable=True),
    sa.Column("profile_signature", sa.String(64), nullable=True),
    sa.UniqueConstraint("pipeline", "version", name="uq_model_versions_pipeline_version"),
)

aliases = sa.Table(
    "aliases",
    metadata,
    sa.Column("pipeline", sa.String(128), primary_key=True),
    sa.Column("alias", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("moved_at", sa.DateTime, nullable=False),
    sa.Column("moved_by", sa.String(255), nullable=False),
    sa.ForeignKeyConstraint(
        ["pipeline", "version"],
        ["model_versions.pipeline", "model_versions.version"],
        name="fk_aliases_model_version",
    ),
)

alias_history = sa.Table(
    "alias_history",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("pipeline", sa.String(128), nullable=False),
    sa.Column("alias", sa.String(64), nullable=False),
    sa.Column("version", sa.Integer, nullable=True),  # None: the alias was cleared
    sa.Column("previous_version", sa.Integer, nullable=True),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Column("claimed_by", sa.String(255), nullable=False),
    sa.Column("actual_user", sa.String(255), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Index("ix_alias_history_pipeline_alias", "pipeline", "alias"),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("pipeline", sa.String(128), nullable=False),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("version", sa.Integer, nullable=True),
    sa.Column("claimed_by", sa.String(255), nullable=False),
    sa.Column("actual_user", sa.String(255), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("details", sa.JSON, nullable=True),
    sa.Index("ix_audit_log_pipeline", "pipeline"),
)

approvals = sa.Table(
    "approvals",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("pipeline", sa.String(128), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    # pending | approved | rejected | superseded (by a newer candidate's request)
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("decision", sa.JSON, nullable=False),
    sa.Column("requested_at", sa.DateTime, nullable=False),
    sa.Column("requested_by", sa.String(255), nullable=False),
    sa.Column("resolved_at", sa.DateTime, nullable=True),
    sa.Column("resolved_by", sa.String(255), nullable=True),
    sa.Column("resolved_actual_user", sa.String(255), nullable=True),
    sa.Column("resolution_reason", sa.Text, nullable=True),
    sa.UniqueConstraint("pipeline", "version", name="uq_approvals_pipeline_version"),
    sa.ForeignKeyConstraint(
        ["pipeline", "version"],
        ["model_versions.pipeline", "model_versions.version"],
        name="fk_approvals_model_version",
    ),
)

training_watermarks = sa.Table(
    "training_watermarks",
    metadata,
    sa.Column("pipeline", sa.String(128), primary_key=True),
    sa.Column("watermark", sa.DateTime, nullable=False),
    sa.Column("run_id", sa.String(64), nullable=True),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)
# One row per candidate a promotion decision judged, written in the transaction of its
# ``decision`` audit row (migration 0007 backfilled them from the audit log): the champion
# asset finds its run's decision, and the live metric its champion's holdout scores, by index.
judgements = sa.Table(
    "judgements",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("audit_id", sa.Integer, sa.ForeignKey("audit_log.id"), nullable=False),
    sa.Column("pipeline", sa.String(128), nullable=False),
    sa.Column("run_id", sa.String(64), nullable=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("model", sa.String(64), nullable=False),  # its name in the comparison
    sa.Column("decision", sa.JSON, nullable=False),
    sa.Column("scores", sa.JSON, nullable=True),  # its holdout metrics
    sa.Column("judged_at", sa.DateTime, nullable=False),
    sa.Index("ix_judgements_run_id", "run_id", "pipeline"),
    sa.Index("ix_judgements_pipeline_version", "pipeline", "version"),
)
# --- end model registry --------------------------------------------------------------------

# --- rollouts (core/rollout/transitions.py; migration 0004) --------------------------------------
# One row per rollout of a challenger; ``plan`` is ``RolloutPlan.to_dict()``. The partial
# unique index allows at most one ``active`` rollout per pipeline, whoever races to start one.
ROLLOUT_ACTIVE = "status = 'active'"
rollouts = sa.Table(
    "rollouts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("pipeline", sa.String(128), nullable=False),
    sa.Column("champion_version", sa.Integer, nullable=False),
    sa.Column("challenger_version", sa.Integer, nullable=False),
    sa.Column("strategy", sa.String(16), nullable=False),
    sa.Column("plan", sa.JSON, nullable=False),
    sa.Column("salt", sa.String(255), nullable=False),
    sa.Column("step", sa.Integer, nullable=False),
    # active | promoted | rolled_back | halted | stopped
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("started_at", sa.DateTime, nullable=False),
    sa.Column("step_started_at", sa.DateTime, nullable=False),
    sa.Column("ended_at", sa.DateTime, nullable=True),
    sa.Column("started_by", sa.String(255), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Index(
        "uq_rollouts_one_active",
        "pipeline",
        unique=True,
        sqlite_where=sa.text(ROLLOUT_ACTIVE),
        postgresql_where=sa.text(ROLLOUT_ACTIVE),
    ),
)
# --- end rollouts --------------------------------------------------------------------------

# --- prediction log (core/prediction_log.py; migration 0005) -------------------------------
# Every prediction the service makes, and the outcome observed for it later. ``rollout_step``
# records the step the router used, so an experiment's analysis counts each step's traffic
# against that step's weights even while a service has not yet seen a step change.
predictions = sa.Table(
    "predictions",
    metadata,
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
    sa.Index("ix_predictions_rollout", "pipeline", "rollout_id", "rollout_step"),
    sa.Index("ix_predictions_entity", "pipeline", "entity_id", "created_at"),
)
# One outcome per prediction: the first reported wins (a retried write inserts nothing).
prediction_outcomes = sa.Table(
    "prediction_outcomes",
    metadata,
    sa.Column("prediction_id", sa.String(32), primary_key=True),
    sa.Column("pipeline", sa.String(128), nullable=False),
    sa.Column("label", sa.String(255), nullable=True),
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("received_at", sa.DateTime, nullable=False),
)
