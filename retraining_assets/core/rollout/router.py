"""The router: variants take consecutive bucket ranges (the control at the top), so a
nested ramp only ever moves entities from champion to challenger."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from retraining_assets.core.rollout.hashing import (
    N_BUCKETS,
    Engine,
    buckets,
    fnv1a32,
    prefixed_bucket,
)


def validate_weights(weights: Mapping[str, float]) -> dict[str, float]:
    """Check variant shares: names are non-empty strings, shares in [0, 1] summing to 1."""
    if not weights:
        raise ValueError("weights must name at least one variant")
    checked: dict[str, float] = {}
    for name, share in weights.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"variant names must be non-empty strings, got {name!r}")
        try:
            value = float(share)
        except (TypeError, ValueError):
            raise ValueError(f"weight of {name!r} must be a number, got {share!r}") from None
        if not 0.0 <= value <= 1.0:  # also rejects NaN
            raise ValueError(f"weight of {name!r} must be in [0, 1], got {share!r}")
        checked[name] = value
    total = math.fsum(checked.values())
    if abs(total - 1.0) > 1e-9:
        raise ValueError(f"weights must sum to 1, got {total:.12g} from {checked}")
    return checked


@dataclass(frozen=True)
class Router:
    """Deterministic, salted assignment of entity ids to variants (see module docstring).

    ``Router("model-v7", {"champion": 0.9, "challenger": 0.1}).assign("user-1")``. The salt
    names the experiment: a new salt reshuffles everybody, the same salt keeps assignments
    stable across processes, machines and share changes (nested ramps).
    """

    salt: str
    weights: Mapping[str, float]
    control: str = "champion"
    ranges: dict[str, tuple[int, int]] = field(init=False, repr=False)
    _by_bucket: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _table: np.ndarray = field(init=False, repr=False, compare=False)
    _names: np.ndarray = field(init=False, repr=False, compare=False)
    _prefix: int = field(init=False, repr=False, compare=False)
    _prefix_u64: np.uint64 = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.salt, str):
            raise TypeError(f"salt must be a str, got {type(self.salt).__name__}")
        weights = validate_weights(self.weights)
        order = [v for v in weights if v != self.control]
        order += [self.control] if self.control in weights else []
        ends = np.rint(np.cumsum([weights[v] for v in order]) * N_BUCKETS).astype(np.int64)
        ends[-1] = N_BUCKETS
        starts = np.concatenate([[0], ends[:-1]])
        for name, lo, hi in zip(order, starts, ends, strict=True):
            if weights[name] > 0 and hi <= lo:
                raise ValueError(
                    f"weight of {name!r} ({weights[name]:g}) is below the bucket resolution "
                    f"1/{N_BUCKETS}"
                )
        table = np.repeat(np.arange(len(order), dtype=np.uint8), ends - starts)
        names = np.array(order, dtype=object)
        set_ = object.__setattr__
        set_(self, "weights", weights)
        ranges = {v: (int(a), int(b)) for v, a, b in zip(order, starts, ends, strict=True)}
        set_(self, "ranges", ranges)
        set_(self, "_table", table)
        set_(self, "_names", names)
        set_(self, "_by_bucket", tuple(names[table].tolist()))
        set_(self, "_prefix", fnv1a32(f"{self.salt}:".encode()))
        set_(self, "_prefix_u64", np.uint64(self._prefix))

    def bucket(self, entity_id: str | int) -> int:
        """Bucket of one id: the numba kernel when available (~8x), else pure Python."""
        return prefixed_bucket(self._prefix, self._prefix_u64, entity_id)

    def assign(self, entity_id: str | int) -> str:
        """Variant of one id."""
        return self._by_bucket[self.bucket(entity_id)]

    def buckets(self, ids: Any, *, engine: Engine = "auto") -> np.ndarray:
        return buckets(self.salt, ids, engine=engine)

    def assign_many(self, ids: Any, *, engine: Engine = "auto") -> np.ndarray:
        """Variants of many ids: an object array of variant names, in input order."""
        return self._names.take(self._table[self.buckets(ids, engine=engine)])
