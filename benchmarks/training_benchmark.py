"""Training benchmark: one plain (no Dagster) training cycle on synthetic tables of growing size.

Stages timed: time split, each family's training, evaluation (every model on the holdout,
paired bootstrap with 1,000 resamples and McNemar). Each size runs in a fresh process so its
peak resident memory (``ru_maxrss``) is its own.

    OMP_NUM_THREADS=2 python benchmarks/training_benchmark.py --sizes 100000 1000000 [--demo]

With ``--dagster`` the same cycle also runs through the real Dagster graph, in the same process
and on the same records: a Parquet file over 2024-01..2024-04 behind a ``FileRecordSource``, the
reference job and the monitoring job for 2024-02..2024-04 (timed, not compared), then the
retraining job for 2024-04, whose 3-month window holds the ``--sizes`` rows the plain cycle
trains on. Per-step times come from the run's STEP_START/STEP_SUCCESS events.

    OMP_NUM_THREADS=1 python benchmarks/training_benchmark.py --sizes 100000 --dagster
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import resource
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))

import numpy as np
import pandas as pd

from retraining_assets.core.dataset import DatasetSpec
from retraining_assets.core.evaluation import compare_on_holdout
from retraining_assets.core.training import (
    BASE_FAMILIES,
    FAMILIES,
    TrainedModel,
    model_to_bytes,
    split_by_time,
    train_ensemble,
    train_model,
)

if TYPE_CHECKING:
    from dagster import DagsterInstance

    from retraining_assets.settings import Settings

T = TypeVar("T")
N_NUMERIC, CATEGORY_SIZES = 20, (3, 5, 8, 12, 30)


def make_synthetic(
    n: int, seed: int = 0, *, start: str = "2025-01-01", days: float = 365
) -> tuple[pd.DataFrame, DatasetSpec]:
    """``n`` rows over ``days`` days from ``start`` (default: 12 months): 20 numeric and 5
    categorical features, a binary target from a logistic score with an interaction and
    category effects (so trees and the MLP both have something to find), 2% missing values in
    a few columns."""
    rng = np.random.default_rng(seed)
    numeric = rng.normal(size=(n, N_NUMERIC))
    numeric[:, 5:10] = np.exp(numeric[:, 5:10] * 0.5)  # a few skewed columns
    frame = pd.DataFrame(numeric, columns=[f"num_{i:02d}" for i in range(N_NUMERIC)])
    logit = numeric[:, :6] @ np.array([0.8, -0.6, 0.5, 0.4, -0.3, 0.3]) + 0.7 * numeric[:, 0] * (
        numeric[:, 1] > 0
    )
    for i, size in enumerate(CATEGORY_SIZES):
        codes = rng.integers(0, size, n)
        frame[f"cat_{i}"] = pd.Series(np.char.add(f"c{i}_", codes.astype(str)))
        logit += rng.normal(0, 0.4, size)[codes]
    for column in ("num_03", "num_07", "cat_2"):
        frame.loc[rng.random(n) < 0.02, column] = None
    frame["target"] = (rng.random(n) < 1 / (1 + np.exp(-(logit - 0.5)))).astype(int)
    seconds = np.sort(rng.uniform(0, days * 86400, n))
    frame["event_time"] = pd.Timestamp(start) + pd.to_timedelta(seconds, unit="s")
    spec = DatasetSpec(
        time_column="event_time",
        target="target",
        task="binary",
        numeric_features=tuple(frame.columns[:N_NUMERIC]),
        categorical_features=tuple(f"cat_{i}" for i in range(len(CATEGORY_SIZES))),
        classes=("0", "1"),
    )
    return frame, spec


def _timed(timings: dict[str, float], stage: str, work: Callable[[], T]) -> T:
    started = time.perf_counter()
    result = work()
    timings[stage] = time.perf_counter() - started
    return result


def run_plain_cycle(
    frame: pd.DataFrame,
    spec: DatasetSpec,
    families: Sequence[str] = FAMILIES,
    *,
    seed: int = 0,
    n_resamples: int = 1000,
) -> dict[str, float]:
    """Seconds per stage of split -> train each family -> evaluate on the holdout.

    The evaluation needs a champion; the first trained family stands in for it, which costs
    the same as a real champion (one more model scored and bootstrapped).
    """
    return _plain_cycle(frame, spec, families, seed=seed, n_resamples=n_resamples)[0]


def _plain_cycle(
    frame: pd.DataFrame,
    spec: DatasetSpec,
    families: Sequence[str],
    *,
    seed: int,
    n_resamples: int = 1000,
) -> tuple[dict[str, float], dict[str, TrainedModel]]:
    """``run_plain_cycle`` that also hands back the trained models (the Dagster comparison
    installs the stand-in champion in the registry)."""
    timings: dict[str, float] = {}
    split = _timed(timings, "split", lambda: split_by_time(frame, spec))
    models = {}
    for family in [f for f in BASE_FAMILIES if f in families]:
        models[family] = _timed(
            timings, f"train {family}", lambda f=family: train_model(f, split, spec, seed=seed)
        )
    if "ensemble" in families:
        members = list(models.values())
        models["ensemble"] = _timed(
            timings, "train ensemble", lambda: train_ensemble(members, split, spec)
        )
    champion = next(iter(models.values()))
    comparison = _timed(
        timings,
        "evaluate + bootstrap",
        lambda: compare_on_holdout(
            models, split.holdout, spec, "roc_auc", champion=champion, n_resamples=n_resamples
        ),
    )
    timings["total"] = sum(timings.values())
    timings["holdout roc_auc (best)"] = comparison.candidate_value or float("nan")
    return timings, models


def _measure_size(n: int, families: Sequence[str], seed: int) -> dict[str, float]:
    timings: dict[str, float] = {}
    frame, spec = _timed(timings, "generate (not in total)", lambda: make_synthetic(n, seed))
    generate = timings.pop("generate (not in total)")
    result = run_plain_cycle(frame, spec, families, seed=seed)
    result["generate (not in total)"] = generate
    result["peak RSS (MB)"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def _measure_demo(seed: int) -> dict[str, float]:
    from retraining_assets.core.demo import SPEC, DemoStream

    stream = DemoStream(months=3, rows_per_month=5000, end_month=pd.Timestamp("2026-10-01"))
    frame = pd.concat([stream.generate(offset) for offset in range(3)], ignore_index=True)
    result = run_plain_cycle(frame, SPEC, FAMILIES, seed=seed)
    result["peak RSS (MB)"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


# --- the same cycle through the real Dagster graph -------------------------------------------
PIPELINE_NAME = "bench"
DAGSTER_START, DAGSTER_DAYS = "2024-01-01", 121  # 2024-01..2024-04
WINDOW_DAYS = 90  # 2024-02..2024-04: the 3-month training window of partition 2024-04
RETRAIN_PARTITION = "2024-04-01"
MONITORED = ("2024-02-01", "2024-03-01", RETRAIN_PARTITION)  # the window's current_data
# the Dagster step doing each plain stage's work (asset name under the pipeline's prefix)
STEP_OF_STAGE = {
    "split": "training_data",
    **{f"train {family}": f"candidate_{family}" for family in FAMILIES},
    "evaluate + bootstrap": "model_evaluation",
}
DAGSTER_ONLY_STEPS = ("champion_model", "reference_data")


def step_timings(instance: DagsterInstance, run_id: str) -> dict[str, dict[str, float]]:
    """Per step of a run, from its event log: ``seconds`` (STEP_START to STEP_SUCCESS),
    ``load`` (start to the last LOADED_INPUT: the IO manager unpickling inputs) and ``store``
    (STEP_OUTPUT to HANDLED_OUTPUT: pickling outputs). Skipped steps are absent."""
    import dagster as dg

    kinds = dg.DagsterEventType
    steps: dict[str, dict[str, float]] = {}
    last_output: dict[str, float] = {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or event.step_key is None:
            continue
        step = steps.setdefault(event.step_key, {"load": 0.0, "store": 0.0})
        kind, at = event.event_type, entry.timestamp
        if kind == kinds.STEP_START:
            step["start"] = at
        elif kind == kinds.LOADED_INPUT:
            step["load"] = at - step["start"]
        elif kind == kinds.STEP_OUTPUT:
            last_output[event.step_key] = at
        elif kind == kinds.HANDLED_OUTPUT:
            step["store"] += at - last_output[event.step_key]
        elif kind == kinds.STEP_SUCCESS:
            step["seconds"] = at - step["start"]
    return {key: step for key, step in steps.items() if "seconds" in step}


def _install_champion(
    settings: Settings, model: TrainedModel, window: pd.DataFrame, spec: DatasetSpec
) -> int:
    """Register the plain cycle's stand-in champion and make it the champion, so the Dagster
    evaluation scores and bootstraps the same models as the plain one (a first run without a
    champion would skip the bootstrap)."""
    from retraining_assets.core.candidates import TrainingWindow, register_candidate
    from retraining_assets.core.registry import CHAMPION, Actor, Registry

    registry = Registry.from_settings(settings)
    start, end = window[spec.time_column].min(), window[spec.time_column].max()
    training = TrainingWindow(
        split=split_by_time(window, spec),
        start=start,
        end=end,
        fingerprint="benchmark-champion",  # not the window's: the job must not see it trained
    )
    actor = Actor(by="benchmark", actual_user="benchmark")
    version = register_candidate(
        registry, PIPELINE_NAME, model, training, spec, run_id=None, actor=actor
    ).version
    registry.move_alias(
        PIPELINE_NAME,
        CHAMPION,
        version,
        expected_current=None,
        by=actor.by,
        actual_user=actor.actual_user,
        reason="benchmark stand-in",
    )
    return version


def _measure_dagster(n: int, families: Sequence[str], seed: int) -> dict[str, Any]:
    """The plain cycle and the Dagster retraining job on the same window of ``n`` rows."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="training_benchmark_") as folder:
        root = Path(folder)
        # no settings.toml or RETRAIN_* variable of the developer's shell may leak in
        for name in [name for name in os.environ if name.startswith("RETRAIN_")]:
            del os.environ[name]
        os.environ["RETRAIN_HOME"] = str(root / "home")
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
        return _dagster_cycle(root, n, families, seed)


