"""Estimation benchmark: how close is CBPE's estimate to the accuracy the labels later show?

1. CBPE vs NannyML's CBPE, same periods, same probabilities: on elec2, bike sharing (target
   ``high_demand``) and the demo stream, one xgboost model is trained on the first three
   months (the project's split; its holdout is the reference both estimators calibrate on) and
   scores every later month. Our estimate (``core.estimation``) and NannyML's (``nml.CBPE``,
   run in its own virtualenv as a subprocess, scores exchanged as Parquet) are compared with
   the realized accuracy; the script prints both mean absolute errors and their ratio.
2. The demo backtest (``retrain demo --export-stream`` stream, default options): the MAE of
   the ``auto`` rows' ``estimated_metric`` against ``metric`` for periods ending on or before
   the concept drift's onset (target <= 0.03).
3. Label delay: with ``--label-delay 1M``, the first period at or after the concept drift
   where auto gives ``estimated_degradation`` (or ``performance``) as a reason, against the
   first ``performance`` reason without delay.

    OMP_NUM_THREADS=1 python benchmarks/estimation_benchmark.py [--datasets-dir DIR]
        [--nannyml-python /work/nannyml-venv/bin/python] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import tempfile
import time
from dataclasses import replace
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
from retraining_assets.core.splits import split_for_training
from retraining_assets.core.training import train_model
from retraining_assets.settings import load_settings

REPO = Path(__file__).resolve().parents[1]
TRAIN_MONTHS = 3
DATASETS = (  # name, path, target, drop
    ("elec2", "elec2/elec2.csv.gz", "class", ()),
    ("bike_sharing", "bike_sharing/bike_hourly.csv.gz", "high_demand", ("cnt",)),
)

NANNYML = """
import sys, warnings
import pandas as pd
import nannyml as nml
warnings.simplefilter("ignore")
reference = pd.read_parquet(sys.argv[1])
analysis = pd.read_parquet(sys.argv[2])
cbpe = nml.CBPE(y_pred_proba="proba", y_pred="pred", y_true="y", metrics=["accuracy"],
                problem_type="classification_binary", chunk_number=1)
# one chunk per month, each estimated on its own (NannyML fitted once on the reference)
cbpe.fit(reference)
rows = []
for month, part in analysis.groupby("month", sort=True):
    result = cbpe.estimate(part.drop(columns=["month"])).filter(period="analysis").to_df()
    rows.append({"month": month, "nannyml": float(result[("accuracy", "value")].iloc[0])})
pd.DataFrame(rows).to_csv(sys.argv[3], index=False)
"""


def _frame_of(dataset: tuple, folder: Path) -> tuple[pd.DataFrame, DatasetSpec]:
    _, path, target, drop = dataset
    frame = read_table(folder / path)
    spec = DatasetSpec.infer(frame, "ts", target, drop=list(drop))
    frame["ts"] = pd.to_datetime(frame["ts"])
    return frame.sort_values("ts", kind="stable", ignore_index=True), spec


def _demo_frame() -> tuple[pd.DataFrame, DatasetSpec]:
    frame = DemoStream().records()
    return frame.sort_values(SPEC.time_column, kind="stable", ignore_index=True), SPEC


def compare_with_nannyml(
    name: str, frame: pd.DataFrame, spec: DatasetSpec, nannyml_python: str
) -> dict[str, Any]:
    """Train once, estimate every later month with ours and NannyML's CBPE."""
    months = frame[spec.time_column].dt.to_period("M")
    first = months.min()
    window = frame[months < first + TRAIN_MONTHS].reset_index(drop=True)
    later = frame[months >= first + TRAIN_MONTHS].reset_index(drop=True)
    if spec.task != "regression" and not spec.classes:
        spec = replace(spec, classes=class_labels(frame[spec.target]))
    split = split_for_training(load_settings())(window, spec)
    model = train_model("xgboost", split, spec, seed=0)
    ours = fit_model_estimator(model, split.holdout, spec)
    holdout_scores = model.scores(split.holdout)
    reference = pd.DataFrame(
        {
            "proba": holdout_scores[:, 1],
            "pred": holdout_scores.argmax(axis=1),
            "y": truth(split.holdout, spec, model),
        }
    )
    scores = model.scores(later)
    y = truth(later, spec, model)
    month = later[spec.time_column].dt.to_period("M").astype(str).to_numpy()
    analysis = pd.DataFrame({"proba": scores[:, 1], "pred": scores.argmax(axis=1), "month": month})
    rows = []
    for label in sorted(set(month)):
        inside = month == label
        if inside.sum() < 30:
            continue
        estimate = ours.estimate(scores[inside])["accuracy"].value
        rows.append(
            {
                "month": label,
                "rows": int(inside.sum()),
                "realized": compute_metric("accuracy", y[inside], scores[inside]),
                "ours": estimate,
            }
        )
    with tempfile.TemporaryDirectory() as folder:
        names = ("reference.parquet", "analysis.parquet", "nannyml.csv")
        ref, ana, out = (Path(folder) / name for name in names)
        reference.to_parquet(ref)
        analysis[analysis["month"].isin([r["month"] for r in rows])].to_parquet(ana)
        script = Path(folder) / "nannyml_cbpe.py"
        script.write_text(NANNYML)
        quiet = {**os.environ, "NML_DISABLE_USAGE_LOGGING": "1"}  # no phoning home
        command = [nannyml_python, str(script), str(ref), str(ana), str(out)]
        subprocess.run(command, check=True, env=quiet)
        theirs = pd.read_csv(out, dtype={"month": str}).set_index("month")["nannyml"]
    table = pd.DataFrame(rows).set_index("month")
    table["nannyml"] = theirs
    ours_mae = float((table["ours"] - table["realized"]).abs().mean())
    their_mae = float((table["nannyml"] - table["realized"]).abs().mean())
    return {
        "dataset": name,
        "months": len(table),
        "holdout_rows": len(split.holdout),
        "calibrated": ours.calibrators[1] is not None,
        "mae_ours": round(ours_mae, 4),
        "mae_nannyml": round(their_mae, 4),
        "ratio": round(ours_mae / their_mae, 3) if their_mae else None,
        "target_met": ours_mae <= their_mae,
    }


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
    parser.add_argument("--datasets-dir", type=Path, default=REPO.parent / "shared" / "datasets")
    parser.add_argument("--nannyml-python", default="/work/nannyml-venv/bin/python")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    started = time.perf_counter()
    entries = []
    for dataset in DATASETS:
        frame, spec = _frame_of(dataset, args.datasets_dir)
        entries.append(compare_with_nannyml(dataset[0], frame, spec, args.nannyml_python))
        print(json.dumps(entries[-1]))
    frame, spec = _demo_frame()
    entries.append(compare_with_nannyml("demo", frame, spec, args.nannyml_python))
    print(json.dumps(entries[-1]))
    demo = demo_backtest()
    print(json.dumps(demo, indent=1))
    report = {
        "cbpe_vs_nannyml": entries,
        "demo": demo,
        "machine": f"{platform.machine()}, Python {platform.python_version()}",
        "load_average": os.getloadavg(),
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(f"load average {report['load_average']}, {report['seconds']} s")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
