"""Which records of a large drift window are read: a seeded sample that a database can draw.

Past ~100k records a two-sample test on more rows only finds smaller differences significant,
while reading, parsing and scoring them grows linearly; so a drift window is sampled before it
is read. The sample is a Weyl sequence over the records' positions in time order: position
``i`` is kept when ``(i * MULTIPLIER + seed) mod 2**32 < threshold``. Integer arithmetic only,
so ``SqlRecordSource`` draws exactly the same rows in SQL (``ROW_NUMBER()`` over the time
order) as ``take`` draws from a frame, and only the sample crosses the wire. Because the
multiplier is the golden ratio times 2**32, every residue class of positions is kept at the
same rate: records that arrive round-robin from a few sources are all sampled alike, which a
fixed stride would not do.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

MULTIPLIER = 2_654_435_769  # round(2**32 / golden ratio), odd
MODULUS = 2**32


@dataclass(frozen=True)
class WindowSample:
    """About ``size`` of a window's ``n_window`` records, reproducible from ``seed``."""

    n_window: int
    size: int  # 0, or >= n_window: every record
    seed: int

    @classmethod
    def of(cls, n_window: int, size: int, key: str) -> WindowSample:
        """The sample of a period's window: seeded by the period's key, so a re-run of the
        period reads the same records and reaches the same verdict."""
        return cls(n_window, size, zlib.crc32(key.encode()))

    @property
    def everything(self) -> bool:
        return not self.size or self.size >= self.n_window

    @property
    def threshold(self) -> int:
        """Positions whose hash is below this are kept (the share ``size / n_window``)."""
        return MODULUS if self.everything else self.size * MODULUS // self.n_window

    def keeps(self, positions: np.ndarray) -> np.ndarray:
        """Whether each position (0-based, in time order) is in the sample."""
        hashed = (positions.astype(np.uint64) * MULTIPLIER + self.seed) % MODULUS
        return hashed < self.threshold

    def take(self, window: pd.DataFrame) -> pd.DataFrame:
        """The sampled rows of a window already in time order, order kept."""
        if self.everything:
            return window
        return window[self.keeps(np.arange(len(window)))]
