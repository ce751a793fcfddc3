import json
import os
import re
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from click.testing import CliRunner

from retraining_assets.cli import main
from retraining_assets.cli.demo import demo_periods, demo_settings
from retraining_assets.core.database import platform_engine
from retraining_assets.core.demo import SPEC, DemoStream
from retraining_assets.core.pipeline import demo_pipeline
from retraining_assets.core.prediction_log import count_rows
from retraining_assets.settings import load_settings


def test_validate_infers_a_sensible_spec_for_elec2(elec2: Path) -> None:
    result = CliRunner().invoke(
        main, ["validate", "--data", str(elec2), "--time-column", "ts", "--target", "class"]
    )
    assert result.exit_code == 0, result.output
    assert "45,312 rows" in result.output
    assert "class (binary, classes ['DOWN', 'UP'])" in result.output
    assert "day, period, nswprice, nswdemand, vicprice, vicdemand, transfer" in result.output
    assert "(32 months)" in result.output
    assert "Usable: no problems found." in result.output


def test_validate_lists_every_problem_and_fails(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    pd.DataFrame(
        {
            "ts": ["2024-01-01", "someday", "2024-01-03"],
            "x": [None, None, None],
            "label": [None, None, None],
        }
    ).to_csv(path, index=False)
    result = CliRunner().invoke(
        main, ["validate", "--data", str(path), "--time-column", "ts", "--target", "label"]
    )
    assert result.exit_code == 1
    assert "column 'ts': 1 unparseable timestamps, e.g. ['someday']" in result.output
    assert "column 'x': every value is null" in result.output
    assert "column 'label': the target is null in every row" in result.output


@pytest.mark.parametrize("args", [["--target", "label"], ["--target", "nope"]])
def test_validate_names_a_missing_file_or_column(tmp_path: Path, args: list[str]) -> None:
    path = tmp_path / "r.csv"
    pd.DataFrame({"ts": ["2024-01-01"], "label": [1]}).to_csv(path, index=False)
    missing = tmp_path / "missing.csv"
    data = str(missing) if args[1] == "label" else str(path)
    result = CliRunner().invoke(main, ["validate", "--data", data, "--time-column", "ts", *args])
    assert result.exit_code == 2
    assert ("missing.csv" if args[1] == "label" else "column 'nope'") in result.output


def test_demo_runs_the_pipeline_through_a_real_instance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RETRAIN_HOME")  # the default: .retrain in the working directory
    # set-then-delete makes monkeypatch restore DAGSTER_HOME, which the CLI sets for itself
    monkeypatch.setenv("DAGSTER_HOME", "")
    monkeypatch.delenv("DAGSTER_HOME")
    result = CliRunner().invoke(main, ["demo", "--months", "4", "--rows", "400"])
    assert result.exit_code == 0, result.output
    home = tmp_path / ".retrain"
    assert (home / "platform.db").is_file() and (home / "dagster" / "dagster.yaml").is_file()
    instance = dg.DagsterInstance.from_config(str(home / "dagster"))
    # the local instance queues runs: one retraining per pipeline at a time
    assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
    runs = instance.get_runs()
    assert all(run.status == dg.DagsterRunStatus.SUCCESS for run in runs)
    jobs = sorted(run.job_name for run in runs)
    # weekly periods (the demo's): each week of the four months monitored once, one reference,
    # and the first retraining once the 90-day training window is whole
    stream = DemoStream(months=4, rows_per_month=400)
    weeks = demo_periods(
        demo_pipeline(demo_settings(load_settings(), False, stream), stream), stream
    )
    assert len(weeks) >= 17 and all(week.weekday() == 6 for week in weeks)  # Sundays
    assert jobs.count("demo_reference_job") == 1
    assert jobs.count("demo_monitoring_job") == len(weeks)
    assert jobs.count("demo_retraining_job") >= 1
    assert "no_champion" in result.output and "promote -> v" in result.output
    table = result.output[result.output.index("period  ") :].split("Reaction")[0]
    assert max(len(line) for line in table.splitlines()) <= 120
    assert "Notifications in the outbox:" in result.output
    # a second run seeds nothing new and still succeeds (idempotent)
    again = CliRunner().invoke(main, ["demo", "--months", "4", "--rows", "400"])
    assert again.exit_code == 0 and "4 already in the database" in again.output


def test_demo_serve_replays_each_period_through_the_prediction_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RETRAIN_HOME", str(tmp_path / ".retrain"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / ".retrain" / "dagster"))
    result = CliRunner().invoke(main, ["demo", "--months", "4", "--rows", "400", "--serve"])
    assert result.exit_code == 0, result.output
    assert "Live traffic: gradual rollouts through steps 5%, 25%, 50%, 100%" in result.output
    table = result.output[result.output.index("period  ") :].split("Reaction")[0].splitlines()
    assert "served (correct)" in table[0] and "rollout" in table[0]
    # no champion until the first whole training window; the weeks after it are served by it
    promoted = next(i for i, line in enumerate(table) if "promote -> v" in line)
    assert all("no model yet" in line for line in table[1 : promoted + 1])
    champion = re.search(r"promote -> v(\d+)", table[promoted]).group(1)
    served = [re.search(rf"v{champion} ([\d,]+) \(", line) for line in table[promoted + 1 :]]
    assert served and all(served)
    total = sum(int(match.group(1).replace(",", "")) for match in served)
    engine = platform_engine(f"sqlite:///{tmp_path / '.retrain' / 'platform.db'}")
    assert count_rows(engine, "demo") == {"predictions": total, "outcomes": total}


def test_demo_settings_with_serve_keep_what_the_user_set() -> None:
    user = load_settings(promotion_strategy="canary", rollout_min_samples=300)
    served = demo_settings(user, serve=True)
    assert (served.promotion_strategy, served.rollout_min_samples) == ("canary", 300)
    assert (served.rollout_min_hours, served.serve_refresh_seconds) == (0.0, 0.0)
    default = demo_settings(load_settings(), serve=True)
    assert (default.promotion_strategy, default.rollout_min_samples) == ("gradual", 100)
    assert demo_settings(load_settings(), serve=False).promotion_strategy == "immediate"


def test_notify_test_reports_every_channel(
    monkeypatch: pytest.MonkeyPatch, smtp_server, webhook_server
) -> None:
    monkeypatch.setenv("RETRAIN_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("RETRAIN_SMTP_PORT", str(smtp_server.port))
    monkeypatch.setenv("RETRAIN_SMTP_SECURITY", "none")
    monkeypatch.setenv("RETRAIN_NOTIFY_TO", "ops@example.com")
    monkeypatch.setenv("RETRAIN_SLACK_WEBHOOK_URL", webhook_server.url("/slack"))
    result = CliRunner().invoke(main, ["notify-test"])
    assert result.exit_code == 0, result.output
    assert {"log", "smtp", "slack"} <= {line.split()[0] for line in result.output.splitlines()}
    assert "FAILED" not in result.output
    assert len(smtp_server.messages) == 1 and len(webhook_server.posts) == 1


def test_notify_test_names_a_broken_channel_without_its_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RETRAIN_SLACK_WEBHOOK_URL", "http://127.0.0.1:1/services/T0/B0/s3cr3t")
    result = CliRunner().invoke(main, ["notify-test"])
    assert result.exit_code == 1
    assert "slack" in result.output and "FAILED" in result.output
    assert "s3cr3t" not in result.output


@pytest.fixture
def drift_files(tmp_path: Path, small_stream) -> dict[str, Path]:
    from retraining_assets.core.demo import ABRUPT, DemoStream

    stream = DemoStream(rows_per_month=1500, end_month=small_stream.end_month)
    reference = pd.concat([stream.generate(offset) for offset in range(3)])
    paths = {
        "reference": tmp_path / "reference.parquet",
        "stable": tmp_path / "stable.csv",
        "shifted": tmp_path / "shifted.csv.gz",
    }
    reference.to_parquet(paths["reference"])
    stream.generate(4).to_csv(paths["stable"], index=False)
    stream.generate(ABRUPT.first_offset).to_csv(paths["shifted"], index=False)
    return paths


def _drift(*args: str):
    return CliRunner().invoke(main, ["drift", *args])


# the drift files' id and time columns left out, their target named
DRIFT_COLUMNS = ("--drop", "customer_id", "--drop", "event_time", "--target", "defaulted")


def test_drift_command_flags_a_shift_and_writes_reports(drift_files, tmp_path: Path) -> None:
    html, png = tmp_path / "r.html", tmp_path / "r.png"
    result = _drift(
        str(drift_files["reference"]),
        str(drift_files["shifted"]),
        *DRIFT_COLUMNS,
        "--html",
        str(html),
        "--png",
        str(png),
    )
    assert result.exit_code == 1, result.output
    verdict = next(line for line in result.output.splitlines() if "DRIFT in" in line)
    assert "channel" in verdict
    assert html.read_text().count("<svg") >= 14  # a plot per feature
    assert png.read_bytes().startswith(b"\x89PNG")


def test_drift_command_json_is_the_report_schema(drift_files) -> None:
    result = _drift(
        str(drift_files["reference"]),
        str(drift_files["stable"]),
        "--json",
        *DRIFT_COLUMNS,
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["dataset_drift"] is False and report["drifted_features"] == []
    assert set(report["features"]) == set(SPEC.features)
    assert report["features"]["channel"]["ks_statistic"] is None
    assert report["features"]["income"]["chi2_pvalue"] is None
    assert report["target_drift"] is not None


def test_drift_command_names_a_missing_file_or_column(drift_files, tmp_path: Path) -> None:
    result = _drift(str(drift_files["reference"]), str(tmp_path / "nope.csv"))
    assert result.exit_code == 2 and "nope.csv" in result.output
    result = _drift(str(drift_files["reference"]), str(drift_files["stable"]), "--drop", "zzz")
    assert result.exit_code == 2 and "zzz" in result.output


def test_backtest_command_writes_the_json_schema_and_a_plot(tmp_path: Path, small_stream) -> None:
    from retraining_assets.core.demo import DemoStream

    stream = DemoStream(rows_per_month=300, months=6, end_month=small_stream.end_month)
    path = tmp_path / "history.csv"
    pd.concat([stream.generate(offset) for offset in range(6)]).to_csv(path, index=False)
    out, plot = tmp_path / "bt.json", tmp_path / "bt.png"
    result = CliRunner().invoke(main, [
        "backtest", "--data", str(path), "--time-column", "event_time", "--target", "defaulted",
        "--drop", "customer_id", "--json", str(out), "--plot", str(plot),
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert set(report) == {"metric", "higher_is_better", "periods", "settings", "policies"}
    assert report["settings"] == {"period": "month", "training_window": "3M", "drift_window": 1,
                                  "drift_min_records": 0, "schedule": "none",
                                  "drift_verdict": "weighted", "drift_reference": "training",
                                  "drift_notify": "onset", "label_delay": "0"}  # fmt: skip
    assert set(report["policies"]) == {"auto", "monthly", "static", "always"}
    assert report["policies"]["static"]["retrains"] == 0
    assert plot.read_bytes().startswith(b"\x89PNG")


def test_backtest_command_takes_the_four_time_scales(tmp_path: Path, small_stream) -> None:
    from retraining_assets.core.demo import DemoStream

    stream = DemoStream(rows_per_month=300, months=4, end_month=small_stream.end_month)
    path = tmp_path / "history.csv"
    pd.concat([stream.generate(offset) for offset in range(4)]).to_csv(path, index=False)
    out = tmp_path / "bt.json"
    result = CliRunner().invoke(main, [
        "backtest", "--data", str(path), "--time-column", "event_time", "--target", "defaulted",
        "--drop", "customer_id", "--json", str(out), "--period", "week", "--window-days", "56",
        "--drift-window", "2", "--schedule", "monthly",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["settings"] == {"period": "week", "training_window": "56d", "drift_window": 2,
                                  "drift_min_records": 500, "schedule": "monthly",
                                  "drift_verdict": "weighted", "drift_reference": "training",
                                  "drift_notify": "onset", "label_delay": "0"}  # fmt: skip
    monthly = report["policies"]["monthly"]
    assert monthly["retrains_at"] and all(
        row["reasons"][0].startswith("schedule: ") for row in monthly["rows"] if row["retrained"]
    )


@pytest.mark.parametrize(
    ("name", "error"),
    [
        (
            "short.csv",  # one month of records
            "the data spans 1 months (2024-01-01 to 2024-01-01); a backtest needs a whole "
            "training window (3M) and a month after it: at least window + 1 = 4 months",
        ),
        (
            "records.data.gz",  # a raw UCI file: no known table format
            "unsupported file type 'records.data.gz': use .csv, .csv.gz or .parquet",
        ),
    ],
)
def test_backtest_command_names_the_problem_in_one_line(
    tmp_path: Path, small_stream, name: str, error: str
) -> None:
    path = tmp_path / name
    small_stream.generate(0).to_csv(path, index=False)
    result = CliRunner().invoke(main, [
        "backtest", "--data", str(path), "--time-column", "event_time", "--target", "defaulted",
    ])  # fmt: skip
    assert result.exit_code == 2
    # the error alone: no progress bar of zero periods before it
    assert result.output.strip().splitlines() == [f"error: {error}"]


@pytest.mark.parametrize(
    ("environment", "setting"),
    [
        ({"RETRAIN_TRAINING_WINDOW": "3"}, "training_window"),  # the old meaning: 3 periods
        ({"RETRAIN_TRAINING_WINDOW": "5d"}, "training_window"),  # shorter than 7 daily periods
        ({"RETRAIN_RETRAIN_SCHEDULE": "every tuesday"}, "retrain_schedule"),
        (
            {"RETRAIN_PARTITION": "monthly", "RETRAIN_DRIFT_WINDOW": "1"},
            "partition",
        ),  # monthly periods, weekly schedule: coarser than the schedule
    ],
)
def test_bad_time_scales_stop_the_demo_and_the_definitions_before_anything_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, environment: dict, setting: str
) -> None:
    if setting == "partition":
        environment = {**environment, "RETRAIN_RETRAIN_SCHEDULE": "weekly"}
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(main, ["demo", "--months", "4", "--rows", "400"])
    assert result.exit_code == 2
    [line] = result.output.strip().splitlines()
    variable = f"RETRAIN_{setting.upper()}"
    assert line.startswith("error: invalid settings:")
    assert f"setting '{setting}' ({variable})" in line
    assert not (tmp_path / ".retrain").exists()  # nothing ran, nothing was written
    # the code location refuses to load with the same one line (dagster dev, the daemon)
    loaded = subprocess.run(
        [sys.executable, "-c", "import retraining_assets.definitions"],
        capture_output=True,
        text=True,
        env={**os.environ, "DAGSTER_HOME": str(tmp_path / "dagster")},
        check=False,
    )
    assert loaded.returncode != 0
    assert f"setting '{setting}' ({variable})" in loaded.stderr.strip().splitlines()[-1]


def test_the_demo_and_the_code_location_share_the_demo_time_scales(monkeypatch) -> None:
    """`make dev` shows the partitions `retrain demo` ran: weekly unless RETRAIN_PARTITION."""
    monkeypatch.delenv("RETRAIN_PARTITION", raising=False)
    stream = DemoStream(months=4, rows_per_month=400)
    located = demo_pipeline(load_settings(), stream)
    demoed = demo_pipeline(demo_settings(load_settings(), False, stream), stream)
    assert located.settings.partition == demoed.settings.partition == "weekly"
    assert located.timescales == demoed.timescales
    assert located.settings.volume_trigger == 400
    assert demo_pipeline(load_settings(partition="daily"), stream).settings.partition == "daily"
