"""Dagster wiring of the notifier: a resource, a run-failure sensor and an outbox drain.

Dagster has no e-mail on failure of its own; ``notify_run_failure`` sends "Run failed:" through
``core.notify`` for every failed run, and ``drain_notification_outbox`` retries what could not
be delivered at once (an SMTP server that was down, a webhook answering 503).
"""

from __future__ import annotations

import dagster as dg

from retraining_assets.core.notify import Message, Notifier, run_failed
from retraining_assets.settings import Settings, load_settings

RESOURCE_KEY = "notifier"
RUN_FAILURE_SENSOR = "notify_run_failure"
DRAIN_SENSOR = "drain_notification_outbox"
DRAIN_INTERVAL_SECONDS = 60
# Sensors are cut off after 60 s; stop claiming new rows well before that.
DRAIN_BUDGET_SECONDS = 30.0

# Resource fields that override the setting of the same name when set.
_SETTING_FIELDS = (
    "notify_to",
    "notify_from",
    "smtp_host",
    "smtp_port",
    "smtp_username",
    "smtp_password",
    "smtp_security",
    "slack_webhook_url",
    "teams_webhook_url",
    "ui_base_url",
    "database_url",
)


class NotifierResource(dg.ConfigurableResource):
    """The administrators' notifier. Every field left unset comes from the settings
    (``RETRAIN_*``), so no secret needs to appear in Dagster config; to set one here anyway,
    use ``dg.EnvVar``."""

    notify_to: list[str] | None = None
    notify_from: str | None = None
    smtp_host: str | None = None
    smtp_port: int | None = None
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_security: str | None = None
    slack_webhook_url: str | None = None
    teams_webhook_url: str | None = None
    ui_base_url: str | None = None
    database_url: str | None = None
    subject_prefix: str = ""
    timeout_seconds: float = 10.0
    max_attempts: int = 10

    def settings(self) -> Settings:
        overrides = {name: getattr(self, name) for name in _SETTING_FIELDS}
        return load_settings(**{k: v for k, v in overrides.items() if v is not None})

    def notifier(self) -> Notifier:
        return Notifier.from_settings(
            self.settings(),
            timeout=self.timeout_seconds,
            subject_prefix=self.subject_prefix,
            max_attempts=self.max_attempts,
        )


def run_failure_message(context: dg.RunFailureSensorContext, ui_base_url: str) -> Message:
    """ "Run failed:" for the failed run: job, failed steps, the root error, the run link."""
    run = context.dagster_run
    failures = context.get_step_failure_events()
    error = failures[0].step_failure_data.error if failures else None
    if error is None:  # a run-level failure (e.g. the executor's broker is down) has its own
        error = context.failure_event.job_failure_data.error
    # Dagster wraps user errors ("Error occurred while executing op"); the cause is the news.
    while error is not None and error.cause is not None:
        error = error.cause
    return run_failed(
        job_name=run.job_name,
        run_id=run.run_id,
        ui_base_url=ui_base_url,
        step_keys=[event.step_key for event in failures if event.step_key],
        error=error.message if error else context.failure_event.message,
        partition=run.tags.get("dagster/partition"),
    )


def build_notification_defs(
    job_names: list[str] | None = None, settings: Settings | None = None
) -> dg.Definitions:
    """The ``notifier`` resource and both sensors. ``job_names`` limits failure mails to those
    jobs (all jobs when None). Sensors start RUNNING unless ``automation_running`` is false."""
    settings = settings or load_settings()
    status = (
        dg.DefaultSensorStatus.RUNNING
        if settings.automation_running
        else dg.DefaultSensorStatus.STOPPED
    )
    watched = frozenset(job_names or ())

    @dg.run_failure_sensor(
        name=RUN_FAILURE_SENSOR,
        default_status=status,
        description="Tells the administrators when a run fails (Run failed: ...).",
    )
    def notify_run_failure(
        context: dg.RunFailureSensorContext, notifier: NotifierResource
    ) -> dg.SkipReason | None:
        run = context.dagster_run
        # Filtered here rather than with monitored_jobs, which wants job objects, not names.
        if watched and run.job_name not in watched:
            return dg.SkipReason(f"job {run.job_name} is not watched")
        message = run_failure_message(context, notifier.settings().ui_base_url)
        delivery = notifier.notifier().notify(message)
        context.log.info(f"run failure notification {delivery.key}: {delivery.status}")
        return None

    @dg.sensor(
        name=DRAIN_SENSOR,
        minimum_interval_seconds=DRAIN_INTERVAL_SECONDS,
        default_status=status,
        description="Retries notifications that could not be delivered at once.",
    )
    def drain_notification_outbox(notifier: NotifierResource) -> dg.SkipReason:
        result = notifier.notifier().drain(budget_seconds=DRAIN_BUDGET_SECONDS)
        return dg.SkipReason(
            f"outbox: {result.sent} sent, {result.retrying} to retry, {result.failed} given up, "
            f"{result.skipped} claimed by another worker"
        )

    return dg.Definitions(
        sensors=[notify_run_failure, drain_notification_outbox],
        # the outbox lives in these definitions' platform database; channels and secrets are
        # read from the settings (environment) when a message is sent
        resources={RESOURCE_KEY: NotifierResource(database_url=settings.platform_database_url)},
    )
