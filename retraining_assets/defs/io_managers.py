"""The assets' IO manager: frames as Parquet, on any fsspec filesystem, through Dagster's
``UPathIOManager`` (which places each partition in its own file).

- a ``pandas.DataFrame`` goes to ``<key>/<partition>.parquet`` (pyarrow; the dtypes a pickle
  kept survive: time zones, categoricals, nullable integers);
- a ``TrainingWindow`` goes to a folder ``<key>/<partition>.window/``: its three parts as
  Parquet, the train weights as Parquet, the window's bounds and fingerprint as JSON;
- a ``PeriodDescription`` (``current_data`` above ``RETRAIN_MATERIALIZE_MAX_ROWS``) as JSON;
- anything else (a version number, a report dict) pickled as Dagster's own ``fs_io_manager``
  does, in a file without extension.

The base path is a local folder (by default the instance's storage folder, as for Dagster's
default IO manager) or any fsspec URL (``s3://bucket/dagster``, ``memory://`` in tests), so
any worker that can reach it reads what another wrote.
"""

from __future__ import annotations

import json
import pickle
from datetime import datetime
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from dagster._core.storage.upath_io_manager import escape_dotdot_segments, escape_leading_slash
from upath import UPath

from retraining_assets.core.candidates import TrainingWindow
from retraining_assets.core.drift.calibration import CalibrationBands
from retraining_assets.core.period_description import PeriodDescription
from retraining_assets.core.reference import WindowBands
from retraining_assets.core.splits import Split

PARQUET, WINDOW, JSON = ".parquet", ".window", ".json"
_SUFFIXES = (PARQUET, WINDOW, JSON)
_PARTS = ("train", "valid", "holdout")


class FrameIOManager(dg.UPathIOManager):
    """Frames and training windows as Parquet, descriptions as JSON, the rest pickled."""

    extension = ""  # chosen per value: see ``_target``

    def make_safe_partition_path(self, base_path: UPath, partition: str) -> UPath:
        # a partition key is a literal file name, never a way out of the base folder
        return base_path / escape_dotdot_segments(escape_leading_slash(partition))

    def dump_to_path(self, context: dg.OutputContext, obj: Any, path: UPath) -> None:
        target = _target(path, obj)
        for stale in _candidates(path):  # a value of another kind written here before
            if stale != target and stale.exists():
                _remove(stale)
        if isinstance(obj, pd.DataFrame):
            _write_frame(obj, target)
        elif isinstance(obj, TrainingWindow):
            _write_window(obj, target)
        elif isinstance(obj, PeriodDescription):
            target.write_text(json.dumps(obj.to_dict(), indent=1))
        else:
            with target.open("wb") as file:
                pickle.dump(obj, file, pickle.HIGHEST_PROTOCOL)

    def load_from_path(self, context: dg.InputContext, path: UPath) -> Any:
        if (frame := _with(path, PARQUET)).exists():
            return _read_frame(frame)
        if (window := _with(path, WINDOW)).exists():
            return _read_window(window)
        if (description := _with(path, JSON)).exists():
            return PeriodDescription.from_dict(json.loads(description.read_text()))
        with path.open("rb") as file:
            return pickle.load(file)

    def path_exists(self, path: UPath) -> bool:
        return any(candidate.exists() for candidate in _candidates(path))

    def get_metadata(self, context: dg.OutputContext, obj: Any) -> dict[str, Any]:
        if isinstance(obj, pd.DataFrame | TrainingWindow | PeriodDescription):
            kind = {pd.DataFrame: "parquet", TrainingWindow: "parquet parts"}.get(type(obj), "json")
            return {"storage": dg.MetadataValue.text(kind)}
        return {}


class FrameIOManagerResource(dg.ConfigurableIOManagerFactory):
    """``FrameIOManager`` at ``base_url`` (an fsspec URL or folder; default: the Dagster
    instance's storage folder, where the default IO manager writes)."""

    base_url: str | None = None

    def create_io_manager(self, context: dg.InitResourceContext) -> FrameIOManager:
        base = self.base_url or context.instance.storage_directory()  # type: ignore[union-attr]
        return FrameIOManager(base_path=UPath(base))


# --- files ---------------------------------------------------------------------------------
def _with(path: UPath, suffix: str) -> UPath:
    return path.with_name(path.name + suffix)


def _candidates(path: UPath) -> list[UPath]:
    return [path, *(_with(path, suffix) for suffix in _SUFFIXES)]


def _target(path: UPath, obj: Any) -> UPath:
    if isinstance(obj, pd.DataFrame):
        return _with(path, PARQUET)
    if isinstance(obj, TrainingWindow):
        return _with(path, WINDOW)
    if isinstance(obj, PeriodDescription):
        return _with(path, JSON)
    return path


def _remove(path: UPath) -> None:
    if path.is_dir():
        path.fs.rm(path.path, recursive=True)
    else:
        path.unlink()


def _write_frame(frame: pd.DataFrame, path: UPath) -> None:
    if not all(isinstance(column, str) for column in frame.columns):
        bad = next(c for c in frame.columns if not isinstance(c, str))
        raise TypeError(f"column {bad!r} is not a string: Parquet needs string column names")
    table = pa.Table.from_pandas(frame)  # a RangeIndex as metadata, another as columns
    with path.open("wb") as file:
        pq.write_table(table, file)


def _read_frame(path: UPath) -> pd.DataFrame:
    with path.open("rb") as file:
        return pq.read_table(file).to_pandas()


def _write_window(window: TrainingWindow, folder: UPath) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    split = window.split
    for name in _PARTS:
        _write_frame(getattr(split, name), folder / f"{name}{PARQUET}")
    if split.train_weight is not None:
        _write_frame(pd.DataFrame({"weight": split.train_weight}), folder / f"weight{PARQUET}")
    about = {
        "start": window.start.isoformat(),
        "end": window.end.isoformat(),
        "fingerprint": window.fingerprint,
        "sample": window.sample,
        "bands": _bands_to_json(window.bands),
    }
    (folder / "window.json").write_text(json.dumps(about, indent=1))


def _read_window(folder: UPath) -> TrainingWindow:
    about = json.loads((folder / "window.json").read_text())
    parts = {name: _read_frame(folder / f"{name}{PARQUET}") for name in _PARTS}
    weight = folder / f"weight{PARQUET}"
    train_weight = (
        _read_frame(weight)["weight"].to_numpy(dtype=np.float64) if weight.exists() else None
    )
    return TrainingWindow(
        split=Split(**parts, train_weight=train_weight),
        start=datetime.fromisoformat(about["start"]),
        end=datetime.fromisoformat(about["end"]),
        fingerprint=about["fingerprint"],
        sample=about.get("sample"),
        bands=_bands_from_json(about.get("bands")),
    )


def _bands_to_json(bands: WindowBands | None) -> dict[str, Any] | None:
    if bands is None:
        return None
    calibration, skipped = bands
    return {"calibration": calibration.to_dict() if calibration else None, "skipped": skipped}


def _bands_from_json(about: dict[str, Any] | None) -> WindowBands | None:
    if about is None:  # a window written before the bands were computed with it
        return None
    calibration = about["calibration"]
    return (CalibrationBands.from_dict(calibration) if calibration else None), about["skipped"]
