"""The prediction service's FastAPI application: ``create_app(pipeline)``.

Endpoints: ``POST /predict`` (one row, micro-batched), ``POST /predict/batch`` (columnar),
``POST /feedback`` (an observed outcome), ``POST /feedback/batch`` (many, all or none),
``GET /health`` and ``GET /rollout``. Every answer that logs something is sent once the
prediction log's spool has synced it (``durability``): a 200 or 202 survives a SIGKILL. An
outcome is recorded once per prediction: the same one again is accepted, a different one is
a 409. With ``RETRAIN_SERVE_TOKEN`` every route but ``/health`` needs the bearer token
(``auth``). The lifespan starts the prediction log and the scoring thread and, on shutdown
(uvicorn waits for requests in flight first), scores what is queued and closes the log.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the endpoint annotations, and
# the request models are built at run time from the pipeline's spec (closure variables).

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, ValidationError
from pydantic_core import to_json

from retraining_assets.core.pipeline import Pipeline
from retraining_assets.core.prediction_log import (
    Outcome,
    PredictionLog,
    entities_of,
    find_outcomes,
    find_prediction,
)
from retraining_assets.core.registry import Registry, utc_now
from retraining_assets.service.auth import require_token
from retraining_assets.service.batching import BatcherStoppedError, MicroBatcher
from retraining_assets.service.durability import DurableGate, NotDurableError
from retraining_assets.service.health import health_body
from retraining_assets.service.models import ModelUnavailableError, ServedModels
from retraining_assets.service.predictions import Predictor, RecentPredictions, Rows
from retraining_assets.service.schemas import Schemas, build_schemas, error_body

log = logging.getLogger(__name__)
JSON = "application/json"
FLUSH_TIMEOUT_SECONDS = 10.0  # feedback for an unknown id waits this long for the log


class PredictResponse(BaseModel):
    """One prediction (documentation of ``POST /predict``)."""

    prediction_id: str
    entity_id: str
    prediction: str | float
    probabilities: dict[str, float] | None
    variant: str
    model_version: int
    rollout_id: int | None


class PredictBatchResponse(BaseModel):
    """A batch's predictions, columnar (documentation of ``POST /predict/batch``)."""

    prediction_ids: list[str]
    entity_ids: list[str]
    predictions: list[str | float]
    probabilities: dict[str, list[float]] | None
    variants: list[str]
    model_versions: list[int]
    rollout_id: int | None


class FeedbackAccepted(BaseModel):
    """The prediction an outcome was recorded for (documentation of ``POST /feedback``)."""

    prediction_id: str
    entity_id: str


class FeedbackBatchAccepted(BaseModel):
    """How many outcomes were recorded (documentation of ``POST /feedback/batch``)."""

    accepted: int


class Conflict(BaseModel):
    """A prediction whose outcome is already recorded, with another value."""

    prediction_id: str
    recorded: str | float
    given: str | float


class Problem(BaseModel):
    """An error: what went wrong, naming the field, id or model."""

    detail: Any
    message: str | None = None
    unknown: list[str] | None = None  # ``/feedback/batch``: prediction ids not found
    conflicts: list[Conflict] | None = None  # 409: outcomes already recorded otherwise


@dataclass
class Service:
    """Everything one application serves with (``app.state.service``)."""

    pipeline: Pipeline
    schemas: Schemas
    registry: Registry
    models: ServedModels
    log: PredictionLog
    recent: RecentPredictions
    predictor: Predictor
    batcher: MicroBatcher
    gate: DurableGate


