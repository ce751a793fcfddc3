"""The router hash: salted two-round FNV-1a into 10,000 buckets (GrowthBook's hash v2), for
one id in pure Python or a numba kernel, for many ids vectorised.

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
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pyarrow as pa

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


def prefixed_bucket(prefix: int, prefix_u64: np.uint64, entity_id: str | int) -> int:
    """Bucket of one id given the salt's precomputed FNV state: the numba kernel when
    available (~8x), else pure Python."""
    text = entity_id if type(entity_id) is str else _id_text(entity_id)
    kernels = _KERNELS if _KERNELS_TRIED else _kernels()
    if kernels is not None:
        return kernels.one(text.encode(), prefix_u64)
    h = prefix
    for b in text.encode():
        h = ((h ^ b) * FNV_PRIME) & _MASK
    return _second_round(h)


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
