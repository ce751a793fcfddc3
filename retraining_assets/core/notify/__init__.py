"""Notifications that are never lost: SMTP, Slack/Teams webhooks and the log, via an outbox.

``channels`` sends (log, SMTP, webhooks), ``outbox`` records and delivers (the ``Notifier``),
``templates`` writes the messages, one builder per event. Import from here:
``from retraining_assets.core.notify import Notifier, drift_detected``.
"""

from retraining_assets.core.notify.channels import (
    ChannelError,
    ChannelResult,
    LogChannel,
    SmtpChannel,
    WebhookChannel,
    channels_from_settings,
    mask_webhook_url,
    slack_webhook,
    teams_webhook,
)
from retraining_assets.core.notify.outbox import (
    Delivery,
    Dispatcher,
    DrainResult,
    Notifier,
    notify_test,
)
from retraining_assets.core.notify.templates import (
    EventType,
    Message,
    approval_required,
    clean,
    drift_detected,
    error_summary,
    promoted,
    promotion_pending,
    retraining_completed,
    retraining_started,
    rolled_back,
    rollout_change,
    run_failed,
    run_url,
)

__all__ = [
    "ChannelError",
    "ChannelResult",
    "Delivery",
    "Dispatcher",
    "DrainResult",
    "EventType",
    "LogChannel",
    "Message",
    "Notifier",
    "SmtpChannel",
    "WebhookChannel",
    "approval_required",
    "channels_from_settings",
    "clean",
    "drift_detected",
    "error_summary",
    "mask_webhook_url",
    "notify_test",
    "promoted",
    "promotion_pending",
    "retraining_completed",
    "retraining_started",
    "rolled_back",
    "rollout_change",
    "run_failed",
    "run_url",
    "slack_webhook",
    "teams_webhook",
]
