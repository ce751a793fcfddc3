"""The promotion gate invoked directly (``build_asset_context``), its typed resources given
as the code location gives them; the end-to-end runs are in test_promotion_flow.py."""

from __future__ import annotations

import dagster as dg
import pytest

from retraining_assets.core.candidates import TrainingWindow
from retraining_assets.core.demo import SPEC
from retraining_assets.core.importance import stored_importance
from retraining_assets.core.lifecycle import change_champion, decision_of_run
from retraining_assets.core.pipeline import demo_pipeline
from retraining_assets.core.promotion import Verdict
from retraining_assets.core.registry import CHAMPION, Actor
from retraining_assets.definitions import build_definitions
from retraining_assets.settings import Settings
from retraining_assets_tests.conftest import SMALL_STREAM, trained_version, training_window

PARTITION = SMALL_STREAM.partition_key(2)


def _gate_inputs(settings: Settings, seed: int = 0) -> tuple[dg.Definitions, TrainingWindow, int]:
    """The definitions of a random-forest-only demo, a real three-month training window and a
    candidate trained on it, registered."""
    defs = build_definitions(settings, [demo_pipeline(settings, SMALL_STREAM)])
    registry = defs.resources["platform"].registry()
    version = trained_version(registry, SMALL_STREAM, seed=seed, months=3)
    return defs, training_window(SMALL_STREAM, 3), version


def _evaluate(defs: dg.Definitions, window: TrainingWindow, version: int) -> list:
    evaluation = defs.get_assets_def(dg.AssetKey(["demo", "model_evaluation"]))
    context = dg.build_asset_context(partition_key=PARTITION, resources=defs.resources)
    return list(evaluation(context, training_data=window, random_forest=version))


@pytest.fixture
def forest_only(settings: Settings) -> Settings:
    return settings.model_copy(update={"model_families": ["random_forest"]})


def test_a_first_good_model_passes_the_gate_and_its_judgement_is_recorded(forest_only) -> None:
    defs, window, version = _gate_inputs(forest_only)
    output, check = _evaluate(defs, window, version)
    assert isinstance(check, dg.AssetCheckResult) and check.check_name == "promotion_threshold"
    assert check.passed
    assert output.value["decision"]["verdict"] == Verdict.PROMOTE
    assert output.metadata["candidate_version"].value == version
    # the champion asset finds the judgement by the run's id (EPHEMERAL when invoked directly)
    registry = defs.resources["platform"].registry()
    decision = decision_of_run(registry, "demo", "EPHEMERAL")
    assert decision is not None and decision["candidate_version"] == version
    assert registry.get_alias("demo", CHAMPION) is None  # the gate judges; it moves nothing


def test_the_gate_stores_the_permutation_importance_of_its_best_candidate_only(settings) -> None:
    """Only a version the run can make champion needs the importance the weighted verdict
    reads, so the gate measures it for the best candidate, not at each registration."""
    two = settings.model_copy(update={"model_families": ["random_forest", "xgboost"]})
    defs = build_definitions(two, [demo_pipeline(two, SMALL_STREAM)])
    registry = defs.resources["platform"].registry()
    good = trained_version(registry, SMALL_STREAM, months=3, judged_best=False)
    bad = trained_version(registry, SMALL_STREAM, months=3, flipped=True, judged_best=False)
    assert stored_importance(registry, "demo", good)[0] is None  # not at registration
    evaluation = defs.get_assets_def(dg.AssetKey(["demo", "model_evaluation"]))
    context = dg.build_asset_context(partition_key=PARTITION, resources=defs.resources)
    window = training_window(SMALL_STREAM, 3)
    output, _ = list(evaluation(context, training_data=window, random_forest=good, xgboost=bad))
    assert output.metadata["candidate_version"].value == good
    importance, _ = stored_importance(registry, "demo", good)
    assert importance is not None and set(importance) == set(SPEC.features)
    assert max(importance.values()) > 0  # the model uses its features
    assert "permutation_importance" not in registry.get_version("demo", bad).metrics
    assert registry.get_version("demo", good).metrics["valid"]  # what registration stored stays


def test_an_unreachable_bar_fails_the_gate_as_a_warning(forest_only) -> None:
    strict = forest_only.model_copy(
        update={"promotion_min_lift": 100.0, "drift_reference": "validated"}
    )
    defs, window, first = _gate_inputs(strict)
    registry, notifier = defs.resources["platform"].registry(), defs.resources["notifier"]
    change_champion(
        registry, notifier.notifier(), "demo", first,
        expected_current=None, actor=Actor("test", "test"), reason="the champion to beat",
    )  # fmt: skip
    _, _, version = _gate_inputs(strict, seed=1)
    output, check, *moved = _evaluate(defs, window, version)
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    # the kept champion's drift reference moved to the judged window (drift_reference)
    assert [m.asset_key for m in moved] == [dg.AssetKey(["demo", "reference_data"])]
    assert moved[0].metadata["origin"].value.startswith(f"champion v{first}, re-validated")
    assert output.value["decision"]["verdict"] in {Verdict.PENDING, Verdict.REJECT}
    assert output.metadata["decision"].value == output.value["decision"]["verdict"]
    assert registry.get_alias("demo", CHAMPION).version == first
