"""Notifications that are never lost: SMTP, Slack/Teams webhooks and the log, via an outbox."""

from retraining_assets.core.notify.outbox import *  # noqa: F403
