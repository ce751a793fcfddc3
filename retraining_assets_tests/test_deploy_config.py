"""deploy/ against the libraries' own config schemas (no cluster, no broker needed): the
Kubernetes instance (K8sRunLauncher), the retraining job's k8s_job_executor run config, the
Celery workers' config, and the training steps' per-step resource requests."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import dagster as dg
import pytest
import yaml
from dagster._config import process_config
from dagster._core.instance.config import dagster_instance_config_schema

from retraining_assets.core.pipeline import demo_pipeline
from retraining_assets.definitions import build_definitions
from retraining_assets.defs.executors import K8S_CONFIG_TAG, TRAINING_STEP_K8S_CONFIG
from retraining_assets.defs.jobs import retraining_job_name
from retraining_assets.settings import load_settings

DEPLOY = Path(__file__).parents[1] / "deploy"
ENV = {
    "DAGSTER_PG_USERNAME": "dagster",
    "DAGSTER_PG_PASSWORD": "secret",
    "DAGSTER_PG_HOST": "postgres",
    "DAGSTER_PG_DB": "dagster",
    "RETRAIN_IMAGE": "registry.example.com/retraining-assets:1.0",
    "RETRAIN_CELERY_BROKER_URL": "amqp://guest:guest@rabbitmq:5672//",
}


@pytest.fixture(autouse=True)
def _deploy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)


def load(name: str) -> dict:
    return yaml.safe_load((DEPLOY / name).read_text())


def retraining_job(settings) -> dg.JobDefinition:
    return build_definitions(settings, [demo_pipeline(settings)]).resolve_job_def(
        retraining_job_name("demo")
    )


def processed(config_type: object, value: dict) -> dict:
    result = process_config(config_type, value)
    assert result.success, [error.message for error in result.errors]
    return result.value


def test_the_kubernetes_instance_is_valid_for_dagster_and_dagster_k8s() -> None:
    from dagster_k8s import K8sRunLauncher

    instance = load("k8s/dagster.yaml")
    processed(dagster_instance_config_schema(), instance)
    launcher = instance["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_k8s", "K8sRunLauncher")
    config = processed(K8sRunLauncher.config_type(), launcher["config"])
    assert config["job_image"] == ENV["RETRAIN_IMAGE"]  # env: resolved like the instance does
    assert "RETRAIN_EXECUTOR=k8s" in config["env_vars"]
    artifact_root = next(v for v in config["env_vars"] if v.startswith("RETRAIN_ARTIFACT_ROOT="))
    url = artifact_root.split("=", 1)[1]
    # every pod reaches the artifact root on object storage itself, no volume in between
    assert urlsplit(url).scheme == "s3" and not config.get("volume_mounts")
    assert load_settings(artifact_root=url).artifact_root == url  # a root the settings accept


def test_the_kubernetes_instance_keeps_the_production_storage_and_run_limits() -> None:
    production, kubernetes = load("dagster.yaml"), load("k8s/dagster.yaml")
    assert kubernetes["storage"] == production["storage"]
    assert kubernetes["run_coordinator"] == production["run_coordinator"]


def test_the_retraining_run_config_is_valid_for_the_k8s_job_executor(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / ".retrain", executor="k8s")
    job = retraining_job(settings)
    assert job.executor_def.name == "k8s"
    run_config = load("k8s/retraining_run_config.yaml")
    dg.validate_run_config(job, run_config)
    step_keys = {node.name for node in job.graph.nodes}
    assert set(run_config["execution"]["config"]["per_step_k8s_config"]) <= step_keys


def test_every_training_step_requests_its_kubernetes_resources(tmp_path: Path) -> None:
    from dagster_k8s.job import USER_DEFINED_K8S_CONFIG_KEY, get_user_defined_k8s_config

    assert K8S_CONFIG_TAG == USER_DEFINED_K8S_CONFIG_KEY
    settings = load_settings(home=tmp_path / ".retrain", executor="k8s")
    job = retraining_job(settings)
    training = [node for node in job.graph.nodes if "candidate_" in node.name]
    assert len(training) == len(settings.model_families)
    for node in training:
        parsed = get_user_defined_k8s_config(node.tags)  # what dagster-k8s reads from the step
        assert parsed.container_config == TRAINING_STEP_K8S_CONFIG["container_config"]
    assert json.loads(training[0].tags[K8S_CONFIG_TAG]) == TRAINING_STEP_K8S_CONFIG


def test_the_celery_workers_config_is_dagster_celery_s_executor_config() -> None:
    from dagster_celery.cli import get_validated_config

    config = get_validated_config(str(DEPLOY / "celery.yaml"))
    assert config["broker"] == ENV["RETRAIN_CELERY_BROKER_URL"]
