"""Tests of the drift engine: statistics against scipy, verdict rules, bad input, persistence."""

from __future__ import annotations

import json
import math
import re
from xml.etree import ElementTree

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from retraining_assets.core.drift import (
    DriftInputError,
    DriftReport,
    DriftThresholds,
    ReferenceProfile,
    benjamini_hochberg,
    detect_drift,
    drift_between_files,
    fit_reference,
    jensen_shannon_distance,
    kernels,
    ks_2samp_sorted,
    population_stability_index,
)
from retraining_assets.core.drift import stats as drift_stats
from retraining_assets.core.drift.comparison import FEATURE_KEYS
from retraining_assets.core.sources import SourceError


def _random_sample(rng: np.random.Generator, n: int, kind: int) -> np.ndarray:
    if kind == 0:
        return rng.normal(rng.normal(), 1 + rng.random(), n)
    if kind == 1:  # heavy ties
        return rng.integers(0, 4, n).astype(float)
    if kind == 2:  # constant
        return np.full(n, 3.0)
    return np.round(rng.exponential(2, n), 1)  # moderate ties


def _cases(count: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    sizes = [1, 2, 3, 5, 8, 20, 57, 200, 1000]
    out = []
    for _ in range(count):
        n1, n2 = rng.choice(sizes, 2)
        k1 = int(rng.integers(0, 4))
        k2 = k1 if rng.random() < 0.7 else int(rng.integers(0, 4))
        out.append((_random_sample(rng, n1, k1), _random_sample(rng, n2, k2)))
    return out


# ----------------------------------------------------------------------------- KS, W, PSI, JS


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ks_matches_scipy_auto_on_random_small_cases(seed: int) -> None:
    for a, b in _cases(120, seed):
        d, p = ks_2samp_sorted(np.sort(a), np.sort(b))
        expected = stats.ks_2samp(a, b)
        assert d == expected.statistic
        assert abs(p - expected.pvalue) <= 1e-6


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # scipy's asymp formula at n = 1
def test_merge_kernel_d_equals_scipy_raw_statistic_and_wasserstein() -> None:
    # method="asymp" leaves D unrounded, which is what the kernel itself must reproduce.
    for a, b in _cases(200, 7):
        a_sorted, b_sorted = np.sort(a), np.sort(b)
        raw_d = stats.ks_2samp(a, b, method="asymp").statistic
        for kernel in (kernels._merge_stats, kernels._merge_numpy):
            i, j, w = kernel(a_sorted, b_sorted)
            assert drift_stats._ks_d(i, j, a.size, b.size) == raw_d
            assert w == pytest.approx(stats.wasserstein_distance(a, b), rel=1e-9, abs=1e-12)


def test_ks_asymptotic_path_matches_scipy_for_large_samples() -> None:
    rng = np.random.default_rng(3)
    for shift, ties in [(0.0, False), (0.03, False), (0.05, True), (0.3, False)]:
        a = rng.normal(0, 1, 12_000)
        b = rng.normal(shift, 1, 15_000)
        if ties:
            a, b = np.round(a, 1), np.round(b, 1)
        d, p = ks_2samp_sorted(np.sort(a), np.sort(b))
        expected = stats.ks_2samp(a, b)
        assert d == expected.statistic
        assert abs(p - expected.pvalue) <= 1e-6


@pytest.mark.parametrize("n", [141, 2_000, 20_000])
def test_kstwo_sf_fast_path_within_1e6_of_scipy(n: int) -> None:
    for z2 in [0.5, 2.19, 2.2, 3.0, 5.0, 7.49, 7.5, 20.0, 400.0]:
        d = math.sqrt(z2 / n)
        assert abs(drift_stats._kstwo_sf(d, n) - stats.kstwo.sf(d, n)) <= 1e-6
    assert abs(drift_stats._kstwo_sf(0.6, n) - stats.kstwo.sf(0.6, n)) <= 1e-6


def test_psi_hand_computed() -> None:
    expected = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.75 - 0.5) * math.log(0.75 / 0.5)
    assert population_stability_index(np.array([50, 50]), np.array([25, 75])) == pytest.approx(
        expected
    )
    # An empty reference bin is clipped to 1e-4 (not renormalised).
    clipped = (0.5 - 1.0) * math.log(0.5 / 1.0) + (0.5 - 1e-4) * math.log(0.5 / 1e-4)
    assert population_stability_index(np.array([10, 0]), np.array([5, 5])) == pytest.approx(clipped)
    assert population_stability_index(np.array([3, 3, 4]), np.array([30, 30, 40])) == 0.0


