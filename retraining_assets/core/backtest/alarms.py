"""How well a policy's drift alarms foretold its serving model's degradation.

Over the rows that have both ``metric`` and ``baseline_metric``, a row is *degraded* when
``(baseline - metric) / |baseline| >= DEGRADATION`` in the metric's good direction (reversed for
lower-is-better metrics); precision = degraded share of the alarmed rows, recall = alarmed share
of the degraded rows, alarm_rate = alarmed share of the rows; each 0 when its denominator is 0.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

DEGRADATION = 0.05


class AlarmRow(Protocol):
    @property
    def metric(self) -> float | None: ...
    @property
    def baseline_metric(self) -> float | None: ...
    @property
    def alarm(self) -> bool | None: ...


def degraded(metric: float, baseline: float, higher_is_better: bool) -> bool:
    """The serving model is at least ``DEGRADATION`` worse than at its evaluation."""
    if baseline == 0:
        return False  # no relative change of a zero baseline
    loss = (baseline - metric) if higher_is_better else (metric - baseline)
    return loss / abs(baseline) >= DEGRADATION


def alarm_quality(rows: Iterable[AlarmRow], higher_is_better: bool) -> dict[str, float]:
    """``{"precision", "recall", "alarm_rate", "f1", "rows"}`` (see the module docstring; F1 is
    the harmonic mean of precision and recall, 0 when both are)."""
    scored = [r for r in rows if r.metric is not None and r.baseline_metric is not None]
    alarms = [bool(r.alarm) for r in scored]
    bad = [degraded(r.metric, r.baseline_metric, higher_is_better) for r in scored]  # type: ignore[arg-type]
    hits = sum(a and b for a, b in zip(alarms, bad, strict=True))
    precision = hits / sum(alarms) if any(alarms) else 0.0
    recall = hits / sum(bad) if any(bad) else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    rate = sum(alarms) / len(scored) if scored else 0.0
    return {"precision": precision, "recall": recall, "alarm_rate": rate, "f1": f1,
            "rows": len(scored)}  # fmt: skip
