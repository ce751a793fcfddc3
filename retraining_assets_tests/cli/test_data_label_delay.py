"""`retrain backtest --label-delay`: the replayed labels really arrive late (training and the
volume trigger wait for them, each row still carries the estimate made without them), and a
bad value names the option."""

import json
from pathlib import Path

import pandas as pd
from click.testing import CliRunner

from retraining_assets.cli import main
from retraining_assets.core.demo import DemoStream

# stable months of 400 records, over a volume threshold of 300: without a delay each month's
# records are new labelled ones as soon as it ends
STREAM = DemoStream(rows_per_month=400, months=6, end_month=pd.Timestamp("2024-06-01"))


def _backtest(tmp_path: Path, *options: str):
    path = tmp_path / "history.csv"
    if not path.exists():
        pd.concat([STREAM.generate(o) for o in range(STREAM.months)]).to_csv(path, index=False)
    out = tmp_path / "bt.json"
    result = CliRunner().invoke(
        main,
        ["backtest", "--data", str(path), "--time-column", "event_time", "--target", "defaulted",
         "--drop", "customer_id", "--json", str(out), *options],
        env={"RETRAIN_VOLUME_TRIGGER": "300"},
    )  # fmt: skip
    return result, out


def test_with_a_label_delay_training_waits_a_month_for_the_labels(tmp_path: Path) -> None:
    result, out = _backtest(tmp_path, "--label-delay", "1M")
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["settings"]["label_delay"] == "1M"
    auto = report["policies"]["auto"]["rows"]
    # the first scored month's labels are a month away when it ends: nothing new to train on
    assert auto[0]["reasons"] == [] and not auto[0]["retrained"]
    # a month later they have arrived, and the volume trigger retrains on them
    assert any(reason.startswith("volume: ") for reason in auto[1]["reasons"])
    assert auto[1]["retrained"]
    # every month is still judged before its labels: the estimate stands in
    assert all(isinstance(row["estimated_metric"], float) for row in auto)

    result, out = _backtest(tmp_path, "--label-delay", "0")
    assert result.exit_code == 0, result.output
    at_once = json.loads(out.read_text())["policies"]["auto"]["rows"]
    assert at_once[0]["retrained"] and at_once[0]["reasons"][0].startswith("volume: ")


def test_a_bad_label_delay_names_the_option(tmp_path: Path) -> None:
    result, out = _backtest(tmp_path, "--label-delay", "soon")
    assert result.exit_code == 2
    assert "Invalid value for --label-delay" in result.output
    assert "'soon' is not a duration" in result.output
    assert not out.exists()  # stopped before anything was replayed or written
