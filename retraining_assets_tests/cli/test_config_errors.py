"""Config errors through the real `retrain` command: one line naming the setting or file,
exit status 2, no traceback."""

import subprocess
from pathlib import Path

import pytest

from retraining_assets_tests.cli.cli_run import (
    DAGSTER,
    assert_one_line_error,
    retrain_environment,
    run_retrain,
)


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


def test_an_unwritable_state_folder_names_the_variable(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    home = tmp_path / "a-file" / "state"
    done = run_retrain(home, "init")
    assert_one_line_error(done, "RETRAIN_HOME", f"{tmp_path / 'a-file'} is a file, not a folder")


def test_an_unwritable_dagster_home_names_the_variable(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    done = run_retrain(tmp_path / "state", "init", DAGSTER_HOME=str(tmp_path / "a-file" / "dg"))
    assert_one_line_error(done, "DAGSTER_HOME", "Not a directory")


@pytest.mark.parametrize("where", ["environment", "settings file"])
def test_a_pipeline_name_dagster_refuses_is_named(tmp_path: Path, where: str) -> None:
    if where == "environment":
        done = run_retrain(tmp_path, "init", RETRAIN_PIPELINE_NAME="loan defaults")
    else:
        (tmp_path / "settings.toml").write_text('pipeline_name = "loan-defaults"\n')
        done = run_retrain(tmp_path, "init")
    assert_one_line_error(done, "'pipeline_name' (RETRAIN_PIPELINE_NAME)", "not a valid name")


def test_a_record_source_without_a_time_column_names_the_variable(tmp_path: Path) -> None:
    done = run_retrain(tmp_path, "init", RETRAIN_SOURCE_PATH="r.csv", RETRAIN_TARGET="y")
    assert_one_line_error(done, "RETRAIN_TIME_COLUMN", "required with RETRAIN_SOURCE_PATH")


MISSING_TIME_COLUMN = "r.csv' has no time column 'ts' (columns: when, x, y)"


def _source_without_its_time_column(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "r.csv").write_text("when,x,y\n2024-01-01,1,0\n2024-01-02,2,1\n")
    return {
        "RETRAIN_SOURCE_PATH": str(tmp_path / "r.csv"),
        "RETRAIN_TIME_COLUMN": "ts",
        "RETRAIN_TARGET": "y",
    }


def test_a_time_column_the_source_lacks_is_named_with_the_columns(tmp_path: Path) -> None:
    env = _source_without_its_time_column(tmp_path)
    done = run_retrain(tmp_path, "replay", "--data", env["RETRAIN_SOURCE_PATH"], **env)
    assert_one_line_error(done, MISSING_TIME_COLUMN)


def test_an_unknown_pipeline_option_is_one_line(tmp_path: Path) -> None:
    done = run_retrain(tmp_path, "rollout", "status", "--pipeline", "nosuch")
    assert_one_line_error(done, "unknown pipeline 'nosuch'; configured: demo")


def test_a_spool_folder_that_cannot_be_created_is_one_line_not_a_failed_startup(
    tmp_path: Path,
) -> None:
    (tmp_path / "spool").write_text("")  # where `retrain serve` keeps its prediction spool
    done = run_retrain(tmp_path, "serve", "--port", "0")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    last = done.stderr.strip().splitlines()[-1]  # after the log of the database set-up
    assert last.startswith("error: prediction spool folder " + str(tmp_path / "spool" / "demo"))
    assert "(in RETRAIN_HOME)" in last and "Not a directory" in last


@pytest.mark.parametrize("case", ["pipeline name", "time column"])
def test_the_code_location_fails_with_the_same_line_not_a_traceback(
    tmp_path: Path, case: str
) -> None:
    if case == "pipeline name":
        env, line = {"RETRAIN_PIPELINE_NAME": "loan defaults"}, "'loan defaults' is not a valid"
    else:
        env, line = _source_without_its_time_column(tmp_path), MISSING_TIME_COLUMN
    (tmp_path / "dagster").mkdir()
    loaded = subprocess.run(
        [DAGSTER, "definitions", "validate", "-m", "retraining_assets.definitions"],
        env=retrain_environment(tmp_path, DAGSTER_HOME=str(tmp_path / "dagster"), **env),
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = loaded.stdout + loaded.stderr
    assert loaded.returncode == 1 and line in output, output
    # one frame, the one that re-raised it: none of the code that found the problem
    frames = [row.strip() for row in output.splitlines() if row.lstrip().startswith('File "')]
    assert len(frames) == 1 and "retraining_assets/definitions.py" in frames[0], output
