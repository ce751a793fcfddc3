"""Rollout: the traffic router, rollout plans and the experiment statistics behind decisions.

Plain Python (numpy, scipy, pyarrow; numba when installed), no Dagster, no database: the rollout
assets, the serving path and the backtest call these functions. ``decide`` is the one place a
rollout decision (continue / advance / promote / rollback / halt) is made.

Router hash (reproducible in any language)
------------------------------------------
``fnv1a32(data)``: ``h = 0x811C9DC5``, then for each byte ``b``:
``h = ((h ^ b) * 0x01000193) mod 2**32``.

* ``text(id)``: a string id as is; an integer id in decimal ASCII (``-`` for negatives, no
  leading zeros, no ``+``), so ``42`` and ``"42"`` land in the same bucket.
* ``h1 = fnv1a32(utf8(salt + ":" + text(id)))``
* ``bucket = fnv1a32(ascii(decimal(h1))) mod 10000``, an integer in ``[0, 10000)``.

This is GrowthBook's hash version 2 with ``seed = salt + ":"`` (GrowthBook reports
``bucket / 10000``). The second round decorrelates experiments whose salts differ only in their
last characters (a single FNV round gave 47 % instead of 50 % co-assignment in GrowthBook v1).
Test vectors: ``rollout_vectors.json`` next to this module. Batch hashing uses numba kernels
when numba is importable (``RETRAIN_ROUTER_NUMBA=0`` forces the numpy/pure-Python paths, which
give identical buckets).

Bucket layout (nested ramps)
----------------------------
Variants take consecutive bucket ranges starting at 0, in the order of the weights mapping,
except the *control* (``"champion"`` by default), which always takes the top of the line. With
one challenger it owns ``[0, round(w * 10000))``: raising its share from 5 % to 25 % to 100 % only
moves entities champion -> challenger, never back. Range ends are cumulative and rounded, so
the widths add up to exactly 10,000. With several treatments the guarantee holds for changes of
the *last* listed treatment's share (the one next to the control); growing an earlier one
shifts the ranges after it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any, Literal

import numpy as np
import pyarrow as pa
from scipy import stats

# --------------------------------------------------------------------------------------------
# Hash
# --------------------------------------------------------------------------------------------

FNV_OFFSET = 0x811C9DC5
FNV_PRIME = 0x01000193
N_BUCKETS = 10_000
_MASK = 0xFFFFFFFF
_MINUS, _ZERO = 0x2D, 0x30  # ASCII "-" and "0"

Engine = Literal["auto", "numba", "numpy"]


def fnv1a32(data: bytes, h: int = FNV_OFFSET) -> int:
    """32-bit FNV-1a of ``data``, continuing from state ``h`` (default: the offset basis)."""
    for b in data:
        h = ((h ^ b) * FNV_PRIME) & _MASK
    return h


def _id_text(entity_id: object, position: int | None = None) -> str:
    """The text an id is hashed as; rejects types whose text would be ambiguous."""
    if isinstance(entity_id, str):
        return entity_id
    if isinstance(entity_id, int | np.integer) and not isinstance(entity_id, bool | np.bool_):
        return str(int(entity_id))
    where = "" if position is None else f" at position {position}"
    if entity_id is None:
        raise ValueError(f"entity id{where} is missing (None)")
    raise TypeError(
        f"entity id{where} must be a str or an int, got {type(entity_id).__name__} {entity_id!r}"
    )


def bucket(salt: str, entity_id: str | int) -> int:
    """The bucket in [0, 10000) of one id (pure Python; see the module docstring)."""
    return _second_round(fnv1a32(f"{salt}:{_id_text(entity_id)}".encode()))


def _second_round(h1: int) -> int:
    return fnv1a32(b"%d" % h1) % N_BUCKETS


def buckets(salt: str, ids: Any, *, engine: Engine = "auto") -> np.ndarray:
    """Buckets of many ids (int32 array), vectorised; same values as :func:`bucket`.

    ``ids``: a numpy array (integer, unicode or object), a pyarrow array, a pandas Series, or
    any sequence of str/int. ``engine="auto"`` uses the numba kernels when numba is installed,
    otherwise the numpy implementation.
    """
    prefix = fnv1a32(f"{salt}:".encode())
    kind, payload = _prepare_ids(ids)
    kernels = _kernels() if engine != "numpy" else None
    if engine == "numba" and kernels is None:
        raise RuntimeError("engine='numba' requested but numba is not installed")
    if kernels is None and kind == "ucs4":
        # UTF-8 through Arrow via a list: pyarrow cuts numpy unicode at the first NUL
        (codes,) = payload
        kind, payload = _prepare_ids(codes.view(f"<U{codes.shape[1]}").ravel().tolist())
    if kernels is None:
        return _ints_numpy(*payload, prefix) if kind == "int" else _flat_numpy(*payload, prefix)
    out = np.empty(payload[-1].shape[0] - (kind == "flat"), np.int32)
    getattr(kernels, kind)(*payload, np.uint64(prefix), out)
    return out


# ---- input preparation ---------------------------------------------------------------------


def _prepare_ids(ids: Any) -> tuple[str, tuple[np.ndarray, ...]]:
    """Normalise ids to ("int", values) | ("ucs4", codepoints 2-D) | ("flat", bytes, offsets)."""
    if isinstance(ids, np.ndarray):
        if ids.ndim != 1:
            raise ValueError(f"entity ids must be one-dimensional, got shape {ids.shape}")
        if ids.dtype.kind in "iu":
            return "int", (ids,)
        if ids.dtype.kind == "U":
            width = max(ids.dtype.itemsize // 4, 1)
            codes = np.ascontiguousarray(ids.astype(f"<U{width}", copy=False)).view(np.uint32)
            return "ucs4", (codes.reshape(ids.size, width),)
        if ids.dtype.kind != "O":
            raise TypeError(f"entity ids must be strings or integers, got dtype {ids.dtype}")
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    if not isinstance(ids, pa.Array):
        if not isinstance(ids, Sequence | np.ndarray) and not hasattr(ids, "__array__"):
            ids = list(ids)
        try:
            ids = pa.array(ids)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError):
            # mixed str/int, ints beyond 64 bits, or bad types: per-element text (names the bad id)
            ids = pa.array([_id_text(x, i) for i, x in enumerate(ids)], type=pa.large_string())
    return _prepare_arrow(ids)


def _prepare_arrow(arr: pa.Array) -> tuple[str, tuple[np.ndarray, ...]]:
    if arr.null_count:
        first = int(np.flatnonzero(arr.is_null().to_numpy(zero_copy_only=False))[0])
        raise ValueError(f"entity id at position {first} is missing (None/null)")
    if pa.types.is_integer(arr.type):
        return "int", (arr.to_numpy(),)
    if pa.types.is_dictionary(arr.type):
        return _prepare_arrow(arr.dictionary_decode())
    if pa.types.is_large_string(arr.type) or pa.types.is_string(arr.type):
        _, offset_buffer, data_buffer = arr.buffers()
        width = np.int64 if pa.types.is_large_string(arr.type) else np.int32
        offsets = np.frombuffer(
            offset_buffer, width, count=len(arr) + 1, offset=arr.offset * width().itemsize
        )
        data = np.frombuffer(data_buffer, np.uint8) if data_buffer else np.zeros(0, np.uint8)
        return "flat", (data, offsets)
    if pa.types.is_null(arr.type) and len(arr) == 0:
        return "int", (np.zeros(0, np.int64),)
    raise TypeError(f"entity ids must be strings or integers, got {arr.type}")


# ---- numpy implementation --------------------------------------------------------------------


def _flat_numpy(data: np.ndarray, offsets: np.ndarray, prefix: int) -> np.ndarray:
    """FNV over variable-length byte strings: ids sorted by length so each byte position
    touches a prefix of the arrays (no masks, no padded matrix)."""
    starts = offsets[:-1].astype(np.int64)
    lengths = np.diff(offsets).astype(np.int64)
    order = np.argsort(-lengths, kind="stable")
    starts, neg_lengths = starts[order], -lengths[order]
    h = np.full(order.size, prefix, np.uint32)
    prime = np.uint32(FNV_PRIME)
    for k in range(int(-neg_lengths[0]) if order.size else 0):
        m = int(np.searchsorted(neg_lengths, -k, side="left"))  # ids longer than k bytes
        h[:m] ^= data[starts[:m] + k]
        h[:m] *= prime
    h1 = np.empty_like(h)
    h1[order] = h
    return _decimal_numpy(np.full(h1.size, FNV_OFFSET, np.uint32), h1.astype(np.uint64))


def _ints_numpy(values: np.ndarray, prefix: int) -> np.ndarray:
    h = np.full(values.size, prefix, np.uint32)
    if values.dtype.kind == "i":
        negative = values < 0
        h[negative] = (h[negative] ^ np.uint32(_MINUS)) * np.uint32(FNV_PRIME)
        # |x| in uint64, exact for the int64 minimum too (two's complement wrap)
        magnitude = np.where(negative, -values.astype(np.int64), values).astype(np.uint64)
    else:
        magnitude = values.astype(np.uint64)
    h1 = _decimal_numpy(h, magnitude, raw=True)
    return _decimal_numpy(np.full(h1.size, FNV_OFFSET, np.uint32), h1.astype(np.uint64))


_POW10 = np.array([10**k for k in range(20)], dtype=np.uint64)


def _decimal_numpy(h: np.ndarray, values: np.ndarray, raw: bool = False) -> np.ndarray:
    """Continue FNV states ``h`` with the decimal digits of ``values``; bucket unless ``raw``."""
    n_digits = np.maximum(np.searchsorted(_POW10, values, side="right"), 1)
    prime = np.uint32(FNV_PRIME)
    for k in range(int(n_digits.max()) if values.size else 0):
        active = n_digits > k
        exponent = np.where(active, n_digits - 1 - k, 0)
        digit = (values // _POW10[exponent]) % np.uint64(10)
        stepped = (h ^ (digit.astype(np.uint32) + np.uint32(_ZERO))) * prime
        h = np.where(active, stepped, h)
    return h if raw else (h % np.uint32(N_BUCKETS)).astype(np.int32)


# ---- numba kernels (compiled lazily, cached on disk) ------------------------------------------


@dataclass(frozen=True)
class _Kernels:
    """One kernel per normalised input kind (see ``_prepare_ids``)."""

    flat: Callable[..., None]
    ucs4: Callable[..., None]
    int: Callable[..., None]
    one: Callable[[bytes, np.uint64], int]


_KERNELS: _Kernels | None = None
_KERNELS_TRIED = False
_U64_PRIME, _U64_MASK = np.uint64(FNV_PRIME), np.uint64(_MASK)
_U64_OFFSET, _U64_TEN = np.uint64(FNV_OFFSET), np.uint64(10)
_decimal_jit: Callable[[np.uint64, np.uint64, np.ndarray], np.uint64] | None = None


def _kernels() -> _Kernels | None:
    global _KERNELS, _KERNELS_TRIED, _decimal_jit
    if not _KERNELS_TRIED:
        _KERNELS_TRIED = True
        if os.environ.get("RETRAIN_ROUTER_NUMBA", "1") != "0":
            try:
                import numba
            except ImportError:
                return None
            jit = numba.njit(cache=True, nogil=True)
            _decimal_jit = numba.njit(cache=True, inline="always")(_decimal_loop)
            _KERNELS = _Kernels(jit(_flat_loop), jit(_ucs4_loop), jit(_ints_loop), jit(_one_bucket))
    return _KERNELS


def _decimal_loop(h: np.uint64, u: np.uint64, digits: np.ndarray) -> np.uint64:
    """numba source: continue FNV state ``h`` with the decimal digits of ``u``.

    Digits are peeled off with constant divisors (compiled to multiplications) into the
    scratch buffer ``digits``, then fed most significant first.
    """
    n = 0
    while True:
        digits[n] = u % _U64_TEN
        n += 1
        u //= _U64_TEN
        if u == 0:
            break
    for k in range(n - 1, -1, -1):
        h = ((h ^ (np.uint64(_ZERO) + digits[k])) * _U64_PRIME) & _U64_MASK
    return h


def _one_bucket(data: bytes, prefix: np.uint64) -> int:
    """numba source: the bucket of one UTF-8 encoded id."""
    digits = np.empty(20, np.uint64)
    h = prefix
    for b in data:
        h = ((h ^ np.uint64(b)) * _U64_PRIME) & _U64_MASK
    return int(_decimal_jit(_U64_OFFSET, h, digits) % np.uint64(N_BUCKETS))


def _flat_loop(data: np.ndarray, offsets: np.ndarray, prefix: np.uint64, out: np.ndarray) -> None:
    """numba source: UTF-8 bytes in one buffer, id i at data[offsets[i]:offsets[i + 1]]."""
    decimal = _decimal_jit
    digits = np.empty(20, np.uint64)
    for i in range(out.size):
        h = prefix
        for j in range(offsets[i], offsets[i + 1]):
            h = ((h ^ np.uint64(data[j])) * _U64_PRIME) & _U64_MASK
        out[i] = np.int32(decimal(_U64_OFFSET, h, digits) % np.uint64(N_BUCKETS))


def _ucs4_loop(codes: np.ndarray, prefix: np.uint64, out: np.ndarray) -> None:
    """numba source: numpy unicode array viewed as code points, encoded to UTF-8 on the fly."""
    decimal = _decimal_jit
    digits = np.empty(20, np.uint64)
    width = codes.shape[1]
    for i in range(out.size):
        n = width
        while n > 0 and codes[i, n - 1] == 0:  # numpy pads with NUL
            n -= 1
        h = prefix
        for j in range(n):
            c = np.uint64(codes[i, j])
            if c < 0x80:
                h = ((h ^ c) * _U64_PRIME) & _U64_MASK
                continue
            if c < 0x800:
                n_bytes, lead = 2, np.uint64(0xC0)
            elif c < 0x10000:
                n_bytes, lead = 3, np.uint64(0xE0)
            else:
                n_bytes, lead = 4, np.uint64(0xF0)
            shift = np.uint64(6 * (n_bytes - 1))
            h = ((h ^ (lead | (c >> shift))) * _U64_PRIME) & _U64_MASK
            for _ in range(n_bytes - 1):
                shift -= np.uint64(6)
                b = np.uint64(0x80) | ((c >> shift) & np.uint64(0x3F))
                h = ((h ^ b) * _U64_PRIME) & _U64_MASK
        out[i] = np.int32(decimal(_U64_OFFSET, h, digits) % np.uint64(N_BUCKETS))


def _ints_loop(values: np.ndarray, prefix: np.uint64, out: np.ndarray) -> None:
    """numba source: integer ids hashed as their decimal text."""
    decimal = _decimal_jit
    digits = np.empty(20, np.uint64)
    for i in range(out.size):
        x = values[i]
        h = prefix
        if x < 0:
            h = ((h ^ np.uint64(_MINUS)) * _U64_PRIME) & _U64_MASK
            u = np.uint64(-(x + 1)) + np.uint64(1)  # |x| without overflowing at the minimum
        else:
            u = np.uint64(x)
        out[i] = np.int32(
            decimal(_U64_OFFSET, decimal(h, u, digits), digits) % np.uint64(N_BUCKETS)
        )


# --------------------------------------------------------------------------------------------
# Router
# --------------------------------------------------------------------------------------------


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
        text = entity_id if type(entity_id) is str else _id_text(entity_id)
        kernels = _KERNELS if _KERNELS_TRIED else _kernels()
        if kernels is not None:
            return kernels.one(text.encode(), self._prefix_u64)
        h = self._prefix
        for b in text.encode():
            h = ((h ^ b) * FNV_PRIME) & _MASK
        return _second_round(h)

    def assign(self, entity_id: str | int) -> str:
        """Variant of one id."""
        return self._by_bucket[self.bucket(entity_id)]

    def buckets(self, ids: Any, *, engine: Engine = "auto") -> np.ndarray:
        return buckets(self.salt, ids, engine=engine)

    def assign_many(self, ids: Any, *, engine: Engine = "auto") -> np.ndarray:
        """Variants of many ids: an object array of variant names, in input order."""
        return self._names.take(self._table[self.buckets(ids, engine=engine)])

    def counts(self, ids: Any) -> dict[str, int]:
        """How many of ``ids`` each variant receives (for planning and SRM checks)."""
        per = np.bincount(self._table[self.buckets(ids)], minlength=self._names.size)
        return {str(v): int(c) for v, c in zip(self._names, per, strict=True)}


# --------------------------------------------------------------------------------------------
# Rollout plans
# --------------------------------------------------------------------------------------------


class Strategy(StrEnum):
    IMMEDIATE = "immediate"
    CANARY = "canary"
    GRADUAL = "gradual"
    AB = "ab"


class RolloutPlanError(ValueError):
    """A rollout plan in the settings is invalid; the message names the field."""


@dataclass(frozen=True)
class RolloutStep:
    """One traffic level: the challenger's share, and how long/how much data before moving on.

    ``min_samples`` counts outcomes in *each* arm that has traffic (the challenger's is the
    binding one at small shares).
    """

    share: float
    min_hours: float = 0.0
    min_samples: int = 0


_STEP_KEYS = {"share", "min_hours", "min_samples"}
_DEFAULT_SHARE = {Strategy.CANARY: 0.05, Strategy.AB: 0.5}


@dataclass(frozen=True)
class RolloutPlan:
    """How a challenger is rolled out and judged.

    * ``immediate``: one step at 100 %.
    * ``canary``: one small step (default 5 %) guarded by the rollback test, then promotion.
    * ``gradual``: increasing shares, each held for ``min_hours`` and ``min_samples``.
    * ``ab``: a fixed split (default 50 %) until the challenger wins or ``max_samples`` is hit.

    ``promote_rule``: ``"not_worse"`` (default except ``ab``) promotes once the final step's
    minimum duration and sample are reached and the challenger is not significantly worse
    (power comes from ``min_samples``); ``"better"`` (default for ``ab``) promotes only when the
    challenger is significantly better in the metric's good direction.
    """

    strategy: Strategy
    steps: tuple[RolloutStep, ...]
    metric: Literal["binary", "continuous"] = "binary"
    higher_is_better: bool = True
    promote_rule: Literal["not_worse", "better"] = "not_worse"
    sequential: bool = True
    alpha: float = 0.05
    tau: float = 0.1
    max_samples: int | None = None
    champion: str = "champion"
    challenger: str = "challenger"

    def __post_init__(self) -> None:
        object.__setattr__(self, "strategy", _choice("strategy", self.strategy, Strategy))
        object.__setattr__(self, "steps", tuple(self.steps))
        if not self.steps:
            raise RolloutPlanError("steps: a plan needs at least one step")
        previous = 0.0
        for i, step in enumerate(self.steps):
            if not 0.0 < step.share <= 1.0:
                raise RolloutPlanError(f"steps[{i}].share must be in (0, 1], got {step.share}")
            if step.share <= previous:
                raise RolloutPlanError(
                    f"steps[{i}].share must be greater than the previous step's "
                    f"({step.share} <= {previous})"
                )
            if step.min_hours < 0 or step.min_samples < 0:
                raise RolloutPlanError(f"steps[{i}]: min_hours and min_samples must be >= 0")
            previous = step.share
        if self.strategy is Strategy.IMMEDIATE and self.steps != (RolloutStep(1.0),):
            raise RolloutPlanError("immediate: the only step is share 1.0")
        if self.strategy in (Strategy.CANARY, Strategy.AB) and len(self.steps) != 1:
            raise RolloutPlanError(f"{self.strategy}: exactly one step (a fixed share)")
        _choice("metric", self.metric, ("binary", "continuous"))
        _choice("promote_rule", self.promote_rule, ("not_worse", "better"))
        if not 0.0 < self.alpha < 0.5:
            raise RolloutPlanError(f"alpha must be in (0, 0.5), got {self.alpha}")
        if not self.tau > 0:
            raise RolloutPlanError(f"tau must be > 0, got {self.tau}")
        if self.max_samples is not None and self.max_samples <= 0:
            raise RolloutPlanError(f"max_samples must be > 0, got {self.max_samples}")
        if not self.champion or self.champion == self.challenger:
            raise RolloutPlanError("champion and challenger must be distinct non-empty names")

    @classmethod
    def from_dict(cls, settings: Mapping[str, Any]) -> RolloutPlan:
        """Parse ``{"strategy": "gradual", "steps": [{"share": 0.05, ...}, ...], ...}``.

        ``canary`` and ``ab`` take ``share``, ``min_hours`` and ``min_samples`` at the top
        level instead of ``steps``. Unknown keys are errors (a typo must not silently fall
        back to a default).
        """
        if not isinstance(settings, Mapping):
            raise RolloutPlanError(f"a rollout plan must be a mapping, got {type(settings)}")
        raw = dict(settings)
        if "strategy" not in raw:
            raise RolloutPlanError("strategy is required: immediate, canary, gradual or ab")
        strategy = _choice("strategy", raw.pop("strategy"), Strategy)
        common = {f for f in cls.__dataclass_fields__ if f not in ("strategy", "steps")}
        allowed = common | ({"steps"} if strategy is Strategy.GRADUAL else set())
        if strategy in (Strategy.CANARY, Strategy.AB):
            allowed |= _STEP_KEYS
        unknown = sorted(set(raw) - allowed)
        if unknown:
            raise RolloutPlanError(f"{strategy}: unknown keys {unknown}; allowed {sorted(allowed)}")
        if strategy is Strategy.GRADUAL:
            if not isinstance(raw.get("steps"), list | tuple) or not raw["steps"]:
                raise RolloutPlanError("gradual: steps must be a non-empty list of steps")
            steps = [_parse_step(f"steps[{i}]", s) for i, s in enumerate(raw.pop("steps"))]
        elif strategy is Strategy.IMMEDIATE:
            steps = [RolloutStep(1.0)]
        else:
            step = {k: raw.pop(k) for k in _STEP_KEYS if k in raw}
            step.setdefault("share", _DEFAULT_SHARE[strategy])
            steps = [_parse_step(str(strategy), step)]
            if strategy is Strategy.AB:
                raw.setdefault("promote_rule", "better")
        typed = {k: _typed(k, v) for k, v in raw.items()}
        return cls(strategy=strategy, steps=tuple(steps), **typed)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["strategy"] = str(self.strategy)
        out["steps"] = [asdict(s) for s in self.steps]
        return out

    @property
    def final_step(self) -> int:
        return len(self.steps) - 1

    def _check_step(self, step: int) -> RolloutStep:
        if not 0 <= step < len(self.steps):
            raise IndexError(f"step {step} is outside this plan's steps 0..{self.final_step}")
        return self.steps[step]

    def share_at(self, step: int) -> float:
        """The challenger's traffic share at ``step`` (0-based)."""
        return self._check_step(step).share

    def weights_at(self, step: int) -> dict[str, float]:
        """Router weights at ``step``: ``Router(salt, plan.weights_at(step))``."""
        share = self.share_at(step)
        return {self.challenger: share, self.champion: 1.0 - share}

    def step_ready(self, step: int, elapsed: timedelta | float, samples: int) -> bool:
        """Whether ``step`` has run long enough (``elapsed``: timedelta or hours) on enough
        outcomes per arm."""
        current = self._check_step(step)
        return _hours(elapsed) >= current.min_hours and samples >= current.min_samples

    def next_step(self, step: int, elapsed: timedelta | float, samples: int) -> int | None:
        """The step to move to once ``step``'s minima hold; ``None`` while they do not, and at
        the final step (what follows it is promotion, decided by :func:`decide`)."""
        if step < self.final_step and self.step_ready(step, elapsed, samples):
            return step + 1
        return None


