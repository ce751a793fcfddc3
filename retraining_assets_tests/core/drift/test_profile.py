"""The reference profile: round trips, content hash, sampling above the size limit, integer
column names."""

from __future__ import annotations

import numpy as np
import pandas as pd

from retraining_assets.core.drift import ReferenceProfile, fit_reference
from retraining_assets_tests.core.drift.frames import frames


def test_profile_round_trip_and_hash(tmp_path) -> None:
    ref, cur = frames()
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


def test_integer_column_names_survive_persistence() -> None:
    ref = pd.DataFrame({0: np.arange(100.0), 1: ["a", "b"] * 50})
    profile = ReferenceProfile.from_bytes(fit_reference(ref).to_bytes())
    assert list(profile.columns) == [0, 1]
    report = profile.compare(ref)
    assert set(report.features) == {0, 1}
    assert set(report.to_dict()["features"]) == {"0", "1"}  # JSON object keys are strings
