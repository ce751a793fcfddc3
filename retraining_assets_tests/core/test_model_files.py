"""Model files without pickle: every family round-trips, the zip holds and runs no pickle, a
tampered or untrusted file is refused naming the version, legacy pickles load only after their
signature check."""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from collections.abc import Iterator
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import skops.io as sio
import sqlalchemy as sa
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import FunctionTransformer

from retraining_assets.core import candidates, model_files, preprocessing, trained_model, training
from retraining_assets.core.candidates import load_model
from retraining_assets.core.dataset import DatasetSpec
from retraining_assets.core.neural_net import MLPConfig, TorchMLP
from retraining_assets.core.registry import CorruptArtifactError, LegacyPickleError, Registry
from retraining_assets.core.training import (
    FAMILIES,
    Split,
    TrainedModel,
    TrainingError,
    model_from_bytes,
    model_to_bytes,
    split_by_time,
    train_candidates,
    train_model,
)
from retraining_assets.settings import load_settings
from retraining_assets_tests.conftest import registered_version
from retraining_assets_tests.core.test_training import DATASETS

TrainedSet = tuple[Split, dict[str, TrainedModel]]


@pytest.fixture(scope="module", params=list(DATASETS))
def trained(request: pytest.FixtureRequest) -> TrainedSet:
    frame, spec = DATASETS[request.param]()
    split = split_by_time(frame, spec)
    return split, train_candidates(split, spec, FAMILIES, seed=0)


@pytest.fixture(scope="module")
def binary() -> TrainedSet:
    frame, spec = DATASETS["binary"]()
    split = split_by_time(frame, spec)
    return split, train_candidates(split, spec, FAMILIES, seed=0)


@pytest.fixture
def registry(platform_db: sa.Engine, tmp_path: Path) -> Iterator[Registry]:
    candidates._LOADED.clear()  # every load below reads its file, not the in-process cache
    yield Registry(platform_db, tmp_path / "artifacts", tmp_path / "artifact.key")
    candidates._LOADED.clear()


def _register(registry: Registry, model_bytes: bytes, family: str = "random_forest") -> int:
    return registered_version(
        registry, family=family, model_bytes=model_bytes, profile_bytes=None, dataset_spec={}
    ).version