def _choice(name: str, value: Any, allowed: Any) -> Any:
    options = [str(getattr(a, "value", a)) for a in allowed]
    if str(value) not in options:
        raise RolloutPlanError(f"{name} must be one of {options}, got {value!r}")
    return allowed(value) if isinstance(allowed, type) else value


def _number(path: str, value: Any, kind: type = float) -> Any:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or (kind is int and float(value) != int(value)) or not math.isfinite(value):
        raise RolloutPlanError(f"{path} must be a finite {kind.__name__}, got {value!r}")
    return kind(value)


def _parse_step(path: str, raw: Any) -> RolloutStep:
    if not isinstance(raw, Mapping):
        raise RolloutPlanError(f"{path} must be a mapping with a share, got {raw!r}")
    unknown = sorted(set(raw) - _STEP_KEYS)
    if unknown:
        raise RolloutPlanError(f"{path}: unknown keys {unknown}; allowed {sorted(_STEP_KEYS)}")
    if "share" not in raw:
        raise RolloutPlanError(f"{path}.share is required")
    return RolloutStep(
        share=_number(f"{path}.share", raw["share"]),
        min_hours=_number(f"{path}.min_hours", raw.get("min_hours", 0.0)),
        min_samples=_number(f"{path}.min_samples", raw.get("min_samples", 0), int),
    )


