"""Shared by the engine tests: data with every awkward case, and the report comparison."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

FLOAT_TOLERANCE = 1e-9  # PSI, JS, chi-square, p-values, Wasserstein, moments (relative)
EXACT = ("ks_statistic", "n_reference", "n_current", "drifted", "testable", "exceeded",
         "histogram", "reason", "count", "categories", "labels", "inf_current")  # fmt: skip


def records(n: int, shift: float, seed: int, start: str = "2024-01-01") -> pd.DataFrame:
    """Numeric with nulls, +-inf and a shift; integer-valued floats (ties); a constant; a
    category with nulls; a label; minute timestamps."""
    rng = np.random.default_rng(seed)
    x = rng.normal(shift, 1.0, n)
    x[rng.random(n) < 0.05] = np.nan
    x[:3], x[3] = np.inf, -np.inf
    color = rng.choice(["red", "green", "blue", "grey"], n, p=[0.4, 0.3, 0.2, 0.1]).astype(object)
    color[rng.random(n) < 0.03] = None
    return pd.DataFrame({
        "ts": pd.date_range(start, periods=n, freq="min"),
        "x": x,
        "ties": rng.integers(0, 12, n).astype(np.float64),
        "flat": np.full(n, 2.5),
        "color": color,
        "label": rng.integers(0, 2, n),
    })  # fmt: skip


def assert_same_report(memory: dict[str, Any], pushed: dict[str, Any]) -> None:
    """Verdicts, KS D, counts and histograms identical; every other float to 1e-9."""
    differences: list[str] = []
    _walk(memory, pushed, "", differences)
    assert not differences, "\n".join(differences[:20])


def _walk(a: Any, b: Any, path: str, out: list[str]) -> None:
    key = path.rsplit(".", 1)[-1]
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            if k not in a or k not in b:
                out.append(f"{path}.{k}: only in {'memory' if k in a else 'pushdown'}")
            else:
                _walk(a[k], b[k], f"{path}.{k}", out)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            _walk(x, y, f"{path}[{index}]", out)
    elif isinstance(a, float) and isinstance(b, float) and key not in EXACT and "[" not in path:
        if not (a == b or math.isclose(a, b, rel_tol=FLOAT_TOLERANCE, abs_tol=1e-12)):
            out.append(f"{path}: {a!r} (memory) != {b!r} (pushdown)")
    elif a != b:
        out.append(f"{path}: {a!r} (memory) != {b!r} (pushdown)")
