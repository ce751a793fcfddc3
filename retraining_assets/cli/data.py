"""``retrain validate``, ``retrain drift`` and ``retrain backtest``: commands on files, no state."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from retraining_assets.cli.common import cli_settings, fail
from retraining_assets.core.dataset import DatasetError, DatasetSpec
from retraining_assets.core.sources import SourceError, read_table

if TYPE_CHECKING:
    from retraining_assets.core.drift import DriftReport, DriftThresholds
    from retraining_assets.core.drift.dataset_verdict import Alarm


@click.command()
@click.option(
    "--data",
    "path",
    required=True,
    type=click.Path(),
    help="CSV, CSV.gz or Parquet file, or a glob of them (quoted).",
)
@click.option("--time-column", required=True, help="The timestamp column.")
@click.option("--target", required=True, help="The target (label) column.")
@click.option("--task", type=click.Choice(["binary", "multiclass", "regression"]), default=None)
@click.option("--drop", multiple=True, help="A column that must not be a feature (repeatable).")
def validate(
    path: str, time_column: str, target: str, task: str | None, drop: tuple[str, ...]
) -> None:
    """Check a file (or the files of a glob) against an inferred DatasetSpec and print every
    problem found.

    Exit status 0 when the data is usable, 1 when it is not (each problem names its column),
    2 when it cannot be read as one table or holds nothing to infer a spec from (one line
    naming the file and column).
    """
    try:
        frame = read_table(path)
        spec = DatasetSpec.infer(frame, time_column, target, task=task, drop=list(drop))
    except SourceError as error:
        fail(str(error))
    except DatasetError as error:
        fail(f"{path}: {error}")
    click.echo(f"{path}: {len(frame):,} rows, {frame.shape[1]} columns")
    click.echo(f"  time column          {spec.time_column}")
    click.echo(
        f"  target               {spec.target} ({spec.task}"
        + (f", classes {list(spec.classes)})" if spec.classes else ")")
    )
    click.echo(f"  numeric features     {', '.join(spec.numeric_features) or '-'}")
    click.echo(f"  categorical features {', '.join(spec.categorical_features) or '-'}")
    ignored = sorted(set(frame.columns) - set(spec.columns))
    if ignored:
        click.echo(f"  ignored columns      {', '.join(ignored)}")
    problems = spec.problems(frame)
    if not problems:
        times = spec.check(frame)[spec.time_column]
        months = times.dt.to_period("M").nunique()
        click.echo(f"  time span            {times.min()} to {times.max()} ({months} months)")
        click.echo("Usable: no problems found.")
        return
    click.echo(f"{len(problems)} problem(s):")
    for problem in problems:
        click.echo(f"  - {problem}")
    sys.exit(1)


@click.command()
@click.argument("reference", type=click.Path())
@click.argument("current", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON only.")
@click.option("--html", "html", type=click.Path(), default=None, help="Write the HTML report.")
@click.option("--png", "png", type=click.Path(), default=None, help="Write the summary plot.")
@click.option("--target", default=None, help="Label column: compared as target drift.")
@click.option("--drop", multiple=True, help="A column not to compare, e.g. an id (repeatable).")
@click.option(
    "--engine",
    type=click.Choice(["auto", "memory", "duckdb"]),
    default="auto",
    show_default=True,
    help="memory: load both files whole (pandas); duckdb: stream them through DuckDB with "
    "bounded memory; auto: duckdb when the files exceed 256 MiB on disk.",
)
@click.option(
    "--memory-limit",
    default="384MB",
    show_default=True,
    help="DuckDB's memory_limit (--engine duckdb); beyond it DuckDB spills to a temp folder.",
)
@click.option(
    "--multivariate",
    is_flag=True,
    help="Also train a domain classifier (AUC, p-value, the features that explain it) and "
    "score the PCA reconstruction error (--engine memory; a seeded 20,000-row sample per side).",
)
@click.option(
    "--verdict",
    default=None,
    help="The dataset verdict that sets the exit status: univariate, weighted, calibrated, "
    "multivariate or a '+' combination (default: RETRAIN_DRIFT_VERDICT). No model here, so "
    "weighted falls back to every feature alike; calibrated needs --time-column.",
)
@click.option(
    "--time-column",
    default=None,
    help="The reference's timestamp column: calibrated cuts the reference into periods on it.",
)
def drift(
    reference: str,
    current: str,
    as_json: bool,
    html: str | None,
    png: str | None,
    target: str | None,
    drop: tuple[str, ...],
    engine: str,
    memory_limit: str,
    multivariate: bool,
    verdict: str | None,
    time_column: str | None,
) -> None:
    """Compare CURRENT with REFERENCE (CSV, CSV.gz or Parquet files) with the drift engine.

    Exit status 0 without the verdict's alarm, 1 with it, 2 when the files cannot be
    compared (--verdict, default RETRAIN_DRIFT_VERDICT; --multivariate adds the domain
    classifier's scores, which the multivariate verdict implies).
    """
    from retraining_assets.core.drift import DriftInputError, drift_between_files
    from retraining_assets.core.drift.dataset_verdict import VerdictError, parse_mode
    from retraining_assets.core.engines import (
        AUTO_PUSHDOWN_BYTES,
        EngineError,
        drift_between_files_in_duckdb,
    )
    from retraining_assets.core.reports import write_report
    from retraining_assets.core.sources import matching_files

    settings = cli_settings()
    thresholds = settings.drift_thresholds()
    try:
        parts = parse_mode(verdict or settings.drift_verdict)
    except VerdictError as error:
        raise click.BadParameter(str(error), param_hint="--verdict") from None
    multivariate = multivariate or "multivariate" in parts
    try:
        if engine == "auto":
            size = sum(f.stat().st_size for p in (reference, current) for f in matching_files(p))
            engine = "duckdb" if size > AUTO_PUSHDOWN_BYTES else "memory"
        if engine == "duckdb" and multivariate:
            fail(
                "--multivariate needs the rows in memory and the duckdb engine streams them "
                "(chosen by --engine, or by auto for files over 256 MiB); use --engine memory"
            )
        if engine == "duckdb":
            report = drift_between_files_in_duckdb(
                reference, current, drop=drop, thresholds=thresholds, target_column=target,
                memory_limit=memory_limit,
            )  # fmt: skip
        else:
            report = drift_between_files(
                reference, current, drop=drop, thresholds=thresholds, target_column=target,
                multivariate=multivariate,
            )  # fmt: skip
        alarm = file_alarm(report, "+".join(parts), reference, drop, time_column, thresholds)
    except (DriftInputError, SourceError, EngineError) as error:
        fail(str(error))
    if html:  # a local path or an fsspec URL (s3://...), like the artifact root
        write_report(html, report.to_html)
    if png:
        write_report(png, report.plot_summary)
    if as_json:
        click.echo(report.to_json())
    else:
        click.echo(report.to_markdown())
        verdict = (
            "DRIFT in " + ", ".join(report.drifted_features) if report.dataset_drift else "no drift"
        )
        click.echo(
            f"\n{verdict} ({report.n_reference:,} reference rows, {report.n_current:,} current)"
        )
        shown = "ALARM" if alarm.alarm else "no alarm"
        click.echo(f"verdict {alarm.mode}: {shown} (score {alarm.score:.3f})")
        for line in (*alarm.reasons, *(f"not computed: {s}" for s in alarm.skipped)):
            click.echo(f"  {line}")
    sys.exit(1 if alarm.alarm else 0)


def file_alarm(
    report: DriftReport,
    mode: str,
    reference: str,
    drop: tuple[str, ...],
    time_column: str | None,
    thresholds: DriftThresholds,
) -> Alarm:
    """The dataset verdict of a file comparison: calibrated on the reference's own periods
    when a time column is given, cut by the pipeline's rule (``reference_periods``, with the
    ``RETRAIN_PERIOD`` / ``RETRAIN_DRIFT_WINDOW`` settings); no model, so no importances."""
    from retraining_assets.core.drift import DriftInputError, fit_reference
    from retraining_assets.core.drift.calibration import (
        CalibrationError,
        calibrate,
        reference_periods,
    )
    from retraining_assets.core.drift.dataset_verdict import dataset_alarm

    settings = cli_settings()
    bands, why = None, "give --time-column to cut the reference into its periods"
    if "calibrated" in mode.split("+") and time_column:
        frame = read_table(reference)
        if time_column not in frame.columns:
            raise DriftInputError(f"--time-column {time_column!r} is not a column of {reference}")
        periods = reference_periods(frame, time_column, settings.timescales)
        features = [c for c in report.features]
        try:
            bands = calibrate(
                [p[features] for p in periods],
                lambda f: fit_reference(f, numeric=[n for n in features
                                                    if report.features[n]["kind"] == "numeric"],
                                        categorical=[n for n in features
                                                     if report.features[n]["kind"] != "numeric"]),
                thresholds,
            )  # fmt: skip
        except CalibrationError as error:
            why = str(error)
    return dataset_alarm(
        report, mode, calibration=bands, calibration_skipped=why,
        weighted_share=settings.drift_weighted_share,
    )  # fmt: skip


@click.command()
@click.option("--data", "path", required=True, type=click.Path(), help="CSV, CSV.gz or Parquet.")
@click.option("--time-column", required=True, help="The timestamp column.")
@click.option("--target", required=True, help="The target (label) column.")
@click.option(
    "--period",
    type=click.Choice(["month", "week", "day"]),
    default="month",
    show_default=True,
    help="Monitoring period: each is scored, then the triggers are evaluated.",
)
@click.option("--window", type=int, default=3, show_default=True, help="Periods per training.")
@click.option(
    "--window-days", type=int, default=None, help="Training window in days (instead of --window)."
)
@click.option(
    "--drift-window",
    type=int,
    default=None,
    help="Drift (and live metric) over this many trailing periods, widened to "
    "RETRAIN_DRIFT_MIN_RECORDS records. Default: the period alone.",
)
@click.option("--families", default="xgboost", show_default=True, help="Comma-separated.")
@click.option("--drop", multiple=True, help="A column that must not be a feature (repeatable).")
@click.option(
    "--schedule",
    type=click.Choice(["monthly", "none"]),
    default="none",
    show_default=True,
    help="auto also retrains on the monthly schedule (the monthly policy always does).",
)
@click.option(
    "--label-delay",
    default=None,
    help="Labels arrive this long after their records (30d, 1M; 0: at once); overrides "
    "RETRAIN_LABEL_DELAY. Triggers and training see a label only then; the estimate covers "
    "the rest.",
)
@click.option(
    "--drift-verdict",
    default=None,
    help="The dataset verdict behind every row's alarm and auto's drift trigger (default: "
    "RETRAIN_DRIFT_VERDICT): univariate, weighted, calibrated, multivariate or a combination.",
)
@click.option("--json", "json_out", type=click.Path(), default=None, help="Write the JSON here.")
@click.option("--plot", "plot_out", type=click.Path(), default=None, help="Write the PNG here.")
def backtest(
    path: str,
    time_column: str,
    target: str,
    period: str,
    window: int,
    window_days: int | None,
    drift_window: int | None,
    families: str,
    drop: tuple[str, ...],
    schedule: str,
    label_delay: str | None,
    drift_verdict: str | None,
    json_out: str | None,
    plot_out: str | None,
) -> None:
    """Replay a dataset period by period through the same trigger, training, evaluation and
    promotion code: `auto` (every trigger), `monthly` (the schedule alone), and the `static`
    and `always` baselines."""
    from tqdm import tqdm

    from retraining_assets.core.backtest import BacktestError, backtest_file
    from retraining_assets.core.drift.dataset_verdict import VerdictError, parse_mode
    from retraining_assets.core.labels import parse_label_delay

    if label_delay is not None:
        try:
            parse_label_delay(label_delay)
        except ValueError as error:  # the option's name, not the variable it overrides
            raise click.BadParameter(str(error), param_hint="--label-delay") from None
    settings = cli_settings(**({} if label_delay is None else {"label_delay": label_delay}))
    if drift_verdict:
        try:
            mode = "+".join(parse_mode(drift_verdict))
        except VerdictError as error:
            raise click.BadParameter(str(error), param_hint="--drift-verdict") from None
        settings = settings.model_copy(update={"drift_verdict": mode})
    bar: tqdm | None = None  # opened at the first period: a file it cannot read shows no bar

    def progress(done: int, total: int, message: str) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc="periods", unit="period")
        bar.total = total
        bar.set_postfix_str(message[:40])
        bar.update(done - bar.n)

    try:
        result = backtest_file(
            path, time_column, target, drop=drop, period=period, window=window,
            window_days=window_days, drift_window=drift_window,
            families=[f.strip() for f in families.split(",") if f.strip()],
            settings=settings, schedule=schedule, progress=progress,
        )  # fmt: skip
    except BacktestError as error:
        fail(str(error))
    finally:
        if bar is not None:
            bar.close()
    click.echo(result.summary())
    if json_out:
        Path(json_out).write_text(result.to_json())
    if plot_out:
        result.plot(plot_out)
