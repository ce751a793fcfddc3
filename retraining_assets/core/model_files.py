"""Model files without pickle: a ``TrainedModel`` as a zip of JSON and data files.

``model.bin`` is a zip holding:

- ``model.json``: format and version, family, task, params, classes, features and, per scorer,
  which files hold what (an ensemble lists its members, each with its own files, and weights);
- ``preprocessor.skops``: the fitted ``ColumnTransformer`` in ``skops.io`` format (the
  scikit-learn project's own non-executable format), loaded with ``SKOPS_TRUSTED`` only;
- ``estimator.skops`` (random forest), ``estimator.ubj`` (XGBoost's native UBJSON) or
  ``estimator.npz`` (the torch MLP's state dict as arrays, read with ``allow_pickle=False``).

None of them is a pickle and loading one runs no pickle, so a file that somehow passed the
registry's signature check still cannot run code. The signature covers the whole zip.
Artifacts from before this format are joblib pickles: ``model_from_bytes`` loads them only when
told that their signature was checked (``allow_pickle=True``, as ``candidates.load_model`` does;
the registry refuses them altogether with ``RETRAIN_LEGACY_PICKLES=false``).
"""

from __future__ import annotations

import io
import json
import math
import sys
import weakref
import zipfile
from typing import Any

import joblib
import numpy as np
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from xgboost import XGBClassifier, XGBModel, XGBRegressor

from retraining_assets.core.files import is_zip
from retraining_assets.core.splits import TrainingError
from retraining_assets.core.trained_model import FittedEstimator, SoftVote, TrainedModel

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MANIFEST",
    "SKOPS_TRUSTED",
    "model_from_bytes",
    "model_to_bytes",
]

FORMAT = "retraining_assets.model"
FORMAT_VERSION = 1
MANIFEST = "model.json"

# What our preprocessors and forests hold beyond the types skops trusts by default, and
# nothing more: a skops file naming any other type (``os.system``, a user's class) is refused.
SKOPS_TRUSTED: tuple[str, ...] = (
    "numpy.dtype",  # OneHotEncoder(dtype=np.float32)
    "sklearn.tree._tree.Tree",  # the forest's fitted trees (arrays, no code)
    "retraining_assets.core.preprocessing._as_float",
    "retraining_assets.core.preprocessing._as_strings",
)
_XGBOOST = {"XGBClassifier": XGBClassifier, "XGBRegressor": XGBRegressor}


# --- writing -------------------------------------------------------------------------------
def model_to_bytes(model: TrainedModel) -> bytes:
    """The model as a zip of ``model.json`` and its data files (see the module docstring).

    The skops files deflate themselves at level 1 (their schema is verbose JSON: a forest's
    file shrinks ~5x for ~10% more load time); the outer zip stores its entries as they are."""
    files: dict[str, bytes] = {}
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, **_describe(model, "", files)}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(MANIFEST, _json_bytes(manifest))
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _skops_bytes(obj: Any) -> bytes:
    try:
        return _WRITTEN[obj]
    except KeyError:
        import skops.io as sio  # on first use: skops takes seconds to import

        written = _WRITTEN[obj] = sio.dumps(obj, compression=zipfile.ZIP_DEFLATED, compresslevel=1)
        return written


# The file of an object this process has already written: an ensemble's members were written
# moments before as candidates of their own (a forest's file takes ~0.7 s). By identity, and
# safe because a fitted preprocessor or estimator is never changed after training.
_WRITTEN: weakref.WeakKeyDictionary[Any, bytes] = weakref.WeakKeyDictionary()


def _is_mlp(estimator: Any) -> bool:
    # a TorchMLP exists only once its module (and torch) is loaded: no import needed to ask
    module = sys.modules.get("retraining_assets.core.neural_net")
    return module is not None and isinstance(estimator, module.TorchMLP)


def _describe(model: TrainedModel, prefix: str, files: dict[str, bytes]) -> dict[str, Any]:
    """``model``'s manifest entry; its data files are added to ``files`` under ``prefix``."""
    entry: dict[str, Any] = {
        "family": model.family,
        "task": model.task,
        "params": model.params,
        "training_seconds": model.training_seconds,
        "classes": list(model.classes),
        "features": list(model.features),
    }
    scorer = model.scorer
    if isinstance(scorer, FittedEstimator):
        files[f"{prefix}preprocessor.skops"] = _skops_bytes(scorer.preprocessor)
        entry["scorer"] = {
            "kind": "fitted",
            "preprocessor": f"{prefix}preprocessor.skops",
            "estimator": _store_estimator(scorer.estimator, prefix, files),
            "present": [int(i) for i in scorer.present],
            "n_classes": int(scorer.n_classes),
        }
    elif isinstance(scorer, SoftVote):
        entry["scorer"] = {
            "kind": "soft_vote",
            "weights": [float(w) for w in scorer.weights],
            "members": [
                _describe(member, f"{prefix}members/{i}/", files)
                for i, member in enumerate(scorer.members)
            ],
        }
    else:
        raise TrainingError(f"{model.family}: cannot store a {type(scorer).__name__} scorer")
    return entry


def _store_estimator(estimator: Any, prefix: str, files: dict[str, bytes]) -> dict[str, Any]:
    if isinstance(estimator, XGBModel):
        name = f"{prefix}estimator.ubj"
        files[name] = bytes(estimator.get_booster().save_raw("ubj"))
        params = {
            k: v
            for k, v in estimator.get_params().items()
            if isinstance(v, str | int | float | bool)  # hyperparameters, not callbacks
        }
        return {
            "format": "xgboost-ubj",
            "file": name,
            "class": type(estimator).__name__,
            "params": params,
        }
    if _is_mlp(estimator):
        name = f"{prefix}estimator.npz"
        settings, weights = estimator.to_parts()
        buffer = io.BytesIO()
        np.savez(buffer, **weights)
        files[name] = buffer.getvalue()
        return {"format": "torch-state-npz", "file": name, "settings": settings}
    if isinstance(estimator, BaseEstimator):
        name = f"{prefix}estimator.skops"
        files[name] = _skops_bytes(estimator)
        return {"format": "skops", "file": name, "class": type(estimator).__name__}
    raise TrainingError(f"cannot store an estimator of type {type(estimator).__name__}")


