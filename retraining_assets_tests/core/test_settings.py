from pathlib import Path

import pytest

from retraining_assets.settings import Settings, SettingsError, load_settings


def test_defaults_are_the_documented_thresholds(settings: Settings) -> None:
    assert settings.psi_alert == 0.2
    assert settings.ks_significance == 0.05
    assert settings.volume_trigger == 1000
    assert settings.promotion_min_lift == 0.05
    assert settings.partition == "monthly"
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
        ("RETRAIN_PARTITION", "hourly", "RETRAIN_PARTITION"),
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
