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


# The Helm chart (dagster/dagster) renders $DAGSTER_HOME/dagster.yaml from its values; the
# functions below do what its instance templates do for the keys deploy/helm/values.yaml sets
# (templates/helpers/instance/_postgresql.tpl, _run-coordinator.tpl, _run-launcher.tpl), for
# `helm install dagster ... --namespace retraining` (release "dagster": the chart's fullname).
RELEASE, NAMESPACE = "dagster", "retraining"


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def _storage(values: dict) -> dict:
    pg = values["postgresql"]
    assert not pg["enabled"], "production uses an existing PostgreSQL"
    postgres_db = {
        "username": pg["postgresqlUsername"],
        "password": {"env": "DAGSTER_PG_PASSWORD"},  # from global.postgresqlSecretName
        "hostname": pg["postgresqlHost"],
        "db_name": pg["postgresqlDatabase"],
        "port": pg["service"]["port"],
        "params": pg.get("postgresqlParams", {}),
    }
    if pg.get("postgresqlScheme"):
        postgres_db["scheme"] = pg["postgresqlScheme"]
    return {"postgres": {"postgres_db": postgres_db}}


def _run_coordinator(values: dict) -> dict:
    coordinator = values["dagsterDaemon"]["runCoordinator"]
    assert coordinator["enabled"] and coordinator["type"] == "QueuedRunCoordinator"
    queued = coordinator["config"]["queuedRunCoordinator"]
    config = {"max_concurrent_runs": queued["maxConcurrentRuns"]}
    if queued.get("tagConcurrencyLimits"):
        config["tag_concurrency_limits"] = queued["tagConcurrencyLimits"]
    return {"module": "dagster._core.run_coordinator", "class": "QueuedRunCoordinator",
            "config": config}  # fmt: skip


def _run_launcher(values: dict) -> dict:
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    k8s = values["runLauncher"]["config"]["k8sRunLauncher"]
    config = {
        "load_incluster_config": k8s["loadInclusterConfig"],
        "job_namespace": k8s.get("jobNamespace") or NAMESPACE,
        "image_pull_policy": k8s["imagePullPolicy"],
        "service_account_name": values["global"].get("serviceAccountName")
        or values["serviceAccount"]["name"],
        "dagster_home": values["global"]["dagsterHome"],
        "instance_config_map": f"{RELEASE}-instance",
        "postgres_password_secret": values["global"]["postgresqlSecretName"],
    }
    if k8s.get("envConfigMaps"):
        config["env_config_maps"] = [source["name"] for source in k8s["envConfigMaps"]]
    if k8s.get("envSecrets"):
        config["env_secrets"] = [source["name"] for source in k8s["envSecrets"]]
    for key in ("envVars", "volumeMounts", "volumes", "labels", "resources"):
        if k8s.get(key):
            config[_snake(key)] = k8s[key]
    if k8s.get("runK8sConfig"):
        config["run_k8s_config"] = {_snake(k): v for k, v in k8s["runK8sConfig"].items() if v}
    return {"module": "dagster_k8s", "class": "K8sRunLauncher", "config": config}


def rendered_instance(values: dict) -> dict:
    return {
        "storage": _storage(values),
        "run_coordinator": _run_coordinator(values),
        "run_launcher": _run_launcher(values),
        "telemetry": {"enabled": values["telemetry"]["enabled"]},
    }


def test_the_helm_values_render_an_instance_valid_for_dagster_and_dagster_k8s() -> None:
    from dagster_k8s import K8sRunLauncher

    instance = rendered_instance(load("helm/values.yaml"))
    processed(dagster_instance_config_schema(), instance)
    config = processed(K8sRunLauncher.config_type(), instance["run_launcher"]["config"])
    requests = config["run_k8s_config"]["container_config"]["resources"]["requests"]
    assert set(requests) == {"cpu", "memory"}


def test_the_helm_values_render_the_kubernetes_instance() -> None:
    """Same storage, same run limits, and the same launcher settings where both set one: the
    chart's run pods take the code location's image, where dagster.yaml names RETRAIN_IMAGE."""
    from dagster_k8s import K8sRunLauncher

    schema = dagster_instance_config_schema()
    chart = processed(schema, rendered_instance(load("helm/values.yaml")))
    kubernetes = processed(schema, load("k8s/dagster.yaml"))
    assert chart["storage"] == kubernetes["storage"]  # the secrets' values resolve alike
    assert chart["run_coordinator"] == kubernetes["run_coordinator"]
    assert chart["telemetry"] == kubernetes["telemetry"]
    ours, theirs = (
        processed(K8sRunLauncher.config_type(), instance["run_launcher"]["config"])
        for instance in (chart, kubernetes)
    )
    set_in = [{k for k, v in c.items() if v not in (None, [], {})} for c in (ours, theirs)]
    assert set_in[1] - set_in[0] == {"job_image"}
    assert {key: ours[key] for key in set_in[0]} == {key: theirs[key] for key in set_in[0]}


def test_the_helm_user_deployment_serves_this_project_with_its_settings() -> None:
    from retraining_assets.settings import ENV_PREFIX, Settings

    values = load("helm/values.yaml")
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    arguments = deployment["dagsterApiGrpcArgs"]
    workspace = yaml.safe_load((DEPLOY.parent / "workspace.yaml").read_text())
    module = workspace["load_from"][0]["python_module"]["module_name"]
    assert arguments[arguments.index("--module-name") + 1] == module
    assert deployment["includeConfigInLaunchedRuns"]["enabled"]  # its settings reach the runs
    env = {item["name"]: item["value"] for item in deployment["env"]}
    for name in env:  # every RETRAIN_ variable is a real setting, none mistyped
        if name.startswith(ENV_PREFIX):
            assert name.removeprefix(ENV_PREFIX).lower() in Settings.model_fields, name
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]["envVars"]
    for name in ("RETRAIN_EXECUTOR", "RETRAIN_ARTIFACT_ROOT", "RETRAIN_IO_MANAGER_URL"):
        assert f"{name}={env[name]}" in launcher  # the run pods see what the code location sees
    settings = load_settings(
        artifact_root=env["RETRAIN_ARTIFACT_ROOT"], io_manager_url=env["RETRAIN_IO_MANAGER_URL"]
    )
    assert urlsplit(str(settings.artifact_root)).scheme == "s3"
    assert [secret["name"] for secret in deployment["envSecrets"]] == launcher_secrets(values)
    for part in (deployment, values["dagsterWebserver"], values["dagsterDaemon"]):
        assert set(part["resources"]["requests"]) == {"cpu", "memory"}


def launcher_secrets(values: dict) -> list[str]:
    k8s = values["runLauncher"]["config"]["k8sRunLauncher"]
    return [source["name"] for source in k8s["envSecrets"]]
