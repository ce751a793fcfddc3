"""Drift engine: the one place where the data-drift verdict is made.

Plain numpy/scipy/pandas (numba optional), no Dagster. Two entry points:

* ``detect_drift(reference, current)`` fits a :class:`ReferenceProfile` and compares in one go;
* ``fit_reference(reference)`` once, then ``profile.compare(current)`` per month.

Statistics per column (computed on non-null values; null-rate change is its own test):

* numeric: two-sample KS (D identical to ``scipy.stats.ks_2samp``; p-value follows scipy's
  ``method="auto"``: exact for ``max(n1, n2) <= 10_000`` (delegated to scipy), otherwise the
  asymptotic ``kstwo.sf(D, round(n1*n2/(n1+n2)))``), PSI on the 10 reference-quantile bins,
  Wasserstein-1 divided by the reference std, Jensen-Shannon distance (base 2) on the bins;
* categorical: chi-square test of the 2 x K contingency table (reference vs current, never
  goodness-of-fit), PSI, Jensen-Shannon, L-infinity, Cramér's V and the unseen-category share.

Verdict: a column drifts when an effect size passes its threshold AND its Benjamini-Hochberg
q-value (over all feature tests of the report, null-rate tests included) is below the
significance level. An unseen-category share above its threshold alone is drift without the
q-value condition: a category absent from the whole reference cannot be sampling noise of the
reference, and the model has never been trained on it.

Infinite values: ``±inf`` are treated as extreme but valid values. They take part in the
rank-based statistics (KS, exactly as ``ks_2samp`` on the same data; the outer PSI/JS bins) and
are excluded from the moment-based ones (mean, std, Wasserstein), and counted in the report.
NaN / None / NA are nulls.

Modules: ``stats`` and ``kernels`` (the statistics), ``columns`` (column profiles and value
extraction), ``fit`` and ``profile`` (the reference profile), ``comparison`` (statistics per
column), ``verdict`` (the rules; ``DriftThresholds``, their knobs and ranges, live in
``core/drift_thresholds.py``), ``report`` and ``plots`` (the ``DriftReport``),
``multivariate`` and ``reconstruction`` (the dataset scores, on request: a domain classifier
and NannyML's PCA reconstruction error), ``detect`` and ``files`` (one-call entry points; file
reading stays in ``files``, out of the engine).
"""

from retraining_assets.core.drift.columns import (
    CategoricalProfile,
    DriftInputError,
    FitOptions,
    NumericProfile,
)
from retraining_assets.core.drift.comparison import compare
from retraining_assets.core.drift.detect import detect_drift
from retraining_assets.core.drift.files import drift_between_files
from retraining_assets.core.drift.fit import fit_reference
from retraining_assets.core.drift.multivariate import (
    ClassifierDrift,
    MultivariateDrift,
    ReconstructionDrift,
    multivariate_drift,
)
from retraining_assets.core.drift.profile import ReferenceProfile
from retraining_assets.core.drift.report import DriftReport
from retraining_assets.core.drift.stats import (
    benjamini_hochberg,
    jensen_shannon_distance,
    ks_2samp_sorted,
    population_stability_index,
)
from retraining_assets.core.drift_thresholds import DriftThresholds, ThresholdError

__all__ = [
    "CategoricalProfile",
    "ClassifierDrift",
    "DriftInputError",
    "DriftReport",
    "DriftThresholds",
    "FitOptions",
    "MultivariateDrift",
    "NumericProfile",
    "ReconstructionDrift",
    "ReferenceProfile",
    "ThresholdError",
    "benjamini_hochberg",
    "compare",
    "detect_drift",
    "drift_between_files",
    "fit_reference",
    "jensen_shannon_distance",
    "ks_2samp_sorted",
    "multivariate_drift",
    "population_stability_index",
]