def test_numeric_psi_uses_reference_deciles() -> None:
    reference = pd.DataFrame({"x": np.arange(1000, dtype=float)})
    current = pd.DataFrame({"x": np.full(200, 5.0)})  # everything in the first decile
    entry = detect_drift(reference, current).features["x"]
    p, q = np.full(10, 0.1), np.clip(np.r_[1.0, np.zeros(9)], 1e-4, 1)
    assert entry["psi"] == pytest.approx(float(np.sum((q - p) * np.log(q / p))))
    assert entry["histogram"]["psi_current"] == [200] + [0] * 9
    edges = fit_reference(reference).columns["x"].edges
    np.testing.assert_array_equal(edges, np.quantile(np.arange(1000.0), np.arange(1, 10) / 10))


def test_jensen_shannon_matches_scipy_and_bounds() -> None:
    rng = np.random.default_rng(4)
    for _ in range(50):
        p, q = rng.integers(0, 20, 6), rng.integers(0, 20, 6)
        p[0] += 1
        q[0] += 1
        assert jensen_shannon_distance(p, q) == pytest.approx(jensenshannon(p, q, base=2))
    assert jensen_shannon_distance(np.array([1, 0]), np.array([0, 1])) == pytest.approx(1.0)
    assert jensen_shannon_distance(np.array([2, 3]), np.array([4, 6])) == pytest.approx(0.0)


def test_wasserstein_normalised_by_reference_std() -> None:
    rng = np.random.default_rng(5)
    ref, cur = rng.normal(0, 2, 3000), rng.normal(1, 2, 2000)
    entry = detect_drift(pd.DataFrame({"x": ref}), pd.DataFrame({"x": cur})).features["x"]
    raw = stats.wasserstein_distance(ref, cur)
    assert entry["wasserstein_raw"] == pytest.approx(raw, rel=1e-9)
    assert entry["wasserstein"] == pytest.approx(raw / ref.std(), rel=1e-9)


# ----------------------------------------------------------------------------- chi2, BH


def test_chi_square_false_positive_rate_is_nominal() -> None:
    rng = np.random.default_rng(6)
    labels, weights = np.array(["a", "b", "c", "d"]), [0.5, 0.3, 0.15, 0.05]
    rejections = 0
    trials = 400
    for _ in range(trials):
        ref = pd.DataFrame({"c": rng.choice(labels, 300, p=weights)})
        cur = pd.DataFrame({"c": rng.choice(labels, 200, p=weights)})
        rejections += detect_drift(ref, cur).features["c"]["chi2_pvalue"] < 0.05
    # Binomial(400, 0.05): mean 20, sd 4.4; +-3.5 sd. A goodness-of-fit test against the
    # reference proportions would reject far more often (the reference is itself a sample).
    assert 5 <= rejections <= 36


def test_categorical_statistics_match_scipy_contingency() -> None:
    ref = pd.DataFrame({"c": ["a"] * 60 + ["b"] * 30 + ["c"] * 10})
    cur = pd.DataFrame({"c": ["a"] * 30 + ["b"] * 50 + ["c"] * 20})
    entry = detect_drift(ref, cur).features["c"]
    table = np.array([[60, 30, 10], [30, 50, 20]])
    assert entry["chi2_pvalue"] == pytest.approx(stats.chi2_contingency(table).pvalue)
    assert entry["cramers_v"] == pytest.approx(stats.contingency.association(table))
    assert entry["linf"] == pytest.approx(0.3)
    assert entry["ks_statistic"] is None and entry["wasserstein"] is None


def test_benjamini_hochberg_hand_computed() -> None:
    q = benjamini_hochberg([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(q, [0.02, 0.04, 0.04, 0.02])
    p = np.random.default_rng(8).random(40) ** 3
    np.testing.assert_allclose(benjamini_hochberg(p), stats.false_discovery_control(p))
    assert benjamini_hochberg([]).size == 0


# ----------------------------------------------------------------------------- verdicts


def _frames(n: int = 4000, seed: int = 9) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)

    def frame(drifted: bool) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "scale": rng.normal(0, 1.5 if drifted else 1.0, n),
                "stable": rng.normal(0, 1, n),
                "count": rng.poisson(3, n),
                "color": rng.choice(["red", "green", "blue"], n),
                "flag": rng.random(n) < 0.3,
            }
        )

    return frame(False), frame(True)


