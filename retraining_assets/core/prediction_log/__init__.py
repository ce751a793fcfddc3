"""The prediction log: every prediction served and every outcome observed.

``records``: the rows (``Prediction``, ``Outcome``) and their spool form; ``spool``: the
append-only file with group commit that holds a row on disk before it is answered; ``writer``:
``PredictionLog``, the supervised background writer into the platform database; ``queries``:
the SQL that writes and reads the log.
"""

from retraining_assets.core.prediction_log.queries import (
    VARIANTS,
    assignment_counts,
    count_rows,
    entities_of,
    find_outcomes,
    find_prediction,
    insert_ignoring_duplicates,
    outcome_count,
    variant_summaries,
)
from retraining_assets.core.prediction_log.records import Outcome, Prediction, Record, _row
from retraining_assets.core.prediction_log.spool import Spool, SpoolError
from retraining_assets.core.prediction_log.writer import PredictionLog

__all__ = [
    "VARIANTS",
    "Outcome",
    "Prediction",
    "PredictionLog",
    "Record",
    "Spool",
    "SpoolError",
    "_row",
    "assignment_counts",
    "count_rows",
    "entities_of",
    "find_outcomes",
    "find_prediction",
    "insert_ignoring_duplicates",
    "outcome_count",
    "variant_summaries",
]
