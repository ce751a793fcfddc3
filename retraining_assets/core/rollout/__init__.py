"""Rollout: the traffic router, rollout plans and the experiment statistics behind decisions.

Plain Python (numpy, scipy, pyarrow; numba when installed), no Dagster, no database: the rollout
assets, the serving path and the backtest call these functions. ``decide`` is the one place a
rollout decision (continue / advance / promote / rollback / halt) is made.

Bucket layout (nested ramps)
----------------------------
Variants take consecutive bucket ranges starting at 0, in the order of the weights mapping,
except the *control* (``"champion"`` by default), which always takes the top of the line. With
one challenger it owns the buckets ``b`` with ``b / 10000 < w``: raising its share from 5 % to
25 % to 100 % only moves entities champion -> challenger, never back. Range ends are
GrowthBook's running float sums of the weights, so every bucket has exactly one variant.
With several treatments the guarantee holds for changes of the *last* listed treatment's share
(the one next to the control); growing an earlier one shifts the ranges after it.

Modules: ``hashing`` (the bucket hash), ``router``, ``plan``, ``stats``, ``decision`` (the one
place a rollout decision is made), ``transitions`` (the audited state changes of a rollout in
the platform database) and ``experiment`` (the A/B report). This package re-exports the first
five; import ``transitions`` and ``experiment`` from their modules.
"""

from retraining_assets.core.rollout.decision import (
    Action,
    RolloutDecision,
    decide,
    describe,
)
from retraining_assets.core.rollout.hashing import (
    FNV_OFFSET,
    FNV_PRIME,
    N_BUCKETS,
    Engine,
    bucket,
    buckets,
    fnv1a32,
    fnv1a32_text,
    hash_v2,
    is_excluded,
)
from retraining_assets.core.rollout.plan import (
    RolloutPlan,
    RolloutPlanError,
    RolloutStep,
    Strategy,
    rollout_metric,
)
from retraining_assets.core.rollout.router import Router, validate_weights
from retraining_assets.core.rollout.stats import (
    SRM_P_THRESHOLD,
    Comparison,
    SrmResult,
    VariantSummary,
    compare,
    msprt,
    proportion_ztest,
    srm_check,
    summarize,
    welch_ttest,
)

__all__ = [
    "FNV_OFFSET",
    "FNV_PRIME",
    "N_BUCKETS",
    "SRM_P_THRESHOLD",
    "Action",
    "Comparison",
    "Engine",
    "RolloutDecision",
    "RolloutPlan",
    "RolloutPlanError",
    "RolloutStep",
    "Router",
    "SrmResult",
    "Strategy",
    "VariantSummary",
    "bucket",
    "buckets",
    "compare",
    "decide",
    "describe",
    "fnv1a32",
    "fnv1a32_text",
    "hash_v2",
    "is_excluded",
    "msprt",
    "proportion_ztest",
    "rollout_metric",
    "srm_check",
    "summarize",
    "validate_weights",
    "welch_ttest",
]