def _typed(key: str, value: Any) -> Any:
    if key in ("higher_is_better", "sequential"):
        if not isinstance(value, bool):
            raise RolloutPlanError(f"{key} must be true or false, got {value!r}")
        return value
    if key in ("alpha", "tau"):
        return _number(key, value)
    if key == "max_samples":
        return None if value is None else _number(key, value, int)
    if not isinstance(value, str):
        raise RolloutPlanError(f"{key} must be a string, got {value!r}")
    return value


def _hours(elapsed: timedelta | float) -> float:
    return elapsed.total_seconds() / 3600 if isinstance(elapsed, timedelta) else float(elapsed)


# --------------------------------------------------------------------------------------------
# Experiment statistics
# --------------------------------------------------------------------------------------------

SRM_P_THRESHOLD = 0.001
"""Sample-ratio-mismatch alarm level (GrowthBook and Statsig use the same)."""


@dataclass(frozen=True)
class VariantSummary:
    """Sufficient statistics of one arm's outcomes (``variance`` with ddof=1)."""

    name: str
    n: int
    mean: float
    variance: float

    @classmethod
    def from_moments(cls, name: str, n: int, total: float, total_sq: float) -> VariantSummary:
        """From a count, a sum and a sum of squares (what a SQL aggregation returns)."""
        if n <= 0:
            return cls(name, 0, math.nan, math.nan)
        mean = total / n
        var = max(total_sq - n * mean * mean, 0.0) / (n - 1) if n > 1 else math.nan
        return cls(name, int(n), mean, var)

    @classmethod
    def from_outcomes(cls, name: str, outcomes: Any) -> VariantSummary:
        x = np.asarray(outcomes, dtype=np.float64).ravel()
        if not np.isfinite(x).all():
            raise ValueError(f"outcomes of {name!r} contain NaN or infinite values")
        if x.size == 0:
            return cls(name, 0, math.nan, math.nan)
        var = float(x.var(ddof=1)) if x.size > 1 else math.nan
        return cls(name, int(x.size), float(x.mean()), var)


