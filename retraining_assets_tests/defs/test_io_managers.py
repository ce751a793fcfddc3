"""The assets' IO manager: frames round-trip through Parquet (never pickled), one file per
partition, on a local folder and on an fsspec URL."""

from dataclasses import replace
from datetime import datetime
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from upath import UPath

from retraining_assets.core.candidates import TrainingWindow
from retraining_assets.core.drift.calibration import CalibrationBands
from retraining_assets.core.period_description import ParquetPart, PeriodDescription
from retraining_assets.core.splits import Split
from retraining_assets.defs.io_managers import FrameIOManagerResource

DAYS = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-01-04")


def awkward(day: str) -> pd.DataFrame:
    """Dtypes a CSV or a careless Parquet writer loses."""
    return pd.DataFrame(
        {
            "at": pd.date_range(day, periods=4, freq="6h", tz="Europe/Zurich"),
            "naive": pd.date_range(day, periods=4, freq="6h"),
            "colour": pd.Categorical(["red", None, "blue", "red"], categories=["red", "blue"]),
            "count": pd.array([1, None, 3, 4], dtype="Int64"),
            "flag": pd.array([True, None, False, True], dtype="boolean"),
            "text": ["a", None, "c", "d"],
            "x": [0.5, np.nan, 2.5, 3.5],
        }
    )


@dg.asset(partitions_def=DAYS)
def frames(context: dg.AssetExecutionContext) -> pd.DataFrame:
    return awkward(context.partition_key)


@dg.asset(partitions_def=DAYS)
def row_count(frames: pd.DataFrame) -> int:
    return len(frames)


@dg.asset(partitions_def=DAYS)
def frame_copy(frames: pd.DataFrame) -> pd.DataFrame:
    return frames


def _materialize(base: str, instance: dg.DagsterInstance, day: str) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [frames, row_count, frame_copy],
        partition_key=day,
        instance=instance,
        resources={"io_manager": FrameIOManagerResource(base_url=base)},
    )


@pytest.mark.parametrize("where", ["folder", "memory"])
def test_a_partitioned_frame_round_trips_through_parquet(where: str, tmp_path: Path) -> None:
    base = str(tmp_path / "io") if where == "folder" else f"memory://{tmp_path.name}/io"
    with dg.instance_for_test() as instance:
        for day in ("2024-01-01", "2024-01-02"):
            result = _materialize(base, instance, day)
            assert result.success
            # the downstream step loaded the frame back from the file: the same dtypes, values
            pd.testing.assert_frame_equal(result.output_for_node("frame_copy"), awkward(day))
            assert result.output_for_node("row_count") == 4
    stored = sorted(p.relative_to(UPath(base)).as_posix() for p in UPath(base).rglob("*"))
    assert "frames/2024-01-01.parquet" in stored and "frames/2024-01-02.parquet" in stored
    assert "row_count/2024-01-01" in stored  # an int is pickled, as by fs_io_manager
    frame_files = [name for name in stored if name.startswith(("frames/", "frame_copy/"))]
    assert frame_files and all(name.endswith(".parquet") for name in frame_files)
    with (UPath(base) / "frames" / "2024-01-02.parquet").open("rb") as file:
        assert file.read(4) == b"PAR1"  # Parquet, not a pickle


def test_the_default_base_is_the_instance_storage(tmp_path: Path) -> None:
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        result = dg.materialize(
            [frames], partition_key="2024-01-03", instance=instance,
            resources={"io_manager": FrameIOManagerResource()},
        )  # fmt: skip
        assert result.success
        storage = Path(instance.storage_directory())
    assert (storage / "frames" / "2024-01-03.parquet").is_file()


def _manager(base: UPath):
    return FrameIOManagerResource(base_url=str(base)).create_io_manager(
        dg.build_init_resource_context()
    )


def test_a_training_window_is_stored_as_parquet_parts(tmp_path: Path) -> None:
    manager, path = _manager(UPath(tmp_path)), UPath(tmp_path) / "window"
    frame = awkward("2024-01-01")
    window = TrainingWindow(
        split=Split(frame.iloc[:2], frame.iloc[2:3], frame.iloc[3:], np.array([0.5, 1.5])),
        start=datetime(2024, 1, 1), end=datetime(2024, 1, 2), fingerprint="abc",
        sample={"n_window": 9, "n_read": 4, "n_holdout": 1, "seed": 3, "max_rows": 4},
        bands=(CalibrationBands({"x": {"psi": 0.25, "ks_d": 0.1}}, periods=3), None),
    )  # fmt: skip
    manager.dump_to_path(dg.build_output_context(), window, path)
    assert sorted(p.name for p in (tmp_path / "window.window").iterdir()) == [
        "holdout.parquet", "train.parquet", "valid.parquet", "weight.parquet", "window.json",
    ]  # fmt: skip
    loaded = manager.load_from_path(dg.build_input_context(), path)
    for part in ("train", "valid", "holdout"):  # index kept too: a split's rows are ordered
        pd.testing.assert_frame_equal(getattr(loaded.split, part), getattr(window.split, part))
    np.testing.assert_array_equal(loaded.split.train_weight, window.split.train_weight)
    assert (loaded.start, loaded.end, loaded.fingerprint, loaded.sample, loaded.bands) == (
        window.start, window.end, window.fingerprint, window.sample, window.bands,
    )  # fmt: skip
    # the candidates' reference takes the window's bands as stored, or why there are none
    why = replace(window, bands=(None, "1 reference period(s) with at least 30 rows"))
    manager.dump_to_path(dg.build_output_context(), why, path)
    assert manager.load_from_path(dg.build_input_context(), path).bands == why.bands


def test_a_value_of_another_kind_replaces_the_old_file(tmp_path: Path) -> None:
    manager, path = _manager(UPath(tmp_path)), UPath(tmp_path) / "2024-01-01"
    manager.dump_to_path(dg.build_output_context(), awkward("2024-01-01"), path)
    description = PeriodDescription(
        partition="2024-01-01", start="2024-01-01T00:00:00", end="2024-01-02T00:00:00",
        rows=10, source="files 'x'", validated_rows=4,
        files=[ParquetPart("x.parquet", [0, 2])],
    )  # fmt: skip
    manager.dump_to_path(dg.build_output_context(), description, path)
    assert [p.name for p in tmp_path.iterdir()] == ["2024-01-01.json"]
    assert manager.load_from_path(dg.build_input_context(), path) == description


def test_a_frame_with_a_non_string_column_is_refused_by_name(tmp_path: Path) -> None:
    manager = _manager(UPath(tmp_path))
    with pytest.raises(TypeError, match="column 3 is not a string"):
        manager.dump_to_path(dg.build_output_context(), pd.DataFrame({3: [1]}), UPath(tmp_path))


def test_a_frame_pickled_by_dagsters_default_io_manager_still_loads(tmp_path: Path) -> None:
    base = str(tmp_path / "io")
    with dg.instance_for_test() as instance:
        before = dg.materialize(
            [frames], partition_key="2024-01-01", instance=instance,
            resources={"io_manager": dg.FilesystemIOManager(base_dir=base)},
        )  # fmt: skip
        assert before.success and (tmp_path / "io" / "frames" / "2024-01-01").is_file()
        after = dg.materialize(
            [frames, frame_copy], partition_key="2024-01-01", instance=instance,
            selection=[frame_copy.key],
            resources={"io_manager": FrameIOManagerResource(base_url=base)},
        )  # fmt: skip
        assert after.success
        pd.testing.assert_frame_equal(after.output_for_node("frame_copy"), awkward("2024-01-01"))