def _dagster_cycle(root: Path, n: int, families: Sequence[str], seed: int) -> dict[str, Any]:
    import dagster as dg

    from retraining_assets.core.pipeline import Pipeline
    from retraining_assets.core.sources import FileRecordSource
    from retraining_assets.definitions import build_definitions
    from retraining_assets.defs.assets.training import FORCE_TAG
    from retraining_assets.defs.jobs import monitoring_job_name, retraining_job_name
    from retraining_assets.demo.launch import QUIET
    from retraining_assets.demo.simulation import Simulation
    from retraining_assets.settings import load_settings

    total_rows = round(n * DAGSTER_DAYS / WINDOW_DAYS)
    frame, spec = make_synthetic(total_rows, seed, start=DAGSTER_START, days=DAGSTER_DAYS)
    path = root / "records.parquet"
    frame.to_parquet(path, index=False)
    del frame
    source = FileRecordSource(str(path), spec.time_column)
    # exactly the records (and dtypes) the retraining job trains on, read back from Parquet
    window = pd.concat(
        [
            source.load(pd.Timestamp(p), pd.Timestamp(p) + pd.DateOffset(months=1))
            for p in MONITORED
        ],
        ignore_index=True,
    )
    # one-time costs (imports, torch/xgboost first calls) are paid here, by neither side
    warm, warm_spec = make_synthetic(3000, seed)
    run_plain_cycle(warm, warm_spec, families, seed=seed, n_resamples=50)

    plain, models = _plain_cycle(window, spec, families, seed=seed)
    artifacts = {}
    for family, model in models.items():  # what registering costs beyond the fit
        started = time.perf_counter()
        blob = model_to_bytes(model)
        artifacts[family] = (time.perf_counter() - started, len(blob) / 1e6)

    settings = load_settings(
        home=root / "home",
        model_families=list(families),
        primary_metric="roc_auc",  # the plain cycle's metric (the product default is accuracy)
        automation_running=False,
    )
    pipeline = Pipeline(PIPELINE_NAME, source, spec, settings, DAGSTER_START)
    setup: dict[str, float] = {}
    defs = _timed(setup, "build definitions", lambda: build_definitions(settings, [pipeline]))
    (root / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(root / "dagster")) as instance:
        simulation = Simulation(defs, pipeline, instance)
        _timed(setup, "reference job", simulation.refresh_reference)
        monitoring = simulation.job(monitoring_job_name(PIPELINE_NAME))
        for partition in MONITORED:
            _timed(
                setup,
                f"monitoring job {partition[:7]}",
                lambda p=partition: monitoring.execute_in_process(
                    instance=instance, partition_key=p, run_config=QUIET
                ),
            )
        _install_champion(settings, next(iter(models.values())), window, spec)
        job = simulation.job(retraining_job_name(PIPELINE_NAME))
        started = time.perf_counter()
        result = job.execute_in_process(
            instance=instance,
            partition_key=RETRAIN_PARTITION,
            tags={FORCE_TAG: "true"},
            run_config=QUIET,
        )
        wall = time.perf_counter() - started
        steps = step_timings(instance, result.run_id)
    fits, decision = {}, "-"
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        values = {key: value.value for key, value in materialization.metadata.items()}
        if "training_seconds" in values:
            fits[materialization.asset_key.path[-1]] = values["training_seconds"]
        if "decision" in values:
            decision = f"{values['decision']} (lift {values.get('lift')})"
    prefix = f"{PIPELINE_NAME}__"
    return {
        "rows": len(window),
        "plain": plain,
        "steps": {key.removeprefix(prefix): step for key, step in steps.items()},
        "fits": fits,
        "wall": wall,
        "setup": setup,
        "artifacts": artifacts,
        "decision": decision,
        "peak RSS (MB)": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def format_comparison(measured: dict[str, Any]) -> str:
    """Plain stage vs the Dagster step doing its work, then the Dagster-only parts."""
    plain, steps, fits = measured["plain"], measured["steps"], measured["fits"]
    lines = [
        "| stage | plain s | Dagster step s | of which fit | inputs loaded | outputs stored "
        "| Dagster − plain | Dagster / plain |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for stage, step_name in STEP_OF_STAGE.items():
        if stage not in plain or step_name not in steps:
            continue
        step = steps[step_name]
        fit = fits.get(step_name)
        lines.append(
            f"| {stage} | {plain[stage]:.2f} | {step['seconds']:.2f} | "
            f"{'–' if fit is None else f'{fit:.2f}'} | {step['load']:.2f} | {step['store']:.2f} | "
            f"{step['seconds'] - plain[stage]:+.2f} | {step['seconds'] / plain[stage]:.2f}x |"
        )
    for step_name in DAGSTER_ONLY_STEPS:
        seconds = steps[step_name]["seconds"] if step_name in steps else None
        shown = "skipped" if seconds is None else f"{seconds:.2f}"
        lines.append(f"| {step_name} (Dagster only) | – | {shown} | | | | | |")
    in_steps = sum(step["seconds"] for step in steps.values())
    lines.append(
        f"| run outside steps (launch, plan, event log) | – | {measured['wall'] - in_steps:.2f} "
        "| | | | | |"
    )
    total = plain["total"]
    lines.append(
        f"| **total** | **{total:.2f}** | **{measured['wall']:.2f}** | | | | "
        f"**{measured['wall'] - total:+.2f}** | **{measured['wall'] / total:.2f}x** |"
    )
    return "\n".join(lines)


def _in_fresh_process(function: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    pool = multiprocessing.get_context("spawn").Pool(1)
    try:
        return pool.apply(function, args)
    finally:  # let the worker exit on its own: terminating it mid-atexit prints noise
        pool.close()
        pool.join()


def format_table(columns: dict[str, dict[str, float]]) -> str:
    stages = list(dict.fromkeys(stage for result in columns.values() for stage in result))
    header = ["stage", *columns]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * len(columns)]
    for stage in stages:
        cells = [f"{columns[name].get(stage, float('nan')):.2f}" for name in columns]
        lines.append("| " + " | ".join([stage, *cells]) + " |")
    return "\n".join(lines)


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if "model name" in line)
    except (OSError, StopIteration):
        pass
    return (
        f"{cpu}, nproc={os.cpu_count()}, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, "
        f"Python {platform.python_version()}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--demo", action="store_true", help="also time the demo stream (15k)")
    parser.add_argument(
        "--dagster", action="store_true", help="also run the cycle as the Dagster retraining job"
    )
    args = parser.parse_args(argv)
    print(machine(), file=sys.stderr)
    columns: dict[str, dict[str, float]] = {}
    if args.demo:
        columns["demo 3x5,000"] = _in_fresh_process(_measure_demo, args.seed)
        print(f"demo done: {columns['demo 3x5,000']['total']:.1f}s", file=sys.stderr)
    comparisons: dict[str, dict[str, Any]] = {}
    for n in args.sizes:
        if args.dagster:
            measured = _in_fresh_process(_measure_dagster, n, args.families, args.seed)
            comparisons[f"{n:,} rows"] = measured
            columns[f"{n:,} rows"] = measured["plain"]
        else:
            columns[f"{n:,} rows"] = _in_fresh_process(_measure_size, n, args.families, args.seed)
        print(f"{n:,} rows done: {columns[f'{n:,} rows']['total']:.1f}s", file=sys.stderr)
    print("seconds per stage (peak RSS in MB)")
    print(format_table(columns))
    for label, measured in comparisons.items():
        overhead = measured["wall"] / measured["plain"]["total"] - 1
        print(
            f"\n{label}: plain cycle vs Dagster retraining job ({measured['rows']:,} window rows)"
        )
        print(format_comparison(measured))
        print(f"orchestration overhead: {overhead:+.1%} (target <= 10%)")
        print(f"decision: {measured['decision']}; peak RSS {measured['peak RSS (MB)']:.0f} MB")
        print("not compared: " + ", ".join(f"{k} {v:.1f}s" for k, v in measured["setup"].items()))
        print(
            "model files (model_to_bytes, time / MB): "
            + ", ".join(f"{k} {s:.2f}s / {mb:.1f}" for k, (s, mb) in measured["artifacts"].items())
        )


if __name__ == "__main__":
    main()
