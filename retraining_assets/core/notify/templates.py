"""The administrators' messages: one builder per event, each a plain-text and an HTML part.

Every subject starts with a fixed ASCII word per event type (``Drift detected:``, ``Run
failed:`` ...) so mail filters can route them. Builders take names, versions, metrics, counts
and links only; free text (reasons, error summaries) goes through :func:`clean`, which masks
secrets and drops anything that looks like a record, so a message never carries data values.
"""

from __future__ import annotations

import hashlib
import html
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum


class EventType(StrEnum):
    DRIFT_DETECTED = "drift_detected"
    RETRAINING_STARTED = "retraining_started"
    RETRAINING_COMPLETED = "retraining_completed"
    PROMOTION_PENDING = "promotion_pending"
    PROMOTED = "promoted"
    APPROVAL_REQUIRED = "approval_required"
    ROLLED_BACK = "rolled_back"
    RUN_FAILED = "run_failed"
    ROLLOUT_STARTED = "rollout_started"
    ROLLOUT_STEP = "rollout_step"
    ROLLOUT_PROMOTED = "rollout_promoted"
    ROLLOUT_ROLLED_BACK = "rollout_rolled_back"
    ROLLOUT_HALTED = "rollout_halted"
    ROLLOUT_STOPPED = "rollout_stopped"
    TEST = "test"


# The fixed first word(s) of each subject; mail filters depend on them, so never translate.
SUBJECT_WORDS: Mapping[EventType, str] = {
    EventType.DRIFT_DETECTED: "Drift detected:",
    EventType.RETRAINING_STARTED: "Retraining started:",
    EventType.RETRAINING_COMPLETED: "Retraining completed:",
    EventType.PROMOTION_PENDING: "Promotion pending:",
    EventType.PROMOTED: "Promoted:",
    EventType.APPROVAL_REQUIRED: "Approval required:",
    EventType.ROLLED_BACK: "Rolled back:",
    EventType.RUN_FAILED: "Run failed:",
    EventType.ROLLOUT_STARTED: "Rollout started:",
    EventType.ROLLOUT_STEP: "Rollout step:",
    EventType.ROLLOUT_PROMOTED: "Rollout promoted:",
    EventType.ROLLOUT_ROLLED_BACK: "Rollout rolled back:",
    EventType.ROLLOUT_HALTED: "Rollout halted:",
    EventType.ROLLOUT_STOPPED: "Rollout stopped:",
    EventType.TEST: "Test:",
}

MAX_KEY_LENGTH = 200
MAX_FREE_TEXT = 240
MAX_LISTED = 20


@dataclass(frozen=True)
class Message:
    """One notification. ``key`` identifies the event: the same key is delivered once."""

    event_type: str
    subject: str
    text: str
    html: str
    key: str


# --- sanitising free text ------------------------------------------------------------------

_URL_CREDENTIALS = re.compile(r"(\b[a-zA-Z][\w+.-]*://)([^/\s:@]*):([^@\s/]*)@")
_SECRET_ASSIGNMENT = re.compile(
    r"(?i)\b(password|passwd|pwd|secret|token|api[_-]?key|authorization|credentials?)"
    r"(['\"]?\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|[^\s,;&}\])]+)"
)
# A brace/bracket/paren group with a quoted value, a key: value pair or a decimal number is
# taken to be (part of) a record and replaced as a whole.
_RECORD_LITERAL = re.compile(r"[{\[(][^{}\[\]()]*(?:['\"]|:\s|\d\.\d)[^{}\[\]()]*[}\])]")
_DECIMAL = re.compile(
    r"(?<![\w.])[-+]?\d+\.\d+(?:[eE][-+]?\d+)?(?![\w.])"  # 52000.5, 1e-3 ...
    r"|(?<![\w.-])\d{5,}(?![\w.])"  # long digit runs: ids, amounts
)