def summarize(variants: Any, outcomes: Any) -> dict[str, VariantSummary]:
    """Per-variant summaries of an outcome log: ``variants[i]`` got outcome ``outcomes[i]``."""
    names, inverse = np.unique(np.asarray(variants, dtype=object).astype(str), return_inverse=True)
    x = np.asarray(outcomes, dtype=np.float64).ravel()
    if x.size != inverse.size:
        raise ValueError(f"{inverse.size} variants but {x.size} outcomes")
    if not np.isfinite(x).all():
        raise ValueError("outcomes contain NaN or infinite values")
    n = np.bincount(inverse, minlength=names.size)
    total = np.bincount(inverse, x, minlength=names.size)
    means = total / np.maximum(n, 1)
    sq = np.bincount(inverse, (x - means[inverse]) ** 2, minlength=names.size)  # two-pass: exact
    return {
        str(v): VariantSummary(str(v), int(k), float(m), float(s / (k - 1)) if k > 1 else math.nan)
        for v, k, m, s in zip(names, n, means, sq, strict=True)
    }


@dataclass(frozen=True)
class Comparison:
    """Challenger vs champion on one metric. ``effect`` = challenger mean - champion mean,
    ``[ci_low, ci_high]`` its confidence interval (a confidence *sequence* for mSPRT)."""

    method: Literal["z_test", "welch_t", "msprt"]
    effect: float
    ci_low: float
    ci_high: float
    p_value: float
    statistic: float
    alpha: float
    n_champion: int
    n_challenger: int

    @property
    def significant(self) -> bool:
        return self.p_value <= self.alpha

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "significant": self.significant}


