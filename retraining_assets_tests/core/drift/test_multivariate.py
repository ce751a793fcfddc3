"""The domain classifier: what a user relies on when asking ``multivariate=True``."""

from __future__ import annotations

import io
import json
import math
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.datasets import load_breast_cancer

from retraining_assets.core.drift import (
    DriftInputError,
    DriftReport,
    ReferenceProfile,
    detect_drift,
    fit_reference,
    multivariate,
    multivariate_drift,
)
from retraining_assets.core.drift.multivariate import NO_SAMPLE, _u_statistic, classifier_drift

DATA = Path(__file__).parent / "data"


def correlated(n: int, rho: float, seed: int) -> pd.DataFrame:
    """Standard normal x and y with correlation ``rho`` (marginals never change), plus noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = rho * x + math.sqrt(1 - rho**2) * rng.normal(size=n)
    return pd.DataFrame({"x": x, "y": y, "z": rng.normal(size=n), "c": rng.choice(list("ab"), n)})


def test_correlation_change_alarms_the_classifier_and_no_univariate_test() -> None:
    report = detect_drift(
        correlated(4000, 0.0, seed=1), correlated(4000, 0.8, seed=2), multivariate=True
    )
    assert report.drifted_features == [] and not report.dataset_drift
    classifier = report.multivariate.classifier
    assert classifier.drifted and classifier.auc > 0.6 and classifier.p_value < 1e-6
    assert set(list(classifier.importances)[:2]) == {"x", "y"}  # the pair that changed


def test_a_pure_shift_is_found_and_its_feature_ranks_first() -> None:
    rng = np.random.default_rng(3)
    reference = pd.DataFrame(rng.normal(size=(3000, 6)), columns=[f"f{i}" for i in range(6)])
    current = pd.DataFrame(rng.normal(size=(3000, 6)), columns=reference.columns)
    current["f4"] += 0.5
    result = multivariate_drift(reference, current, seed=0).classifier
    assert result.drifted and result.skipped is None
    assert next(iter(result.importances)) == "f4" and result.importances["f4"] > 0.5
    assert math.isclose(sum(result.importances.values()), 1.0)
    assert result.rows == 3000


def test_p_value_is_calibrated_on_random_splits_of_one_sample() -> None:
    """100 seeded random halves of a real data set (sklearn's breast cancer, 569 rows, 30
    correlated features): the p-values are uniform and false alarms at 5% stay within the
    binomial bound."""
    data = load_breast_cancer().data
    p_values = []
    for seed in range(100):
        order = np.random.default_rng(seed).permutation(len(data))
        half = len(data) // 2
        result = classifier_drift(
            data[order[:half]], data[order[half:]], np.zeros(data.shape[1], dtype=bool),
            [str(i) for i in range(data.shape[1])], seed=seed, importances=False,
        )  # fmt: skip
        p_values.append(result.p_value)
    p_values = np.array(p_values)
    alarms = int((p_values < 0.05).sum())
    assert alarms <= stats.binom.ppf(0.999, 100, 0.05)  # 13
    assert stats.kstest(p_values, "uniform").pvalue > 0.001


def test_u_statistic_and_p_value_match_scipy_mannwhitneyu() -> None:
    rng = np.random.default_rng(5)
    scores = np.round(rng.normal(size=300), 1)  # ties, as tree scores have
    labels = np.repeat([0, 1], 150)
    scores[labels == 1] += 0.2
    u, mean, variance = _u_statistic(scores, labels)
    expected = stats.mannwhitneyu(
        scores[labels == 1], scores[labels == 0], alternative="greater",
        use_continuity=False, method="asymptotic",
    )  # fmt: skip
    assert u == pytest.approx(expected.statistic)
    assert stats.norm.sf((u - mean) / math.sqrt(variance)) == pytest.approx(expected.pvalue)


def test_tiny_significant_effect_below_min_auc_does_not_alarm() -> None:
    rng = np.random.default_rng(6)
    reference = pd.DataFrame({"x": rng.normal(size=20_000)})
    current = pd.DataFrame({"x": rng.normal(0.1, 1, size=20_000)})
    result = multivariate_drift(reference, current).classifier
    assert result.p_value < 0.05 and result.auc < 0.55 and not result.drifted
    assert multivariate_drift(reference, current, min_auc=0.5).classifier.drifted


def test_too_few_rows_skips_with_a_reason_and_the_rest_is_computed() -> None:
    reference, current = correlated(2000, 0.0, seed=1), correlated(30, 0.9, seed=2)
    report = detect_drift(reference, current, multivariate=True)
    classifier = report.multivariate.classifier
    assert classifier.skipped.startswith("too few rows: reference 2000, current 30")
    assert not classifier.drifted and math.isnan(classifier.auc)
    assert report.multivariate.reconstruction.skipped is None  # 30 rows are enough to score
    assert set(report.features) == {"x", "y", "z", "c"}
    assert json.loads(report.to_json())["multivariate"]["classifier"]["auc"] is None


def test_deterministic_with_the_seed() -> None:
    reference, current = correlated(3000, 0.0, seed=1), correlated(3000, 0.3, seed=2)
    first = multivariate_drift(reference, current, seed=4)
    assert multivariate_drift(reference, current, seed=4) == first
    assert multivariate_drift(reference, current, seed=5).classifier.auc != first.classifier.auc


def test_batching_the_shuffled_copies_changes_no_importance(monkeypatch) -> None:
    # a predict call per feature (the smallest batch) gives the same numbers as one call for
    # all features: only memory differs (core/permutation_batches.py)
    reference, current = correlated(3000, 0.0, seed=1), correlated(3000, 0.5, seed=2)
    together = multivariate_drift(reference, current, seed=4).classifier
    monkeypatch.setattr(multivariate, "MAX_BATCH_CELLS", 1)
    assert multivariate_drift(reference, current, seed=4).classifier == together


def test_categorical_columns_and_nulls() -> None:
    """A category mix that changes only jointly with a numeric column, with nulls on both."""
    rng = np.random.default_rng(8)
    n = 4000
    reference = pd.DataFrame({"amount": rng.normal(size=n), "shop": rng.choice(["a", "b"], n)})
    current = reference.copy()
    current["shop"] = np.where(current["amount"] > 0, "a", "b")  # same mix, now tied to amount
    current = current.sample(frac=1.0, random_state=1).reset_index(drop=True)
    for frame in (reference, current):
        frame.loc[::10, "amount"] = np.nan
        frame.loc[5::10, "shop"] = None
    report = detect_drift(reference, current, multivariate=True)
    assert not report.dataset_drift
    assert report.multivariate.classifier.drifted


def test_skip_without_a_row_sample_names_the_fix() -> None:
    reference, current = correlated(1000, 0.0, seed=1), correlated(1000, 0.9, seed=2)
    profile = fit_reference(reference)  # sample_rows=0: no sample, as before format 2
    report = profile.compare(current, multivariate=True)
    assert report.multivariate.classifier.skipped == NO_SAMPLE
    assert report.multivariate.reconstruction.skipped == NO_SAMPLE
    assert NO_SAMPLE.startswith("reference profile has no row sample") and "refit" in NO_SAMPLE
    assert report.features["x"]["ks_statistic"] is not None


def test_without_the_argument_the_report_is_the_univariate_one() -> None:
    reference, current = correlated(1000, 0.0, seed=1), correlated(1000, 0.9, seed=2)
    plain = detect_drift(reference, current)
    assert plain.multivariate is None and plain.to_dict()["multivariate"] is None
    asked = detect_drift(reference, current, multivariate=True)
    assert {
        k: v for k, v in asked.to_dict().items() if k not in ("multivariate", "profile_hash")
    } == {k: v for k, v in plain.to_dict().items() if k not in ("multivariate", "profile_hash")}


def _members(npz: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(npz)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_old_profile_loads_resaves_the_same_members_and_explains_the_skip() -> None:
    """``profile_format1.npz`` was written by the code before format 2 (commit 26b0fde)."""
    raw = (DATA / "profile_format1.npz").read_bytes()
    profile = ReferenceProfile.from_bytes(raw)
    assert profile.sample is None
    # the same members, byte for byte: the zip container's own headers (zip64 or not) are
    # Python's zipfile's choice and differ between 3.11 patch releases
    assert _members(profile.to_bytes()) == _members(raw)
    frame = pd.DataFrame({"amount": [1.0, 2.0] * 50, "age": [30.0] * 100, "channel": ["web"] * 100})
    report = profile.compare(frame, multivariate=True)
    assert report.multivariate.classifier.skipped == NO_SAMPLE
    assert report.features["amount"]["testable"]


def test_profile_with_sample_round_trips_and_gives_the_same_result(tmp_path: Path) -> None:
    reference, current = correlated(3000, 0.0, seed=1), correlated(3000, 0.7, seed=2)
    profile = fit_reference(reference, sample_rows=1000)
    assert profile.sample.shape == (1000, 4)
    loaded = ReferenceProfile.load(profile.save(tmp_path / "p.npz"))
    assert loaded.content_hash == profile.content_hash
    np.testing.assert_array_equal(loaded.sample, profile.sample)
    first = profile.compare(current, multivariate=True)
    assert loaded.compare(current, multivariate=True).multivariate == first.multivariate
    assert first.multivariate.classifier.drifted and first.multivariate.classifier.rows == 1000


def test_report_json_round_trip_and_html(tmp_path: Path) -> None:
    report = detect_drift(correlated(1000, 0.0, 1), correlated(1000, 0.8, 2), multivariate=True)
    again = DriftReport.from_json(report.to_json())
    assert again.multivariate == report.multivariate
    old = report.to_dict()
    del old["multivariate"]  # a report stored before the field existed
    assert DriftReport.from_dict(old).multivariate is None
    page = report.to_html(tmp_path / "r.html").read_text()
    assert "Multivariate drift" in page and "AUC" in page
    assert "Domain classifier: **DRIFT**" in report.to_markdown()


def test_garbage_in_a_numeric_column_keeps_the_whole_report() -> None:
    reference, current = correlated(1000, 0.0, seed=1), correlated(1000, 0.9, seed=2)
    current["z"] = current["z"].astype(object)
    current.loc[::3, "z"] = "n/a"
    report = fit_reference(reference, sample_rows=1000).compare(current, multivariate=True)
    assert report.multivariate.classifier.skipped is None  # "n/a" counts as missing there
    assert report.multivariate.classifier.drifted
    assert report.features["x"]["ks_statistic"] is not None


def test_dataframe_entry_point_names_a_bad_column() -> None:
    reference = correlated(200, 0.0, seed=1)
    current = reference.assign(x=["oops"] * 200)
    with pytest.raises(DriftInputError, match="column 'x' is not numeric"):
        multivariate_drift(reference, current)
    with pytest.raises(DriftInputError, match=r"missing from the current frame: \['z'\]"):
        multivariate_drift(reference, reference.drop(columns="z"))