def clean(text: object, limit: int = MAX_FREE_TEXT, secrets: Sequence[str] = ()) -> str:
    """Free text made safe for a message: one line, bounded, secrets and data values masked.

    Masks passwords in URLs, ``password=...``-style assignments, the given ``secrets``, record
    literals (``{'age': 42}``, ``(1.5, 'x')``) and decimal or long numbers, which in an error
    message are data values rather than names.
    """
    line = " ".join(str(text).split())
    for secret in secrets:
        if secret and len(secret) >= 4:
            line = line.replace(secret, "***")
    line = _URL_CREDENTIALS.sub(r"\1\2:***@", line)
    line = _SECRET_ASSIGNMENT.sub(r"\1\2***", line)
    previous = None
    while previous != line:  # innermost literals first, until nested ones are gone too
        previous, line = line, _RECORD_LITERAL.sub("[...]", line)
    line = _DECIMAL.sub("#", line)
    return line if len(line) <= limit else line[: limit - 3] + "..."


def error_summary(error: object, secrets: Sequence[str] = ()) -> str:
    """The first line of an error, cleaned: what an administrator needs to open the run."""
    first = next((line for line in str(error).splitlines() if line.strip()), "")
    return clean(first, secrets=secrets) or "(no message)"


# --- rendering -----------------------------------------------------------------------------


def run_url(ui_base_url: str, run_id: str) -> str:
    """The Dagster UI page of a run."""
    return f"{ui_base_url.rstrip('/')}/runs/{run_id}"


def event_key(event_type: str, *parts: object) -> str:
    """A readable idempotency key; long ones are shortened with a hash."""
    key = ":".join([event_type, *(str(part) for part in parts if part is not None)])
    if len(key) <= MAX_KEY_LENGTH:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"{key[: MAX_KEY_LENGTH - 33]}#{digest}"


