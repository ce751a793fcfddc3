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