def test_detect_drift_flags_the_drifted_column_only() -> None:
    ref, cur = _frames()
    report = detect_drift(ref, cur)
    assert report.drifted_features == ["scale"]
    assert report.dataset_drift is True
    assert "wasserstein" in report.features["scale"]["exceeded"]
    assert report.features["count"]["kind"] == "numeric"  # numeric dtype, low cardinality
    assert report.features["flag"]["kind"] == "categorical"
    assert report.features["color"]["kind"] == "categorical"
    assert not detect_drift(ref, ref).dataset_drift


def test_effect_without_significance_is_not_drift() -> None:
    ref = pd.DataFrame({"x": [0.0, 1.0, 2.0]})
    cur = pd.DataFrame({"x": [0.5, 1.5, 2.5]})  # big PSI/W on 3 points, nothing significant
    entry = detect_drift(ref, cur).features["x"]
    assert entry["exceeded"] and entry["q_value"] >= 0.05
    assert entry["drifted"] is False


def test_dataset_share_and_importances() -> None:
    ref, cur = _frames()
    half = DriftThresholds(dataset_drift_share=0.5)
    assert detect_drift(ref, cur, thresholds=half).dataset_drift is False
    weighted = DriftThresholds(
        dataset_drift_share=0.5, feature_importances={"scale": 3, "count": 1}
    )
    report = detect_drift(ref, cur, thresholds=weighted)
    assert report.drift_share == pytest.approx(0.75)
    assert report.dataset_drift is True
    with pytest.raises(ValueError, match="psi_warning"):
        DriftThresholds(psi_warning=0.3)


def test_psi_warning_tier_is_reported_not_drift() -> None:
    rng = np.random.default_rng(10)
    ref = pd.DataFrame({"x": rng.normal(0, 1, 20_000)})
    cur = pd.DataFrame({"x": rng.normal(0, 1, 20_000)})
    thresholds = DriftThresholds(psi_warning=0.0005, psi_alert=0.5, wasserstein=5, jensen_shannon=5)
    entry = detect_drift(ref, cur, thresholds=thresholds).features["x"]
    assert entry["psi_warning"] is True and entry["drifted"] is False


def test_prediction_and_target_drift_have_their_own_keys() -> None:
    ref, cur = _frames()
    rng = np.random.default_rng(11)
    report = detect_drift(
        ref,
        cur,
        reference_scores=rng.beta(2, 5, 3000),
        current_scores=rng.beta(5, 2, 3000),
        reference_target=pd.Series(rng.integers(0, 2, 3000)),
        current_target=pd.Series(rng.integers(0, 2, 3000)),
    )
    assert report.prediction_drift["drifted"] is True
    assert report.prediction_drift["kind"] == "numeric"
    assert report.target_drift["kind"] == "categorical"  # integer labels with 2 classes
    assert report.target_drift["drifted"] is False
    assert set(report.features) == set(ref.columns)


def test_target_column_name_is_excluded_from_features() -> None:
    ref, cur = _frames()
    report = detect_drift(ref, cur, target_column="flag")
    assert "flag" not in report.features and report.target_drift is not None


# ----------------------------------------------------------------------------- bad input


def test_missing_column_raises_naming_it() -> None:
    ref, cur = _frames()
    with pytest.raises(DriftInputError, match="color"):
        detect_drift(ref, cur.drop(columns=["color"]))


def test_empty_current_raises() -> None:
    ref, cur = _frames()
    with pytest.raises(DriftInputError, match="empty"):
        detect_drift(ref, cur.iloc[:0])


def test_all_null_column_is_untestable_and_null_rate_changes() -> None:
    ref, cur = _frames()
    cur["stable"] = np.nan
    report = detect_drift(ref, cur)
    entry = report.features["stable"]
    assert entry["testable"] is False and "'stable'" in entry["reason"]
    assert entry["drifted"] is False and entry["psi"] is None
    assert report.null_rates["stable"]["changed"] is True
    assert any("'stable'" in w for w in report.warnings)
    ref["stable"] = np.nan
    assert "reference" in detect_drift(ref, cur).features["stable"]["reason"]


