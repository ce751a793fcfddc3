"""Drift between two files on disk, and the errors naming an unsupported or missing file."""

from __future__ import annotations

import pytest

from retraining_assets.core.drift import drift_between_files
from retraining_assets.core.sources import SourceError
from retraining_assets_tests.core.drift.frames import frames


def test_drift_between_files(tmp_path) -> None:
    ref, cur = frames(n=500)
    ref.to_csv(tmp_path / "ref.csv.gz", index=False)
    cur.to_parquet(tmp_path / "cur.parquet")
    report = drift_between_files(tmp_path / "ref.csv.gz", tmp_path / "cur.parquet")
    assert set(report.features) == set(ref.columns)
    (tmp_path / "x.txt").write_text("a")
    with pytest.raises(SourceError, match="unsupported"):
        drift_between_files(tmp_path / "x.txt", tmp_path / "cur.parquet")
    with pytest.raises(SourceError, match="not found"):
        drift_between_files(tmp_path / "nope.csv", tmp_path / "cur.parquet")
