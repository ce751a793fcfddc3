"""The router against GrowthBook itself: its Python SDK (``growthbook``, a dev dependency) on
random ids, and its cross-SDK test cases (vendored excerpt in ``growthbook_cases.json``)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from growthbook import Experiment, GrowthBook
from growthbook.core import gbhash

from retraining_assets.core import rollout
from retraining_assets.core.rollout import Router, bucket, buckets, hash_v2, is_excluded

CASES = json.loads((Path(__file__).parent / "growthbook_cases.json").read_text())
SALT = "rollout:2026-12"
# not multiples of 1e-4, and running float sums that land on or next to a bucket (0.1 + 0.2)
WEIGHTS = {"a": 0.1, "b": 0.2, "c": 0.12345, "champion": 0.57655}


def random_ids(n: int, seed: int = 0) -> list[str | int]:
    """Ids of every kind GrowthBook formats differently from UTF-8 bytes or decimal text:
    non-ASCII (BMP, astral, lone surrogates), integers beyond 2**53 and beyond 64 bits, the
    empty string and 0, among ordinary ASCII and small integer ids."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, 12, n)
    planes = rng.choice([0x80, 0xD800, 0x10000, 0x110000], size=(n, 12), p=[0.4, 0.3, 0.25, 0.05])
    points = (rng.random((n, 12)) * planes).astype(np.int64)
    kind = rng.choice(8, n)
    ids: list[str | int] = []
    for i in range(n):
        match int(kind[i]):
            case 0 | 1:
                ids.append("".join(map(chr, points[i, : lengths[i]])))
            case 2:
                ids.append(f"user-{rng.integers(10**12)}")
            case 3:
                ids.append(int(rng.integers(-(2**63), 2**63 - 1, endpoint=True)))
            case 4:
                ids.append(int(rng.integers(-(2**53) - 5, 2**53 + 5)) >> int(rng.integers(0, 53)))
            case 5:
                ids.append(int(rng.integers(1, 2**62)) ** int(rng.integers(2, 6)))  # to ~2**310
            case 6:
                ids.append(rng.choice(["", 0, "0", -0]).item())
            case _:
                ids.append(f"é-{i}" if i % 2 else chr(0xD800 + i % 0x800))  # also lone surrogates
    return ids


def growthbook_assignments(
    salt: str, weights: dict[str, float], ids: list[str | int]
) -> tuple[list[int | None], list[str | None]]:
    """Bucket (None when left out) and variant of each id from a real GrowthBook experiment."""
    names = list(weights)
    experiment = Experiment(
        key="router", variations=names, weights=list(weights.values()), seed=f"{salt}:",
        hashVersion=2,
    )  # fmt: skip
    gb = GrowthBook(attributes={})
    bucket_of, variant = [], []
    for entity_id in ids:
        gb.set_attributes({"id": entity_id})
        result = gb.run(experiment)
        included = result.inExperiment and result.hashUsed
        bucket_of.append(round(result.bucket * 10_000) if included else None)
        variant.append(names[result.variationId] if included else None)
    return bucket_of, variant


def test_router_equals_the_growthbook_sdk_on_100k_random_ids() -> None:
    ids = [x for x in random_ids(100_000) if abs(x if isinstance(x, int) else 0) < 2**1000]
    assert len(ids) > 99_000
    gb_bucket, gb_variant = growthbook_assignments(SALT, WEIGHTS, ids)
    router = Router(SALT, WEIGHTS)
    for engine in ("numba", "numpy"):
        got_buckets = router.buckets(ids, engine=engine).tolist()
        got = router.assign_many(ids, engine=engine).tolist()
        assert [b for b, g in zip(got_buckets, gb_bucket, strict=True) if g is not None] == [
            g for g in gb_bucket if g is not None
        ]
        assert got == [v or router.control for v in gb_variant]
    singles = [router.assign(x) for x in ids[:20_000]]
    assert singles == [v or router.control for v in gb_variant[:20_000]]
    assert [bucket(SALT, x) for x in ids[:20_000]] == router.buckets(ids[:20_000]).tolist()
    excluded = [x for x, v in zip(ids, gb_variant, strict=True) if v is None]
    assert excluded and all(x in ("", 0) for x in excluded)
    non_ascii = [x for x in ids if isinstance(x, str) and not x.isascii()]
    beyond_2_53 = [x for x in ids if isinstance(x, int) and abs(x) > 2**53]
    assert len(non_ascii) > 30_000 and len(beyond_2_53) > 15_000