def _entries(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    return buffer.getvalue()


@pytest.fixture
def pickle_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every way this code base could unpickle raises (a guard, not a stand-in for a part)."""

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("pickle was used")

    for module, name in [(pickle, "load"), (pickle, "loads"), (joblib, "load")]:
        monkeypatch.setattr(module, name, refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)


# --- round trips ---------------------------------------------------------------------------


def test_every_family_round_trips_with_identical_predictions(trained: TrainedSet) -> None:
    split, models = trained
    for family, model in models.items():
        restored = model_from_bytes(model_to_bytes(model))
        assert (restored.family, restored.task) == (family, model.task)
        assert restored.params == model.params
        assert (restored.classes, restored.features) == (model.classes, model.features)
        assert restored.training_seconds == model.training_seconds
        np.testing.assert_array_equal(restored.scores(split.holdout), model.scores(split.holdout))
        np.testing.assert_array_equal(restored.predict(split.holdout), model.predict(split.holdout))
    ensemble = model_from_bytes(model_to_bytes(models["ensemble"]))
    assert [m.family for m in ensemble.scorer.members] == list(models)[:-1]
    np.testing.assert_array_equal(ensemble.scorer.weights, models["ensemble"].scorer.weights)


def test_an_ensemble_reuses_its_members_written_files_byte_for_byte(binary: TrainedSet) -> None:
    """A member written once (as its own candidate) is not serialised again for the ensemble:
    the ensemble's copy is the same bytes, and a freshly trained object gets its own file."""
    split, models = binary
    forest = zipfile.ZipFile(io.BytesIO(model_to_bytes(models["random_forest"])))
    index = list(models).index("random_forest")
    ensemble = zipfile.ZipFile(io.BytesIO(model_to_bytes(models["ensemble"])))
    for part in ("preprocessor.skops", "estimator.skops"):
        assert ensemble.read(f"members/{index}/{part}") == forest.read(part)
    again = train_model("random_forest", split, DATASETS["binary"]()[1], seed=1)  # other trees
    assert zipfile.ZipFile(io.BytesIO(model_to_bytes(again))).read("estimator.skops") != (
        forest.read("estimator.skops")
    )


@pytest.mark.filterwarnings("ignore:Skipping features without any observed values")
def test_awkward_columns_round_trip_within_the_trusted_types() -> None:
    """Rare categories past MAX_CATEGORIES, bool and integer categoricals, nullable integers and
    an all-missing column: the preprocessor still holds only trusted types."""
    rng = np.random.default_rng(0)
    n = 2000
    frame = pd.DataFrame(
        {
            "many": rng.choice([f"c{i}" for i in range(60)], n),
            "flag": rng.random(n) < 0.5,
            "code": rng.integers(0, 5, n),
            "nullable": pd.array(rng.integers(0, 100, n), dtype="Int64"),
            "x": rng.normal(size=n),
            "empty": np.nan,
        }
    )
    frame.loc[::7, "nullable"] = pd.NA
    frame["y"] = (frame["x"] + (frame["code"] == 2) > 0.3).astype(int)
    frame["t"] = pd.Timestamp("2026-01-01") + pd.to_timedelta(np.arange(n), unit="h")
    spec = DatasetSpec(
        time_column="t",
        target="y",
        task="binary",
        numeric_features=("x", "nullable", "empty"),
        categorical_features=("many", "flag", "code"),
        classes=("0", "1"),
    )
    split = split_by_time(frame, spec)
    for family, model in train_candidates(split, spec, ("random_forest", "neural_net")).items():
        restored = model_from_bytes(model_to_bytes(model))
        np.testing.assert_array_equal(
            restored.scores(split.holdout), model.scores(split.holdout), err_msg=family
        )


def test_the_zip_holds_no_pickle_and_loads_with_pickle_disabled(
    binary: TrainedSet, pickle_disabled: None
) -> None:
    split, models = binary
    data = model_to_bytes(models["ensemble"])
    entries = _entries(data)
    manifest = json.loads(entries["model.json"])
    assert manifest["format"] == model_files.FORMAT and manifest["family"] == "ensemble"
    assert [m["scorer"]["estimator"]["format"] for m in manifest["scorer"]["members"]] == [
        "skops",
        "xgboost-ubj",
        "torch-state-npz",
    ]
    assert sorted(entries) == sorted(
        ["model.json"]
        + [f"members/{i}/preprocessor.skops" for i in range(3)]
        + ["members/0/estimator.skops", "members/1/estimator.ubj", "members/2/estimator.npz"]
    )
    for name, content in entries.items():
        if name.endswith(".skops"):  # skops files are zips of a JSON schema and .npy arrays
            inner = _entries(content)
            assert all(n == "schema.json" or n.endswith(".npy") for n in inner), name
            for array in (n for n in inner if n.endswith(".npy")):
                np.load(io.BytesIO(inner[array]), allow_pickle=False)  # no object arrays
        elif name.endswith(".npz"):
            with np.load(io.BytesIO(content), allow_pickle=False) as npz:
                assert all(npz[key].dtype == np.float32 for key in npz.files)
    restored = model_from_bytes(data)  # with pickle.load/loads/Unpickler and joblib.load raising
    np.testing.assert_array_equal(
        restored.scores(split.holdout), models["ensemble"].scores(split.holdout)
    )
    with pytest.raises(TrainingError, match="cannot be loaded"):  # the guard does bite
        model_from_bytes(pickle.dumps(models["xgboost"]), allow_pickle=True)


def test_a_registered_model_loads_through_the_registry_without_pickle(
    registry: Registry, binary: TrainedSet, pickle_disabled: None
) -> None:
    split, models = binary
    version = _register(registry, model_to_bytes(models["xgboost"]), "xgboost")
    restored = load_model(registry, "demo", version)
    np.testing.assert_array_equal(
        restored.scores(split.holdout), models["xgboost"].scores(split.holdout)
    )


# --- refusals ------------------------------------------------------------------------------


def _never_loaded(*_args: object, **_kwargs: object) -> None:
    pytest.fail("a tampered artifact reached the loader")


@pytest.mark.parametrize("part", ["model.json", "estimator.npz"])
def test_a_tampered_file_inside_the_zip_is_refused_before_loading_naming_the_version(
    registry: Registry, binary: TrainedSet, part: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, models = binary
    version = _register(registry, model_to_bytes(models["neural_net"]), "neural_net")
    path = registry.artifact_root / f"demo/v{version}/model.bin"
    entries = _entries(path.read_bytes())
    if part == "model.json":  # a change that would itself load fine: only the signature catches it
        manifest = json.loads(entries[part])
        manifest["params"]["best_epoch"] = 999
        entries[part] = json.dumps(manifest).encode()
    else:
        with np.load(io.BytesIO(entries[part]), allow_pickle=False) as npz:
            weights = {key: npz[key] * 2 for key in npz.files}
        buffer = io.BytesIO()
        np.savez(buffer, **weights)
        entries[part] = buffer.getvalue()
    path.write_bytes(_zip(entries))
    assert model_from_bytes(path.read_bytes()).family == "neural_net"  # a loadable forgery
    monkeypatch.setattr(candidates, "model_from_bytes", _never_loaded)
    with pytest.raises(CorruptArtifactError, match=f"demo v{version} fails its signature check"):
        load_model(registry, "demo", version)


def test_a_skops_file_with_an_untrusted_type_is_refused(
    registry: Registry, binary: TrainedSet, tmp_path: Path
) -> None:
    """Even a signed artifact (a compromised trainer's) cannot make skops build ``os.system``."""
    _, models = binary
    entries = _entries(model_to_bytes(models["neural_net"]))
    evil = ColumnTransformer([("numeric", FunctionTransformer(__import__("os").system), ["age"])])
    entries["preprocessor.skops"] = sio.dumps(evil)
    forged = _zip(entries)
    with pytest.raises(TrainingError, match=r"not trusted.*system"):
        model_from_bytes(forged)
    version = _register(registry, forged, "neural_net")
    with pytest.raises(TrainingError, match=rf"demo v{version} cannot be loaded.*not trusted"):
        load_model(registry, "demo", version)
    assert "posix.system" not in model_files.SKOPS_TRUSTED


def test_a_malformed_zip_is_one_clear_error() -> None:
    with pytest.raises(TrainingError, match="cannot be loaded: KeyError"):
        model_from_bytes(_zip({"notes.txt": b"hello"}))
    with pytest.raises(TrainingError, match=r"not 'retraining_assets\.model' v1"):
        model_from_bytes(_zip({"model.json": json.dumps({"format": "other"}).encode()}))


# --- legacy pickles ------------------------------------------------------------------------


def _legacy_pickle(model: TrainedModel) -> bytes:
    """``model`` as the artifacts before the zip format were written: an uncompressed joblib
    pickle whose classes and functions are named ``retraining_assets.core.training.<name>``."""
    legacy = [
        (trained_model.TrainedModel, "TrainedModel"),
        (trained_model.FittedEstimator, "_FittedEstimator"),
        (trained_model.SoftVote, "_SoftVote"),
        (TorchMLP, "TorchMLP"),
        (MLPConfig, "MLPConfig"),
        (preprocessing._as_float, "_as_float"),
        (preprocessing._as_strings, "_as_strings"),
    ]
    saved = [(obj, obj.__module__, obj.__qualname__) for obj, _ in legacy]
    buffer = io.BytesIO()
    try:  # set by hand: monkeypatch cannot undo a class's __qualname__
        for obj, name in legacy:
            assert getattr(training, name) is obj  # what unpickling a legacy artifact looks up
            obj.__module__, obj.__qualname__ = "retraining_assets.core.training", name
        joblib.dump(model, buffer, compress=0)
    finally:
        for obj, module, qualname in saved:
            obj.__module__, obj.__qualname__ = module, qualname
    data = buffer.getvalue()
    assert b"retraining_assets.core.training" in data
    assert not any(
        f"core.{m}".encode() in data for m in ("trained_model", "neural_net", "preprocessing")
    )
    return data


class _Payload:
    """A pickle that writes a marker file when it is loaded: what an attacker would plant."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "pwned"))


def test_a_legacy_pickle_artifact_still_loads_after_its_signature_check(
    registry: Registry, binary: TrainedSet, tmp_path: Path
) -> None:
    split, models = binary
    legacy = _legacy_pickle(models["ensemble"])
    version = _register(registry, legacy, "ensemble")
    restored = load_model(registry, "demo", version)
    np.testing.assert_array_equal(
        restored.scores(split.holdout), models["ensemble"].scores(split.holdout)
    )
    # unless told that the signature was checked, a pickle is refused and not run
    marker = tmp_path / "marker"
    with pytest.raises(TrainingError, match="legacy pickle is only loaded after"):
        model_from_bytes(pickle.dumps(_Payload(marker)))
    # a legacy artifact replaced by a planted pickle fails the check and runs nothing
    candidates._LOADED.clear()
    (registry.artifact_root / f"demo/v{version}/model.bin").write_bytes(
        pickle.dumps(_Payload(marker))
    )
    with pytest.raises(CorruptArtifactError, match=f"demo v{version}"):
        load_model(registry, "demo", version)
    assert not marker.exists()


def test_with_legacy_pickles_off_even_a_signed_pickle_is_refused_and_nothing_runs(
    platform_db: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Someone holding the signing key can sign a pickle; with RETRAIN_LEGACY_PICKLES=false no
    model load (nor a champion move's artifact check) unpickles it."""
    monkeypatch.setenv("RETRAIN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RETRAIN_LEGACY_PICKLES", "false")
    registry = Registry.from_settings(load_settings())
    assert registry.legacy_pickles is False
    registry = Registry(platform_db, registry.artifact_root, legacy_pickles=False)
    marker = tmp_path / "marker"
    version = _register(registry, pickle.dumps(_Payload(marker)))  # correctly signed
    refused = f"demo v{version} is a legacy pickle"
    with pytest.raises(LegacyPickleError, match=refused):
        load_model(registry, "demo", version)
    with pytest.raises(LegacyPickleError, match=refused):  # what every champion move checks
        registry.verify_artifacts("demo", version)
    assert not marker.exists()