def _too_small(champion: VariantSummary, challenger: VariantSummary) -> bool:
    return min(champion.n, challenger.n) < 2


def _inconclusive(method: Any, c: VariantSummary, t: VariantSummary, alpha: float) -> Comparison:
    effect = t.mean - c.mean if min(c.n, t.n) > 0 else math.nan
    return Comparison(method, effect, -math.inf, math.inf, 1.0, 0.0, alpha, c.n, t.n)


def _normal_comparison(
    method: Any,
    effect: float,
    se_test: float,
    se_ci: float,
    alpha: float,
    c: VariantSummary,
    t: VariantSummary,
    dist: Any = stats.norm,
) -> Comparison:
    """Two-sided test of effect / se_test against ``dist``; CI effect ± q·se_ci."""
    q = float(dist.isf(alpha / 2))
    if se_test == 0:  # no variance at all: any difference is certain
        p, statistic = (1.0, 0.0) if effect == 0 else (0.0, math.copysign(math.inf, effect))
    else:
        statistic = effect / se_test
        p = float(2 * dist.sf(abs(statistic)))
    return Comparison(
        method, effect, effect - q * se_ci, effect + q * se_ci, p, statistic, alpha, c.n, t.n
    )


def proportion_ztest(
    champion: VariantSummary, challenger: VariantSummary, alpha: float = 0.05
) -> Comparison:
    """Two-proportion z-test (pooled SE for the test, unpooled Wald SE for the CI)."""
    if _too_small(champion, challenger):
        return _inconclusive("z_test", champion, challenger, alpha)
    p0, p1, n0, n1 = champion.mean, challenger.mean, champion.n, challenger.n
    pooled = (p0 * n0 + p1 * n1) / (n0 + n1)
    se_test = math.sqrt(pooled * (1 - pooled) * (1 / n0 + 1 / n1))
    se_ci = math.sqrt(p0 * (1 - p0) / n0 + p1 * (1 - p1) / n1)
    return _normal_comparison("z_test", p1 - p0, se_test, se_ci, alpha, champion, challenger)


