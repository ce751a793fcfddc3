"""Where the retraining job's steps run, chosen by ``RETRAIN_EXECUTOR``:

* ``multiprocess`` (default): Dagster's multiprocess executor, one process per step on the
  machine that runs the run (``in_process`` on request);
* ``celery``: Dagster's ``celery_executor`` (dagster-celery); the steps go through the broker
  ``RETRAIN_CELERY_BROKER_URL`` to whichever ``dagster-celery`` worker takes them;
* ``k8s``: dagster-k8s's ``k8s_job_executor``, one Kubernetes job per step.

Each is the library's own executor with its own run config (``execution: config: ...``), so
what dagster-celery and dagster-k8s document applies unchanged. The Celery one adds a single
thing: before a step is submitted it asks the broker, so a broker that is down fails the run
at once with its URL (password masked) instead of kombu's bare "Connection refused".
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dagster as dg

from retraining_assets.settings import Settings, load_settings

# Resource requests of one training step on Kubernetes (dagster-k8s reads this op tag; the
# run config's ``per_step_k8s_config`` overrides it per step). A candidate fits on one core.
TRAINING_STEP_K8S_CONFIG: dict[str, Any] = {
    "container_config": {
        "resources": {
            "requests": {"cpu": "1", "memory": "2Gi"},
            "limits": {"cpu": "2", "memory": "4Gi"},
        }
    }
}
K8S_CONFIG_TAG = "dagster-k8s/config"
BROKER_PROBE_RETRIES = 2


class BrokerUnavailableError(RuntimeError):
    """The Celery broker does not answer: no step was submitted."""


def training_step_tags() -> dict[str, Any]:
    """The op tags of a step that trains a model (read by dagster-k8s; ignored elsewhere)."""
    return {K8S_CONFIG_TAG: TRAINING_STEP_K8S_CONFIG}


def masked_broker_url(url: str) -> str:
    """The broker URL as it may appear in a message: Celery's own masking (password ``**``)."""
    from kombu.utils.url import maybe_sanitize_url

    return str(maybe_sanitize_url(url))


def check_broker(url: str) -> None:
    """Raise :class:`BrokerUnavailableError` naming ``url`` (masked) unless the broker answers."""
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=5) as connection:
            connection.ensure_connection(max_retries=BROKER_PROBE_RETRIES, interval_start=0.2)
    except Exception as error:  # kombu raises the transport's own errors
        raise BrokerUnavailableError(
            f"the Celery broker {masked_broker_url(url)} does not answer "
            f"({type(error).__name__}: {error}); start it, or point RETRAIN_CELERY_BROKER_URL "
            "(or the run config's execution.config.broker) and the workers at one that runs"
        ) from None


def celery_executor_def() -> dg.ExecutorDefinition:
    """dagster-celery's executor, its broker and backend defaulting to the settings."""
    from dagster_celery.executor import CELERY_CONFIG, CeleryExecutor

    class CheckedCeleryExecutor(CeleryExecutor):
        def execute(self, plan_context, execution_plan) -> Iterator[dg.DagsterEvent]:
            check_broker(self.broker)
            yield from super().execute(plan_context, execution_plan)

    schema = {
        **CELERY_CONFIG,
        # dagster-celery defaults it to rpc://; unset here, so RETRAIN_CELERY_BACKEND_URL applies
        "backend": dg.Field(
            dg.Noneable(dg.StringSource),
            is_required=False,
            description="The URL of the Celery results backend. Default: "
            "RETRAIN_CELERY_BACKEND_URL (rpc://).",
        ),
    }

    @dg.executor(
        name="celery",
        config_schema=schema,
        requirements=dg.multiple_process_executor_requirements(),
    )
    def celery_executor(init_context: dg.InitExecutorContext) -> dg.Executor:
        """Dagster's Celery executor; an unset broker or backend is RETRAIN_CELERY_BROKER_URL /
        RETRAIN_CELERY_BACKEND_URL of the process that runs the run (never in the job's
        config schema, so the broker's password stays out of the UI)."""
        from dagster._core.execution.retries import RetryMode

        config = init_context.executor_config
        settings = load_settings()
        return CheckedCeleryExecutor(
            broker=config.get("broker") or settings.celery_broker_url,
            backend=config.get("backend") or settings.celery_backend_url,
            config_source=config.get("config_source"),
            include=config.get("include"),
            retries=RetryMode.from_config(config["retries"]),
        )

    return celery_executor


def executor_def(settings: Settings) -> dg.ExecutorDefinition | None:
    """The executor ``settings.executor`` names; None for ``multiprocess``: the code
    location's default, Dagster's ``multi_or_in_process_executor`` (multiprocess unless the
    run config asks for ``in_process``, as the demo's in-process runs do)."""
    if settings.executor == "celery":
        return celery_executor_def()
    if settings.executor == "k8s":
        try:
            from dagster_k8s import k8s_job_executor
        except ImportError:
            raise ModuleNotFoundError(
                "RETRAIN_EXECUTOR=k8s needs dagster-k8s: pip install 'dagster-k8s==0.29.27'"
            ) from None
        return k8s_job_executor
    return None