def _json_bytes(manifest: dict[str, Any]) -> bytes:
    try:
        return json.dumps(manifest, indent=1, allow_nan=True).encode()
    except TypeError as error:  # a parameter that is not a JSON value (a numpy scalar, ...)
        raise TrainingError(f"model.json cannot hold the model's parameters: {error}") from None


# --- reading -------------------------------------------------------------------------------
def model_from_bytes(
    data: bytes, *, name: str = "model artifact", allow_pickle: bool = False
) -> TrainedModel:
    """The model stored by ``model_to_bytes``; ``name`` says which one in errors.

    A legacy pickle is refused unless ``allow_pickle`` (pass it only for bytes whose signature
    has been verified: unpickling runs whatever the file says)."""
    from skops.io.exceptions import UntrustedTypesFoundException  # skops: on first load

    if not is_zip(data):
        if not allow_pickle:
            raise TrainingError(
                f"{name} cannot be loaded: it is not a model zip, and a legacy pickle is only "
                "loaded after its signature check"
            )
        return _from_pickle(data, name)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            manifest = json.loads(archive.read(MANIFEST))
            if (manifest.get("format"), manifest.get("format_version")) != (FORMAT, FORMAT_VERSION):
                raise ValueError(
                    f"format {manifest.get('format')!r} v{manifest.get('format_version')} is not "
                    f"{FORMAT!r} v{FORMAT_VERSION}"
                )
            return _build(manifest, archive, name)
    except TrainingError:
        raise
    except UntrustedTypesFoundException as error:
        raise TrainingError(
            f"{name} cannot be loaded: a skops file holds types that are not trusted "
            f"({error}); refusing to load it"
        ) from None
    except Exception as error:  # malformed: a missing file or key, a bad shape, a parse error
        raise TrainingError(f"{name} cannot be loaded: {type(error).__name__}: {error}") from None


def _build(entry: dict[str, Any], archive: zipfile.ZipFile, name: str) -> TrainedModel:
    scorer_entry = entry["scorer"]
    kind = scorer_entry["kind"]
    scorer: FittedEstimator | SoftVote
    if kind == "fitted":
        preprocessor = _skops(archive, scorer_entry["preprocessor"])
        if not isinstance(preprocessor, ColumnTransformer):
            raise TypeError(f"the preprocessor is a {type(preprocessor).__name__}")
        scorer = FittedEstimator(
            preprocessor=preprocessor,
            estimator=_load_estimator(scorer_entry["estimator"], archive),
            task=entry["task"],
            present=np.asarray(scorer_entry["present"], dtype=np.int64),
            n_classes=int(scorer_entry["n_classes"]),
        )
    elif kind == "soft_vote":
        members = [_build(member, archive, name) for member in scorer_entry["members"]]
        weights = np.asarray(scorer_entry["weights"], dtype=np.float64)
        if len(weights) != len(members) or not all(math.isfinite(w) for w in weights):
            raise ValueError(f"{len(weights)} ensemble weights for {len(members)} members")
        scorer = SoftVote(members, weights)
    else:
        raise ValueError(f"unknown scorer kind {kind!r}")
    return TrainedModel(
        family=str(entry["family"]),
        task=entry["task"],
        params=dict(entry["params"]),
        training_seconds=float(entry["training_seconds"]),
        classes=tuple(str(c) for c in entry["classes"]),
        features=tuple(str(f) for f in entry["features"]),
        scorer=scorer,
    )


def _load_estimator(entry: dict[str, Any], archive: zipfile.ZipFile) -> Any:
    kind = entry["format"]
    if kind == "xgboost-ubj":
        model = _XGBOOST[entry["class"]](**entry["params"])
        model.load_model(bytearray(archive.read(entry["file"])))
        return model
    if kind == "torch-state-npz":
        with np.load(io.BytesIO(archive.read(entry["file"])), allow_pickle=False) as npz:
            weights = {key: npz[key] for key in npz.files}
        from retraining_assets.core.neural_net import TorchMLP  # torch: only to load an MLP

        return TorchMLP.from_parts(entry["settings"], weights)
    if kind == "skops":
        estimator = _skops(archive, entry["file"])
        if not isinstance(estimator, BaseEstimator):
            raise TypeError(f"{entry['file']} holds a {type(estimator).__name__}")
        return estimator
    raise ValueError(f"unknown estimator format {kind!r}")


def _skops(archive: zipfile.ZipFile, file: str) -> Any:
    """A skops file of the archive; types beyond skops's defaults and ``SKOPS_TRUSTED`` raise
    ``UntrustedTypesFoundException`` before any object is built."""
    import skops.io as sio

    return sio.loads(archive.read(file), trusted=list(SKOPS_TRUSTED))


def _from_pickle(data: bytes, name: str) -> TrainedModel:
    try:
        model = joblib.load(io.BytesIO(data))
    except Exception as error:  # any unpickling failure means a corrupt or foreign artifact
        raise TrainingError(f"{name} cannot be loaded: {error}") from error
    if not isinstance(model, TrainedModel):
        raise TrainingError(f"{name} holds a {type(model).__name__}, not a TrainedModel")
    return model