def create_app(pipeline: Pipeline, *, registry: Registry | None = None) -> FastAPI:
    """The prediction service of ``pipeline``, configured by its settings."""
    settings = pipeline.settings
    registry = registry or Registry.from_settings(settings)
    spec = pipeline.spec
    schemas = build_schemas(spec)
    models = ServedModels(
        registry,
        pipeline.name,
        spec,
        refresh_seconds=settings.serve_refresh_seconds,
        freeze_on_load=True,
    )
    prediction_log = PredictionLog(
        registry.engine,
        batch_size=settings.log_batch_size,
        flush_seconds=settings.log_flush_seconds,
        spool_dir=settings.home.resolve() / "spool" / pipeline.name,
    )
    recent = RecentPredictions()
    predictor = Predictor(pipeline.name, spec, models, prediction_log, recent)

    def score_rows(items: list[tuple[str, dict[str, Any]]]) -> list[tuple[bytes, int]]:
        predicted = predictor.predict(Rows.of(items, spec.features))
        return [(to_json(predicted.one(i)), predicted.logged) for i in range(len(items))]

    def score_batch(rows: Rows) -> tuple[bytes, int]:
        predicted = predictor.predict(rows)
        return to_json(predicted.columns()), predicted.logged

    batcher = MicroBatcher(score_rows, max_batch=settings.serve_max_batch)
    gate = DurableGate(prediction_log)
    service = Service(
        pipeline, schemas, registry, models, prediction_log, recent, predictor, batcher, gate
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        prediction_log.start()
        gate.start()
        await batcher.start()
        snapshot = await run_in_threadpool(models.current)
        if snapshot.champion is None:
            log.error("%s: no model can be served yet: %s", pipeline.name, snapshot.problems)
        try:
            yield
        finally:
            await batcher.stop()
            await run_in_threadpool(prediction_log.close)
            log.info("%s: prediction log closed: %s", pipeline.name, prediction_log.written)

    # the docs' JavaScript and CSS come from the fastapi-offline package, never from a CDN
    factory = FastAPIOffline if settings.serve_docs else FastAPI
    app = factory(
        title=f"retraining_assets prediction service: {pipeline.name}",
        description="Predictions of the champion (and of a rollout's challenger), logged.",
        lifespan=lifespan,
        docs_url="/docs" if settings.serve_docs else None,
        redoc_url="/redoc" if settings.serve_docs else None,
        **({"static_url": "/docs-assets"} if settings.serve_docs else {}),
    )
    if settings.serve_token is not None:
        require_token(app, settings.serve_token.get_secret_value())
    app.state.service = service
    errors: dict[int | str, dict[str, Any]] = {
        400: {"model": Problem, "description": "The body is not UTF-8 text"},
        422: {"model": Problem, "description": "Invalid request (names the field)"},
        503: {
            "model": Problem,
            "description": "No model can be served, or the prediction log cannot write to disk",
        },
    }

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, error: RequestValidationError) -> Response:
        return _json(error_body(error.errors()), 422)

    PredictRequest = schemas.predict  # classes built at run time from the spec
    Feedback = schemas.feedback
    FeedbackBatch = schemas.feedback_batch

    regression = spec.task == "regression"

    def record(prediction_ids: list[str], outcomes: list[Any]) -> list[Conflict] | int:
        """Queue the outcomes of known predictions (validated against the spec) for the log,
        unless one of them already has another outcome: then record none and return the
        conflicts. Otherwise the log's sequence number to wait for (an outcome given again
        is not queued twice). No ``await`` inside: two requests cannot interleave here."""
        conflicts: list[Conflict] = []
        new: dict[str, Any] = {}
        for prediction_id, outcome, recorded in zip(
            prediction_ids, outcomes, recent.outcomes_of(prediction_ids), strict=True
        ):
            prior = recorded if recorded is not None else new.get(prediction_id)
            if prior is None:
                new[prediction_id] = outcome
            elif prior != outcome:
                conflicts.append(
                    Conflict(prediction_id=prediction_id, recorded=prior, given=outcome)
                )
        if conflicts:
            return conflicts
        if not new:
            return prediction_log.queued
        recent.record(list(new), list(new.values()))
        now = utc_now()
        return prediction_log.add_outcomes(
            Outcome(
                prediction_id=prediction_id,
                pipeline=pipeline.name,
                label=None if regression else outcome,
                value=float(outcome) if regression else None,
                received_at=now,
            )
            for prediction_id, outcome in new.items()
        )

    async def answer(seq: int, content: bytes | Any, status: int = 200) -> Response:
        """``content`` once the log's rows up to ``seq`` are on disk, else a 503."""
        try:
            await gate.wait(seq)
        except NotDurableError as error:
            return _json({"detail": str(error)}, 503)
        if isinstance(content, bytes):
            return Response(content, status_code=status, media_type=JSON)
        return _json(content, status)

    @app.post("/predict", responses={200: {"model": PredictResponse}, **errors})
    async def predict(body: PredictRequest) -> Response:  # type: ignore[valid-type]
        """Predict one entity (micro-batched with the requests arriving together)."""
        try:
            content, seq = await batcher.submit((body.entity_id, schemas.row(body.features)))
        except (ModelUnavailableError, BatcherStoppedError) as error:
            return _json({"detail": str(error)}, 503)
        return await answer(seq, content)

    @app.post(
        "/predict/batch",
        responses={200: {"model": PredictBatchResponse}, **errors},
        openapi_extra={"requestBody": _body_schema(schemas.batch)},
    )
    async def predict_batch(request: Request) -> Response:
        """Predict many entities; columnar: ``{"entity_ids": [...], "features": {col: [...]}}``."""
        body = await request.body()
        try:
            entity_ids, columns = await run_in_threadpool(schemas.parse_batch, body)
        except ValidationError as error:
            problems = error.errors(include_url=False, include_input=False)
            return _json(error_body(problems, ("body",)), 422)
        try:
            content, seq = await batcher.run(score_batch, Rows(entity_ids, columns))
        except (ModelUnavailableError, BatcherStoppedError) as error:
            return _json({"detail": str(error)}, 503)
        return await answer(seq, content)

    conflict = {"model": Problem, "description": "The prediction has another outcome already"}

    @app.post(
        "/feedback",
        status_code=202,
        responses={
            202: {"model": FeedbackAccepted},
            404: {"model": Problem},
            409: conflict,
            **errors,
        },
    )
    async def feedback(body: Feedback) -> Response:  # type: ignore[valid-type]
        """Record the observed outcome of a prediction (by its id, or the entity's latest).
        The same outcome again is accepted; another one is refused (409)."""
        found = _recent(recent, body.prediction_id, body.entity_id)
        if found is None:
            try:
                found = await run_in_threadpool(
                    _logged, service, body.prediction_id, body.entity_id
                )
            except TimeoutError as error:
                return _json({"detail": f"the prediction log cannot be read: {error}"}, 503)
        if found is None:
            what = (
                f"no prediction with id '{body.prediction_id}'"
                if body.prediction_id is not None
                else f"no prediction for entity '{body.entity_id}'"
            )
            return _json({"detail": f"{what} in pipeline '{pipeline.name}'"}, 404)
        prediction_id, entity_id = found
        recorded = record([prediction_id], [body.outcome])
        if isinstance(recorded, list):
            return _conflicts(recorded, 1)
        return await answer(recorded, {"prediction_id": prediction_id, "entity_id": entity_id}, 202)

    @app.post(
        "/feedback/batch",
        status_code=202,
        responses={
            202: {"model": FeedbackBatchAccepted},
            404: {"model": Problem},
            409: conflict,
            **errors,
        },
    )
    async def feedback_batch(body: FeedbackBatch) -> Response:  # type: ignore[valid-type]
        """Record many outcomes by prediction id: all of them, or none when an id is unknown
        or has another outcome already (the same one again is accepted)."""
        ids = body.prediction_ids
        unknown = [
            i for i, entity in zip(ids, recent.entities_of(ids), strict=True) if entity is None
        ]
        if unknown:
            try:
                logged = await run_in_threadpool(_logged_ids, service, unknown)
            except TimeoutError as error:
                return _json({"detail": f"the prediction log cannot be read: {error}"}, 503)
            unknown = [i for i in unknown if i not in logged]
        if unknown:
            detail = (
                f"{len(unknown)} of {len(ids)} prediction ids are unknown in pipeline "
                f"'{pipeline.name}', e.g. {unknown[:5]}; no outcome was recorded"
            )
            return _json({"detail": detail, "unknown": unknown[:100]}, 404)
        recorded = record(ids, body.outcomes)
        if isinstance(recorded, list):
            return _conflicts(recorded, len(ids))
        return await answer(recorded, {"accepted": len(ids)}, 202)

    @app.get(
        "/health",
        responses={503: {"description": "No model can be served, or the log cannot write to disk"}},
    )
    async def health() -> Response:
        """``ok``, ``degraded`` (serving, but the log is not writing to the database: rows wait
        on disk) or ``unavailable`` (503); the models served, the rollout, the log's state."""
        snapshot = await run_in_threadpool(models.current)
        body = health_body(pipeline, prediction_log, batcher, snapshot)
        return _json(body, 503 if body["status"] == "unavailable" else 200)

    @app.get("/rollout")
    async def rollout() -> Response:
        """The active rollout (``to_dict()`` of ``core.rollout.transitions.Rollout``), if any."""
        snapshot = await run_in_threadpool(models.current)
        if snapshot.rollout is None:
            return _json({"active": False}, 200)
        body = {"active": True, **snapshot.rollout.to_dict(), "share": snapshot.rollout.share}
        return _json(body | {"routing": snapshot.router is not None}, 200)

    return app


