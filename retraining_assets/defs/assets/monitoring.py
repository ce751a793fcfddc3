"""Monitoring assets: the trailing drift window of each period, compared with the reference
and scored by the champion."""

import functools
from collections.abc import Iterator
from datetime import datetime

import dagster as dg
import numpy as np
import pandas as pd

from retraining_assets.core.candidates import load_model, prediction_scores
from retraining_assets.core.drift import DriftReport
from retraining_assets.core.drift.dataset_verdict import (
    Alarm,
    EstimateGate,
    dataset_alarm,
    parse_mode,
)
from retraining_assets.core.engines import compare_drift_window
from retraining_assets.core.estimation import estimate_period
from retraining_assets.core.evaluation import evaluate
from retraining_assets.core.importance import stored_importance
from retraining_assets.core.labels import labelled
from retraining_assets.core.lifecycle import evaluation_baseline
from retraining_assets.core.notify import drift_detected
from retraining_assets.core.notify.paging import Episode, Page, page
from retraining_assets.core.pipeline import Pipeline, retrain_policy
from retraining_assets.core.reference import Reference
from retraining_assets.core.registry import CHAMPION, Registry
from retraining_assets.core.reports import published
from retraining_assets.core.sources import RecordSource
from retraining_assets.defs.notifications import NotifierResource
from retraining_assets.defs.periods import period_start
from retraining_assets.defs.plots import inline_image
from retraining_assets.defs.resources import ClockResource, PlatformResource, RecordsResource
from retraining_assets.defs.signals import period_metadata


def drift_metadata(
    report: DriftReport, html_url: str, png_url: str, alarm: Alarm | None = None
) -> dict[str, dg.MetadataValue]:
    """The verdict in keys a sensor reads without loading data, the summary plot inline, and
    links to the full report and the plot on the report server."""
    return {
        **(alarm_metadata(alarm) if alarm else {}),
        "drift_detected": dg.MetadataValue.bool(report.dataset_drift),
        "drifted_features": dg.MetadataValue.json(report.drifted_features),
        "drift_share": dg.MetadataValue.float(report.drift_share),
        "target_drift": dg.MetadataValue.bool(bool((report.target_drift or {}).get("drifted"))),
        "prediction_drift": dg.MetadataValue.bool(
            bool((report.prediction_drift or {}).get("drifted"))
        ),
        "profile_hash": dg.MetadataValue.text(report.profile_hash),
        "n_current": dg.MetadataValue.int(report.n_current),
        "report": dg.MetadataValue.md(report.to_markdown()),
        "html_report": dg.MetadataValue.url(html_url),
        "summary_png": dg.MetadataValue.url(png_url),
        "summary_plot": inline_image("drift summary", png_url),
        **multivariate_metadata(report),
    }


def alarm_metadata(alarm: Alarm) -> dict[str, dg.MetadataValue]:
    """The dataset verdict (``RETRAIN_DRIFT_VERDICT``): what the retrain trigger acts on."""
    out = {
        "drift_alarm": dg.MetadataValue.bool(alarm.alarm),
        "drift_score": dg.MetadataValue.float(alarm.score),
        "drift_verdict": dg.MetadataValue.text(alarm.mode),
        "drift_alarm_features": dg.MetadataValue.json(alarm.features),
        "drift_share_weighted": _float(alarm.weighted_share),
    }
    if alarm.reasons:
        out["drift_alarm_reasons"] = dg.MetadataValue.json(alarm.reasons)
    if alarm.skipped:
        out["drift_verdict_skipped"] = dg.MetadataValue.json(alarm.skipped)
    return out


def previous_episode(
    instance: dg.DagsterInstance, pipeline: Pipeline, partition: str
) -> Episode | None:
    """The drift alarm episode the period before ``partition`` ended with, from its
    ``drift_report`` metadata (None: no alarm there, or never materialized)."""
    scales = pipeline.timescales
    previous = scales.label(scales.shift(scales.period_of(partition), -1))
    key = dg.AssetKey([pipeline.name, "drift_report"])
    return Episode.of(period_metadata(instance, key, previous, after=None))