def test_constant_column_uses_pooled_std() -> None:
    ref = pd.DataFrame({"k": np.full(500, 2.0)})
    same = detect_drift(ref, pd.DataFrame({"k": np.full(400, 2.0)}))
    assert same.features["k"]["wasserstein"] == 0.0 and not same.dataset_drift
    moved = detect_drift(ref, pd.DataFrame({"k": np.full(400, 3.0)}))
    entry = moved.features["k"]
    assert entry["ks_statistic"] == 1.0 and math.isfinite(entry["wasserstein"])
    assert entry["drifted"] is True
    assert any("constant" in w and "'k'" in w for w in moved.warnings)


def test_new_category_is_unseen_drift() -> None:
    ref = pd.DataFrame({"c": ["a", "b"] * 100})
    cur = pd.DataFrame({"c": ["a", "b"] * 40 + ["zzz"] * 20})
    report = detect_drift(ref, cur)
    assert report.unseen["c"]["share"] == pytest.approx(0.2)
    assert report.unseen["c"]["categories"] == {"zzz": 20}
    assert "unseen_share" in report.features["c"]["exceeded"]
    assert report.features["c"]["drifted"] is True


def test_infinite_values_are_rank_values_and_excluded_from_moments() -> None:
    rng = np.random.default_rng(12)
    ref = rng.normal(size=300)
    cur = np.r_[rng.normal(size=280), [np.inf] * 15, [-np.inf] * 5]
    entry = detect_drift(pd.DataFrame({"x": ref}), pd.DataFrame({"x": cur})).features["x"]
    assert entry["ks_statistic"] == stats.ks_2samp(ref, cur).statistic
    assert entry["inf_current"] == 20
    finite = cur[np.isfinite(cur)]
    assert entry["wasserstein_raw"] == pytest.approx(stats.wasserstein_distance(ref, finite))
    assert entry["histogram"]["psi_current"][-1] >= 15  # +inf counted in the top bin


def test_mixed_object_column_is_compared_as_strings_with_warning() -> None:
    ref = pd.DataFrame({"m": pd.Series([1, "a", 2.5, None] * 50, dtype=object)})
    cur = pd.DataFrame({"m": pd.Series([1, "a", 2.5, "a"] * 50, dtype=object)})
    report = detect_drift(ref, cur)
    assert report.features["m"]["testable"] is True
    assert any("'m'" in w and "mixes value types" in w for w in report.warnings)


def test_non_numeric_current_values_make_column_untestable() -> None:
    ref = pd.DataFrame({"x": np.arange(50.0)})
    cur = pd.DataFrame({"x": ["1", "oops"] * 25})
    entry = detect_drift(ref, cur).features["x"]
    assert entry["testable"] is False and "'x'" in entry["reason"]


def test_explicit_kinds_and_invalid_schema() -> None:
    ref, cur = _frames()
    report = detect_drift(ref, cur, numeric=["scale"], categorical=["count"])
    assert {k: v["kind"] for k, v in report.features.items()} == {
        "scale": "numeric",
        "count": "categorical",
    }
    with pytest.raises(DriftInputError, match="both"):
        fit_reference(ref, numeric=["count"], categorical=["count"])


# ----------------------------------------------------------------------------- persistence


def test_report_json_round_trip_and_schema() -> None:
    ref, cur = _frames()
    report = detect_drift(ref, cur)
    data = json.loads(report.to_json())
    assert data == report.to_dict()
    for key in ("dataset_drift", "n_reference", "n_current", "features", "drifted_features",
                "null_rates", "unseen", "prediction_drift", "target_drift", "warnings",
                "thresholds", "profile_hash"):  # fmt: skip
        assert key in data
    assert data["n_reference"] == data["n_current"] == 4000
    numeric, categorical = data["features"]["scale"], data["features"]["color"]
    for entry in (numeric, categorical):
        assert set(FEATURE_KEYS) <= set(entry)
    assert numeric["chi2_pvalue"] is None and numeric["ks_statistic"] is not None
    assert categorical["ks_statistic"] is None and categorical["chi2_pvalue"] is not None
    assert DriftReport.from_dict(data).to_dict() == data
    assert DriftReport.from_json(report.to_json()) == DriftReport.from_dict(data)
    assert data["thresholds"]["psi_alert"] == 0.2


