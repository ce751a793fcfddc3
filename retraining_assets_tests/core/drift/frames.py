"""The frame builder the drift tests share: a reference and a current frame in which only
``scale`` drifts (numeric, integer, categorical and boolean columns beside it)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def frames(n: int = 4000, seed: int = 9) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)

    def frame(drifted: bool) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "scale": rng.normal(0, 1.5 if drifted else 1.0, n),
                "stable": rng.normal(0, 1, n),
                "count": rng.poisson(3, n),
                "color": rng.choice(["red", "green", "blue"], n),
                "flag": rng.random(n) < 0.3,
            }
        )

    return frame(False), frame(True)
