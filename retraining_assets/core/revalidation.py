"""Drift measured since the champion was last validated (``RETRAIN_DRIFT_REFERENCE``).

A judgement that keeps the champion serving (the challenger rejected, or pending below the
bar) has just shown, on the newest holdout, how the champion serves the newest training
window: no fresh model beat it by the promotion bar. Comparing the following periods with the
champion's *own*, older training window would keep alarming on a drift already acted on; with
``validated`` the reference moves to the judged window instead (opt-in: the default
``training`` keeps the champion's own; README says why). A promotion or a rollback brings the
new champion's own reference, stored with its version, as before.
"""

from __future__ import annotations

from dataclasses import replace

from retraining_assets.core.candidates import TrainingWindow, summarise_scores
from retraining_assets.core.lifecycle import Judgement
from retraining_assets.core.pipeline import Pipeline
from retraining_assets.core.promotion import Verdict
from retraining_assets.core.reference import VALIDATED, Reference, ReferenceStore
from retraining_assets.core.registry import Registry
from retraining_assets.core.trained_model import TrainedModel


def moves_reference(drift_reference: str, verdict: Verdict) -> bool:
    """Whether a judgement with ``verdict`` moves the drift reference to its window: under
    ``validated``, when it leaves the champion serving (a promotion, or its rollout, brings
    the new champion's own reference). The pipeline and the backtest both ask here."""
    return drift_reference == VALIDATED and verdict is not Verdict.PROMOTE


def revalidated_reference(
    kept: Reference, champion: TrainedModel, window: TrainingWindow, pipeline: Pipeline
) -> Reference:
    """``kept`` (the champion's current reference) moved to ``window``: bounds and drift
    profile of the window's records, the champion's own scores on the window's holdout (rows
    it never trained on) for prediction drift, its estimator unchanged."""
    holdout = window.split.holdout
    reference = Reference.fit(
        window.records, pipeline.spec, window.start, window.end,
        origin=f"champion v{kept.champion_version}, re-validated "
        f"{window.start:%Y-%m-%d} to {window.end:%Y-%m-%d}",
        scores=summarise_scores(champion, champion.scores(holdout)),
        estimator=kept.estimator, scales=pipeline.timescales, bands=window.bands,
    )  # fmt: skip
    return replace(reference, champion_version=kept.champion_version)


def revalidate(
    pipeline: Pipeline,
    registry: Registry,
    store: ReferenceStore,
    judgement: Judgement,
    champion: TrainedModel | None,
    window: TrainingWindow,
) -> Reference | None:
    """After a judgement of ``window``'s candidates that leaves the champion serving (reject,
    or pending until a person decides), store the reference drift is measured against from
    now on; None when it stays (another setting, a promotion, no champion or no stored
    reference of it)."""
    verdict = judgement.decision.verdict
    if champion is None or not moves_reference(pipeline.settings.drift_reference, verdict):
        return None
    kept = store.current(pipeline.name, registry)
    if kept is None or kept.champion_version is None:
        return None
    reference = revalidated_reference(kept, champion, window, pipeline)
    store.save(pipeline.name, reference)
    return reference
