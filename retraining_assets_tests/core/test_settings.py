from pathlib import Path

import pytest

from retraining_assets.settings import Settings, SettingsError, load_settings


def test_defaults_are_the_documented_thresholds() -> None:
    settings = load_settings()
    assert settings.psi_alert == 0.2
    assert settings.ks_significance == 0.05
    assert settings.volume_trigger == 1000
    assert settings.promotion_min_lift == 0.05
    assert settings.partition == "daily"
    assert settings.timescales.drift_window == 7
    assert settings.drift_min_records == 500
    assert str(settings.timescales.training_window) == "90d"
    assert settings.retrain_schedule == "monthly"
    assert settings.timescales.schedule_cron() == "0 3 1 * *"
    assert settings.retrain_schedule_hour == 3
    assert settings.notify_to == []
    assert settings.platform_database_url.startswith("sqlite:///")
    assert settings.platform_database_url.endswith(".retrain/platform.db")


def test_environment_overrides_with_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETRAIN_PROMOTION_MIN_LIFT", "0.1")
    monkeypatch.setenv("RETRAIN_DATABASE_URL", "postgresql+psycopg2://u@h/db")
    monkeypatch.setenv("RETRAIN_NOTIFY_TO", "a@example.com, b@example.com")
    monkeypatch.setenv("RETRAIN_PARTITION", "weekly")
    settings = load_settings()
    assert settings.promotion_min_lift == 0.1
    assert settings.platform_database_url == "postgresql+psycopg2://u@h/db"
    assert settings.notify_to == ["a@example.com", "b@example.com"]
    assert settings.partition == "weekly"


def test_settings_file_is_read_and_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "retrain.toml"
    path.write_text('psi_alert = 0.3\nvolume_trigger = 500\nmodel_families = ["xgboost"]\n')
    monkeypatch.setenv("RETRAIN_SETTINGS_FILE", str(path))
    monkeypatch.setenv("RETRAIN_VOLUME_TRIGGER", "2000")
    settings = load_settings()
    assert settings.psi_alert == 0.3
    assert settings.volume_trigger == 2000
    assert settings.model_families == ["xgboost"]


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("RETRAIN_PROMOTION_MIN_LIFT", "five percent", "RETRAIN_PROMOTION_MIN_LIFT"),
        ("RETRAIN_VOLUME_TRIGGER", "-3", "RETRAIN_VOLUME_TRIGGER"),
        ("RETRAIN_PARTITION", "yearly", "RETRAIN_PARTITION"),
        ("RETRAIN_TRAINING_WINDOW", "3", "RETRAIN_TRAINING_WINDOW"),
        ("RETRAIN_TRAINING_WINDOW", "3 months", "RETRAIN_TRAINING_WINDOW"),
        ("RETRAIN_DRIFT_WINDOW", "0", "RETRAIN_DRIFT_WINDOW"),
        ("RETRAIN_MODEL_FAMILIES", "random_forest,svm", "RETRAIN_MODEL_FAMILIES"),
        ("RETRAIN_SMTP_SECURITY", "tls13", "RETRAIN_SMTP_SECURITY"),
    ],
)
def test_invalid_value_fails_at_load_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, named: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=named):
        load_settings()


def test_unknown_setting_in_file_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "retrain.toml"
    path.write_text("psi_alrt = 0.3\n")
    monkeypatch.setenv("RETRAIN_SETTINGS_FILE", str(path))
    with pytest.raises(SettingsError, match="psi_alrt"):
        load_settings()


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    missing = [
        f"RETRAIN_{name.upper()}"
        for name in Settings.model_fields
        if f"RETRAIN_{name.upper()}" not in readme
    ]
    assert missing == []


def test_an_old_style_training_window_says_what_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETRAIN_TRAINING_WINDOW", "3")
    with pytest.raises(SettingsError) as raised:
        load_settings()
    message = str(raised.value)
    assert "\n" not in message
    assert "setting 'training_window' (RETRAIN_TRAINING_WINDOW)" in message
    assert "used to count monitoring periods" in message and "90d" in message


