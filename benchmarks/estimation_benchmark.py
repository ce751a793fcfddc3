"""Estimation benchmark: how close are CBPE's and DLE's estimates to the metric the labels show?

1. CBPE vs NannyML's CBPE, same periods, same probabilities: on elec2, bike sharing (target
   ``high_demand``) and the demo stream, one xgboost model is trained on the first three
   months (the project's split; its holdout is the reference both estimators calibrate on) and
   scores every later month. Our estimate (``core.estimation``) and NannyML's (``nml.CBPE``,
   run in its own virtualenv as a subprocess, scores exchanged as Parquet) are compared with
   the realized accuracy; the script prints both mean absolute errors and their ratio.
2. DLE vs NannyML's DLE, the same way for regression: bike sharing with target ``cnt``, the
   same xgboost / split / months; both estimators fit their loss models on the holdout's
   features and predictions and estimate each later month's MAE and RMSE (the primary
   regression metric), compared with the realized ones.
3. The demo backtest (``retrain demo --export-stream`` stream, default options): the MAE of
   the ``auto`` rows' ``estimated_metric`` against ``metric`` for periods ending on or before
   the concept drift's onset (target <= 0.03).
4. Label delay: with ``--label-delay 1M``, the first period at or after the concept drift
   where auto gives ``estimated_degradation`` (or ``performance``) as a reason, against the
   first ``performance`` reason without delay.

    OMP_NUM_THREADS=1 python benchmarks/estimation_benchmark.py [--only cbpe|dle|backtest]
        [--datasets-dir DIR] [--nannyml-python /work/nannyml-venv/bin/python] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pandas as pd

from retraining_assets.core.backtest import run_backtest
from retraining_assets.core.dataset import DatasetSpec, class_labels
from retraining_assets.core.demo import CONCEPT, SPEC, DemoStream
from retraining_assets.core.estimation import fit_model_estimator
from retraining_assets.core.evaluation import compute_metric, truth
from retraining_assets.core.sources import read_table
from retraining_assets.core.splits import Split, split_for_training
from retraining_assets.core.trained_model import TrainedModel
from retraining_assets.core.training import train_model
from retraining_assets.settings import load_settings

REPO = Path(__file__).resolve().parents[1]
TRAIN_MONTHS = 3
DATASETS = (  # name, path, target, drop
    ("elec2", "elec2/elec2.csv.gz", "class", ()),
    ("bike_sharing", "bike_sharing/bike_hourly.csv.gz", "high_demand", ("cnt",)),
)
REGRESSION_DATASETS = (
    ("bike_sharing", "bike_sharing/bike_hourly.csv.gz", "cnt", ("high_demand",)),
)
# DLE also after a whole year of training (2011; the reference is its newest 20%, autumn),
# a second point for the ratio with the seasons no longer out of the training range
DLE_TRAIN_MONTHS = (TRAIN_MONTHS, 12)
MIN_MONTH_ROWS = 30
DLE_METRICS = ("mae", "rmse")

# argv: reference.parquet analysis.parquet out.csv; each script fits once on the reference and
# estimates every month as one chunk of its own; out.csv holds month and per metric m the
# columns m, m_lower, m_upper
NANNYML_HEAD = """
import json, sys, warnings
import pandas as pd
import nannyml as nml
warnings.simplefilter("ignore")
reference = pd.read_parquet(sys.argv[1])
analysis = pd.read_parquet(sys.argv[2])
"""
NANNYML_TAIL = """
estimator.fit(reference)
rows = []
for month, part in analysis.groupby("month", sort=True):
    result = estimator.estimate(part.drop(columns=["month"])).filter(period="analysis").to_df()
    row = {"month": month}
    for m in metrics:  # the estimate and its band (+-3 sampling errors)
        for name, column in (("", "value"), ("_lower", "lower_confidence_boundary"),
                             ("_upper", "upper_confidence_boundary")):
            row[m + name] = float(result[(m, column)].iloc[0])
    rows.append(row)
pd.DataFrame(rows).to_csv(sys.argv[3], index=False)
"""
NANNYML_CBPE = """
metrics = ["accuracy"]
estimator = nml.CBPE(y_pred_proba="proba", y_pred="pred", y_true="y", metrics=metrics,
                     problem_type="classification_binary", chunk_number=1)
