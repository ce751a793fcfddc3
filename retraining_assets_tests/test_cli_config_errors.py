"""Config errors through the real `retrain` command: one line naming the setting or file,
exit status 2, no traceback."""

from pathlib import Path

import pytest

from retraining_assets_tests.cli_run import assert_one_line_error, run_retrain


def run_status(home: Path, **env: str):
    return run_retrain(home, "status", **env)


def test_psi_warning_above_the_alert_names_both_variables(tmp_path: Path) -> None:
    done = run_status(tmp_path, RETRAIN_PSI_WARNING="0.5", RETRAIN_PSI_ALERT="0.2")
    assert_one_line_error(done, "RETRAIN_PSI_WARNING", "RETRAIN_PSI_ALERT")
    assert "RETRAIN_SETTINGS)" not in done.stderr


@pytest.mark.parametrize(
    ("text", "where"), [("psi_alert = 0.2\npsi_warning = [\n", "end of document"),
                        ("psi_alert = 0.2\npsi_warning = = 1\nx = 2\n", "line 2")],
)  # fmt: skip
def test_a_broken_settings_file_is_named_with_its_line(
    tmp_path: Path, text: str, where: str
) -> None:
    (tmp_path / "settings.toml").write_text(text)
    done = run_status(tmp_path)
    assert_one_line_error(done, str(tmp_path / "settings.toml"), "RETRAIN_SETTINGS_FILE", where)


@pytest.mark.parametrize("url", ["abc", "mysql://operator:s3cret@db.example/records"])
def test_an_unusable_database_url_names_the_variable_not_the_password(
    tmp_path: Path, url: str
) -> None:
    done = run_status(tmp_path, RETRAIN_DATABASE_URL=url)
    assert_one_line_error(done, "RETRAIN_DATABASE_URL", "is not usable")
    assert "s3cret" not in done.stderr