def welch_ttest(
    champion: VariantSummary, challenger: VariantSummary, alpha: float = 0.05
) -> Comparison:
    """Welch's unequal-variance t-test with Welch-Satterthwaite degrees of freedom."""
    if _too_small(champion, challenger):
        return _inconclusive("welch_t", champion, challenger, alpha)
    v0, v1 = champion.variance / champion.n, challenger.variance / challenger.n
    se = math.sqrt(v0 + v1)
    df = (v0 + v1) ** 2 / (v0**2 / (champion.n - 1) + v1**2 / (challenger.n - 1)) if se else 1.0
    effect = challenger.mean - champion.mean
    return _normal_comparison("welch_t", effect, se, se, alpha, champion, challenger, stats.t(df))


def msprt(
    champion: VariantSummary,
    challenger: VariantSummary,
    *,
    alpha: float = 0.05,
    tau: float = 0.1,
    binary: bool = False,
) -> Comparison:
    """Always-valid test of the difference of means: mixture SPRT, normal mixing prior.

    With ``d`` = challenger mean - champion mean, ``V = s0²/n0 + s1²/n1`` (Bernoulli
    variances ``p(1-p)`` when ``binary``) and prior ``theta ~ N(0, t²)`` on the true difference,
    the mixture likelihood ratio against ``theta = 0`` is (Johari et al., 2017)::

        Lambda = sqrt(V / (V + t²)) * exp(t² d² / (2 V (V + t²)))

    and ``p = min(1, 1/Lambda)``. Rejecting at any look where ``p <= alpha`` keeps the type I
    error at most ``alpha`` however often one peeks (Ville's inequality), so there is no need
    to carry a running minimum as long as the experiment stops at the first rejection. The CI
    is the matching confidence sequence::

        d ± sqrt(V (V + t²) / t² * (2 ln(1/alpha) + ln((V + t²) / V)))

    ``tau`` is the prior's standard deviation in units of the outcome's standard deviation
    (``t = tau * sqrt((s0² + s1²) / 2)``): 0.1 tunes the test to effects of about a tenth of a
    standard deviation, e.g. 4 accuracy points at 80 % accuracy.
    """
    if _too_small(champion, challenger):
        return _inconclusive("msprt", champion, challenger, alpha)
    v0, v1 = (
        (champion.mean * (1 - champion.mean), challenger.mean * (1 - challenger.mean))
        if binary
        else (champion.variance, challenger.variance)
    )
    effect = challenger.mean - champion.mean
    var = v0 / champion.n + v1 / challenger.n
    t2 = tau * tau * (v0 + v1) / 2
    if var == 0 or t2 == 0:
        p = 1.0 if effect == 0 else 0.0
        return Comparison(
            "msprt", effect, effect, effect, p, math.inf * p, alpha, champion.n, challenger.n
        )
    log_lambda = 0.5 * math.log(var / (var + t2)) + t2 * effect * effect / (2 * var * (var + t2))
    p = math.exp(-log_lambda) if log_lambda > 0 else 1.0
    half = math.sqrt(var * (var + t2) / t2 * (2 * math.log(1 / alpha) + math.log((var + t2) / var)))
    return Comparison(
        "msprt",
        effect,
        effect - half,
        effect + half,
        p,
        log_lambda,
        alpha,
        champion.n,
        challenger.n,
    )


