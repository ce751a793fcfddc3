"""``ReferenceProfile``: everything a comparison needs from the reference, fitted once, stored
as an ``.npz`` without pickles and identified by the SHA-256 of its content."""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from retraining_assets.core.drift.columns import (
    CategoricalProfile,
    ColumnProfile,
    FitOptions,
    NumericProfile,
)
from retraining_assets.core.drift.comparison import compare

if TYPE_CHECKING:
    from retraining_assets.core.drift.report import DriftReport
    from retraining_assets.core.drift_thresholds import DriftThresholds

PROFILE_FORMAT = 2  # 2 adds the seeded row sample; a profile without one is saved as 1
FORMATS = (1, 2)


@dataclass
class ReferenceProfile:
    """Everything needed to compare a month against the reference, fitted once.

    Persist with :meth:`to_bytes`/:meth:`save` (an ``.npz`` without pickled objects: JSON
    metadata plus plain arrays); ``content_hash`` is the SHA-256 of that canonical content.
    """

    columns: dict[str, ColumnProfile]
    n_rows: int
    options: FitOptions = field(default_factory=FitOptions)
    target: ColumnProfile | None = None
    scores: ColumnProfile | None = None
    target_column: str | None = None
    score_column: str | None = None
    warnings: list[str] = field(default_factory=list)
    # seeded feature rows (``multivariate.encode_profiled``) for the multivariate tests
    sample: np.ndarray | None = None
    _hash: str | None = field(default=None, repr=False, compare=False)

    # -- comparison

    def compare(
        self,
        current: pd.DataFrame,
        thresholds: DriftThresholds | None = None,
        *,
        target: pd.Series | np.ndarray | str | None = None,
        scores: pd.Series | np.ndarray | str | None = None,
        n_jobs: int | None = None,
        multivariate: bool = False,
    ) -> DriftReport:
        """Compare ``current`` against this profile; see :func:`compare`."""
        return compare(
            self, current, thresholds, target=target, scores=scores, n_jobs=n_jobs,
            multivariate=multivariate,
        )  # fmt: skip

    # -- persistence

    @property
    def content_hash(self) -> str:
        if self._hash is None:
            meta, arrays = self._payload()
            digest = hashlib.sha256(meta)
            for key in sorted(arrays):
                arr = np.ascontiguousarray(arrays[key])
                digest.update(f"{key}|{arr.dtype.str}|{arr.shape}".encode())
                digest.update(arr.tobytes())
            self._hash = digest.hexdigest()
        return self._hash

    def to_bytes(self) -> bytes:
        meta, arrays = self._payload()
        buffer = io.BytesIO()
        np.savez(
            buffer,
            __meta__=np.frombuffer(meta, dtype=np.uint8),
            __hash__=np.frombuffer(self.content_hash.encode(), dtype=np.uint8),
            **arrays,
        )
        return buffer.getvalue()

    def save(self, path: str | os.PathLike[str]) -> Path:
        path = Path(path)
        path.write_bytes(self.to_bytes())
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ReferenceProfile:
        return cls.from_bytes(Path(path).read_bytes())

    @classmethod
    def from_bytes(cls, data: bytes) -> ReferenceProfile:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        meta = json.loads(arrays.pop("__meta__").tobytes())
        stored_hash = arrays.pop("__hash__").tobytes().decode()
        if meta.get("format") not in FORMATS:
            raise ValueError(f"unsupported reference profile format: {meta.get('format')}")
        roles: dict[str, dict[Any, ColumnProfile]] = {"feature": {}, "target": {}, "scores": {}}
        for entry in meta["columns"]:  # names keep their JSON type (str or int)
            roles[entry["role"]][entry["name"]] = _column_from_meta(entry, arrays)
        profile = cls(
            columns=roles["feature"],
            n_rows=meta["n_rows"],
            options=FitOptions(**meta["options"]),
            target=next(iter(roles["target"].values()), None),
            scores=next(iter(roles["scores"].values()), None),
            target_column=meta["target_column"],
            score_column=meta["score_column"],
            warnings=list(meta["warnings"]),
            sample=arrays.get("sample"),
        )
        if profile.content_hash != stored_hash:
            raise ValueError("reference profile content does not match its stored hash")
        return profile

    def _entries(self) -> list[tuple[str, str, ColumnProfile]]:
        out: list[tuple[str, str, ColumnProfile]] = [
            ("feature", name, prof) for name, prof in self.columns.items()
        ]
        if self.target is not None:
            out.append(("target", self.target_column or "target", self.target))
        if self.scores is not None:
            out.append(("scores", self.score_column or "scores", self.scores))
        return out

    def _payload(self) -> tuple[bytes, dict[str, np.ndarray]]:
        columns_meta, arrays = [], {}
        for index, (role, name, prof) in enumerate(self._entries()):
            entry, column_arrays = _column_to_meta(prof)
            columns_meta.append({"role": role, "name": name, "index": index, **entry})
            arrays.update({f"{index}.{key}": value for key, value in column_arrays.items()})
        options = {f.name: getattr(self.options, f.name) for f in fields(self.options)}
        if self.sample is None:  # format 1 exactly, so old profiles re-save byte-identical
            options.pop("sample_rows")
        else:
            arrays["sample"] = self.sample.astype(np.float64, copy=False)
        meta = {
            "format": 1 if self.sample is None else PROFILE_FORMAT,
            "n_rows": self.n_rows,
            "options": options,
            "target_column": self.target_column,
            "score_column": self.score_column,
            "warnings": self.warnings,
            "columns": columns_meta,
        }
        text = json.dumps(meta, sort_keys=True, separators=(",", ":"), allow_nan=False)
        return text.encode(), arrays


def _column_to_meta(prof: ColumnProfile) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    if isinstance(prof, NumericProfile):
        meta = {
            "kind": "numeric", "n_rows": prof.n_rows, "n_null": prof.n_null,
            "n_neg_inf": prof.n_neg_inf, "n_pos_inf": prof.n_pos_inf,
            "mean": prof.mean, "std": prof.std, "sampled": prof.sampled,
        }  # fmt: skip
        arrays = {
            "sorted": prof.sorted_values.astype(np.float64, copy=False),
            "edges": prof.edges.astype(np.float64, copy=False),
            "bins": prof.bin_counts.astype(np.int64, copy=False),
        }
        return meta, arrays
    meta = {
        "kind": "categorical", "n_rows": prof.n_rows, "n_null": prof.n_null,
        "categories": prof.categories, "vocabulary": prof.vocabulary,
    }  # fmt: skip
    return meta, {"counts": prof.counts.astype(np.int64, copy=False)}


def _column_from_meta(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> ColumnProfile:
    prefix = f"{meta['index']}."
    if meta["kind"] == "numeric":
        return NumericProfile(
            sorted_values=arrays[prefix + "sorted"], n_rows=meta["n_rows"], n_null=meta["n_null"],
            n_neg_inf=meta["n_neg_inf"], n_pos_inf=meta["n_pos_inf"], mean=meta["mean"],
            std=meta["std"], edges=arrays[prefix + "edges"], bin_counts=arrays[prefix + "bins"],
            sampled=meta["sampled"],
        )  # fmt: skip
    return CategoricalProfile(
        categories=list(meta["categories"]), counts=arrays[prefix + "counts"],
        n_rows=meta["n_rows"], n_null=meta["n_null"], vocabulary=meta["vocabulary"],
    )  # fmt: skip
