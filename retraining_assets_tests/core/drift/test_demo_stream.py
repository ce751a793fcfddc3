"""The drift engine against the demo stream's documented ground truth."""

from collections.abc import Mapping
from types import MappingProxyType

import pandas as pd
import pytest

from retraining_assets.core.demo import ABRUPT, CONCEPT, GRADUAL, SPEC, STABLE, DemoStream
from retraining_assets.core.drift import DriftThresholds
from retraining_assets.core.reference import fit_drift_profile

STREAM = DemoStream(end_month=pd.Timestamp("2026-10-01"))
REFERENCE = range(3)  # the default reference: the first three months


@pytest.fixture(scope="module")
def drifted() -> Mapping[int, frozenset[str]]:
    """The drifted features of every month after the reference (read-only)."""
    reference = pd.concat([STREAM.generate(offset) for offset in REFERENCE], ignore_index=True)
    profile = fit_drift_profile(reference, SPEC)
    return MappingProxyType(
        {
            offset: frozenset(
                profile.compare(STREAM.generate(offset), DriftThresholds()).drifted_features
            )
            for offset in range(len(REFERENCE), STREAM.months)
        }
    )


def test_no_feature_is_flagged_in_the_stable_stretch(drifted) -> None:
    for offset in range(len(REFERENCE), STABLE.last_offset + 1):
        assert drifted[offset] == set(), offset


def test_gradual_shift_is_flagged_in_its_features_only(drifted) -> None:
    for offset in range(GRADUAL.first_offset, ABRUPT.first_offset):
        assert drifted[offset] <= set(GRADUAL.features), offset
    assert drifted[GRADUAL.last_offset] == set(GRADUAL.features)


def test_abrupt_shift_is_flagged_in_its_month(drifted) -> None:
    new = drifted[ABRUPT.first_offset] - drifted[ABRUPT.first_offset - 1]
    assert new == set(ABRUPT.features) - set(GRADUAL.features)
    assert set(ABRUPT.features) <= drifted[ABRUPT.first_offset]


def test_concept_drift_moves_no_feature(drifted) -> None:
    # the relation changes, not the inputs: feature drift cannot see it (performance can)
    assert drifted[CONCEPT.first_offset] == drifted[CONCEPT.first_offset - 1]