def compare(
    champion: VariantSummary,
    challenger: VariantSummary,
    *,
    metric: Literal["binary", "continuous"] = "binary",
    sequential: bool = True,
    alpha: float = 0.05,
    tau: float = 0.1,
) -> Comparison:
    """The plan's test: mSPRT if ``sequential``, else the z-test (binary) or Welch (continuous)."""
    if sequential:
        return msprt(champion, challenger, alpha=alpha, tau=tau, binary=metric == "binary")
    test = proportion_ztest if metric == "binary" else welch_ttest
    return test(champion, challenger, alpha)


@dataclass(frozen=True)
class SrmResult:
    """Chi-square goodness of fit of assignment counts to the planned weights."""

    chi2: float
    p_value: float
    observed: dict[str, int]
    expected: dict[str, float]

    @property
    def halt(self) -> bool:
        return self.p_value < SRM_P_THRESHOLD


def srm_check(observed: Mapping[str, int], weights: Mapping[str, float]) -> SrmResult:
    """Sample ratio mismatch: are the assignment counts consistent with the weights?

    Traffic in a variant the plan gives no share (or does not know) is a mismatch at p = 0.
    """
    weights = validate_weights(weights)
    counts = {v: int(observed.get(v, 0)) for v in weights}
    strays = {v: int(c) for v, c in observed.items() if v not in weights and c}
    total = sum(counts.values())
    expected = {v: total * w for v, w in weights.items()}
    if strays or any(counts[v] > 0 for v, w in weights.items() if w == 0):
        return SrmResult(math.inf, 0.0, {**counts, **strays}, expected)
    live = [v for v, w in weights.items() if w > 0]
    if total == 0 or len(live) < 2:
        return SrmResult(0.0, 1.0, counts, expected)
    chi2 = sum((counts[v] - expected[v]) ** 2 / expected[v] for v in live)
    return SrmResult(float(chi2), float(stats.chi2.sf(chi2, len(live) - 1)), counts, expected)


# --------------------------------------------------------------------------------------------
# The rollout decision
# --------------------------------------------------------------------------------------------


class Action(StrEnum):
    CONTINUE = "continue"
    ADVANCE = "advance"
    PROMOTE = "promote"
    ROLLBACK = "rollback"
    HALT = "halt"


