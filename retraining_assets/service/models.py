"""What the service serves: the champion and, during a rollout, the challenger, kept current.

``ServedModels.current()`` re-reads the champion alias and the active rollout (three small
queries on one connection) at most every ``serve_refresh_seconds`` and loads new versions with
their checksums verified. A version that fails to load is reported and the models already
loaded keep serving: a corrupt artifact must not take production down. Only when no champion
was ever loaded is the service unavailable (``/predict`` and ``/health`` answer 503).
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

from retraining_assets.core.candidates import load_model
from retraining_assets.core.dataset import DatasetSpec
from retraining_assets.core.registry import CHALLENGER, CHAMPION, Registry, utc_now
from retraining_assets.core.rollout import Router
from retraining_assets.core.rollout.transitions import Rollout, active_rollout
from retraining_assets.core.training import TrainedModel
from retraining_assets.service.scoring import Scorer, scorer_for

log = logging.getLogger(__name__)
RETRY_FAILED_SECONDS = 60.0  # a version that failed to load is tried again after this


class ModelUnavailableError(RuntimeError):
    """No champion can be served; the message says why."""


@dataclass(frozen=True)
class ServedModel:
    """One loaded model version (its artifact's SHA-256 verified by ``load_model``)."""

    version: int
    family: str
    artifact_sha256: str
    model: TrainedModel = field(repr=False)
    scorer: Scorer = field(repr=False)
    not_compiled: str | None  # why the fast scorer is not used (None: it is)
    loaded_at: datetime

    def to_dict(self) -> dict:
        return {
            "version": self.version,
            "family": self.family,
            "checksum_verified": True,
            "artifact_sha256": self.artifact_sha256,
            "scorer": self.scorer.description,
            "scorer_note": self.not_compiled,
            "loaded_at": self.loaded_at.isoformat() + "Z",
        }


@dataclass(frozen=True)
class Snapshot:
    """What serves right now; immutable, so a batch scores with one consistent view."""

    champion: ServedModel | None
    challenger: ServedModel | None  # loaded only while a rollout is active
    rollout: Rollout | None
    router: Router | None  # the rollout's router; None: everyone gets the champion
    problems: tuple[str, ...] = ()  # versions that should serve but failed to load
    checked_at: datetime | None = None

    def require_champion(self) -> ServedModel:
        if self.champion is None:
            reason = "; ".join(self.problems) or "no champion"
            raise ModelUnavailableError(f"no model can be served: {reason}")
        return self.champion

    def model(self, variant: str) -> ServedModel | None:
        return self.challenger if variant == CHALLENGER else self.champion


class ServedModels:
    """The pipeline's serving models, refreshed from the registry (see the module docstring)."""

    def __init__(
        self,
        registry: Registry,
        pipeline: str,
        spec: DatasetSpec,
        *,
        refresh_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        freeze_on_load: bool = False,
    ) -> None:
        self.registry = registry
        self.pipeline = pipeline
        self.spec = spec
        self.refresh_seconds = refresh_seconds
        self._clock = clock
        self._freeze_on_load = freeze_on_load
        self._lock = threading.Lock()
        self._snapshot = Snapshot(None, None, None, None)
        self._next_check: float | None = None  # clock time of the next re-read
        self._failed: dict[int, tuple[float, str]] = {}  # version -> (when, why) it failed

    def current(self) -> Snapshot:
        """The snapshot, re-read first when ``refresh_seconds`` have passed (0: always)."""
        with self._lock:
            now = self._clock()
            if self._next_check is None or now >= self._next_check:
                self._snapshot = self._refresh()
                self._next_check = self._clock() + self.refresh_seconds
            return self._snapshot

    def _refresh(self) -> Snapshot:
        """Read the aliases and the rollout; load what changed; keep the old on failure."""
        old = self._snapshot
        try:
            with self.registry.engine.connect() as connection:
                alias = self.registry.get_alias(self.pipeline, CHAMPION, connection=connection)
                rollout = active_rollout(self.registry, self.pipeline, connection=connection)
        except Exception as error:  # the database is down: keep serving what is loaded
            problem = f"cannot read the registry: {_first_line(error)}"
            log.warning("%s: %s", self.pipeline, problem)
            return replace(old, problems=(problem,), checked_at=utc_now())
        problems: list[str] = []
        champion = old.champion
        if alias is None:
            problems.append(f"pipeline '{self.pipeline}' has no champion")
        elif champion is None or champion.version != alias.version:
            champion = self._load(alias.version, old, problems) or champion
        challenger = None
        if rollout is not None:
            challenger = self._load(rollout.challenger_version, old, problems)
        router = rollout.router() if rollout is not None and challenger is not None else None
        if router is not None and (old.rollout is None or old.rollout.id != rollout.id):
            router.assign_many(["warm-up"])  # numba loads its kernels now (~0.5 s, once)
        if champion is not None and old.champion is not champion:
            log.info("%s: serving champion v%d", self.pipeline, champion.version)
        if self._freeze_on_load and (champion, challenger) != (old.champion, old.challenger):
            # the process's long-lived objects (imports, models: ~5*10^5) frozen, a full
            # collection during a request takes microseconds instead of ~0.2 s
            gc.collect()
            gc.freeze()
        return Snapshot(champion, challenger, rollout, router, tuple(problems), utc_now())

    def _load(self, version: int, old: Snapshot, problems: list[str]) -> ServedModel | None:
        """The served model of ``version``: reused if already loaded, else loaded now."""
        for served in (old.champion, old.challenger):
            if served is not None and served.version == version:
                return served
        failed_at, problem = self._failed.get(version, (None, ""))
        if failed_at is not None and self._clock() < failed_at + RETRY_FAILED_SECONDS:
            problems.append(problem)  # not on every request: a checksum reads the whole file
            return None
        try:
            record = self.registry.get_version(self.pipeline, version)
            model = load_model(self.registry, self.pipeline, version)
            self._check_fits(model)
            scorer, not_compiled = scorer_for(model, self.spec)
        except Exception as error:  # corrupt, missing or foreign artifact: keep the old
            problem = f"v{version} cannot be loaded: {_first_line(error)}"
            log.error("%s: %s", self.pipeline, problem)
            self._failed[version] = (self._clock(), problem)
            problems.append(problem)
            return None
        self._failed.pop(version, None)
        if not_compiled:
            log.info("%s: v%d scored by model.scores (%s)", self.pipeline, version, not_compiled)
        return ServedModel(
            version=version,
            family=model.family,
            artifact_sha256=record.artifact_sha256,
            model=model,
            scorer=scorer,
            not_compiled=not_compiled,
            loaded_at=utc_now(),
        )

    def _check_fits(self, model: TrainedModel) -> None:
        """Refuse a model the pipeline's requests cannot feed or label."""
        if model.task != self.spec.task:
            raise ValueError(f"its task is {model.task}, the pipeline's is {self.spec.task}")
        missing = [name for name in model.features if name not in self.spec.features]
        if missing:
            raise ValueError(f"it needs features {missing} that requests do not carry")
        unknown = [c for c in model.classes if c not in self.spec.classes]
        if unknown:
            raise ValueError(f"its classes {unknown} are not among {list(self.spec.classes)}")


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
