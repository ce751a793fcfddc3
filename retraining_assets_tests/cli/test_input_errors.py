"""Bad data through the real `retrain validate`: data that cannot be one table (no rows, a
repeated column name, glob files that disagree) is refused in one line naming the file and
column (exit status 2); data no model can learn from (one class, infinite values) is listed as
a problem of its column (exit status 1), never called usable."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retraining_assets_tests.cli.cli_run import assert_one_line_error, run_retrain


def _records(n: int = 60) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ts": pd.date_range("2024-01-01", periods=n, freq="D"),
            "x1": np.linspace(0, 1, n),
            "x2": np.arange(n) % 5,
            "y": np.arange(n) % 2,
        }
    )


def validate(home: Path, data: Path | str) -> subprocess.CompletedProcess[str]:
    return run_retrain(
        home, "validate", "--data", str(data), "--time-column", "ts", "--target", "y"
    )


def test_a_file_without_rows_is_refused(tmp_path: Path) -> None:
    _records().head(0).to_csv(tmp_path / "empty.csv", index=False)
    assert_one_line_error(validate(tmp_path, tmp_path / "empty.csv"), "empty.csv", "no rows")


def test_a_repeated_column_name_is_refused_not_renamed(tmp_path: Path) -> None:
    (tmp_path / "r.csv").write_text("ts,x1,x1,y\n2024-01-01,1,2,0\n2024-01-02,3,4,1\n")
    done = validate(tmp_path, tmp_path / "r.csv")
    assert_one_line_error(done, "r.csv", "column 'x1' appears 2 times")
    assert "x1.1" not in done.stdout


@pytest.mark.parametrize(
    ("second", "named"),
    [
        (_records().rename(columns={"x1": "x1_new"}), "b.parquet' has no column 'x1'"),
        (_records().assign(x2=_records()["x2"].astype(str)), "b.parquet': column 'x2' is"),
    ],
    ids=["renamed", "retyped"],
)
def test_a_parquet_glob_whose_files_disagree_names_the_file_and_column(
    tmp_path: Path, second: pd.DataFrame, named: str
) -> None:
    _records().to_parquet(tmp_path / "a.parquet")
    second.to_parquet(tmp_path / "b.parquet")
    assert_one_line_error(validate(tmp_path, tmp_path / "*.parquet"), named, "a.parquet")


def test_a_parquet_glob_that_agrees_is_validated_as_one_table(tmp_path: Path) -> None:
    _records().to_parquet(tmp_path / "a.parquet")
    _records().to_parquet(tmp_path / "b.parquet")
    done = validate(tmp_path, tmp_path / "*.parquet")
    assert done.returncode == 0, done.stderr
    assert "120 rows, 4 columns" in done.stdout and "Usable" in done.stdout


@pytest.mark.parametrize(
    ("frame", "problem"),
    [
        (_records().assign(y=1), "column 'y': a single class '1' in 60 labelled rows"),
        (
            _records().assign(x1=_records()["x1"].where(_records().index != 9, np.inf)),
            "column 'x1': inf or -inf in 1 of 60 rows",
        ),
    ],
    ids=["one-class", "infinite"],
)
def test_data_no_model_can_learn_from_is_not_called_usable(
    tmp_path: Path, frame: pd.DataFrame, problem: str
) -> None:
    frame.to_csv(tmp_path / "r.csv", index=False)
    done = validate(tmp_path, tmp_path / "r.csv")
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"1 problem(s):\n  - {problem}" in done.stdout
    assert "Usable" not in done.stdout and "Traceback" not in done.stderr
