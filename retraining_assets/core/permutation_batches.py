"""How many features' permuted copies one model call scores. Both permutation importances (the
champion's, ``core/importance.py``, and the domain classifier's, ``core/drift/multivariate.py``)
stack the shuffled copies of several features into one call, because a model's per-call cost
dominates at holdout size; the batch is capped in cells (rows x columns), not rows, so that a
500-column table's batch is as small in memory as a 15-column one's."""

from __future__ import annotations

# 40 MB of float64 per call: ~330k rows of the demo's 15 columns, 10k rows of 500 columns (a cap
# of 250k rows at any width held 3 GB per call there: BENCHMARKS.md, Importance on a wide table)
MAX_BATCH_CELLS = 5_000_000


def feature_batches(
    features: int, rows: int, columns: int, max_cells: int = MAX_BATCH_CELLS
) -> list[range]:
    """Consecutive ranges of the ``features`` indices, each range's permuted copies (``rows``
    rows of ``columns`` columns per feature) within ``max_cells``; at least one feature each."""
    per_batch = max(1, max_cells // max(1, rows * columns))
    return [
        range(first, min(first + per_batch, features)) for first in range(0, features, per_batch)
    ]
