"""``retrain drift --multivariate``: the dataset scores printed and in the JSON."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from retraining_assets.cli import main


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    """Two files whose marginals agree and whose correlation does not."""
    rng = np.random.default_rng(0)
    n = 3000
    x, noise = rng.normal(size=(2, n))
    reference = pd.DataFrame({"id": range(n), "x": x, "y": rng.normal(size=n)})
    current = pd.DataFrame({"id": range(n), "x": noise, "y": 0.8 * noise + 0.6 * x})
    paths = tmp_path / "reference.parquet", tmp_path / "current.csv"
    reference.to_parquet(paths[0])
    current.to_csv(paths[1], index=False)
    return paths


def test_multivariate_flag_prints_and_jsons_the_scores(files) -> None:
    reference, current = map(str, files)
    shown = CliRunner().invoke(
        main, ["drift", reference, current, "--drop", "id", "--multivariate"]
    )
    assert shown.exit_code == 0, shown.output  # the dataset verdict stays the univariate one
    assert "Domain classifier: **DRIFT** (AUC" in shown.output
    assert "Reconstruction error:" in shown.output
    as_json = CliRunner().invoke(
        main, ["drift", reference, current, "--drop", "id", "--multivariate", "--json"]
    )
    classifier = json.loads(as_json.output)["multivariate"]["classifier"]
    assert classifier["drifted"] and classifier["auc"] > 0.6 and classifier["skipped"] is None
    plain = CliRunner().invoke(main, ["drift", reference, current, "--drop", "id", "--json"])
    assert json.loads(plain.output)["multivariate"] is None


def test_multivariate_with_the_streaming_engine_is_a_clear_error(files) -> None:
    reference, current = map(str, files)
    result = CliRunner().invoke(
        main, ["drift", reference, current, "--multivariate", "--engine", "duckdb"]
    )
    assert result.exit_code == 2
    assert "--multivariate" in result.output and "--engine memory" in result.output
