import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml

from retraining_assets.cli.common import LOCAL_INSTANCE_YAML
from retraining_assets.core.pipeline import Pipeline, configured_pipelines, user_pipeline
from retraining_assets.definitions import build_definitions
from retraining_assets.defs.jobs import RETRAINING_TAG
from retraining_assets.settings import Settings, SettingsError, load_settings

ROOT = Path(__file__).parents[2]


def test_dagster_postgres_really_installed() -> None:
    import dagster_postgres

    assert dagster_postgres.__version__ == "0.29.27"
    assert dg.__version__ == "1.13.27"


@pytest.fixture(scope="module")
def clone_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's files as a clone has them: no .retrain, no DAGSTER_HOME (copied once per
    module; each test gets its own copy, ``fresh_clone``, since the commands may write)."""
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    ).stdout.split("\0")
    clone = tmp_path_factory.mktemp("clone")
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, clone / name)
    return clone


@pytest.fixture
def fresh_clone(clone_template: Path, tmp_path: Path) -> Path:
    return shutil.copytree(clone_template, tmp_path / "clone")


def _empty_environment(clone: Path) -> dict[str, str]:
    # nothing but the interpreter's folder, and the clone's code ahead of the installed one
    return {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "PYTHONPATH": str(clone)}


def test_code_location_validates_on_a_fresh_clone_with_no_environment(fresh_clone: Path) -> None:
    # `dagster definitions validate` reads the root dagster.yaml: it must need no variable
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dagster",
            "definitions",
            "validate",
            "-m",
            "retraining_assets.definitions",
        ],
        capture_output=True,
        text=True,
        cwd=fresh_clone,
        timeout=300,
        env=_empty_environment(fresh_clone),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All code locations passed validation" in result.stdout + result.stderr


def test_dg_finds_the_code_location_on_a_fresh_clone(fresh_clone: Path) -> None:
    dg_cli = Path(sys.executable).parent / "dg"
    result = subprocess.run(
        [str(dg_cli), "list", "defs", "--json"],
        capture_output=True,
        text=True,
        cwd=fresh_clone,
        timeout=300,
        env=_empty_environment(fresh_clone),
    )
    assert result.returncode == 0, result.stderr
    assert '"demo/current_data"' in result.stdout
    assert "notify_run_failure" in result.stdout


def test_every_instance_configuration_has_the_same_run_queue() -> None:
    """The root (local) dagster.yaml, deploy/'s PostgreSQL one and the instance `retrain`
    writes under .retrain/ limit runs alike: one retraining run per pipeline at a time."""
    root, deploy = (
        yaml.safe_load((ROOT / p).read_text()) for p in ("dagster.yaml", "deploy/dagster.yaml")
    )
    local = yaml.safe_load(LOCAL_INSTANCE_YAML)
    assert root["run_coordinator"] == deploy["run_coordinator"] == local["run_coordinator"]
    limits = root["run_coordinator"]["config"]["tag_concurrency_limits"]
    assert limits == [
        {"key": RETRAINING_TAG, "value": {"applyLimitPerUniqueValue": True}, "limit": 1}
    ]
    # the root instance keeps its state where `make demo` and `make dev` put theirs
    assert root["storage"] == {"sqlite": {"base_dir": ".retrain/dagster"}}
    assert "postgres" in deploy["storage"]


def _elec2_settings(tmp_path: Path, elec2: Path) -> Settings:
    return load_settings(
        home=tmp_path / ".retrain",
        source_path=str(elec2),
        time_column="ts",
        target="class",
        pipeline_name="elec2",
    )


def test_two_pipelines_share_one_code_location(tmp_path: Path, elec2: Path) -> None:
    settings = _elec2_settings(tmp_path, elec2)
    pipelines = configured_pipelines(settings)
    assert [p.name for p in pipelines] == ["demo", "elec2"]
    defs = build_definitions(settings, pipelines)
    dg.Definitions.validate_loadable(defs)
    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    for name in ("demo", "elec2"):
        assert {f"{name}/current_data", f"{name}/reference_data"} <= keys
        assert defs.resolve_job_def(f"{name}_monitoring_job") is not None
    elec2 = pipelines[1]
    assert elec2.spec.task == "binary" and "nswprice" in elec2.spec.numeric_features
    assert elec2.start == "1996-05-07"  # daily periods (the default) start with the data


def test_partition_granularity_is_a_setting(tmp_path: Path, elec2: Path) -> None:
    settings = load_settings(
        home=tmp_path / ".retrain",
        source_path=str(elec2),
        time_column="ts",
        target="class",
        partition="weekly",
    )
    pipeline: Pipeline = user_pipeline(settings)
    defs = build_definitions(settings, [pipeline])
    partitions = defs.resolve_job_def("records_monitoring_job").partitions_def
    assert isinstance(partitions, dg.TimeWindowPartitionsDefinition)
    assert partitions.cron_schedule == "0 0 * * 0"


def test_user_pipeline_needs_time_column_and_target(tmp_path: Path, elec2: Path) -> None:
    with pytest.raises(SettingsError, match="'time_column' .RETRAIN_TIME_COLUMN. and 'target' "
                       r".RETRAIN_TARGET. are required with RETRAIN_SOURCE_PATH"):  # fmt: skip
        load_settings(home=tmp_path / ".retrain", source_path=str(elec2))


STAGES = {
    "demo_data": {"current_data", "reference_data"},
    "demo_monitoring": {"drift_report", "champion_performance"},
    "demo_training": {
        "training_data",
        *(f"candidate_{f}" for f in ("random_forest", "xgboost", "neural_net", "ensemble")),
        "backtest_report",
    },
    "demo_promotion": {"model_evaluation", "champion_model"},
    "demo_serving": {"ab_test_results", "traffic_split"},
}


def test_assets_are_grouped_by_stage_and_owned_by_the_configured_owners(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path, asset_owners="team:ml-platform, ana@example.com")
    graph = build_definitions(settings).resolve_asset_graph()
    groups: dict[str, set[str]] = {}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        groups.setdefault(node.group_name, set()).add(key.path[-1])
        assert node.owners == ["team:ml-platform", "ana@example.com"], key
    assert groups == STAGES


def test_the_administrators_own_the_assets_unless_owners_are_set(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path, notify_to="ops@example.com")
    graph = build_definitions(settings).resolve_asset_graph()
    assert graph.get(dg.AssetKey(["demo", "champion_model"])).owners == ["ops@example.com"]
    # and the retraining job still selects every stage between the window and the champion
    job = build_definitions(settings).resolve_job_def("demo_retraining_job")
    selected = {key.path[-1] for key in job.asset_layer.selected_asset_keys}
    assert {"training_data", "model_evaluation", "champion_model", "reference_data"} <= selected
    assert not selected & (STAGES["demo_monitoring"] | STAGES["demo_serving"] | {"backtest_report"})


def test_an_owner_dagster_cannot_show_is_named_with_its_setting(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path, asset_owners="ml platform")
    with pytest.raises(ValueError, match=r"RETRAIN_ASSET_OWNERS: 'ml platform' cannot own"):
        build_definitions(settings)


def test_every_description_the_ui_renders_is_markdown_not_rst(tmp_path: Path) -> None:
    defs = build_definitions(load_settings(home=tmp_path))
    graph = defs.resolve_asset_graph()
    descriptions = {
        key.to_user_string(): graph.get(key).description for key in graph.get_all_asset_keys()
    }
    for key in graph.asset_check_keys:
        descriptions[key.to_user_string()] = graph.get(key).description
    for job in defs.resolve_all_job_defs():
        if not job.name.startswith("__"):  # Dagster's implicit all-assets job
            descriptions[job.name] = job.description
    assert all(descriptions.values())  # every asset, check and job says what it is
    rst = {name: text for name, text in descriptions.items() if "``" in text or ":func:" in text}
    assert rst == {}
