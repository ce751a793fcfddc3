"""The reference: what each period is validated and compared against.

Until a champion exists it is the first complete training window of the record source
(``TimeScales.first_training_window``); afterwards the champion's training window (each model
version keeps its own drift profile, so a rollback restores what drift is measured against).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np
import pandas as pd

from retraining_assets.core.dataset import DatasetSpec
from retraining_assets.core.drift import ReferenceProfile, fit_reference
from retraining_assets.core.drift.calibration import (
    CalibrationBands,
    CalibrationError,
    calibrate,
    reference_periods,
)
from retraining_assets.core.drift.multivariate import MAX_ROWS as MULTIVARIATE_SAMPLE_ROWS
from retraining_assets.core.locations import Location, location, write_file
from retraining_assets.core.pipeline import Pipeline
from retraining_assets.core.registry import CHAMPION, Registry
from retraining_assets.core.registry.artifacts import reaching
from retraining_assets.core.sources import RecordSource
from retraining_assets.core.timescales import TimeScales
from retraining_assets.core.training_sample import read_training_window
from retraining_assets.core.validation import ReferenceBounds

WindowBands = tuple[CalibrationBands | None, str | None]  # the bands, or None and why not

VALIDATED = "validated"  # RETRAIN_DRIFT_REFERENCE: the newest window the champion was judged on


@dataclass(frozen=True)
class Reference:
    """GX bounds and the drift profile of one reference window."""

    start: datetime
    end: datetime
    rows: int
    origin: str  # "first training window" or "champion v<N>"
    bounds: ReferenceBounds
    profile: ReferenceProfile
    champion_version: int | None = None  # the champion it was built for (None: none yet)
    # how the version's performance is estimated without labels (core.estimation), as JSON
    estimator: dict | None = None
    # drift bands from the window's own periods (the calibrated verdict), or why there are none
    calibration: CalibrationBands | None = None
    calibration_skipped: str | None = None

    @classmethod
    def fit(
        cls,
        frame: pd.DataFrame,
        spec: DatasetSpec,
        start: datetime,
        end: datetime,
        origin: str,
        scores: np.ndarray | None = None,
        estimator: dict | None = None,
        scales: TimeScales | None = None,
        bands: WindowBands | None = None,
    ) -> Reference:
        """``scales`` (the pipeline's) decide the periods the bands are calibrated on;
        ``bands``: ``calibrate_reference``'s result for this frame, when already computed."""
        bands, skipped = bands or calibrate_reference(frame, spec, scales)
        return cls(
            start=start,
            end=end,
            rows=len(frame),
            origin=origin,
            bounds=ReferenceBounds.learn(frame, spec),
            profile=fit_drift_profile(frame, spec, scores),
            estimator=estimator,
            calibration=bands,
            calibration_skipped=skipped,
        )

    @property
    def window(self) -> str:
        return f"{self.start:%Y-%m-%d} to {self.end:%Y-%m-%d}"

    def to_bytes(self) -> bytes:
        """A JSON header (window, origin, bounds) then the drift profile; no pickle."""
        header = json.dumps(
            {
                "start": self.start.isoformat(),
                "end": self.end.isoformat(),
                "rows": self.rows,
                "origin": self.origin,
                "bounds": self.bounds.to_dict(),
                "champion_version": self.champion_version,
                "estimator": self.estimator,
                "calibration": self.calibration.to_dict() if self.calibration else None,
                "calibration_skipped": self.calibration_skipped,
            }
        ).encode()
        return struct.pack(">Q", len(header)) + header + self.profile.to_bytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> Reference:
        (length,) = struct.unpack(">Q", data[:8])
        header = json.loads(data[8 : 8 + length])
        return cls(
            start=datetime.fromisoformat(header["start"]),
            end=datetime.fromisoformat(header["end"]),
            rows=header["rows"],
            origin=header["origin"],
            bounds=ReferenceBounds.from_dict(header["bounds"]),
            profile=ReferenceProfile.from_bytes(data[8 + length :]),
            champion_version=header.get("champion_version"),
            estimator=header.get("estimator"),
            calibration=CalibrationBands.from_dict(header["calibration"])
            if header.get("calibration")
            else None,
            calibration_skipped=header.get("calibration_skipped")
            or (None if header.get("calibration") else "a reference stored before calibration"),
        )


@dataclass(frozen=True)
class ReferenceStore:
    """The reference each pipeline currently measures against, one file per pipeline.

    ``reference_data`` writes it (from the first training window, or from the champion's own stored
    reference after a promotion or rollback); validation and drift read it.
    """

    root: Location

    def __post_init__(self) -> None:  # a folder, a file:// or an s3:// URL, as the registry
        object.__setattr__(self, "root", location(self.root))

    def path(self, pipeline: str) -> Location:
        return self.root / pipeline / "reference" / "current.bin"

    def save(self, pipeline: str, reference: Reference) -> Location:
        path = self.path(pipeline)
        with reaching(self.root, f"write the reference of {pipeline}"):
            write_file(path, reference.to_bytes())  # readers see the old or the new one
        return path

    def load(self, pipeline: str) -> Reference | None:
        path = self.path(pipeline)
        with reaching(self.root, f"read the reference of {pipeline}"):
            data = path.read_bytes() if path.exists() else None
        return Reference.from_bytes(data) if data is not None else None

    def current(self, pipeline: str, registry: Registry) -> Reference | None:
        """The stored reference, replaced first by the champion's own when it was built for
        another champion: a crash between a champion move and the refresh cannot leave drift
        measured against the old model. Needs no record source."""
        stored = self.load(pipeline)
        champion = registry.get_alias(pipeline, CHAMPION)
        if champion is None or (stored and stored.champion_version == champion.version):
            return stored
        reference = champion_reference(registry, pipeline)
        if reference is None:  # a champion registered without a profile keeps the old one
            return stored
        self.save(pipeline, reference)
        return reference


def fit_drift_profile(
    frame: pd.DataFrame, spec: DatasetSpec, scores: np.ndarray | None = None
) -> ReferenceProfile:
    """The spec decides each feature's kind; the target's distribution is profiled too, and
    the model's scores on the same records when given (for prediction drift), and a seeded
    sample of its rows for the multivariate drift scores."""
    return fit_reference(
        frame,
        numeric=list(spec.numeric_features),
        categorical=list(spec.categorical_features),
        target=spec.target,
        target_kind="numeric" if spec.task == "regression" else "categorical",
        scores=scores,
        sample_rows=MULTIVARIATE_SAMPLE_ROWS,
    )


def calibrate_reference(
    frame: pd.DataFrame, spec: DatasetSpec, scales: TimeScales | None
) -> WindowBands:
    """Bands from the window cut as ``reference_periods`` cuts it (the backtest's rule too),
    or why not."""
    periods = reference_periods(frame, spec.time_column, scales)
    try:
        return calibrate(periods, lambda part: fit_drift_profile(part, spec)), None
    except CalibrationError as error:
        return None, str(error)


def champion_reference(registry: Registry, pipeline: str) -> Reference | None:
    """The current champion's own reference, stored (and signed) with its version, so a
    rollback restores it; None without a champion or a stored profile."""
    champion = registry.get_alias(pipeline, CHAMPION)
    if champion is None:
        return None
    stored = registry.load_profile_bytes(pipeline, champion.version)
    if not stored:
        return None
    reference = Reference.from_bytes(stored)
    return replace(
        reference, origin=f"champion v{champion.version}", champion_version=champion.version
    )


def build_reference(pipeline: Pipeline, registry: Registry, source: RecordSource) -> Reference:
    """The champion's own reference (stored with its version, so a rollback restores it), or
    the first complete training window while there is no champion."""
    reference = champion_reference(registry, pipeline.name)
    if reference is not None:
        return reference
    start, end = pipeline.reference_window()
    frame, _ = read_training_window(  # read as a training of that window reads it
        source,
        start,
        end,
        max_rows=pipeline.settings.training_max_rows,
        holdout_records=pipeline.settings.holdout_records or None,
    )
    if frame.empty:
        raise ValueError(
            f"the first training window {start:%Y-%m-%d} to {end:%Y-%m-%d} of "
            f"{source.description} holds no records; set RETRAIN_PARTITION_START "
            "(or RETRAIN_TRAINING_WINDOW)"
        )
    return Reference.fit(
        frame, pipeline.spec, start, end, origin="first training window",
        scales=pipeline.timescales,
    )  # fmt: skip


def refresh_reference(
    pipeline: Pipeline, registry: Registry, store: ReferenceStore, source: RecordSource
) -> Reference:
    """Point validation and drift at the current champion's reference (after any change). A
    reference re-validated for this same champion (``core.revalidation``) stays while
    ``RETRAIN_DRIFT_REFERENCE`` is ``validated``."""
    if pipeline.settings.drift_reference == VALIDATED:  # read only where it can stay
        stored = store.current(pipeline.name, registry)
        if stored is not None and stored.champion_version is not None:
            return stored
    reference = build_reference(pipeline, registry, source)
    store.save(pipeline.name, reference)
    return reference