"""
# argv[4]: the feature columns (JSON); NannyML's DLE fits a LightGBM on them and the prediction
NANNYML_DLE = """
metrics = ["mae", "rmse"]
# verbose=-1 only silences LightGBM's warnings: any hyperparameter given replaces NannyML's
# plain LGBMRegressor() by LGBMRegressor(**hyperparameters), the same defaults otherwise
estimator = nml.DLE(feature_column_names=json.loads(sys.argv[4]), y_pred="pred", y_true="y",
                    metrics=metrics, chunk_number=1, hyperparameters={"verbose": -1})
"""


@dataclass
class Scored:
    """One model trained on the first months, and its scores on every later month."""

    spec: DatasetSpec
    split: Split
    model: TrainedModel
    later: pd.DataFrame
    scores: np.ndarray
    y: np.ndarray
    month: np.ndarray  # each later row's month, "YYYY-MM"

    def months(self) -> list[str]:
        """The later months with enough rows to compare on."""
        labels, counts = np.unique(self.month, return_counts=True)
        return [str(m) for m, c in zip(labels, counts, strict=True) if c >= MIN_MONTH_ROWS]


def _frame_of(dataset: tuple, folder: Path) -> tuple[pd.DataFrame, DatasetSpec]:
    _, path, target, drop = dataset
    frame = read_table(folder / path)
    spec = DatasetSpec.infer(frame, "ts", target, drop=list(drop))
    frame["ts"] = pd.to_datetime(frame["ts"])
    return frame.sort_values("ts", kind="stable", ignore_index=True), spec


def _demo_frame() -> tuple[pd.DataFrame, DatasetSpec]:
    frame = DemoStream().records()
    return frame.sort_values(SPEC.time_column, kind="stable", ignore_index=True), SPEC


def train_on_first_months(
    frame: pd.DataFrame, spec: DatasetSpec, train_months: int = TRAIN_MONTHS
) -> Scored:
    """xgboost on the first ``train_months`` months with the project's split, scoring the rest."""
    months = frame[spec.time_column].dt.to_period("M")
    first = months.min()
    window = frame[months < first + train_months].reset_index(drop=True)
    later = frame[months >= first + train_months].reset_index(drop=True)
    if spec.task != "regression" and not spec.classes:
        spec = replace(spec, classes=class_labels(frame[spec.target]))
    split = split_for_training(load_settings())(window, spec)
    model = train_model("xgboost", split, spec, seed=0)
    month = later[spec.time_column].dt.to_period("M").astype(str).to_numpy()
    scores, y = model.scores(later), truth(later, spec, model)
    return Scored(spec, split, model, later, scores, y, month)


def run_nannyml(
    script: str,
    reference: pd.DataFrame,
    analysis: pd.DataFrame,
    nannyml_python: str,
    *extra: str,
) -> pd.DataFrame:
    """Run one NannyML estimator in its own virtualenv; its estimates indexed by month."""
    with tempfile.TemporaryDirectory() as folder:
        names = ("reference.parquet", "analysis.parquet", "nannyml.csv", "run_nannyml.py")
        ref, ana, out, path = (Path(folder) / name for name in names)
        reference.to_parquet(ref)
        analysis.to_parquet(ana)
        path.write_text(NANNYML_HEAD + script + NANNYML_TAIL)
        quiet = {**os.environ, "NML_DISABLE_USAGE_LOGGING": "1"}  # no phoning home
        command = [nannyml_python, str(path), str(ref), str(ana), str(out), *extra]
        subprocess.run(command, check=True, env=quiet)
        return pd.read_csv(out, dtype={"month": str}).set_index("month")


def errors_against_realized(
    table: pd.DataFrame, theirs: pd.DataFrame, metric: str
) -> dict[str, Any]:
    """Mean absolute error of each estimate (ours, NannyML's) against the realized metric of
    the same months, and their ratio ours / NannyML."""
    ours = float((table[f"ours_{metric}"] - table[f"realized_{metric}"]).abs().mean())
    nannyml = float(
        (theirs[metric].reindex(table.index) - table[f"realized_{metric}"]).abs().mean()
    )
    return {
        "ours": round(ours, 4),
        "nannyml": round(nannyml, 4),
        "ratio": round(ours / nannyml, 3) if nannyml else None,
    }


def band_coverage(table: pd.DataFrame, bands: pd.DataFrame, metric: str) -> str:
    """How many months' realized metric lies inside the band ``bands`` give it."""
    lower = bands[f"{metric}_lower"].reindex(table.index)
    upper = bands[f"{metric}_upper"].reindex(table.index)
    realized = table[f"realized_{metric}"]
    return f"{int(((lower <= realized) & (realized <= upper)).sum())}/{len(table)}"


