"""`retrain drift --verdict calibrated` cuts the reference by the pipeline's own rule
(``reference_periods`` with ``RETRAIN_PERIOD`` / ``RETRAIN_DRIFT_WINDOW``), so a file
comparison and the pipeline calibrate on the same normal variation."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from retraining_assets.cli import main

ROWS_PER_WEEK = 300


@pytest.fixture(scope="module")
def weekly_levels(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A reference whose ``x`` moves between two levels week by week (its normal variation)
    and a current week at one of those levels."""
    folder, rng = tmp_path_factory.mktemp("levels"), np.random.default_rng(7)
    weeks = []
    for week, level in enumerate([-0.5, 0.5] * 4):
        offsets = pd.to_timedelta(rng.uniform(0, 7, ROWS_PER_WEEK), unit="D")
        weeks.append(pd.DataFrame({
            "ts": pd.Timestamp("2024-01-01") + pd.Timedelta(weeks=week) + offsets,
            "x": rng.normal(level, 1, ROWS_PER_WEEK),
        }))  # fmt: skip
    reference, current = folder / "reference.csv", folder / "current.csv"
    pd.concat(weeks).sort_values("ts").to_csv(reference, index=False)
    offsets = pd.to_timedelta(rng.uniform(0, 7, ROWS_PER_WEEK), unit="D")
    pd.DataFrame(
        {"ts": pd.Timestamp("2024-03-01") + offsets, "x": rng.normal(0.5, 1, ROWS_PER_WEEK)}
    ).to_csv(current, index=False)
    return reference, current


def _calibrated(files: tuple[Path, Path], monkeypatch, tmp_path: Path, **env: str):
    monkeypatch.setenv("RETRAIN_HOME", str(tmp_path))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    reference, current = files
    return CliRunner().invoke(main, [
        "drift", str(reference), str(current), "--drop", "ts",
        "--verdict", "calibrated", "--time-column", "ts",
    ])  # fmt: skip


@pytest.mark.parametrize(
    ("period", "window", "status", "said"),
    [
        # one-week chunks: the weekly levels are the reference's normal variation
        ("weekly", "1", 0, "verdict calibrated: no alarm"),
        # two-week chunks each hold both levels: a narrow band, a week at one level is outside
        ("daily", "14", 1, "verdict calibrated: ALARM"),
    ],
)
def test_the_drift_window_sets_the_normal_variation(
    weekly_levels, monkeypatch, tmp_path: Path, period: str, window: str, status: int, said: str
) -> None:
    result = _calibrated(
        weekly_levels, monkeypatch, tmp_path, RETRAIN_PERIOD=period, RETRAIN_DRIFT_WINDOW=window
    )
    assert result.exit_code == status, result.output
    assert "DRIFT in x" in result.output  # the any-feature rule alarms either way
    assert said in result.output


def test_a_time_column_the_reference_lacks_is_named(
    weekly_levels, monkeypatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RETRAIN_HOME", str(tmp_path))
    reference, current = weekly_levels
    result = CliRunner().invoke(main, [
        "drift", str(reference), str(current), "--drop", "ts",
        "--verdict", "calibrated", "--time-column", "when",
    ])  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "--time-column 'when' is not a column of" in result.output
