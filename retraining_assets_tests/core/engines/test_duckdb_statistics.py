"""DuckDB over Parquet and CSV computes the same drift report as the in-memory engine."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from retraining_assets.core.drift import DriftInputError, fit_reference
from retraining_assets.core.engines import (
    DuckDBRunner,
    EngineError,
    compare_pushdown,
    compare_window,
    file_relation,
    fit_reference_in_engine,
)
from retraining_assets.core.sources import FileRecordSource, SourceError
from retraining_assets_tests.core.engines.equality import assert_same_report, records

START, END = datetime(2024, 1, 2), datetime(2024, 1, 30)


@pytest.fixture(scope="module")
def reference_template() -> pd.DataFrame:
    return records(40_000, 0.0, seed=1)


@pytest.fixture(scope="module")
def current_template() -> pd.DataFrame:
    frame = records(60_000, 0.15, seed=2)
    frame.loc[3000:3200, "color"] = "purple"  # unseen in the reference
    return frame


@pytest.fixture
def reference(reference_template: pd.DataFrame) -> pd.DataFrame:
    return reference_template.copy()  # built once per module, a copy for each test


@pytest.fixture
def current(current_template: pd.DataFrame) -> pd.DataFrame:
    return current_template.copy()


@pytest.fixture(scope="module")
def profile(reference_template: pd.DataFrame):
    return fit_reference(reference_template.drop(columns="ts"), target="label")


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_window_of_files_equals_memory(tmp_path: Path, current, profile, suffix: str) -> None:
    """Nulls, infinities, ties, a constant column, an unseen category, target drift: KS D
    identical, every other statistic to 1e-9, the same verdicts (large enough for the
    asymptotic KS path, which is the pushed-down one)."""
    path = tmp_path / f"current.{suffix}"
    current.to_parquet(path) if suffix == "parquet" else current.to_csv(path, index=False)
    source = FileRecordSource(path=str(path), time_column="ts")
    memory = profile.compare(source.load(START, END))
    pushed = compare_window(profile, source, START, END, "duckdb")
    assert memory.n_current == pushed.n_current == 28 * 24 * 60
    assert memory.features["color"]["histogram"]["current"][-1] > 0  # unseen counted
    assert_same_report(memory.to_dict(), pushed.to_dict())


def test_small_samples_use_the_exact_ks_of_the_in_memory_code(
    tmp_path: Path, reference, current
) -> None:
    """Both samples at most 10,000 values: the column is fetched and scipy's exact p-value
    used, as in memory."""
    profile = fit_reference(reference.drop(columns="ts").iloc[:5_000], target="label")
    path = tmp_path / "current.parquet"
    current.to_parquet(path)
    source = FileRecordSource(path=str(path), time_column="ts")
    start, end = datetime(2024, 1, 1, 3), datetime(2024, 1, 1, 9)
    assert_same_report(
        profile.compare(source.load(start, end)).to_dict(),
        compare_window(profile, source, start, end, "duckdb").to_dict(),
    )


def test_small_batches_give_the_same_report(tmp_path: Path, current, profile) -> None:
    """The sorted current column streamed in batches of 997 rows: ties straddle batch
    boundaries (12 distinct values in `ties`), infinities sit in the first and last batch."""
    path = tmp_path / "current.parquet"
    current.to_parquet(path)
    expected = profile.compare(pd.read_parquet(path)).to_dict()
    with DuckDBRunner(batch_rows=997) as runner:
        pushed = compare_pushdown(profile, runner, file_relation(runner, str(path)))
    assert_same_report(expected, pushed.to_dict())
    with DuckDBRunner(batch_rows=997) as runner:
        fitted = fit_reference_in_engine(
            runner, file_relation(runner, str(path)), max_reference_values=5_000
        )
    sample = fit_reference(pd.read_parquet(path), max_reference_values=5_000)
    assert (fitted.columns["x"].sorted_values == sample.columns["x"].sorted_values).all()


def test_empty_period_is_refused_as_in_memory(tmp_path: Path, current, profile) -> None:
    path = tmp_path / "current.parquet"
    current.to_parquet(path)
    source = FileRecordSource(path=str(path), time_column="ts")
    empty = datetime(2030, 1, 1), datetime(2030, 2, 1)
    with pytest.raises(DriftInputError, match="empty"):
        profile.compare(source.load(*empty))
    with pytest.raises(DriftInputError, match=r"empty \(0 rows\).*current.parquet"):
        compare_window(profile, source, *empty, "duckdb")


def test_reference_fitted_in_duckdb_is_the_in_memory_profile(tmp_path: Path, reference) -> None:
    """Below max_reference_values the profile is byte-identical (same hash); above it the
    seeded sample, edges and bins are identical, so KS D against any current is too."""
    path = tmp_path / "reference.parquet"
    reference.drop(columns="ts").to_parquet(path)
    frame = pd.read_parquet(path)
    with DuckDBRunner() as runner:
        relation = file_relation(runner, str(path))
        whole = fit_reference_in_engine(runner, relation, target="label")
        sampled = fit_reference_in_engine(
            runner, relation, target="label", max_reference_values=5_000
        )
    assert whole.content_hash == fit_reference(frame, target="label").content_hash
    expected = fit_reference(frame, target="label", max_reference_values=5_000)
    for name, column in expected.columns.items():
        fitted = sampled.columns[name]
        for field in ("sorted_values", "edges", "bin_counts", "counts"):
            if hasattr(column, field):
                assert (getattr(column, field) == getattr(fitted, field)).all(), (name, field)
    assert sampled.warnings == expected.warnings


def test_memory_limit_too_small_names_the_setting(tmp_path: Path, current, profile) -> None:
    path = tmp_path / "current.parquet"
    current.to_parquet(path)
    runner = DuckDBRunner(memory_limit="1MB", temp_directory=tmp_path / "spill")
    with runner, pytest.raises(EngineError, match=r"memory_limit='1MB'.*--memory-limit"):
        compare_pushdown(profile, runner, file_relation(runner, str(path)))


def test_memory_limit_below_the_data_spills(tmp_path: Path, current, profile) -> None:
    """A limit far below the data (the files hold 60,000 rows x 6 columns): DuckDB spills
    to the folder and the report is unchanged."""
    path = tmp_path / "current.parquet"
    current.to_parquet(path)
    expected = profile.compare(pd.read_parquet(path)).to_dict()
    with DuckDBRunner(memory_limit="64MB", temp_directory=tmp_path / "spill") as runner:
        pushed = compare_pushdown(profile, runner, file_relation(runner, str(path)))
    assert_same_report(expected, pushed.to_dict())


def test_glob_whose_files_disagree_names_the_file(tmp_path: Path, current) -> None:
    first = current.iloc[:100]
    first.to_parquet(tmp_path / "a.parquet")
    second = pa.Table.from_pandas(current.iloc[100:200].assign(ties=lambda f: f.ties.astype(str)))
    pq.write_table(second, tmp_path / "b.parquet")
    with DuckDBRunner() as runner, pytest.raises(SourceError, match=r"b\.parquet.*ties"):
        file_relation(runner, str(tmp_path / "*.parquet"))
    first.to_csv(tmp_path / "a.csv", index=False)
    first.rename(columns={"x": "y"}).to_csv(tmp_path / "b.csv", index=False)
    with DuckDBRunner() as runner, pytest.raises(SourceError, match=r"b\.csv.*no column 'x'"):
        file_relation(runner, str(tmp_path / "*.csv"))