def compare_with_nannyml(
    name: str, frame: pd.DataFrame, spec: DatasetSpec, nannyml_python: str
) -> dict[str, Any]:
    """Train once, estimate every later month's accuracy with ours and NannyML's CBPE."""
    run = train_on_first_months(frame, spec)
    ours = fit_model_estimator(run.model, run.split.holdout, run.spec)
    holdout_scores = run.model.scores(run.split.holdout)
    reference = pd.DataFrame(
        {
            "proba": holdout_scores[:, 1],
            "pred": holdout_scores.argmax(axis=1),
            "y": truth(run.split.holdout, run.spec, run.model),
        }
    )
    months = run.months()
    rows = []
    for label in months:
        inside = run.month == label
        rows.append(
            {
                "month": label,
                "rows": int(inside.sum()),
                "realized_accuracy": compute_metric("accuracy", run.y[inside], run.scores[inside]),
                "ours_accuracy": ours.estimate(run.scores[inside])["accuracy"].value,
            }
        )
    analysis = pd.DataFrame(
        {"proba": run.scores[:, 1], "pred": run.scores.argmax(axis=1), "month": run.month}
    )
    analysis = analysis[analysis["month"].isin(months)]
    theirs = run_nannyml(NANNYML_CBPE, reference, analysis, nannyml_python)
    errors = errors_against_realized(pd.DataFrame(rows).set_index("month"), theirs, "accuracy")
    return {
        "dataset": name,
        "months": len(rows),
        "holdout_rows": len(run.split.holdout),
        "calibrated": ours.calibrators[1] is not None,
        "mae_ours": errors["ours"],
        "mae_nannyml": errors["nannyml"],
        "ratio": errors["ratio"],
        "target_met": errors["ours"] <= errors["nannyml"],
    }


def _dle_inputs(frame: pd.DataFrame, spec: DatasetSpec, pred: np.ndarray) -> pd.DataFrame:
    """The columns NannyML's DLE sees: the features (categoricals as pandas categories, as
    LightGBM wants them) and the prediction."""
    out = frame[list(spec.numeric_features)].apply(pd.to_numeric, errors="coerce")
    for column in spec.categorical_features:
        out[column] = frame[column].astype("string").astype("category")
    out["pred"] = np.asarray(pred, np.float64)
    return out.reset_index(drop=True)


def compare_dle_with_nannyml(
    name: str,
    frame: pd.DataFrame,
    spec: DatasetSpec,
    nannyml_python: str,
    train_months: int = TRAIN_MONTHS,
) -> dict[str, Any]:
    """Train once, estimate every later month's MAE and RMSE with ours and NannyML's DLE."""
    run = train_on_first_months(frame, spec, train_months)
    holdout = run.split.holdout
    ours = fit_model_estimator(run.model, holdout, run.spec)
    reference = _dle_inputs(holdout, run.spec, run.model.scores(holdout))
    reference["y"] = truth(holdout, run.spec, run.model)
    months = run.months()
    rows = []
    for label in months:
        inside = run.month == label
        estimates = ours.estimate(run.scores[inside], run.later[inside])
        row: dict[str, Any] = {"month": label, "rows": int(inside.sum())}
        for metric in DLE_METRICS:
            row[f"realized_{metric}"] = compute_metric(metric, run.y[inside], run.scores[inside])
            estimate = estimates[metric]
            row[f"ours_{metric}"] = estimate.value
            row[f"ours_{metric}_lower"] = estimate.lower
            row[f"ours_{metric}_upper"] = estimate.upper
        rows.append(row)
    analysis = _dle_inputs(run.later, run.spec, run.scores)
    analysis["month"] = run.month
    analysis = analysis[analysis["month"].isin(months)]
    features = json.dumps([*run.spec.numeric_features, *run.spec.categorical_features])
    theirs = run_nannyml(NANNYML_DLE, reference, analysis, nannyml_python, features)
    table = pd.DataFrame(rows).set_index("month")
    result: dict[str, Any] = {
        "dataset": f"{name} ({run.spec.target})",
        "train_months": train_months,
        "months": len(rows),
        "holdout_rows": len(holdout),
        "holdout_metrics": {m: round(v, 2) for m, v in ours.holdout.items() if v is not None},
    }
    ours_bands = table.rename(columns=lambda c: c.removeprefix("ours_"))
    for metric in DLE_METRICS:
        errors = errors_against_realized(table, theirs, metric)
        result.update({f"{metric}_error_{k}": v for k, v in errors.items()})
        result[f"{metric}_band_covers_ours"] = band_coverage(table, ours_bands, metric)
        result[f"{metric}_band_covers_nannyml"] = band_coverage(table, theirs, metric)
        result[f"{metric}_realized_range"] = [
            round(float(table[f"realized_{metric}"].min()), 1),
            round(float(table[f"realized_{metric}"].max()), 1),
        ]
    table = table.join(theirs.add_prefix("nannyml_"))
    result["per_month"] = table.round(2).reset_index().to_dict(orient="records")
    return result


