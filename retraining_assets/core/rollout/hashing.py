"""The router hash: GrowthBook's hash v2 (salted two-round FNV-1a into 10,000 buckets), for
one id in pure Python or a numba kernel, for many ids vectorised.

Router hash (reproducible in any language; exactly GrowthBook's ``hash(seed, value, 2)``)
-----------------------------------------------------------------------------------------
``fnv1a32(units)``: ``h = 0x811C9DC5``, then for each UTF-16 code unit ``u`` (JavaScript's
``charCodeAt``; a byte for ASCII text): ``h = ((h ^ u) * 0x01000193) mod 2**32``.

* ``text(id)``: a string id as is; an integer id as JavaScript's ``String(Number(id))``: its
  decimal digits up to 2**53 (so ``42`` and ``"42"`` land in the same bucket), beyond that the
  shortest digits of the nearest double padded with zeros (``2**63 - 1`` ->
  ``"9223372036854776000"``), from 1e21 on ``"1.2089258196146292e+24"`` style.
* ``hash_v2(seed, value) = (fnv1a32(ascii(decimal(fnv1a32(seed + value)))) mod 10000) / 10000``
* ``bucket(salt, id) = round(hash_v2(salt + ":", text(id)) * 10000)``, in ``[0, 10000)``.

The second round decorrelates experiments whose salts differ only in their last characters (a
single FNV round gave 47 % instead of 50 % co-assignment in GrowthBook v1). GrowthBook leaves
an entity whose id is empty (``""``, or the number ``0``) out of the experiment; so does the
router (``is_excluded``). Test vectors: ``rollout_vectors.json`` next to this module. Batch
hashing uses numba kernels when numba is importable (``RETRAIN_ROUTER_NUMBA=0`` forces the
numpy/pure-Python paths, which give identical buckets).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Literal

import numpy as np
import pyarrow as pa

FNV_OFFSET = 0x811C9DC5
FNV_PRIME = 0x01000193
N_BUCKETS = 10_000
_MASK = 0xFFFFFFFF
_MINUS, _ZERO = 0x2D, 0x30  # ASCII "-" and "0"
_JS_SAFE = 2**53  # JavaScript numbers are exact integers up to here

Engine = Literal["auto", "numba", "numpy"]


def fnv1a32(data: bytes | Sequence[int], h: int = FNV_OFFSET) -> int:
    """32-bit FNV-1a of bytes or code units ``data``, continuing from state ``h``."""
    for b in data:
        h = ((h ^ b) * FNV_PRIME) & _MASK
    return h


def fnv1a32_text(text: str, h: int = FNV_OFFSET) -> int:
    """FNV-1a over the UTF-16 code units of ``text``, as GrowthBook's SDKs hash strings."""
    if text.isascii():
        return fnv1a32(text.encode(), h)
    return fnv1a32(_utf16(text).tolist(), h)


def _utf16(text: str) -> np.ndarray:
    # surrogatepass: a lone surrogate in a Python str is one code unit, as in JavaScript
    return np.frombuffer(text.encode("utf-16-le", "surrogatepass"), "<u2")


def hash_v2(seed: str, value: str) -> float:
    """GrowthBook's ``hash(seed, value, 2)``: a float in ``[0, 1)`` in steps of 1e-4."""
    return _second_round(fnv1a32_text(value, fnv1a32_text(seed))) / N_BUCKETS


def js_integer_text(value: int) -> str:
    """JavaScript's ``String(Number(value))``: exact up to 2**53, then the nearest double's
    shortest digits (zero-padded below 1e21, exponent form from there)."""
    if -_JS_SAFE <= value <= _JS_SAFE:
        return str(value)
    x = float(value)  # OverflowError beyond the doubles (JavaScript's Infinity)
    text = repr(x)  # the shortest digits that round-trip, as JavaScript's
    if "e" not in text:  # below 1e16: "9007199254740994.0"
        return text[:-2]
    if abs(x) >= 1e21:  # Python's exponent form is JavaScript's here: "1.2e+21"
        return text
    mantissa, exponent = text.split("e")
    sign, digits = ("-", mantissa[1:]) if x < 0 else ("", mantissa)
    return sign + digits.replace(".", "").ljust(int(exponent) + 1, "0")


def _id_text(entity_id: object, position: int | None = None) -> str:
    """The text an id is hashed as; rejects types whose text would be ambiguous."""
    if isinstance(entity_id, str):
        return entity_id
    where = "" if position is None else f" at position {position}"
    if isinstance(entity_id, int | np.integer) and not isinstance(entity_id, bool | np.bool_):
        try:
            return js_integer_text(int(entity_id))
        except OverflowError:
            raise ValueError(f"entity id{where} is beyond the range of a double") from None
    if entity_id is None:
        raise ValueError(f"entity id{where} is missing (None)")
    raise TypeError(
        f"entity id{where} must be a str or an int, got {type(entity_id).__name__} {entity_id!r}"
    )


def is_excluded(entity_id: str | int) -> bool:
    """Whether GrowthBook leaves this id out of an experiment: the empty string or the number 0
    (JavaScript's falsy ids). The router sends such entities to the control."""
    return entity_id == "" or (type(entity_id) is not bool and entity_id == 0)