def _json(content: Any, status: int) -> Response:
    return Response(to_json(content), status_code=status, media_type=JSON)


def _recent(
    recent: RecentPredictions, prediction_id: str | None, entity_id: str | None
) -> tuple[str, str] | None:
    if prediction_id is not None:
        entity = recent.entity_of(prediction_id)
        return None if entity is None else (prediction_id, entity)
    assert entity_id is not None
    latest = recent.latest(entity_id)
    return None if latest is None else (latest, entity_id)


def _conflicts(conflicts: list[Conflict], of: int) -> Response:
    first = conflicts[0]
    detail = (
        f"{len(conflicts)} of {of} predictions already have another outcome, e.g. "
        f"'{first.prediction_id}': recorded {first.recorded!r}, given {first.given!r}; "
        "no outcome was recorded"
    )
    body = {"detail": detail, "conflicts": [c.model_dump() for c in conflicts[:100]]}
    return _json(body, 409)


def _logged(
    service: Service, prediction_id: str | None, entity_id: str | None
) -> tuple[str, str] | None:
    """The prediction from the log (written up to now first): older than the memory holds,
    or made by an earlier run of the service. Remembered with its recorded outcome."""
    service.log.flush(FLUSH_TIMEOUT_SECONDS)
    engine, name = service.registry.engine, service.pipeline.name
    found = find_prediction(engine, name, prediction_id=prediction_id, entity_id=entity_id)
    if found is None:
        return None
    _adopt(service, {found.id: found.entity_id})
    return found.id, found.entity_id


def _logged_ids(service: Service, prediction_ids: list[str]) -> dict[str, str]:
    """The entities of logged predictions among ``prediction_ids`` (the log written first),
    remembered with their recorded outcomes."""
    service.log.flush(FLUSH_TIMEOUT_SECONDS)
    found = entities_of(service.registry.engine, service.pipeline.name, prediction_ids)
    _adopt(service, found)
    return found


def _adopt(service: Service, entities: dict[str, str]) -> None:
    recorded = find_outcomes(service.registry.engine, service.pipeline.name, list(entities))
    regression = service.pipeline.spec.task == "regression"
    for prediction_id, entity in entities.items():
        label, value = recorded.get(prediction_id, (None, None))
        service.recent.adopt(prediction_id, entity, value if regression else label)


def _body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """An OpenAPI request body for a model validated by hand (its ``$defs`` inlined)."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return inline(defs[ref.removeprefix("#/$defs/")])
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(value) for value in node]
        return node

    return {"required": True, "content": {JSON: {"schema": inline(schema)}}}