def _names(items: Sequence[str] | Mapping[str, object]) -> str:
    """Names only: a mapping contributes its keys, never its values."""
    names = [clean(item, limit=80) for item in items]
    shown = ", ".join(names[:MAX_LISTED])
    return shown + (f" and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else "")


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _lift(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1%}"


def _share(value: float) -> str:
    """A traffic share: whole percents, one decimal below 10%."""
    return f"{value:.1%}" if 0 < value < 0.1 else f"{value:.0%}"


Fact = tuple[str, str]
Link = tuple[str, str | None]


def render(
    event_type: EventType,
    summary: str,
    *,
    facts: Sequence[Fact],
    notes: Sequence[str] = (),
    links: Sequence[Link] = (),
    key: str,
) -> Message:
    """Compose both parts from the same content so text and HTML never disagree."""
    # ``summary`` is built by the builders from cleaned parts; only bound its shape here.
    summary = " ".join(summary.split())
    subject = f"{SUBJECT_WORDS[event_type]} {summary[:160]}"
    links = [(label, url) for label, url in links if url]
    width = max((len(label) for label, _ in facts), default=0)
    text_lines = [subject, ""]
    text_lines += [f"{label + ':':<{width + 1}} {value}" for label, value in facts]
    text_lines += ["", *notes] if notes else []
    text_lines += ["", *(f"{label}: {url}" for label, url in links)] if links else []
    text_lines += ["", "-- retraining-assets (names, versions, metrics and links only)"]

    esc = html.escape
    rows = "".join(
        f"<tr><th align='left'>{esc(label)}</th><td>{esc(value)}</td></tr>"
        for label, value in facts
    )
    parts = [f"<h3>{esc(subject)}</h3>", f"<table cellpadding='4'>{rows}</table>"]
    parts += [f"<p>{esc(note)}</p>" for note in notes]
    parts += [f"<p><a href='{esc(url)}'>{esc(label)}</a></p>" for label, url in links]
    parts.append(
        "<p><small>retraining-assets (names, versions, metrics and links only)</small></p>"
    )
    body_html = "<html><body>" + "".join(parts) + "</body></html>"
    return Message(str(event_type), subject, "\n".join(text_lines) + "\n", body_html, key)


# --- one builder per event -----------------------------------------------------------------


def drift_detected(
    *,
    pipeline: str,
    partition: str,
    features: Sequence[str] | Mapping[str, object],
    n_features: int | None = None,
    report_url: str | None = None,
    run_url: str | None = None,
    key: str | None = None,
) -> Message:
    """Drift found in ``partition``: which features (names only) and where the report is."""
    facts = [
        ("Pipeline", clean(pipeline)),
        ("Partition", clean(partition)),
        (
            "Drifted features",
            f"{len(features)}" + (f" of {n_features}" if n_features is not None else ""),
        ),
        ("Features", _names(features) or "(none)"),
    ]
    return render(
        EventType.DRIFT_DETECTED,
        f"{clean(pipeline, 60)} {clean(partition, 40)} ({len(features)} features)",
        facts=facts,
        links=[("Drift report", report_url), ("Run", run_url)],
        key=key or event_key(EventType.DRIFT_DETECTED, pipeline, partition, *sorted(features)),
    )


def retraining_started(
    *,
    pipeline: str,
    reasons: Sequence[str],
    models: Sequence[str],
    partition: str | None = None,
    run_id: str | None = None,
    run_url: str | None = None,
    key: str | None = None,
) -> Message:
    """A retraining run began: why and which model families it trains."""
    facts = [
        ("Pipeline", clean(pipeline)),
        ("Partition", clean(partition or "n/a")),
        ("Reasons", "; ".join(clean(reason) for reason in reasons) or "(none given)"),
        ("Models", _names(models)),
    ]
    return render(
        EventType.RETRAINING_STARTED,
        f"{clean(pipeline, 60)} ({', '.join(clean(r, 40) for r in reasons[:3]) or 'manual'})",
        facts=facts,
        links=[("Run", run_url)],
        key=key or event_key(EventType.RETRAINING_STARTED, pipeline, partition, run_id),
    )


def retraining_completed(
    *,
    pipeline: str,
    metrics: Mapping[str, Mapping[str, float]],
    best: str | None = None,
    reasons: Sequence[str] = (),
    partition: str | None = None,
    run_id: str | None = None,
    run_url: str | None = None,
    key: str | None = None,
) -> Message:
    """Candidates trained: each model's holdout metrics and the best of them."""
    facts = [("Pipeline", clean(pipeline)), ("Partition", clean(partition or "n/a"))]
    if reasons:
        facts.append(("Reasons", "; ".join(clean(reason) for reason in reasons)))
    facts.append(("Best candidate", clean(best or "n/a")))
    for model, values in list(metrics.items())[:MAX_LISTED]:
        scores = ", ".join(f"{clean(name, 40)}={_number(v)}" for name, v in values.items())
        facts.append((f"Model {clean(model, 60)}", scores or "(no metrics)"))
    return render(
        EventType.RETRAINING_COMPLETED,
        f"{clean(pipeline, 60)} ({len(metrics)} models, best {clean(best or 'n/a', 60)})",
        facts=facts,
        links=[("Run", run_url)],
        key=key or event_key(EventType.RETRAINING_COMPLETED, pipeline, partition, run_id),
    )


def promotion_pending(
    *,
    pipeline: str,
    candidate: str,
    champion: str | None,
    metric: str,
    lift: float | None,
    decision: str,
    candidate_value: float | None = None,
    champion_value: float | None = None,
    run_url: str | None = None,
    key: str | None = None,
) -> Message:
    """Sent *before* the champion alias moves, so administrators hear of it first."""
    facts = [
        ("Pipeline", clean(pipeline)),
        ("Candidate", clean(candidate)),
        ("Champion", clean(champion or "(none)")),
        (
            "Metric",
            f"{clean(metric, 40)}: candidate {_number(candidate_value)}, "
            f"champion {_number(champion_value)}",
        ),
        ("Lift", _lift(lift)),
        ("Decision", clean(decision)),
    ]
    return render(
        EventType.PROMOTION_PENDING,
        f"{clean(pipeline, 60)} {clean(candidate, 60)} replaces "
        f"{clean(champion or 'no champion', 60)}",
        facts=facts,
        notes=["The production model will change next; this message is sent before it does."],
        links=[("Run", run_url)],
        key=key or event_key(EventType.PROMOTION_PENDING, pipeline, candidate, champion),
    )


def promoted(
    *,
    pipeline: str,
    version: str,
    previous: str | None,
    metric: str | None = None,
    value: float | None = None,
    by: str | None = None,
    run_url: str | None = None,
    key: str | None = None,
) -> Message:
    """The champion alias now points at ``version``."""
    facts = [
        ("Pipeline", clean(pipeline)),
        ("Champion", clean(version)),
        ("Previous champion", clean(previous or "(none)")),
        ("Promoted by", clean(by or "automation")),
    ]
    if metric:
        facts.append(("Metric", f"{clean(metric, 40)} = {_number(value)}"))
    return render(
        EventType.PROMOTED,
        f"{clean(pipeline, 60)} {clean(version, 60)} is the champion",
        facts=facts,
        links=[("Run", run_url)],
        key=key or event_key(EventType.PROMOTED, pipeline, version, previous),
    )


def approval_required(
    *,
    pipeline: str,
    candidate: str,
    champion: str | None,
    metric: str,
    lift: float | None,
    min_lift: float,
    how: Mapping[str, str],
    supersedes: Sequence[str] = (),
    run_url: str | None = None,
    key: str | None = None,
) -> Message:
    """A candidate improved, but by less than the automatic threshold: a person decides, in
    one of the ways ``how`` lists (``lifecycle.how_to_decide``). It supersedes the pipeline's
    earlier pending candidates (``supersedes``)."""
    version = clean(candidate, limit=80)
    facts = [
        ("Pipeline", clean(pipeline)),
        ("Candidate", version),
        ("Champion", clean(champion or "(none)")),
        ("Metric", clean(metric, 40)),
        ("Lift", _lift(lift)),
        ("Automatic promotion needs", _lift(min_lift)),
    ]
    if supersedes:
        replaced = ", ".join(clean(v, 20) for v in supersedes)
        facts.append(("Supersedes", f"{replaced} (no longer pending; still registered)"))
    notes = [
        f"To approve: {how['approve_cli']}",
        f"  or launch {how['approve_job']}",
        f"To reject:  {how['reject_cli']}",
        f"  or launch {how['reject_job']}",
    ]
    return render(
        EventType.APPROVAL_REQUIRED,
        f"{clean(pipeline, 60)} {version} ({_lift(lift)} {clean(metric, 40)})",
        facts=facts,
        notes=notes,
        links=[("Run", run_url)],
        key=key or event_key(EventType.APPROVAL_REQUIRED, pipeline, candidate),
    )


def rolled_back(
    *,
    pipeline: str,
    version: str,
    previous: str,
    by: str,
    reason: str,
    key: str | None = None,
) -> Message:
    """The champion went back to ``version``. Pass the audit id as ``key`` when a rollback
    between the same two versions may legitimately repeat."""
    facts = [
        ("Pipeline", clean(pipeline)),
        ("Champion now", clean(version)),
        ("Rolled back from", clean(previous)),
        ("By", clean(by)),
        ("Reason", clean(reason)),
    ]
    return render(
        EventType.ROLLED_BACK,
        f"{clean(pipeline, 60)} {clean(previous, 60)} -> {clean(version, 60)}",
        facts=facts,
        key=key or event_key(EventType.ROLLED_BACK, pipeline, previous, version),
    )


ROLLOUT_EVENTS = frozenset(
    {
        EventType.ROLLOUT_STARTED,
        EventType.ROLLOUT_STEP,
        EventType.ROLLOUT_PROMOTED,
        EventType.ROLLOUT_ROLLED_BACK,
        EventType.ROLLOUT_HALTED,
        EventType.ROLLOUT_STOPPED,
    }
)
# The experiment's numbers a rollout message may carry (metrics and counts, never records).
ROLLOUT_EVIDENCE = {
    "effect": "Effect (challenger - champion)",
    "ci_low": "Interval low",
    "ci_high": "Interval high",
    "p_value": "p-value",
    "n_champion": "Outcomes, champion",
    "n_challenger": "Outcomes, challenger",
    "srm_p_value": "Sample ratio p-value",
}


def rollout_change(
    event: EventType,
    *,
    pipeline: str,
    rollout_id: int | None,
    strategy: str,
    challenger: str,
    champion: str,
    share_from: float,
    share_to: float,
    step: str,
    by: str,
    reason: str,
    evidence: Mapping[str, float | int | None] | None = None,
    key: str | None = None,
) -> Message:
    """Sent *before* a rollout changes live traffic: started, a step, promoted (the
    challenger becomes the champion), rolled back, halted or stopped (all traffic back to the
    champion). ``evidence`` holds the experiment's numbers (keys of ``ROLLOUT_EVIDENCE``)."""
    if event not in ROLLOUT_EVENTS:
        raise ValueError(f"{event} is not a rollout event")
    traffic = f"{_share(share_from)} -> {_share(share_to)}"
    facts = [
        ("Pipeline", clean(pipeline)),
        ("Rollout", f"{rollout_id or 'new'} ({clean(strategy, 20)}, step {clean(step, 20)})"),
        ("Challenger", clean(challenger)),
        ("Champion", clean(champion)),
        ("Challenger traffic", traffic),
        ("By", clean(by)),
        ("Reason", clean(reason)),
    ]
    for name, label in ROLLOUT_EVIDENCE.items():
        value = (evidence or {}).get(name)
        if isinstance(value, int):
            facts.append((label, f"{value:,}"))
        elif value is not None and math.isfinite(value):  # an open interval end says nothing
            facts.append((label, _number(value)))
    if event is EventType.ROLLOUT_PROMOTED:
        note = f"{clean(challenger)} becomes the champion next; this message is sent before."
    else:
        note = "Live traffic changes next; this message is sent before it does."
    return render(
        event,
        f"{clean(pipeline, 60)} {clean(challenger, 20)} vs {clean(champion, 20)}, "
        f"challenger traffic {traffic}",
        facts=facts,
        notes=[note],
        key=key or event_key(event, pipeline, rollout_id, step, share_to),
    )


def run_failed(
    *,
    job_name: str,
    run_id: str,
    ui_base_url: str,
    step_keys: Sequence[str] = (),
    error: str | None = None,
    partition: str | None = None,
    key: str | None = None,
) -> Message:
    """A Dagster run failed: job, failed steps, a cleaned error summary and the run link."""
    facts = [
        ("Job", clean(job_name)),
        ("Run", run_id),
        ("Failed steps", _names(step_keys) or "(run-level failure)"),
        ("Error", error_summary(error) if error else "(see the run)"),
    ]
    if partition:
        facts.insert(2, ("Partition", clean(partition)))
    return render(
        EventType.RUN_FAILED,
        f"{clean(job_name, 80)} ({_identifier(run_id)[:8]})",
        facts=facts,
        notes=["The full error and logs are in the Dagster UI."],
        links=[("Run", run_url(ui_base_url, run_id))],
        key=key or event_key(EventType.RUN_FAILED, run_id),
    )


def _identifier(value: str) -> str:
    """A run id or nonce as the UI shows it, only its letters, digits and dashes: an identifier,
    not a data value, so not ``clean``ed (that masks digit runs; 2% of UUIDs start with 8)."""
    return "".join(ch for ch in value if ch.isalnum() or ch == "-")


def test_message(*, nonce: str) -> Message:
    """What ``retrain notify-test`` sends; ``nonce`` makes each test a distinct event."""
    return render(
        EventType.TEST,
        "retraining-assets notifications work",
        facts=[("Purpose", "configuration test"), ("Test id", _identifier(nonce))],
        key=event_key(EventType.TEST, nonce),
    )
