"""The one preprocessing pipeline shared by every model family, and the matrix it produces.

Its two cast functions are referenced by name from stored models: ``skops`` files name
``retraining_assets.core.preprocessing._as_float`` / ``_as_strings`` (trusted by name in
``model_files``), legacy pickles the same functions under ``retraining_assets.core.training``
(which re-exports them). Renaming or moving them breaks loading; add an alias instead.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from retraining_assets.core.dataset import DatasetSpec
from retraining_assets.core.splits import TrainingError

__all__ = ["MAX_CATEGORIES", "MISSING_CATEGORY", "build_preprocessor", "feature_matrix"]

MISSING_CATEGORY = "__missing__"
MAX_CATEGORIES = 20  # one-hot columns per feature; rarer levels share an "infrequent" column


def _as_float(X: pd.DataFrame) -> pd.DataFrame:
    # Nullable integer columns (pd.NA) become float NaN, which SimpleImputer understands.
    return X.astype("float64")


def _as_strings(X: pd.DataFrame) -> pd.DataFrame:
    # One label type per column (bools, ints, pandas str dtype all become Python str) and one
    # missing marker (NaN), so the encoder never sees mixed types.
    return (
        X.apply(lambda column: column.map(str, na_action="ignore"))
        .astype(object)
        .where(X.notna(), np.nan)
    )


def build_preprocessor(spec: DatasetSpec) -> ColumnTransformer:
    """The one preprocessing pipeline shared by every family.

    Numeric: median imputation with missing-indicator columns, then standard scaling (the MLP
    needs it; trees are indifferent). Categorical: constant imputation, then one-hot with
    ``handle_unknown="ignore"`` (an unseen category becomes all zeros) and at most
    ``MAX_CATEGORIES`` columns per feature. One-hot rather than ordinal codes because the MLP
    cannot use arbitrary codes, and sharing one encoding keeps the families comparable; for
    trees the cost is a few more columns, which the category cap bounds.
    """
    transformers: list[tuple[str, Pipeline, list[str]]] = []
    if spec.numeric_features:
        numeric = make_pipeline(
            FunctionTransformer(_as_float, feature_names_out="one-to-one"),
            SimpleImputer(strategy="median", add_indicator=True),
            StandardScaler(),
        )
        transformers.append(("numeric", numeric, list(spec.numeric_features)))
    if spec.categorical_features:
        categorical = make_pipeline(
            FunctionTransformer(_as_strings, feature_names_out="one-to-one"),
            SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY),
            OneHotEncoder(
                handle_unknown="ignore",
                max_categories=MAX_CATEGORIES,
                sparse_output=False,
                dtype=np.float32,
            ),
        )
        transformers.append(("categorical", categorical, list(spec.categorical_features)))
    if not transformers:
        raise TrainingError("the spec has no features to train on")
    return ColumnTransformer(transformers, remainder="drop", sparse_threshold=0.0)


def feature_matrix(preprocessor: ColumnTransformer, frame: pd.DataFrame) -> np.ndarray:
    """The float32, C-contiguous matrix every estimator is trained on and scores."""
    return np.ascontiguousarray(preprocessor.transform(frame), dtype=np.float32)
