"""Data-reconstruction drift (NannyML's): how badly a PCA fitted on the reference rebuilds the
current rows.

Categorical codes become their reference frequency and nulls the reference mean (NannyML
imputes and frequency-encodes the same way), every column is standardised on the reference,
and a PCA keeps the components explaining ``variance`` (65%, NannyML's default) of it. The
error is the mean Euclidean distance between a standardised row and its reconstruction. The
band is mean ± 3 std of the error of ``chunks`` reference chunks, each scored by a PCA fitted
on the other chunks (a chunk scored by a PCA that saw it would make the band too narrow).
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
MAX_ROWS = 100_000  # current rows scored (seeded sample); the error is a mean
MIN_ROWS_PER_CHUNK = 5


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


class _Reconstructor:
    """Imputation, frequency encoding, scaling and the PCA basis, fitted on reference rows."""

    def __init__(self, x: np.ndarray, categorical: np.ndarray, variance: float) -> None:
        self.categorical = categorical
        # per categorical column: reference share of each code (codes are 0..K-1), the
        # last slot the share of nulls; a code the reference lacks gets 0
        self.frequencies: dict[int, np.ndarray] = {}
        for j in np.flatnonzero(categorical):
            column = x[:, j]
            nulls = np.isnan(column)
            counts = np.bincount(column[~nulls].astype(np.int64))
            self.frequencies[j] = np.append(counts, nulls.sum()) / max(len(x), 1)
        numeric = self._frequency(x)
        with np.errstate(all="ignore"):
            self.mean = np.nanmean(numeric, axis=0) if len(numeric) else np.zeros(x.shape[1])
        self.mean = np.nan_to_num(self.mean)  # an all-null column imputes 0
        filled = self._impute(numeric)
        centred = filled - self.mean
        self.scale = centred.std(axis=0)
        self.scale[~(self.scale > 0)] = 1.0  # constant columns contribute nothing
        z = centred / self.scale
        _, s, vt = np.linalg.svd(z, full_matrices=False)
        explained = np.cumsum(s**2) / max(float((s**2).sum()), 1e-300)
        k = int(np.searchsorted(explained, variance) + 1)
        self.basis = vt[: min(k, len(vt))]

    def _frequency(self, x: np.ndarray) -> np.ndarray:
        out = x.copy()
        for j, table in self.frequencies.items():
            column = x[:, j]
            index = np.where(np.isnan(column), len(table) - 1, column).astype(np.int64)
            known = index < len(table) - 1
            known |= np.isnan(column)
            out[:, j] = np.where(known, table[np.minimum(index, len(table) - 1)], 0.0)
        return out

    def _impute(self, x: np.ndarray) -> np.ndarray:
        return np.where(np.isnan(x), self.mean, x)

    def errors(self, x: np.ndarray) -> np.ndarray:
        z = (self._impute(self._frequency(x)) - self.mean) / self.scale
        rebuilt = (z @ self.basis.T) @ self.basis
        return np.linalg.norm(z - rebuilt, axis=1)


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
    chunk_errors = [
        float(_Reconstructor(reference[chunk != k], categorical, variance)
              .errors(reference[chunk == k]).mean())
        for k in range(chunks)
    ]  # fmt: skip
    centre, spread = float(np.mean(chunk_errors)), float(np.std(chunk_errors, ddof=1))
    lower, upper = centre - SIGMAS * spread, centre + SIGMAS * spread
    error = float(_Reconstructor(reference, categorical, variance).errors(current).mean())
    return ReconstructionDrift(error, lower, upper, bool(error < lower or error > upper))