@pytest.mark.parametrize(
    ("environment", "named", "problem"),
    [
        ({"RETRAIN_TRAINING_WINDOW": "5d"}, "RETRAIN_TRAINING_WINDOW", "shorter than the drift"),
        (
            {"RETRAIN_PARTITION": "weekly", "RETRAIN_DRIFT_WINDOW": "20"},
            "RETRAIN_TRAINING_WINDOW",
            "shorter than the drift window (20 weekly periods)",
        ),
        ({"RETRAIN_RETRAIN_SCHEDULE": "0 3 * *"}, "RETRAIN_RETRAIN_SCHEDULE", "cron"),
        ({"RETRAIN_RETRAIN_SCHEDULE": "61 3 * * *"}, "RETRAIN_RETRAIN_SCHEDULE", "cron"),
        (
            {"RETRAIN_PARTITION": "monthly", "RETRAIN_RETRAIN_SCHEDULE": "daily"},
            "RETRAIN_PARTITION",
            "coarser than the retraining schedule",
        ),
    ],
)
def test_time_scales_that_do_not_fit_fail_at_load_in_one_line(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], named: str, problem: str
) -> None:
    for variable, value in environment.items():
        monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    message = str(raised.value)
    assert "\n" not in message
    assert named in message and problem in message


def test_a_monthly_pipeline_keeps_working_with_one_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """Migration: RETRAIN_PARTITION=monthly alone is valid; the drift window is one month."""
    monkeypatch.setenv("RETRAIN_PARTITION", "monthly")
    scales = load_settings().timescales
    assert (scales.period, scales.drift_window) == ("monthly", 1)


def test_a_cron_schedule_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETRAIN_RETRAIN_SCHEDULE", "30 2 * * 1")
    assert load_settings().timescales.schedule_cron() == "30 2 * * 1"


def test_an_unwritable_state_folder_is_named_and_nothing_is_created(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(SettingsError, match=rf"'home' \(RETRAIN_HOME\).*{blocker} is a file"):
        load_settings(home=blocker / "state")
    with pytest.raises(SettingsError, match=r"'artifact_root' \(RETRAIN_ARTIFACT_ROOT\)"):
        load_settings(artifact_root=blocker)
    assert load_settings(home=tmp_path / "new" / "state").home == tmp_path / "new" / "state"
    assert not (tmp_path / "new").exists()  # checking creates nothing


@pytest.mark.parametrize("name", ["loans", "Loans_2", "my pipeline", "a-b", "dé", "x/y", ""])
def test_a_pipeline_name_is_one_dagster_accepts(name: str) -> None:
    # the same answer as Dagster's own name check, before any Dagster object is built
    from dagster._core.definitions.utils import is_valid_name

    if is_valid_name(name):
        assert load_settings(pipeline_name=name).pipeline_name == name
    else:
        with pytest.raises(SettingsError, match=r"'pipeline_name' \(RETRAIN_PIPELINE_NAME\)"):
            load_settings(pipeline_name=name)


def test_the_demo_name_is_not_a_pipeline_name() -> None:
    with pytest.raises(SettingsError, match="'demo' is the demo pipeline's name"):
        load_settings(pipeline_name="demo")


def test_a_record_source_needs_its_time_column_and_target() -> None:
    with pytest.raises(SettingsError, match=r"'target' \(RETRAIN_TARGET\) is required with "
                       "RETRAIN_SOURCE_URL"):  # fmt: skip
        load_settings(source_url="sqlite://", source_table="t", time_column="ts")


def test_the_artifact_root_takes_a_file_url_and_names_an_unsupported_scheme(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "shared artifacts"
    settings = load_settings(home=tmp_path / ".retrain", artifact_root=folder.as_uri())
    assert settings.artifact_root == folder
    with pytest.raises(SettingsError) as raised:
        load_settings(home=tmp_path / ".retrain", artifact_root="nosuch://bucket/artifacts")
    assert "RETRAIN_ARTIFACT_ROOT" in str(raised.value) and "nosuch://" in str(raised.value)
