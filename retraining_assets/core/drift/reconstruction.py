"""Data-reconstruction drift (NannyML's): how badly a PCA fitted on the reference rebuilds the
current rows.

Categorical codes become one-hot indicators of their ``MAX_LEVELS`` most frequent reference
codes (null is a level; NannyML frequency-encodes instead, which turns balanced categories into
a near-constant column that standardising blows up into noise), numeric nulls the reference
mean; every column is standardised on the reference and a PCA keeps the components explaining
``variance`` (65%, NannyML's default) of it. The error is the mean Euclidean distance between
a standardised row and its reconstruction. The band is mean ± 3 std of the error of
``chunks`` reference chunks, each scored by a PCA fitted on the other chunks (a chunk scored by
a PCA that saw it would make the band too narrow).
A correlation break the marginals do not show moves rows off the reference's principal
subspace, so the error rises.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

VARIANCE = 0.65
CHUNKS = 10
SIGMAS = 3.0
MAX_ROWS = 50_000  # current rows scored (seeded sample); the error is a mean
MIN_ROWS_PER_CHUNK = 5
MAX_LEVELS = 20  # indicators per categorical column


@dataclass(frozen=True)
class ReconstructionDrift:
    """Mean reconstruction error of the current rows and the band of normal variation."""

    error: float
    lower: float
    upper: float
    drifted: bool  # error outside [lower, upper]
    skipped: str | None = None

    @classmethod
    def skip(cls, reason: str) -> ReconstructionDrift:
        return cls(math.nan, math.nan, math.nan, False, reason)


class _Encoder:
    """Numeric columns with nulls imputed, categorical ones one-hot on their most frequent
    reference codes (null is the code -1; rarer and unseen codes are all-zero rows)."""

    def __init__(self, x: np.ndarray, categorical: np.ndarray) -> None:
        self.numeric = np.flatnonzero(~categorical)
        self.levels: dict[int, np.ndarray] = {}
        for j in np.flatnonzero(categorical):
            codes, counts = np.unique(np.nan_to_num(x[:, j], nan=-1.0), return_counts=True)
            self.levels[j] = codes[np.argsort(-counts, kind="stable")[:MAX_LEVELS]]
        numeric = x[:, self.numeric]
        with np.errstate(all="ignore"):
            mean = np.nanmean(numeric, axis=0) if len(numeric) else np.zeros(numeric.shape[1])
        self.fill = np.nan_to_num(mean)  # an all-null column imputes 0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        width = self.numeric.size + sum(levels.size for levels in self.levels.values())
        out = np.empty((len(x), width))
        numeric = x[:, self.numeric]
        out[:, : self.numeric.size] = np.where(np.isnan(numeric), self.fill, numeric)
        at = self.numeric.size
        for j, levels in self.levels.items():
            codes = np.nan_to_num(x[:, j], nan=-1.0)
            out[:, at : at + levels.size] = codes[:, None] == levels[None, :]
            at += levels.size
        return out


class _Pca:
    """Scaling and the principal axes keeping ``variance``, fitted on encoded rows."""

    def __init__(self, z: np.ndarray, variance: float) -> None:
        self.mean = z.mean(axis=0)
        self.scale = z.std(axis=0)
        self.scale[~(self.scale > 0)] = 1.0  # constant columns contribute nothing
        z = (z - self.mean) / self.scale
        # the axes from the small covariance matrix: much faster than an SVD of the rows,
        # the same subspace
        values, vectors = np.linalg.eigh(z.T @ z)
        values, vectors = np.clip(values[::-1], 0.0, None), vectors[:, ::-1]
        explained = np.cumsum(values) / max(float(values.sum()), 1e-300)
        k = int(np.searchsorted(explained, variance) + 1)
        self.basis = vectors[:, : min(k, len(values))]

    def errors(self, z: np.ndarray) -> np.ndarray:
        """Distance of each standardised row from its projection (Pythagoras: the basis is
        orthonormal, so no reconstruction needs to be built)."""
        z = (z - self.mean) / self.scale
        kept = z @ self.basis
        return np.sqrt(np.maximum((z * z).sum(axis=1) - (kept * kept).sum(axis=1), 0.0))


def _errors(reference: np.ndarray, current: np.ndarray, categorical: np.ndarray,
            variance: float) -> np.ndarray:  # fmt: skip
    """Reconstruction errors of ``current`` rows by a PCA fitted on ``reference`` rows."""
    encode = _Encoder(reference, categorical)
    return _Pca(encode(reference), variance).errors(encode(current))


def reconstruction_drift(
    reference: np.ndarray,
    current: np.ndarray,
    categorical: np.ndarray,
    *,
    seed: int = 0,
    variance: float = VARIANCE,
    chunks: int = CHUNKS,
    max_rows: int = MAX_ROWS,
) -> ReconstructionDrift:
    """Reconstruction drift of two encoded matrices (``multivariate.encode_rows``)."""
    if len(reference) < chunks * MIN_ROWS_PER_CHUNK or len(current) == 0:
        return ReconstructionDrift.skip(
            f"too few rows: reference {len(reference)}, current {len(current)} (the "
            f"reconstruction band needs at least {chunks * MIN_ROWS_PER_CHUNK} reference rows)"
        )
    rng = np.random.default_rng([seed, 1])
    if len(reference) > max_rows:
        reference = reference[rng.choice(len(reference), max_rows, replace=False)]
    if len(current) > max_rows:
        current = current[rng.choice(len(current), max_rows, replace=False)]
    chunk = rng.permutation(len(reference)) % chunks
    encode = _Encoder(reference, categorical)  # levels from all reference rows: a category
    ref = encode(reference)  # one chunk lacks is not an error of that chunk's PCA
    chunk_errors = [
        float(_Pca(ref[chunk != k], variance).errors(ref[chunk == k]).mean()) for k in range(chunks)
    ]
    centre, spread = float(np.mean(chunk_errors)), float(np.std(chunk_errors, ddof=1))
    lower, upper = centre - SIGMAS * spread, centre + SIGMAS * spread
    error = float(_Pca(ref, variance).errors(encode(current)).mean())
    return ReconstructionDrift(error, lower, upper, bool(error < lower or error > upper))