def demo_backtest() -> dict[str, Any]:
    stream = DemoStream()
    frame = stream.records()
    onset = stream.onset(CONCEPT)
    results = {}
    for delay in ("0", "1M"):
        settings = load_settings(label_delay=delay)
        result = run_backtest(frame, SPEC, settings=settings, policies=("auto", "static"))
        results[delay] = result.to_dict()["policies"]

    def first_reason(rows: list[dict], causes: tuple[str, ...]) -> str | None:
        for row in rows:
            end = pd.Timestamp(row["period"]) + pd.DateOffset(months=1)
            if end > onset and any(r.split(":")[0] in causes for r in row["reasons"]):
                return row["period"]
        return None

    auto = results["0"]["auto"]["rows"]
    before = [
        r
        for r in auto
        if pd.Timestamp(r["period"]) + pd.DateOffset(months=1) <= onset
        and r["metric"] is not None
        and r["estimated_metric"] is not None
    ]
    mae = float(np.mean([abs(r["estimated_metric"] - r["metric"]) for r in before]))
    static = results["1M"]["static"]["rows"]
    after = [r for r in static if pd.Timestamp(r["period"]) >= onset.to_period("M").start_time]
    return {
        "concept_onset": f"{onset:%Y-%m-%d}",
        "auto_rows_before_concept": len(before),
        "auto_estimate_mae_before_concept": round(mae, 4),
        "estimate_target_met": mae <= 0.03,
        "labelled_performance_no_delay": first_reason(auto, ("performance",)),
        "estimated_degradation_1M_delay": first_reason(
            results["1M"]["auto"]["rows"], ("estimated_degradation",)
        ),
        "performance_1M_delay": first_reason(results["1M"]["auto"]["rows"], ("performance",)),
        "static_after_concept": [
            {"period": r["period"], "metric": r["metric"], "estimated": r["estimated_metric"]}
            for r in after[:4]
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("cbpe", "dle", "backtest"), default=None)
    parser.add_argument("--datasets-dir", type=Path, default=REPO.parent / "shared" / "datasets")
    parser.add_argument("--nannyml-python", default="/work/nannyml-venv/bin/python")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    started = time.perf_counter()
    report: dict[str, Any] = {}

    def runs(part: str) -> bool:
        return args.only in (None, part)

    if runs("cbpe"):
        entries = []
        for dataset in DATASETS:
            frame, spec = _frame_of(dataset, args.datasets_dir)
            entries.append(compare_with_nannyml(dataset[0], frame, spec, args.nannyml_python))
            print(json.dumps(entries[-1]))
        frame, spec = _demo_frame()
        entries.append(compare_with_nannyml("demo", frame, spec, args.nannyml_python))
        print(json.dumps(entries[-1]))
        report["cbpe_vs_nannyml"] = entries
    if runs("dle"):
        entries = []
        for dataset in REGRESSION_DATASETS:
            frame, spec = _frame_of(dataset, args.datasets_dir)
            for train_months in DLE_TRAIN_MONTHS:
                entries.append(
                    compare_dle_with_nannyml(
                        dataset[0], frame, spec, args.nannyml_python, train_months
                    )
                )
                print(json.dumps({k: v for k, v in entries[-1].items() if k != "per_month"}))
        report["dle_vs_nannyml"] = entries
    if runs("backtest"):
        report["demo"] = demo_backtest()
        print(json.dumps(report["demo"], indent=1))
    report["machine"] = f"{platform.machine()}, Python {platform.python_version()}"
    report["load_average"] = os.getloadavg()
    report["seconds"] = round(time.perf_counter() - started, 1)
    print(f"load average {report['load_average']}, {report['seconds']} s")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