def paging_metadata(paging: Page) -> dict[str, dg.MetadataValue]:
    """Whether this period paged and why (not), and the episode the next period continues."""
    out: dict[str, dg.MetadataValue] = {
        "drift_paged": dg.MetadataValue.bool(paging.reason is not None)
    }
    if paging.reason or paging.quiet:
        out["drift_page_reason"] = dg.MetadataValue.text(paging.reason or paging.quiet or "")
    for key, value in (paging.episode.metadata() if paging.episode else {}).items():
        out[key] = (
            dg.MetadataValue.json(value)
            if isinstance(value, list)
            else dg.MetadataValue.text(str(value))
        )
    return out


def verdict_of(
    pipeline: Pipeline,
    registry: Registry,
    reference: Reference,
    report: DriftReport,
    current: pd.DataFrame | None = None,
) -> Alarm:
    """The configured dataset verdict, with the champion's stored importance, the
    reference's bands and (``estimated``) the champion's estimate on ``current``, the drift
    window's records (each part that is missing is named in the alarm)."""
    importances, no_importance = None, "no champion yet"
    if reference.champion_version is not None:
        importances, no_importance = stored_importance(
            registry, pipeline.name, reference.champion_version
        )
    gate = None
    if "estimated" in parse_mode(pipeline.settings.drift_verdict):
        gate = estimate_gate(pipeline, registry, reference, current)
    return dataset_alarm(
        report,
        pipeline.settings.drift_verdict,
        importances=importances,
        calibration=reference.calibration,
        calibration_skipped=reference.calibration_skipped,
        importance_skipped=no_importance,
        weighted_share=pipeline.settings.drift_weighted_share,
        estimate=gate,
    )


def estimate_gate(
    pipeline: Pipeline, registry: Registry, reference: Reference, current: pd.DataFrame | None
) -> EstimateGate:
    """The champion's primary metric estimated without labels on the drift window (its own
    stored estimator), its evaluation baseline and the retrain policy's degradation rule."""
    policy, better = retrain_policy(pipeline.settings), pipeline.higher_is_better
    version = reference.champion_version
    if version is None or current is None:
        why = "no champion yet" if version is None else "no records of the window given"
        return EstimateGate(policy, None, None, better, why)
    metric = pipeline.primary_metric
    model = load_model(registry, pipeline.name, version)
    estimate = estimate_period(model, reference.estimator, current, pipeline.spec, metric)
    baseline = (evaluation_baseline(registry, pipeline.name, version) or {}).get(metric)
    value = estimate["estimate"]
    return EstimateGate(policy, value["value"], baseline, better, value["skipped"])


def multivariate_metadata(report: DriftReport) -> dict[str, dg.MetadataValue]:
    """The dataset scores as numbers (absent when a part was not computed, with the reason)."""
    result = report.multivariate
    if result is None:
        return {}
    c, r = result.classifier, result.reconstruction
    out: dict[str, dg.MetadataValue] = {"multivariate_drift": dg.MetadataValue.bool(c.drifted)}
    if c.skipped:
        out["multivariate_skipped"] = dg.MetadataValue.text(c.skipped)
    else:
        out |= {
            "multivariate_auc": dg.MetadataValue.float(c.auc),
            "multivariate_p_value": dg.MetadataValue.float(c.p_value),
            "multivariate_rows": dg.MetadataValue.int(c.rows),
            # [feature, share] pairs, largest first (a JSON object would be shown key-sorted)
            "multivariate_features": dg.MetadataValue.json(
                [[name, share] for name, share in list(c.importances.items())[:5]]
            ),
        }
    out["reconstruction_drift"] = dg.MetadataValue.bool(r.drifted)
    if r.skipped:
        out["reconstruction_skipped"] = dg.MetadataValue.text(r.skipped)
    else:
        out |= {
            "reconstruction_error": dg.MetadataValue.float(r.error),
            "reconstruction_lower": dg.MetadataValue.float(r.lower),
            "reconstruction_upper": dg.MetadataValue.float(r.upper),
        }
    return out