def bucket(salt: str, entity_id: str | int) -> int:
    """The bucket in [0, 10000) of one id (pure Python; see the module docstring)."""
    return _second_round(fnv1a32_text(_id_text(entity_id), fnv1a32_text(f"{salt}:")))


def _second_round(h1: int) -> int:
    return fnv1a32(b"%d" % h1) % N_BUCKETS


def prefixed_bucket(prefix: int, prefix_u64: np.uint64, entity_id: str | int) -> int:
    """Bucket of one id given the salt's precomputed FNV state: the numba kernel when
    available (~8x), else pure Python."""
    text = entity_id if type(entity_id) is str else _id_text(entity_id)
    kernels = _KERNELS if _KERNELS_TRIED else _kernels()
    if kernels is not None:
        return kernels.one(text.encode("utf-8", "surrogatepass"), prefix_u64)
    return _second_round(fnv1a32_text(text, prefix))


def buckets(salt: str, ids: Any, *, engine: Engine = "auto") -> np.ndarray:
    """Buckets of many ids (int32 array), vectorised; same values as :func:`bucket`.

    ``ids``: a numpy array (integer, unicode or object), a pyarrow array, a pandas Series, or
    any sequence of str/int. ``engine="auto"`` uses the numba kernels when numba is installed,
    otherwise the numpy implementation.
    """
    return buckets_and_exclusions(fnv1a32_text(f"{salt}:"), ids, engine)[0]


def buckets_and_exclusions(
    prefix: int, ids: Any, engine: Engine = "auto"
) -> tuple[np.ndarray, np.ndarray]:
    """Buckets of many ids from the salt's FNV state, and which ids :func:`is_excluded`."""
    kind, payload, zeros = _prepare_ids(ids)
    kernels = _kernels() if engine != "numpy" else None
    if engine == "numba" and kernels is None:
        raise RuntimeError("engine='numba' requested but numba is not installed")
    if kind == "int":
        excluded = payload[0] == 0
    elif kind == "ucs4":
        excluded = payload[0][:, 0] == 0  # numpy cannot tell "" from trailing NULs
    else:
        excluded = payload[1][1:] == payload[1][:-1]
    if zeros is not None:
        excluded |= zeros
    if kernels is None and kind == "ucs4":
        # UTF-8 through Arrow via a list: pyarrow cuts numpy unicode at the first NUL
        (codes,) = payload
        kind, payload, _ = _prepare_ids(codes.view(f"<U{codes.shape[1]}").ravel().tolist())
    if kernels is None:
        if kind == "int":
            out = _ints_numpy(*payload, prefix)
        else:
            out = _flat_numpy(*_utf16_units(*payload), prefix)
    else:
        out = np.empty(payload[-1].shape[0] - (kind == "flat"), np.int32)
        getattr(kernels, kind)(*payload, np.uint64(prefix), out)
    if kind == "int":
        # beyond 2**53 the JavaScript text is the nearest double's, not the decimal digits
        values = payload[0]
        unsafe = values > _JS_SAFE
        if values.dtype.kind == "i":
            unsafe |= values < -_JS_SAFE
        if unsafe.any():
            texts = [js_integer_text(v) for v in values[unsafe].tolist()]
            out[unsafe] = buckets_and_exclusions(prefix, texts, engine)[0]
    return out, excluded


# ---- input preparation ---------------------------------------------------------------------


def _prepare_ids(ids: Any) -> tuple[str, tuple[np.ndarray, ...], np.ndarray | None]:
    """Normalise ids to ("int", values) | ("ucs4", codepoints 2-D) | ("flat", bytes, offsets),
    with the mask of integer zeros when they became text (mixed ids), else None."""
    if isinstance(ids, np.ndarray):
        if ids.ndim != 1:
            raise ValueError(f"entity ids must be one-dimensional, got shape {ids.shape}")
        if ids.dtype.kind in "iu":
            return "int", (ids,), None
        if ids.dtype.kind == "U":
            width = max(ids.dtype.itemsize // 4, 1)
            codes = np.ascontiguousarray(ids.astype(f"<U{width}", copy=False)).view(np.uint32)
            return "ucs4", (codes.reshape(ids.size, width),), None
        if ids.dtype.kind != "O":
            raise TypeError(f"entity ids must be strings or integers, got dtype {ids.dtype}")
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    if not isinstance(ids, pa.Array):
        if not isinstance(ids, Sequence | np.ndarray) and not hasattr(ids, "__array__"):
            ids = list(ids)
        try:
            ids = pa.array(ids)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError, ValueError):
            # mixed str/int, ints beyond 64 bits, lone surrogates or bad types: per-element
            # text (names the bad id)
            texts = [_id_text(x, i) for i, x in enumerate(ids)]
            zeros = np.array([type(x) is not str and x == 0 for x in ids], bool)
            return *_flat_texts(texts), zeros
    return *_prepare_arrow(ids), None


