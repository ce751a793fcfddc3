"""What ``retrain demo`` prints: a row per monitoring period in which something happened, and
how fast the loop reacted to each ground-truth event of the stream."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from retraining_assets.core.demo import DEMO_EVENTS, DemoStream
from retraining_assets.core.validation import CHECKS
from retraining_assets.demo.simulation import PeriodOutcome, TrafficOutcome

WIDTH = 120  # the table fits a 120-column terminal
KEEP = 10  # columns this narrow are shown whole
TRIGGERS = frozenset({"drift", "volume", "performance"})
"""Causes that act between schedules (no champion and the schedule are not reactions)."""
BLOCKING = frozenset(check.name for check in CHECKS if check.blocking)
SHORT = {"pending_approval": "pending"}  # a person decides: `retrain approve VERSION`
GATE = "promotion_threshold"  # its not passing is a decision, shown as the decision


def check_cell(outcome: PeriodOutcome) -> str:
    """Data checks that did not pass: blocking ones as failures, the others as warnings."""
    failed = [name for name, passed in outcome.checks.items() if not passed and name != GATE]
    failures = [name for name in failed if name in BLOCKING]
    warnings = [name for name in failed if name not in BLOCKING]
    parts = ([f"FAIL {', '.join(failures)}"] if failures else []) + (
        [f"warn {', '.join(warnings)}"] if warnings else []
    )
    return "; ".join(parts) or "ok"


def decision_cell(outcome: PeriodOutcome) -> str:
    decision = outcome.value("model_evaluation", "decision")
    if decision is None:  # asked for, but the window was trained on already
        return "same data" if outcome.causes else "-"
    moved = outcome.value("champion_model", "version")
    if moved is not None:
        return f"{SHORT.get(decision, decision)} -> v{moved}"
    if outcome.value("traffic_split", "status") == "active":  # a rollout started
        version = outcome.value("traffic_split", "challenger_version")
        return f"{decision} -> rollout v{version} at {outcome.value('traffic_split', 'share'):.0%}"
    return SHORT.get(decision, decision)


def summary_row(outcome: PeriodOutcome) -> dict[str, str]:
    """One line of the demo's table: the period's data, drift, trigger and gate."""
    evaluation = "model_evaluation"
    return {
        "period": outcome.partition[:10],
        "records": f"{outcome.value('current_data', 'dagster/row_count', 0):,}",
        "data checks": check_cell(outcome),
        "drifted": ", ".join(outcome.value("drift_report", "drifted_features", [])) or "-",
        "retrain because": ",".join(outcome.causes) or "-",
        "best candidate": _scored(
            outcome.value(evaluation, "best_candidate"),
            outcome.value(evaluation, "candidate_value"),
        ),
        "champion": _scored("", outcome.value(evaluation, "champion_value")),
        "lift": str(outcome.value(evaluation, "lift", "-")),
        "decision": decision_cell(outcome),
    }


def eventful(outcome: PeriodOutcome) -> bool:
    """A trigger, a training or a decision happened, or a blocking data check failed."""
    return bool(outcome.causes) or check_cell(outcome).startswith("FAIL")


def traffic_columns(traffic: TrafficOutcome | None) -> dict[str, str]:
    """The live-traffic columns: requests served (and correct) per model version, and the
    rollout's traffic changes ("v7: 25% -> 50% -> 100% -> promoted")."""
    if traffic is None:
        return {"served (correct)": "no model yet", "rollout": "-"}
    replayed = traffic.replayed
    served = ", ".join(
        f"v{version} {count:,} ({replayed.correct[version] / count:.0%})"
        for version, count in sorted(replayed.served.items())
    )
    steps: dict[int, list[str]] = {}
    for version, change in traffic.changes:
        steps.setdefault(version, []).append(change)
    rollout = "; ".join(f"v{version}: {' -> '.join(s)}" for version, s in steps.items())
    return {"served (correct)": served or "-", "rollout": rollout or "-"}


def format_table(rows: Sequence[dict[str, str]], width: int = WIDTH) -> str:
    """The rows as a left-aligned table no wider than ``width``: the widest free-text
    columns are cut (ending in "…") until it fits."""
    if not rows:
        return "(nothing happened)"
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(str(row[c])) for row in rows)) for c in columns}
    # short columns (dates, counts, metrics) are never cut; the free-text ones share the rest
    floor = {c: widths[c] if widths[c] <= KEEP else len(c) for c in columns}
    while sum(widths.values()) + 2 * (len(columns) - 1) > width:
        widest = max(columns, key=lambda c: widths[c] - floor[c])
        if widths[widest] <= floor[widest]:
            break
        widths[widest] -= 1

    def cell(text: str, size: int) -> str:
        return text if len(text) <= size else text[: size - 1] + "…"

    lines = ["  ".join(c.ljust(widths[c]) for c in columns).rstrip()]
    for row in rows:
        lines.append(
            "  ".join(cell(str(row[c]), widths[c]).ljust(widths[c]) for c in columns).rstrip()
        )
    return "\n".join(lines)


@dataclass(frozen=True)
class Reaction:
    """How fast the loop reacted to one ground-truth event."""

    event: str
    kind: str
    onset: datetime
    retrained: datetime | None  # the first triggered retraining at or after the onset
    promoted: datetime | None  # the first promotion at or after that retraining

    def line(self) -> str:
        def days(moment: datetime | None) -> str:
            return "never" if moment is None else f"{(moment - self.onset).days} days"

        return (
            f"{self.event} ({self.kind}, onset {self.onset:%Y-%m-%d}): first triggered "
            f"retraining after {days(self.retrained)}, first promotion after it "
            f"{days(self.promoted)}"
        )


def event_onsets(stream: DemoStream) -> list[tuple[str, str, datetime]]:
    """The stream's drift events (``DEMO_EVENTS``, the stable stretch left out) with their
    onsets, those that start within the stream."""
    end = stream.month_start(stream.months)
    return [
        (event.name, event.kind, stream.onset(event).to_pydatetime())
        for event in DEMO_EVENTS
        if event.kind != "stable" and stream.onset(event) < end
    ]


def reactions(
    outcomes: Sequence[PeriodOutcome], events: Sequence[tuple[str, str, datetime]]
) -> list[Reaction]:
    """For each ``(name, kind, onset)``: the first retraining a trigger asked for at or after
    the onset, and the first promotion at or after it (moments of the simulated clock)."""
    triggered = [(moment, causes) for outcome in outcomes for moment, causes in outcome.requests]
    promotions = [moment for outcome in outcomes if (moment := outcome.promoted_at)]
    found = []
    for name, kind, onset in events:
        retrained = next(
            (m for m, causes in triggered if m >= onset and TRIGGERS & set(causes)), None
        )
        promoted = next((m for m in promotions if retrained and m >= retrained), None)
        found.append(Reaction(name, kind, onset, retrained, promoted))
    return found


def _scored(name: str | None, value: object) -> str:
    if not isinstance(value, float):
        return "-" if name is None else (name or "-")
    return f"{name} {value:.3f}".strip()
