"""What ``GET /health`` says: one status, and the facts behind it, without file paths.

``ok``: a champion serves and the prediction log writes. ``degraded`` (still 200): a
champion serves and every answer is on disk, but the log is not writing to the database
(it is retrying, or its writer restarts): rows wait in the spool, the backlog grows, and the
rollout's judge sees them late. Taking every replica out of a load balancer for that would
turn a late log into an outage. ``unavailable`` (503): no champion can be served, or the spool
cannot write to disk, so no answer could be made durable.
"""

from __future__ import annotations

import re
from typing import Any

from retraining_assets.core.pipeline import Pipeline
from retraining_assets.core.prediction_log import PredictionLog
from retraining_assets.core.timestamps import iso_utc
from retraining_assets.service.batching import MicroBatcher
from retraining_assets.service.models import Snapshot

# an absolute path (possibly a file:// URI): reduced to its last part, as "…/model.pkl"
_PATH = re.compile(r"(?:file://)?(?<![\w.])/(?:[^\s/'\"(),;:]+/)+([^\s/'\"(),;:]*)")


def without_paths(text: str | None) -> str | None:
    """``text`` with every absolute path reduced to its file name: ``/health`` is open to
    anyone who reaches the service, and a folder layout is nobody's business there."""
    return None if text is None else _PATH.sub(lambda match: f"…/{match[1]}", text)


def health_body(
    pipeline: Pipeline, prediction_log: PredictionLog, batcher: MicroBatcher, snapshot: Snapshot
) -> dict[str, Any]:
    """The ``/health`` body of a service (see the module docstring)."""
    log = prediction_log.status()
    problems = [without_paths(problem) for problem in snapshot.problems]
    log["last_error"] = without_paths(log["last_error"])
    if log["spool"] is not None:
        log["spool"]["error"] = without_paths(log["spool"]["error"])
    status, reason = "ok", None
    if snapshot.champion is None:
        status = "unavailable"
        reason = f"no model can be served: {'; '.join(problems) or 'no champion'}"  # type: ignore[arg-type]
    elif log["spool"] is not None and log["spool"]["error"] is not None:
        status = "unavailable"
        reason = f"the prediction log cannot write to disk: {log['spool']['error']}"
    elif log["state"] != "writing":
        status = "degraded"
        reason = (
            f"the prediction log is not writing to the database ({log['state']}: "
            f"{log['last_error']}); {log['backlog']} rows wait on disk"
        )
    body: dict[str, Any] = {
        "status": status,
        "pipeline": pipeline.name,
        "task": pipeline.spec.task,
        "champion": None if snapshot.champion is None else snapshot.champion.to_dict(),
        "challenger": None if snapshot.challenger is None else snapshot.challenger.to_dict(),
        "rollout_id": None if snapshot.rollout is None else snapshot.rollout.id,
        "problems": problems,
        "checked_at": iso_utc(snapshot.checked_at),
        "log": log,
        "batching": {
            "max_batch": batcher.max_batch,
            "batches": batcher.batches,
            "rows": batcher.items,
            "mean_batch": round(batcher.items / batcher.batches, 2) if batcher.batches else None,
        },
    }
    if reason is not None:
        body["reason"] = reason
    return body