def _flat_texts(texts: list[str]) -> tuple[str, tuple[np.ndarray, ...]]:
    encoded = [text.encode("utf-8", "surrogatepass") for text in texts]
    offsets = np.zeros(len(encoded) + 1, np.int64)
    np.cumsum([len(e) for e in encoded], out=offsets[1:])
    return "flat", (np.frombuffer(b"".join(encoded), np.uint8), offsets)


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


def _utf16_units(data: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """UTF-8 ids as UTF-16 code units (ASCII-only data as is, in place)."""
    if not data.size or data.max() < 0x80:
        return data, offsets
    raw = data.tobytes()
    units = [
        _utf16(raw[a:b].decode("utf-8", "surrogatepass")) for a, b in pairwise(offsets.tolist())
    ]
    unit_offsets = np.zeros(len(units) + 1, np.int64)
    np.cumsum([u.size for u in units], out=unit_offsets[1:])
    return np.concatenate(units) if units else np.zeros(0, np.uint16), unit_offsets


def _flat_numpy(data: np.ndarray, offsets: np.ndarray, prefix: int) -> np.ndarray:
    """FNV over variable-length code unit strings: ids sorted by length so each position
    touches a prefix of the arrays (no masks, no padded matrix)."""
    starts = offsets[:-1].astype(np.int64)
    lengths = np.diff(offsets).astype(np.int64)
    order = np.argsort(-lengths, kind="stable")
    starts, neg_lengths = starts[order], -lengths[order]
    h = np.full(order.size, prefix, np.uint32)
    data = data.astype(np.uint32, copy=False)
    prime = np.uint32(FNV_PRIME)
    for k in range(int(-neg_lengths[0]) if order.size else 0):
        m = int(np.searchsorted(neg_lengths, -k, side="left"))  # ids longer than k units
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
_utf8_jit: Callable[[np.uint64, Any, int, int], np.uint64] | None = None


def _kernels() -> _Kernels | None:
    global _KERNELS, _KERNELS_TRIED, _decimal_jit, _utf8_jit
    if not _KERNELS_TRIED:
        _KERNELS_TRIED = True
        if os.environ.get("RETRAIN_ROUTER_NUMBA", "1") != "0":
            try:
                import numba
            except ImportError:
                return None
            jit = numba.njit(cache=True, nogil=True)
            _decimal_jit = numba.njit(cache=True, inline="always")(_decimal_loop)
            _utf8_jit = numba.njit(cache=True, inline="always")(_utf8_loop)
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


def _utf8_loop(h: np.uint64, data: Any, start: int, end: int) -> np.uint64:
    """numba source: continue FNV state ``h`` with the UTF-16 code units of the UTF-8 bytes
    ``data[start:end]`` (decoded on the fly; the input is valid UTF-8 or surrogatepass)."""
    j = start
    while j < end:
        c = np.uint64(data[j])
        j += 1
        if c >= 0x80:
            if c < 0xE0:
                c, n = c & np.uint64(0x1F), 1
            elif c < 0xF0:
                c, n = c & np.uint64(0x0F), 2
            else:
                c, n = c & np.uint64(0x07), 3
            for _ in range(n):
                c = (c << np.uint64(6)) | (np.uint64(data[j]) & np.uint64(0x3F))
                j += 1
            if c >= 0x10000:  # a surrogate pair
                c -= np.uint64(0x10000)
                h = ((h ^ (np.uint64(0xD800) + (c >> np.uint64(10)))) * _U64_PRIME) & _U64_MASK
                c = np.uint64(0xDC00) + (c & np.uint64(0x3FF))
        h = ((h ^ c) * _U64_PRIME) & _U64_MASK
    return h


def _one_bucket(data: bytes, prefix: np.uint64) -> int:
    """numba source: the bucket of one UTF-8 encoded id."""
    digits = np.empty(20, np.uint64)
    h = _utf8_jit(prefix, data, 0, len(data))
    return int(_decimal_jit(_U64_OFFSET, h, digits) % np.uint64(N_BUCKETS))


def _flat_loop(data: np.ndarray, offsets: np.ndarray, prefix: np.uint64, out: np.ndarray) -> None:
    """numba source: UTF-8 bytes in one buffer, id i at data[offsets[i]:offsets[i + 1]]."""
    decimal, utf8 = _decimal_jit, _utf8_jit
    digits = np.empty(20, np.uint64)
    for i in range(out.size):
        h = utf8(prefix, data, offsets[i], offsets[i + 1])
        out[i] = np.int32(decimal(_U64_OFFSET, h, digits) % np.uint64(N_BUCKETS))


def _ucs4_loop(codes: np.ndarray, prefix: np.uint64, out: np.ndarray) -> None:
    """numba source: numpy unicode array viewed as code points, hashed as UTF-16 units."""
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
            if c >= 0x10000:  # a surrogate pair
                c -= np.uint64(0x10000)
                h = ((h ^ (np.uint64(0xD800) + (c >> np.uint64(10)))) * _U64_PRIME) & _U64_MASK
                c = np.uint64(0xDC00) + (c & np.uint64(0x3FF))
            h = ((h ^ c) * _U64_PRIME) & _U64_MASK
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
