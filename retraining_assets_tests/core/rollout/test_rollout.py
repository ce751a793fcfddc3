"""Router, rollout plans, experiment statistics and the rollout decision (fast, plain)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from growthbook.core import _js_number_to_string
from scipy import stats

from retraining_assets.core import rollout
from retraining_assets.core.rollout import (
    SRM_P_THRESHOLD,
    Action,
    RolloutPlan,
    RolloutPlanError,
    RolloutStep,
    Router,
    VariantSummary,
    bucket,
    buckets,
    decide,
    fnv1a32,
    is_excluded,
    msprt,
    proportion_ztest,
    srm_check,
    summarize,
    welch_ttest,
)

WEIGHTS = {"champion": 0.9, "challenger": 0.1}
ENGINES = ["numpy", "numba"]

# (salt, id, bucket, in experiment, variant for WEIGHTS); the same ship in rollout_vectors.json
VECTORS = [
    ("", "a", 2812, True, "champion"),
    ("exp", "user-1", 6500, True, "champion"),
    ("exp", "user-2", 3931, True, "champion"),
    ("exp", 42, 3437, True, "champion"),
    ("exp", "42", 3437, True, "champion"),
    ("exp", -7, 3955, True, "champion"),
    ("exp", "", 6480, False, "champion"),  # GrowthBook leaves the empty id out: the control
    ("model-v7", "550e8400-e29b-41d4-a716-446655440000", 5486, True, "champion"),
    ("model-v7", "é", 9326, True, "champion"),  # UTF-16 code units, not UTF-8 bytes
    ("model-v7", "日本語", 3502, True, "champion"),
    ("rollout:2026-11", 0, 4427, False, "champion"),  # the number 0 is left out too
    ("rollout:2026-11", 9223372036854775807, 4657, True, "champion"),  # "9223372036854776000"
    ("exp", "user-12", 826, True, "challenger"),
    ("exp", "user-17", 73, True, "challenger"),
    ("exp", "😀", 2609, True, "champion"),  # a surrogate pair
    ("exp", 2**53 + 1, 5198, True, "champion"),  # "9007199254740992", as 2**53
    ("exp", -(2**60), 8454, True, "champion"),  # "-1152921504606847000"
]


def spec_bucket(salt: str, entity_id: str | int) -> int:
    """The documented algorithm, written out independently of the module (GrowthBook's SDK
    formats integer ids as JavaScript numbers)."""

    def fnv(units: list[int]) -> int:
        h = 0x811C9DC5
        for unit in units:
            h = ((h ^ unit) * 0x01000193) % 2**32
        return h

    text = entity_id if isinstance(entity_id, str) else _js_number_to_string(entity_id)
    raw = f"{salt}:{text}".encode("utf-16-le", "surrogatepass")
    h1 = fnv([raw[i] | raw[i + 1] << 8 for i in range(0, len(raw), 2)])
    return fnv(list(str(h1).encode())) % 10_000


def binary(name: str, n: int, wins: int) -> VariantSummary:
    """Summary of ``n`` 0/1 outcomes with ``wins`` ones (sum == sum of squares)."""
    return VariantSummary.from_moments(name, int(n), int(wins), int(wins))


def string_ids(n: int, seed: int = 0) -> list[str]:
    return [f"user-{i}" for i in np.random.default_rng(seed).integers(0, 10**12, n)]


# ---- hash and test vectors -----------------------------------------------------------------


def test_fnv1a32_reference_values() -> None:
    assert fnv1a32(b"") == 0x811C9DC5
    assert fnv1a32(b"a") == 0xE40C292C
    assert fnv1a32(b"foobar") == 0xBF9CF968
    # GrowthBook hash v1 case ("", "a") -> 0.22 shares the same FNV-1a
    assert fnv1a32(b"a") % 1000 == 220


def test_shipped_vectors_match_table_spec_and_every_path() -> None:
    shipped = json.loads((Path(rollout.__file__).parent / "rollout_vectors.json").read_text())
    assert shipped["weights"] == WEIGHTS
    table = [
        (v["salt"], v["id"], v["bucket"], v["in_experiment"], v["variant"])
        for v in shipped["vectors"]
    ]
    assert table == VECTORS
    for salt, entity_id, expected, included, variant in VECTORS:
        assert is_excluded(entity_id) is not included
        router = Router(salt, WEIGHTS)
        assert spec_bucket(salt, entity_id) == expected
        assert bucket(salt, entity_id) == expected
        assert router.bucket(entity_id) == expected
        assert router.assign(entity_id) == variant
        for engine in ENGINES:
            assert buckets(salt, [entity_id], engine=engine).tolist() == [expected]
            assert router.assign_many([entity_id], engine=engine).tolist() == [variant]


def test_integer_ids_share_a_bucket_with_their_javascript_text() -> None:
    ints = np.array([0, 7, -7, 2**53, -(2**53), 2**53 + 1, 10**18, -(2**63), 2**63 - 1])
    texts = [_js_number_to_string(int(x)) for x in ints]
    assert texts[:5] == ["0", "7", "-7", str(2**53), str(-(2**53))]  # exact up to 2**53
    assert texts[5:] == ["9007199254740992", "1000000000000000000", "-9223372036854776000",
                         "9223372036854776000"]  # fmt: skip
    for engine in ENGINES:
        assert (
            buckets("s", ints, engine=engine).tolist()
            == buckets("s", texts, engine=engine).tolist()
        )
    big = [2**64 + 1, -(2**70), 10**21, 12345678901234567890123]  # Python ints beyond int64
    assert buckets("s", big).tolist() == [spec_bucket("s", x) for x in big]
    assert [_js_number_to_string(x) for x in big[2:]] == ["1e+21", "1.2345678901234568e+22"]
    with pytest.raises(ValueError, match="position 1 is beyond the range of a double"):
        buckets("s", [1, 10**400])


@pytest.mark.parametrize("engine", ENGINES)
def test_single_path_equals_batch_path_for_every_input_form(engine: str) -> None:
    router = Router("forms", {"champion": 0.5, "challenger": 0.3, "shadow": 0.2})
    strs = [*string_ids(3000), "", "é", "日本語", "😀x", "a\x00b"]
    ints = np.random.default_rng(1).integers(-(10**15), 10**15, 3000)
    expected_s = [router.assign(x) for x in strs]
    expected_i = [router.assign(int(x)) for x in ints]
    assert [spec_bucket("forms", x) for x in strs[:50]] == [router.bucket(x) for x in strs[:50]]
    for form in (
        strs,
        np.array(strs),
        np.array(strs, dtype=object),
        pd.Series(strs),
        pa.array(strs),
    ):
        assert router.assign_many(form, engine=engine).tolist() == expected_s
    for form in (ints, ints.tolist(), pd.Series(ints), pa.array(ints)):
        assert router.assign_many(form, engine=engine).tolist() == expected_i
    mixed = ["a", 1, np.int64(2)]
    assert router.assign_many(mixed, engine=engine).tolist() == [router.assign(x) for x in mixed]
    assert router.assign_many([], engine=engine).tolist() == []


def test_bad_ids_are_named() -> None:
    router = Router("s", WEIGHTS)
    with pytest.raises(ValueError, match="position 1 is missing"):
        router.assign_many(["a", None, "b"])
    with pytest.raises(TypeError, match="float64"):
        router.assign_many(np.array([1.5, 2.0]))
    with pytest.raises(TypeError, match="bool"):
        router.assign(True)
    with pytest.raises(TypeError, match=r"position 1 .* float 2\.5"):
        router.assign_many(["a", 2.5])


def variant_counts(router: Router, ids: object) -> dict[str, int]:
    """How many of ``ids`` each variant of ``router`` receives."""
    names, counts = np.unique(router.assign_many(ids).astype(str), return_counts=True)
    return {str(name): int(count) for name, count in zip(names, counts, strict=True)}


# ---- router properties ----------------------------------------------------------------------


def test_split_matches_weights_on_a_million_ids() -> None:
    for weights in (WEIGHTS, {"champion": 0.5, "a": 0.3, "b": 0.2}):
        counts = variant_counts(Router("split-test", weights), string_ids(1_000_000, seed=7))
        observed = [counts[v] for v in weights]
        expected = [w * 1_000_000 for w in weights.values()]
        assert stats.chisquare(observed, expected).pvalue > 0.001
    ints = np.arange(1_000_000)
    counts = variant_counts(Router("split-test", WEIGHTS), ints)
    assert stats.chisquare([counts["champion"], counts["challenger"]], [9e5, 1e5]).pvalue > 0.001


def test_assignments_are_stable_across_processes() -> None:
    ids = string_ids(1000, seed=3)
    script = (
        "import json, sys\n"
        "from retraining_assets.core.rollout import Router\n"
        "ids = json.loads(sys.stdin.read())\n"
        "r = Router('stable', {'champion': 0.7, 'challenger': 0.3})\n"
        "print(json.dumps([r.assign_many(ids).tolist(), [r.assign(i) for i in ids]]))\n"
    )
    for numba in ("1", "0"):  # also the numpy engine, in a fresh process with another hash seed
        env = {**os.environ, "PYTHONHASHSEED": "12345", "RETRAIN_ROUTER_NUMBA": numba}
        done = subprocess.run(
            [sys.executable, "-c", script],
            input=json.dumps(ids),
            capture_output=True,
            text=True,
            env=env,
            check=True,
            cwd=Path(rollout.__file__).parents[3],
        )
        batch, single = json.loads(done.stdout)
        here = Router("stable", {"champion": 0.7, "challenger": 0.3}).assign_many(ids).tolist()
        assert batch == single == here


def test_nested_ramp_never_moves_an_entity_back_to_champion() -> None:
    ids = string_ids(100_000, seed=5)
    previous = np.zeros(len(ids), dtype=bool)
    for share in (0.05, 0.25, 0.5, 1.0):
        on = Router("ramp", {"champion": 1.0 - share, "challenger": share}).assign_many(ids)
        challenger = on == "challenger"
        assert not (previous & ~challenger).any()
        assert abs(challenger.mean() - share) < 0.01
        previous = challenger


def test_challenger_range_starts_at_zero_and_zero_share_gets_nothing() -> None:
    router = Router("r", {"champion": 0.75, "off": 0.0, "challenger": 0.25})
    assert router.ranges == {"off": (0, 0), "challenger": (0, 2500), "champion": (2500, 10000)}
    assert "off" not in set(router.assign_many(string_ids(20_000)).tolist())


def test_experiments_with_different_salts_are_independent() -> None:
    ids = string_ids(200_000, seed=11)
    first = Router("exp-1", {"champion": 0.5, "challenger": 0.5}).assign_many(ids) == "challenger"
    second = Router("exp-2", {"champion": 0.9, "challenger": 0.1}).assign_many(ids) == "challenger"
    both = (first & second).mean()
    assert abs(both - first.mean() * second.mean()) < 0.004  # ~5 standard errors
    table = [[np.sum(a & b) for b in (second, ~second)] for a in (first, ~first)]
    assert stats.chi2_contingency(table).pvalue > 0.001


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({}, "at least one variant"),
        ({"champion": 0.9, "challenger": 0.2}, "sum to 1"),
        ({"champion": 1.1, "challenger": -0.1}, "'champion' must be in"),
        ({"champion": float("nan"), "challenger": 1.0}, "'champion' must be in"),
        ({"champion": "x", "challenger": 1.0}, "'champion' must be a number"),
        ({"": 1.0}, "non-empty strings"),
        ({"champion": 0.99999, "challenger": 0.00001}, "'challenger'.*bucket resolution"),
    ],
)
def test_weight_validation_names_the_bad_weight(weights: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Router("s", weights)


# ---- plans ------------------------------------------------------------------------------------

GRADUAL = {
    "strategy": "gradual",
    "steps": [
        {"share": 0.05, "min_hours": 2, "min_samples": 300},
        {"share": 0.25, "min_hours": 2, "min_samples": 300},
        {"share": 0.5, "min_hours": 2, "min_samples": 300},
        {"share": 1.0},
    ],
}


def test_plan_parsing_and_step_advancement() -> None:
    plan = RolloutPlan.from_dict(GRADUAL)
    assert [plan.share_at(i) for i in range(4)] == [0.05, 0.25, 0.5, 1.0]
    assert plan.weights_at(0) == {"challenger": 0.05, "champion": 0.95}
    assert not plan.step_ready(0, 1.0, 1000)  # too early
    assert not plan.step_ready(0, timedelta(hours=2), 299)  # too few samples
    assert plan.step_ready(0, timedelta(hours=2), 300)
    assert RolloutPlan.from_dict(plan.to_dict()) == plan
    with pytest.raises(IndexError, match="outside"):
        plan.share_at(4)

    canary = RolloutPlan.from_dict({"strategy": "canary", "min_samples": 100})
    assert canary.steps == (RolloutStep(0.05, 0.0, 100),)
    assert canary.promote_rule == "not_worse"
    ab = RolloutPlan.from_dict({"strategy": "ab", "max_samples": 5000, "metric": "continuous"})
    assert (ab.share_at(0), ab.promote_rule, ab.metric) == (0.5, "better", "continuous")
    assert RolloutPlan.from_dict({"strategy": "immediate"}).steps == (RolloutStep(1.0),)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "strategy is required"),
        ({"strategy": "big-bang"}, "strategy must be one of"),
        ({"strategy": "gradual"}, "steps must be a non-empty list"),
        ({"strategy": "gradual", "steps": [{"min_hours": 1}]}, r"steps\[0\]\.share is required"),
        ({"strategy": "gradual", "steps": [{"share": 0.5}, {"share": 0.2}]}, r"steps\[1\]\.share"),
        ({"strategy": "gradual", "steps": [{"share": 1.5}]}, r"steps\[0\]\.share must be in"),
        ({"strategy": "gradual", "steps": [{"share": 0.1, "min_hour": 1}]}, "unknown keys"),
        ({"strategy": "gradual", "steps": [{"share": 0.1, "min_samples": 1.5}]}, "min_samples"),
        ({"strategy": "canary", "steps": [{"share": 0.1}]}, "unknown keys"),
        ({"strategy": "ab", "alpha": 0.9}, "alpha"),
        ({"strategy": "ab", "metric": "accuracy"}, "metric must be one of"),
        ({"strategy": "ab", "sequential": "yes"}, "sequential must be true or false"),
    ],
)
def test_plan_validation_errors_name_the_field(settings: dict, message: str) -> None:
    with pytest.raises(RolloutPlanError, match=message):
        RolloutPlan.from_dict(settings)


# ---- statistics -------------------------------------------------------------------------------


def test_summaries_from_outcomes_log_and_moments_agree() -> None:
    rng = np.random.default_rng(2)
    variants = rng.choice(["champion", "challenger"], 5000)
    outcomes = rng.normal(1.0, 2.0, 5000)
    by_log = summarize(variants, outcomes)
    for name, s in by_log.items():
        x = outcomes[variants == name]
        direct = VariantSummary.from_outcomes(name, x)
        moments = VariantSummary.from_moments(name, x.size, x.sum(), (x * x).sum())
        assert s.n == direct.n == moments.n
        assert s.mean == pytest.approx(direct.mean) == pytest.approx(moments.mean)
        assert s.variance == pytest.approx(direct.variance) == pytest.approx(moments.variance)
    with pytest.raises(ValueError, match="NaN"):
        VariantSummary.from_outcomes("x", [1.0, math.nan])


def test_welch_and_z_tests_match_reference_formulas() -> None:
    rng = np.random.default_rng(4)
    a, b = rng.normal(1.0, 1.0, 400), rng.normal(1.2, 2.0, 300)
    result = welch_ttest(VariantSummary.from_outcomes("a", a), VariantSummary.from_outcomes("b", b))
    reference = stats.ttest_ind(b, a, equal_var=False)
    assert result.p_value == pytest.approx(reference.pvalue)
    assert result.statistic == pytest.approx(reference.statistic)
    low, high = reference.confidence_interval(0.95)
    assert (result.ci_low, result.ci_high) == pytest.approx((low, high))

    champion, challenger = binary("c", 1000, 800), binary("t", 1000, 840)
    z = proportion_ztest(champion, challenger)
    pooled = 0.82
    expected_z = 0.04 / math.sqrt(pooled * (1 - pooled) * 2 / 1000)
    assert z.statistic == pytest.approx(expected_z)
    assert z.p_value == pytest.approx(2 * stats.norm.sf(expected_z))
    assert z.effect == pytest.approx(0.04) and z.ci_low < 0.04 < z.ci_high


def test_msprt_formula_and_confidence_sequence() -> None:
    champion = VariantSummary("c", 2000, 0.80, 0.16)
    challenger = VariantSummary("t", 2000, 0.83, 0.1411)
    result = msprt(champion, challenger, alpha=0.05, tau=0.1, binary=True)
    pooled = 0.815 * 0.185  # the null's variance: both arms one population
    v = pooled * 2 / 2000
    t2 = 0.01 * pooled
    lam = math.sqrt(v / (v + t2)) * math.exp(t2 * 0.03**2 / (2 * v * (v + t2)))
    assert result.p_value == pytest.approx(min(1.0, 1 / lam))
    # the interval's ends are exactly where the likelihood ratio against theta crosses 1/alpha
    for end in (result.ci_low, result.ci_high):
        d = 0.03 - end
        lam_end = math.sqrt(v / (v + t2)) * math.exp(t2 * d**2 / (2 * v * (v + t2)))
        assert lam_end == pytest.approx(20.0)
    fixed = proportion_ztest(champion, binary("t", 2000, 1660))
    assert result.ci_high - result.ci_low > fixed.ci_high - fixed.ci_low  # the price of peeking
    a, b = np.random.default_rng(3).normal(0, 1, (2, 50))
    continuous = msprt(VariantSummary.from_outcomes("c", a), VariantSummary.from_outcomes("t", b))
    s2 = np.concatenate([a, b]).var(ddof=1)  # the variance of both arms together
    v, t2, d = s2 * 2 / 50, 0.01 * s2, b.mean() - a.mean()
    assert continuous.statistic == pytest.approx(
        0.5 * math.log(v / (v + t2)) + t2 * d * d / (2 * v * (v + t2))
    )


@pytest.mark.parametrize("binary_metric", [True, False])
def test_msprt_p_value_is_honest_for_constant_arms(binary_metric: bool) -> None:
    """[1, 1] vs [0, 0] is no proof of a difference: Fisher's exact test gives 1/3, and an
    always-valid p-value, which must also hold under every later look, is not below it."""
    champion = VariantSummary.from_outcomes("champion", [1, 1])
    challenger = VariantSummary.from_outcomes("challenger", [0, 0])
    fisher = stats.fisher_exact([[2, 0], [0, 2]]).pvalue
    assert fisher == pytest.approx(1 / 3)
    result = msprt(champion, challenger, binary=binary_metric)
    assert fisher <= result.p_value <= 1 and not result.significant
    # a challenger 0/2 against a champion's 38/38 is not rolled back "at p = 0"
    few = msprt(binary("champion", 38, 38), binary("challenger", 2, 0), binary=True)
    assert few.p_value >= stats.fisher_exact([[38, 0], [0, 2]]).pvalue
    assert msprt(binary("c", 5, 5), binary("t", 5, 5), binary=True).p_value == 1.0
    plan = RolloutPlan.from_dict(GRADUAL)
    decision = decide(
        plan, 0, elapsed=1, champion=binary("champion", 38, 38),
        challenger=binary("challenger", 2, 0), assignments={"champion": 38, "challenger": 2},
    )  # fmt: skip
    assert decision.action is Action.CONTINUE


def _aa_first_rejections(
    rng: np.random.Generator, n_rollouts: int, n_outcomes: int, share: float, rate: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A/A rollouts (both arms the same Bernoulli ``rate``), the test run after every outcome
    once each arm has 2: per rollout, the first look where it rejects (-1: never) and the
    cumulative counts (n0, s0, n1, s1). The formula is msprt's, vectorised over every look."""
    arm = rng.random((n_rollouts, n_outcomes)) < share
    win = rng.random((n_rollouts, n_outcomes)) < rate
    n1 = np.cumsum(arm, 1)
    n0 = np.arange(1, n_outcomes + 1) - n1
    s1 = np.cumsum(arm & win, 1)
    s0 = np.cumsum(~arm & win, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        pooled = (s0 + s1) / (n0 + n1)
        null_var = pooled * (1 - pooled)
        var = null_var * (1 / n0 + 1 / n1)
        t2 = 0.01 * null_var
        d = s1 / n1 - s0 / n0
        log_lambda = 0.5 * np.log(var / (var + t2)) + t2 * d * d / (2 * var * (var + t2))
    looked = (n0 >= 2) & (n1 >= 2) & (n0 <= 5000) & (n1 <= 5000) & (null_var > 0)
    reject = looked & (log_lambda >= math.log(20))
    first = np.where(reject.any(1), reject.argmax(1), -1)
    return first, n0, s0, n1, s1


@pytest.mark.parametrize(
    ("share", "rate", "n_outcomes"),
    [(0.5, 0.8, 10_000), (0.5, 0.95, 10_000), (0.05, 0.9, 20_000)],
)
def test_aa_false_positive_rate_stays_below_alpha_when_checked_after_every_outcome(
    share: float, rate: float, n_outcomes: int
) -> None:
    """2,000 seeded A/A rollouts per case, msprt checked after every outcome from n = 2 (up to
    5,000 per arm with an even split): the one-sided 95 % Clopper-Pearson upper bound of the
    false-positive rate is below alpha = 5 %, so the pass is no luck of a loose threshold.
    Each rejection found by the vectorised formula is confirmed by ``msprt`` and ``decide``
    (a rollback), and each rollout's strongest non-rejecting look is confirmed as such."""
    rng = np.random.default_rng(2026)
    n_rollouts = 2000
    first, n0, s0, n1, s1 = _aa_first_rejections(rng, n_rollouts, n_outcomes, share, rate)
    plan = RolloutPlan.from_dict({"strategy": "ab", "share": share, "min_samples": 10**6})
    for r in np.flatnonzero(first >= 0):
        k = first[r]
        c, t = binary("champion", n0[r, k], s0[r, k]), binary("challenger", n1[r, k], s1[r, k])
        assert msprt(c, t, binary=True).significant
        if k > 0 and min(n0[r, k - 1], n1[r, k - 1]) >= 2:
            earlier = (n0[r, k - 1], s0[r, k - 1], n1[r, k - 1], s1[r, k - 1])
            c0, t0 = binary("champion", *earlier[:2]), binary("challenger", *earlier[2:])
            assert not msprt(c0, t0, binary=True).significant
        counts = {"champion": int(n0[r, k]), "challenger": int(n1[r, k])}
        decision = decide(plan, 0, elapsed=1, champion=c, challenger=t, assignments=counts)
        assert decision.action in (Action.ROLLBACK, Action.HALT) or decision.improvement > 0
    hits = int((first >= 0).sum())
    upper = stats.binomtest(hits, n_rollouts, alternative="less").proportion_ci(0.95).high
    assert hits > 0 and upper < 0.05, (hits, upper)


def test_sequential_test_stays_valid_under_repeated_peeking() -> None:
    """300 A/A experiments, 20 looks each: mSPRT's family-wise false positive rate stays
    within a binomial tolerance of 5 %, while peeking at the z-test inflates it."""
    rng = np.random.default_rng(2026)
    n_exp, looks, per_look, p = 300, 20, 200, 0.8
    successes = rng.binomial(per_look, p, size=(n_exp, looks, 2)).cumsum(axis=1)
    msprt_hits = ztest_hits = 0
    for e in range(n_exp):
        seq_alarm = z_alarm = False
        for k in range(looks):
            n = per_look * (k + 1)
            c, t = binary("c", n, successes[e, k, 0]), binary("t", n, successes[e, k, 1])
            seq_alarm |= msprt(c, t, alpha=0.05, binary=True).significant
            z_alarm |= proportion_ztest(c, t, alpha=0.05).significant
        msprt_hits += seq_alarm
        ztest_hits += z_alarm
    assert msprt_hits <= stats.binom.ppf(0.999, n_exp, 0.05)
    assert ztest_hits > stats.binom.ppf(0.999, n_exp, 0.05)  # the problem mSPRT solves


def test_srm_detects_a_skewed_log_and_passes_a_fair_one() -> None:
    half = {"champion": 0.5, "challenger": 0.5}
    skewed = srm_check({"champion": 52_000, "challenger": 48_000}, half)
    assert skewed.halt and skewed.p_value < SRM_P_THRESHOLD
    rng = np.random.default_rng(8)
    fair = variant_counts(Router("srm", half), string_ids(100_000, seed=int(rng.integers(1000))))
    assert not srm_check(fair, half).halt
    assert srm_check({"champion": 10, "challenger": 1, "ghost": 1}, half).halt
    assert (
        srm_check({"champion": 5, "challenger": 0}, {"champion": 1.0, "challenger": 0.0}).p_value
        == 1
    )
    assert srm_check({"champion": 5, "challenger": 1}, {"champion": 1.0, "challenger": 0.0}).halt


# ---- the rollout decision ------------------------------------------------------------------


def run_rollout(
    plan: RolloutPlan, p_champion: float, p_challenger: float, seed: int, per_hour: int = 2000
) -> tuple[Action, list[tuple[int, Action]]]:
    """Walk a plan hour by hour on simulated binary outcomes until a terminal action.

    Each step is judged on its own data (counts and outcomes restart when the share changes),
    as the rollout assets do.
    """
    rng = np.random.default_rng(seed)
    step, hours, history = 0, 0, []
    counts = np.zeros(2, np.int64)
    wins = np.zeros(2, np.int64)
    for _ in range(2000):
        share = plan.share_at(step)
        n_challenger = rng.binomial(per_hour, share)
        hour_counts = np.array([per_hour - n_challenger, n_challenger])
        counts += hour_counts
        wins += rng.binomial(hour_counts, [p_champion, p_challenger])
        hours += 1
        c, t = binary("champion", counts[0], wins[0]), binary("challenger", counts[1], wins[1])
        decision = decide(plan, step, elapsed=timedelta(hours=hours), champion=c, challenger=t)
        history.append((step, decision.action))
        if decision.action is Action.ADVANCE:
            step, hours = decision.next_step, 0
            counts[:] = wins[:] = 0
        elif decision.action is not Action.CONTINUE:
            return decision.action, history
    return Action.CONTINUE, history


def test_better_challenger_is_promoted_after_every_step() -> None:
    action, history = run_rollout(RolloutPlan.from_dict(GRADUAL), 0.80, 0.83, seed=1)
    assert action is Action.PROMOTE
    assert sorted({step for step, _ in history}) == [0, 1, 2, 3]
    ab = RolloutPlan.from_dict({"strategy": "ab", "min_samples": 500})
    action, _ = run_rollout(ab, 0.80, 0.83, seed=2)
    assert action is Action.PROMOTE


def test_worse_challenger_is_rolled_back_at_the_first_step() -> None:
    action, history = run_rollout(RolloutPlan.from_dict(GRADUAL), 0.80, 0.70, seed=3)
    assert action is Action.ROLLBACK
    assert history[-1][0] == 0
    lower = RolloutPlan.from_dict({**GRADUAL, "metric": "continuous", "higher_is_better": False})
    champion, challenger = (
        VariantSummary("champion", 2000, 1.0, 1.0),
        VariantSummary("challenger", 100, 1.5, 1.0),
    )
    assignments = {"champion": 1900, "challenger": 100}
    decision = decide(
        lower, 0, elapsed=1, champion=champion, challenger=challenger, assignments=assignments
    )
    assert decision.action is Action.ROLLBACK and decision.improvement == pytest.approx(-0.5)
    assert decision.share == 0.0


def test_no_effect_is_not_promoted_at_a_fixed_horizon() -> None:
    plan = RolloutPlan.from_dict(
        {"strategy": "ab", "min_samples": 5000, "sequential": False, "max_samples": 5000}
    )
    rng = np.random.default_rng(9)
    promoted = 0
    for wins in rng.binomial(5000, 0.8, size=(200, 2)):
        c, t = binary("champion", 5000, wins[0]), binary("challenger", 5000, wins[1])
        decision = decide(plan, 0, elapsed=48, champion=c, challenger=t)
        assert decision.action in (Action.PROMOTE, Action.ROLLBACK)  # horizon reached: final
        assert decision.comparison is not None and decision.comparison.method == "z_test"
        promoted += decision.action is Action.PROMOTE
    assert promoted <= stats.binom.ppf(0.999, 200, 0.025)  # one-sided half of alpha


def test_decide_halts_on_sample_ratio_mismatch_and_waits_for_the_minimum() -> None:
    plan = RolloutPlan.from_dict({"strategy": "ab", "min_samples": 1000, "min_hours": 24})
    c, t = (
        VariantSummary("champion", 52_000, 0.8, 0.16),
        VariantSummary("challenger", 48_000, 0.8, 0.16),
    )
    halted = decide(plan, 0, elapsed=48, champion=c, challenger=t)
    assert halted.action is Action.HALT and halted.share == 0.0 and "mismatch" in halted.reason
    c, t = VariantSummary("champion", 500, 0.8, 0.16), VariantSummary("challenger", 500, 0.8, 0.16)
    waiting = decide(plan, 0, elapsed=timedelta(hours=30), champion=c, challenger=t)
    assert waiting.action is Action.CONTINUE and waiting.share == 0.5
    assert waiting.to_dict()["action"] == "continue"
    fixed = RolloutPlan.from_dict({"strategy": "canary", "min_samples": 1000, "sequential": False})
    few = binary("challenger", 30, 3)
    assignments = {"champion": 570, "challenger": 30}
    early = decide(fixed, 0, elapsed=1, champion=c, challenger=few, assignments=assignments)
    assert early.action is Action.CONTINUE and early.comparison is None  # no peeking at a z-test