def window_metadata(
    start: datetime, end: datetime, rows: int, sampled: int
) -> dict[str, dg.MetadataValue]:
    return {
        "window": dg.MetadataValue.text(f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M}"),
        "window_start": dg.MetadataValue.text(start.isoformat()),
        "window_end": dg.MetadataValue.text(end.isoformat()),
        "n_window": dg.MetadataValue.int(rows),
        "n_sampled": dg.MetadataValue.int(sampled),
    }


def champion_scores(
    registry: Registry, pipeline: str, reference: Reference, frame: pd.DataFrame
) -> np.ndarray | None:
    """The champion's scores on the period, when its reference holds its training scores
    (prediction drift); None before the first champion."""
    champion = registry.get_alias(pipeline, CHAMPION)
    if champion is None or reference.profile.scores is None or frame.empty:
        return None
    return prediction_scores(load_model(registry, pipeline, champion.version), frame)


def build_monitoring_assets(
    pipeline: Pipeline, partitions_def: dg.TimeWindowPartitionsDefinition
) -> list[dg.AssetsDefinition]:
    name = pipeline.name
    current_key = dg.AssetKey([name, "current_data"])

    def trailing_window(
        context: dg.AssetExecutionContext, records: RecordsResource
    ) -> tuple[pd.DataFrame, dict[str, dg.MetadataValue], tuple[datetime, datetime, int]]:
        """The period's drift window (``core.timescales``): the trailing
        ``RETRAIN_DRIFT_WINDOW`` periods, widened to ``RETRAIN_DRIFT_MIN_RECORDS`` records,
        sampled down to ``RETRAIN_DRIFT_MAX_RECORDS``; with its metadata and bounds."""
        source: RecordSource = records.source(name)
        scales, partition = pipeline.timescales, context.partition_key
        count = functools.cache(source.count)  # the widening's last count is the window's
        start, end = scales.drift_window_of(
            period_start(partitions_def, partition), count, pipeline.data_start
        )
        n_window = count(start, end)
        sample = source.sample(start, end, scales.drift_sample(n_window, partition))
        context.log.info(
            f"{partition}: drift window {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M}, "
            f"{n_window} records"
            + (f", a seeded sample of {len(sample)}" if len(sample) < n_window else "")
        )
        return sample, window_metadata(start, end, n_window, len(sample)), (start, end, n_window)

    @dg.asset(
        key=[name, "drift_report"],
        group_name=f"{name}_monitoring",
        partitions_def=partitions_def,
        # the period's blocking data checks gate it; the records come from the drift window
        deps=[current_key, dg.AssetKey([name, "reference_data"])],
        kinds={"scipy"},
    )
    def drift_report(
        context: dg.AssetExecutionContext,
        platform: PlatformResource,
        notifier: NotifierResource,
        records: RecordsResource,
    ) -> dg.Output[dict]:
        """The trailing drift window ending with this period (`RETRAIN_DRIFT_WINDOW` periods,
        widened until it holds `RETRAIN_DRIFT_MIN_RECORDS` records) against the reference: KS,
        PSI, Wasserstein, Jensen-Shannon, chi-square per feature with Benjamini-Hochberg
        q-values, the dataset verdict, target drift, the multivariate scores (a domain
        classifier's AUC and the PCA reconstruction error), and an HTML report with a plot per
        feature. Administrators are told when it finds drift."""
        partition = context.partition_key
        reference = platform.references().current(name, platform.registry())
        if reference is None:
            raise ValueError(f"no reference yet: materialize {name}/reference_data first")
        current, window, bounds = trailing_window(context, records)
        report, engine = compare_drift_window(
            reference.profile,
            records.source(name),
            bounds,
            pipeline.settings.engine,
            current,
            pipeline.drift_thresholds(),
            scores=champion_scores(platform.registry(), name, reference, current),
            multivariate=True,
        )
        folder = pipeline.reports_folder(partition)  # under the artifact root: any worker
        with published(folder) as scratch:
            summary = report.plot_summary(scratch / "drift.png")
            report.to_html(scratch / "drift.html", summary=summary)
        html, png = folder / "drift.html", folder / "drift.png"
        verdict = (
            "drift in " + ", ".join(report.drifted_features) if report.dataset_drift else "no drift"
        )
        alarm = verdict_of(pipeline, platform.registry(), reference, report, current)
        context.log.info(
            f"{partition}: {verdict} in {report.n_current} records ({engine} engine; vs "
            f"{reference.origin}, {reference.window}); {alarm.mode} verdict: "
            + ("ALARM" if alarm.alarm else "no alarm")
            + "".join(f"; {line}" for line in (*alarm.reasons, *alarm.skipped))
        )
        features = alarm.features or report.drifted_features
        paging = page(
            previous_episode(context.instance, pipeline, partition),
            alarm=alarm.alarm, features=features, partition=partition,
            reference=report.profile_hash, mode=pipeline.settings.drift_notify,
        )  # fmt: skip
        if paging.reason:  # administrators are paged by the configured verdict
            message = drift_detected(
                pipeline=name,
                partition=partition,
                features=features,
                n_features=len(report.features),
                report_url=pipeline.report_url(html),
                key=f"drift:{name}:{partition}:{report.profile_hash}",
            )
            notifier.notifier().notify(message)
        elif paging.quiet:
            context.log.info(f"{partition}: not paged: {paging.quiet}")
        metadata = drift_metadata(
            report, pipeline.report_url(html), pipeline.report_url(png), alarm
        )
        metadata |= window | paging_metadata(paging)
        return dg.Output(report.to_dict(), metadata=metadata)

    @dg.asset(
        key=[name, "champion_performance"],
        group_name=f"{name}_monitoring",
        partitions_def=partitions_def,
        deps=[current_key],
        output_required=False,
        kinds={"python"},
    )
    def champion_performance(
        context: dg.AssetExecutionContext,
        platform: PlatformResource,
        records: RecordsResource,
        clock: ClockResource,
    ) -> Iterator[dg.Output[dict]]:
        """The champion scored on the labelled records of the same trailing window as
        `drift_report`, next to the same metrics at its evaluation: a live drop beyond
        `RETRAIN_PERFORMANCE_DEGRADATION` triggers retraining. With `RETRAIN_LABEL_DELAY`, only
        the records whose labels have arrived are scored (`labelled_rows` of `n_sampled`;
        `labels_complete` once all have): the trigger reads the run made once the period's
        labels are all in (`<p>_labelled_performance_schedule`). Skipped while there is no
        champion."""
        registry = platform.registry()
        champion = registry.get_alias(name, CHAMPION)
        if champion is None:
            context.log.info("no champion yet: nothing to score")
            return
        current, window, _ = trailing_window(context, records)
        # a record's label is seen only RETRAIN_LABEL_DELAY after its timestamp
        seen = labelled(
            current, pipeline.spec.time_column, clock.now(), pipeline.settings.label_delay_duration
        )
        model = load_model(registry, name, champion.version)
        metric = pipeline.primary_metric
        # the same window's estimate without labels, so the UI shows it next to the live value
        reference = platform.references().current(name, registry)
        own = reference is not None and reference.champion_version == champion.version
        estimated = estimate_period(
            model, reference.estimator if own else None, current, pipeline.spec, metric, seen
        )["estimate"]["value"]
        current = current[seen]
        live = evaluate(model, current, pipeline.spec)
        baseline = evaluation_baseline(registry, name, champion.version) or {}
        yield dg.Output(
            {"version": champion.version, "live": live, "baseline": baseline},
            metadata={
                "champion_version": dg.MetadataValue.int(champion.version),
                "metric": dg.MetadataValue.text(metric),
                "live_metric": _float(live.get(metric)),
                "estimated": _float(estimated),
                "baseline_metric": _float(baseline.get(metric)),
                "live_metrics": dg.MetadataValue.json(live),
                "labelled_rows": dg.MetadataValue.int(int(seen.sum())),
                "labels_complete": dg.MetadataValue.bool(bool(seen.all())),
                **window,
            },
        )

    return [drift_report, champion_performance]


def _float(value: float | None) -> dg.MetadataValue:
    return dg.MetadataValue.float(value) if value is not None else dg.MetadataValue.text("n/a")