def test_profile_round_trip_and_hash(tmp_path) -> None:
    ref, cur = _frames()
    profile = fit_reference(ref)
    loaded = ReferenceProfile.load(profile.save(tmp_path / "profile.npz"))
    assert loaded.content_hash == profile.content_hash == fit_reference(ref).content_hash
    assert len(profile.content_hash) == 64
    assert loaded.compare(cur).to_dict() == profile.compare(cur).to_dict()
    assert fit_reference(ref.iloc[1:]).content_hash != profile.content_hash
    with np.load(tmp_path / "profile.npz", allow_pickle=False) as npz:
        assert all(npz[k].dtype != object for k in npz.files)


def test_sampling_above_the_size_limit(tmp_path) -> None:
    ref = pd.DataFrame({"x": np.random.default_rng(13).normal(size=5000)})
    profile = fit_reference(ref, max_reference_values=1000, seed=3)
    column = profile.columns["x"]
    assert column.sampled and column.sorted_values.size == 1000
    assert np.all(np.diff(column.sorted_values) >= 0)
    assert column.bin_counts.sum() == 5000  # bins come from all values
    again = ReferenceProfile.from_bytes(profile.to_bytes())
    np.testing.assert_array_equal(again.columns["x"].sorted_values, column.sorted_values)


def test_html_and_png_outputs(tmp_path) -> None:
    ref, cur = _frames()
    report = detect_drift(ref, cur)
    html_path = report.to_html(tmp_path / "report.html")
    text = html_path.read_text()
    assert text.count("<img") == 1 and "data:image/png;base64," in text  # the summary
    svgs = re.findall(r"<svg.*?</svg>", text, flags=re.S)
    assert len(svgs) == len(report.features)  # one distribution plot per feature
    for (name, entry), svg in zip(report.features.items(), svgs, strict=True):
        root = ElementTree.fromstring(svg)  # well-formed: labels and names are escaped
        assert root.findtext("{http://www.w3.org/2000/svg}title").startswith(str(name))
        assert ("DRIFT" in svg) == bool(entry["drifted"])
        histogram = entry["histogram"]
        if histogram and histogram["type"] == "numeric":  # a bar per bin and series + legend
            bins = len(histogram["edges"]) - 1
            assert len(root.findall("{http://www.w3.org/2000/svg}rect")) == 2 * bins + 2
    png = report.plot_summary(tmp_path / "summary.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5_000
    markdown = report.to_markdown()
    assert all(f"| {name} |" in markdown for name in report.features)


def test_drift_between_files(tmp_path) -> None:
    ref, cur = _frames(n=500)
    ref.to_csv(tmp_path / "ref.csv.gz", index=False)
    cur.to_parquet(tmp_path / "cur.parquet")
    report = drift_between_files(tmp_path / "ref.csv.gz", tmp_path / "cur.parquet")
    assert set(report.features) == set(ref.columns)
    (tmp_path / "x.txt").write_text("a")
    with pytest.raises(SourceError, match="unsupported"):
        drift_between_files(tmp_path / "x.txt", tmp_path / "cur.parquet")
    with pytest.raises(SourceError, match="not found"):
        drift_between_files(tmp_path / "nope.csv", tmp_path / "cur.parquet")


def test_integer_column_names_survive_persistence() -> None:
    ref = pd.DataFrame({0: np.arange(100.0), 1: ["a", "b"] * 50})
    profile = ReferenceProfile.from_bytes(fit_reference(ref).to_bytes())
    assert list(profile.columns) == [0, 1]
    report = profile.compare(ref)
    assert set(report.features) == {0, 1}
    assert set(report.to_dict()["features"]) == {"0", "1"}  # JSON object keys are strings


def test_month_without_labels_skips_target_drift_with_warning() -> None:
    ref, cur = _frames()
    profile = fit_reference(ref, target="flag")
    report = profile.compare(cur.drop(columns=["flag"]))
    assert report.target_drift is None
    assert any("target drift skipped" in w for w in report.warnings)
    with pytest.raises(DriftInputError, match="flag"):
        profile.compare(cur.drop(columns=["flag"]), target="flag")