@dataclass(frozen=True)
class RolloutDecision:
    """What to do now, and the numbers behind it.

    ``share`` is the challenger's traffic share to serve after acting on the decision (0 after
    a rollback or halt, 1 after a promotion). ``improvement`` is the effect signed so that
    positive means the challenger is better in the metric's good direction.
    """

    action: Action
    reason: str
    step: int
    next_step: int | None
    share: float
    samples: int
    elapsed_hours: float
    srm: SrmResult
    comparison: Comparison | None
    improvement: float | None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["action"] = str(self.action)
        out["srm"] = {**asdict(self.srm), "halt": self.srm.halt}
        out["comparison"] = self.comparison.to_dict() if self.comparison else None
        return out


def decide(
    plan: RolloutPlan,
    step: int,
    *,
    elapsed: timedelta | float,
    champion: VariantSummary,
    challenger: VariantSummary,
    assignments: Mapping[str, int] | None = None,
) -> RolloutDecision:
    """The rollout decision at ``step`` after ``elapsed`` (timedelta or hours) on that step.

    ``champion``/``challenger`` summarise the primary metric's outcomes and ``assignments``
    counts routed entities, both *since the step began* (the SRM check compares them with this
    step's weights, and the sequential test restarts with each step).

    In order: ``halt`` when the assignment counts (default: the summaries' ``n``) fail the SRM
    check; ``rollback`` when the challenger is significantly worse on the primary metric;
    ``continue`` while the step's minimum duration or sample is not reached; ``advance`` to
    the next step; at the final step ``promote`` per ``plan.promote_rule``. With a rule
    ``"better"`` and no winner: ``rollback`` once ``max_samples`` is reached, else
    ``continue``. A fixed-horizon test (``sequential=False``) is only evaluated once the
    step's minimum sample is reached, because peeking at it inflates false alarms; mSPRT is
    evaluated at every look.
    """
    share = plan.share_at(step)
    counts = assignments or {plan.champion: champion.n, plan.challenger: challenger.n}
    srm = srm_check(counts, plan.weights_at(step))
    samples = min(s.n for s, w in ((champion, 1 - share), (challenger, share)) if w > 0)
    hours = _hours(elapsed)
    comparison = None
    if not srm.halt and (plan.sequential or samples >= plan.steps[step].min_samples):
        comparison = compare(
            champion,
            challenger,
            metric=plan.metric,
            sequential=plan.sequential,
            alpha=plan.alpha,
            tau=plan.tau,
        )
    improvement = None
    if comparison is not None:
        improvement = comparison.effect if plan.higher_is_better else -comparison.effect
    action, reason = _choose(plan, step, srm, comparison, improvement, samples, hours)
    to_step = step + 1 if action is Action.ADVANCE else None
    new_share = {Action.ROLLBACK: 0.0, Action.HALT: 0.0, Action.PROMOTE: 1.0}.get(action, share)
    return RolloutDecision(
        action=action,
        reason=reason,
        step=step,
        next_step=to_step,
        share=plan.share_at(to_step) if to_step is not None else new_share,
        samples=samples,
        elapsed_hours=hours,
        srm=srm,
        comparison=comparison,
        improvement=improvement,
    )


def _choose(
    plan: RolloutPlan,
    step: int,
    srm: SrmResult,
    comparison: Comparison | None,
    improvement: float | None,
    samples: int,
    hours: float,
) -> tuple[Action, str]:
    """The decision rule of :func:`decide`, in priority order."""
    if srm.halt:
        return Action.HALT, f"sample ratio mismatch: p = {srm.p_value:.3g} < {SRM_P_THRESHOLD}"
    significant = comparison is not None and comparison.significant
    better = significant and improvement is not None and improvement > 0
    numbers = describe(comparison)
    if significant and improvement is not None and improvement < 0:
        return Action.ROLLBACK, f"challenger significantly worse ({numbers})"
    current = plan.steps[step]
    if not plan.step_ready(step, hours, samples):
        return Action.CONTINUE, (
            f"step {step} needs {current.min_hours:g} h and {current.min_samples} samples per "
            f"arm, has {hours:.3g} h and {samples}"
        )
    if step < plan.final_step:
        return Action.ADVANCE, f"step {step} complete, not worse ({numbers})"
    if plan.promote_rule == "not_worse" or better:
        why = "significantly better" if better else "not significantly worse"
        return Action.PROMOTE, f"final step complete, {why} ({numbers})"
    if plan.max_samples is not None and samples >= plan.max_samples:
        return Action.ROLLBACK, f"no significant improvement after {samples} per arm ({numbers})"
    return Action.CONTINUE, f"no winner yet ({numbers})"


def describe(comparison: Comparison | None) -> str:
    """A comparison in one line: method, effect, interval, p-value and samples."""
    if comparison is None:
        return "not tested yet"
    c = comparison
    return (
        f"{c.method}: effect {c.effect:+.4g}, CI [{c.ci_low:.4g}, {c.ci_high:.4g}], "
        f"p = {c.p_value:.3g}, n = {c.n_champion}/{c.n_challenger}"
    )


def assignment_counts(variants: Iterable[str]) -> dict[str, int]:
    """Count assignments per variant name (input of :func:`srm_check`)."""
    names, counts = np.unique(
        np.asarray(list(variants), dtype=object).astype(str), return_counts=True
    )
    return {str(v): int(c) for v, c in zip(names, counts, strict=True)}