@pytest.mark.parametrize("engine", ["numba", "numpy"])
def test_every_array_form_hashes_like_growthbook(engine: str) -> None:
    ids = random_ids(5000, seed=1)
    # Arrow holds UTF-8 only (no lone surrogates), numpy unicode drops trailing NULs
    strs = [x for x in ids if isinstance(x, str) and not re.search("[\ud800-\udfff]|\0$", x)]
    ints = np.array([x for x in ids if isinstance(x, int) and -(2**63) <= x < 2**63], np.int64)
    expected_s = [round(gbhash(f"{SALT}:", x, 2) * 10_000) for x in strs]
    gb_ints, _ = growthbook_assignments(SALT, WEIGHTS, ints.tolist())
    for form in (np.array(strs), np.array(strs, dtype=object), pa.array(strs)):
        assert buckets(SALT, form, engine=engine).tolist() == expected_s
    ok = [g is not None for g in gb_ints]
    assert buckets(SALT, ints, engine=engine)[ok].tolist() == [g for g in gb_ints if g is not None]
    assert buckets(SALT, pa.array(ints), engine=engine)[ok].tolist() == [g for g in gb_ints if g]


def test_the_issue_example_e_with_salt_exp() -> None:
    assert bucket("exp", "é") == Router("exp", {"champion": 1.0}).bucket("é") == 7068
    assert hash_v2("exp:", "é") == gbhash("exp:", "é", 2) == 0.7068


@pytest.mark.parametrize(("seed", "value", "version", "expected"), CASES["hash"])
def test_hash_v2_passes_growthbooks_cross_sdk_cases(
    seed: str, value: str, version: int, expected: float
) -> None:
    assert version == 2
    assert hash_v2(seed, value) == expected


@pytest.mark.parametrize(("name", "args", "expected"), CASES["getBucketRange"])
def test_router_ranges_pass_growthbooks_bucket_range_cases(
    name: str, args: list, expected: list[list[float]]
) -> None:
    n_variations, _, weights = args
    weights = weights or [1 / n_variations] * n_variations
    names = [f"v{i}" for i in range(n_variations)]
    router = Router("s", dict(zip(names, weights, strict=True)), control=names[-1])
    assert list(router.ranges.values()) == [
        (round(lo * 10_000), round(hi * 10_000)) for lo, hi in expected
    ]


def test_shipped_boundary_vectors_split_where_growthbook_does() -> None:
    shipped = json.loads((Path(rollout.__file__).parent / "rollout_vectors.json").read_text())
    for case in shipped["boundaries"].values():
        router = Router("exp", case["weights"])
        for vector in case["vectors"]:
            assert router.bucket(vector["id"]) == vector["bucket"]
            assert router.assign(vector["id"]) == vector["variant"]
            ids = [vector["id"]]
            _, (gb_variant,) = growthbook_assignments("exp", case["weights"], ids)
            assert gb_variant == vector["variant"]
    # the old rounded ends gave bucket 3000 to the control and 1234 to the champion
    assert Router("exp", {"a": 0.1, "b": 0.2, "champion": 0.7}).ranges["b"] == (1000, 3001)
    assert Router("exp", {"challenger": 0.12345, "champion": 0.87655}).ranges["challenger"] == (
        0,
        1235,
    )


def test_ids_growthbook_leaves_out_get_the_control_but_keep_their_bucket() -> None:
    router = Router("exp", {"challenger": 0.5, "champion": 0.5})
    ids = ["", 0, "0", np.int64(0), "user-1"]
    assert [is_excluded(x) for x in ids] == [True, True, False, True, False]
    assert router.bucket("") == round(gbhash("exp:", "", 2) * 10_000)  # defined, just unused
    everyone_else = Router("exp", {"challenger": 1.0, "champion": 0.0})
    assert everyone_else.assign("") == everyone_else.assign(0) == "champion"
    assert everyone_else.assign("0") == everyone_else.assign("user-1") == "challenger"
    for form in (["", "x", ""], np.array(["", "x", ""]), pa.array(["", "x", ""])):
        assert everyone_else.assign_many(form).tolist() == ["champion", "challenger", "champion"]
    assert everyone_else.assign_many(np.array([0, 5, 0])).tolist() == [
        "champion",
        "challenger",
        "champion",
    ]
