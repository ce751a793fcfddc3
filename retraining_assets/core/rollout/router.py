"""The router: variants take consecutive bucket ranges (the control at the top), so a
nested ramp only ever moves entities from champion to challenger. Bucket ``b`` goes to the
variant whose range ``[start, start + weight)`` holds ``b / 10000``, the starts being
GrowthBook's floating cumulative sums, so weights that are not multiples of 1e-4 split at the
same bucket as GrowthBook's ``getBucketRanges``/``chooseVariation``. Ids GrowthBook leaves out
of an experiment (``""`` and the number 0, see ``hashing.is_excluded``) get the control."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from retraining_assets.core.rollout.hashing import (
    N_BUCKETS,
    Engine,
    buckets_and_exclusions,
    fnv1a32_text,
    is_excluded,
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
        cumulative, ends = 0.0, []
        for name in order:  # GrowthBook's getBucketRanges: a running float sum
            cumulative += weights[name]
            ends.append(cumulative)
        points = np.arange(N_BUCKETS) / N_BUCKETS  # GrowthBook's hash values
        table = np.minimum(np.searchsorted(ends, points, side="right"), len(order) - 1)
        table = table.astype(np.uint8)
        starts = np.searchsorted(table, np.arange(len(order)), side="left")
        stops = np.searchsorted(table, np.arange(len(order)), side="right")
        for name, lo, hi in zip(order, starts, stops, strict=True):
            # GrowthBook would serve a share below 1e-4 a whole bucket (or none)
            if weights[name] > 0 and (weights[name] < 1 / N_BUCKETS or hi <= lo):
                raise ValueError(
                    f"weight of {name!r} ({weights[name]:g}) is below the bucket resolution "
                    f"1/{N_BUCKETS}"
                )
        names = np.array(order, dtype=object)
        set_ = object.__setattr__
        set_(self, "weights", weights)
        ranges = {v: (int(a), int(b)) for v, a, b in zip(order, starts, stops, strict=True)}
        set_(self, "ranges", ranges)
        set_(self, "_table", table)
        set_(self, "_names", names)
        set_(self, "_by_bucket", tuple(names[table].tolist()))
        set_(self, "_prefix", fnv1a32_text(f"{self.salt}:"))
        set_(self, "_prefix_u64", np.uint64(self._prefix))

    def bucket(self, entity_id: str | int) -> int:
        """Bucket of one id: the numba kernel when available (~8x), else pure Python."""
        return prefixed_bucket(self._prefix, self._prefix_u64, entity_id)

    def assign(self, entity_id: str | int) -> str:
        """Variant of one id (the control for an id GrowthBook leaves out)."""
        variant = self._by_bucket[self.bucket(entity_id)]
        return self.control if is_excluded(entity_id) else variant

    def buckets(self, ids: Any, *, engine: Engine = "auto") -> np.ndarray:
        return buckets_and_exclusions(self._prefix, ids, engine)[0]

    def assign_many(self, ids: Any, *, engine: Engine = "auto") -> np.ndarray:
        """Variants of many ids: an object array of variant names, in input order."""
        bucket_of, excluded = buckets_and_exclusions(self._prefix, ids, engine)
        variants = self._names.take(self._table[bucket_of])
        variants[excluded] = self.control
        return variants
