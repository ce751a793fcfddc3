"""The prediction service over real HTTP: routing, validation, feedback, refresh, failures and
the prediction log, on SQLite and once on PostgreSQL."""

from __future__ import annotations

import json
import math
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from retraining_assets.core import schema
from retraining_assets.core.demo import SPEC
from retraining_assets.core.prediction_log import count_rows, find_prediction
from retraining_assets.service.app import create_app
from retraining_assets.settings import load_settings
from retraining_assets_tests.service.conftest import (
    Deployed,
    Trained,
    columns_of,
    deploy,
    features_of,
    serving,
)


def _predict(client: httpx.Client, deployed: Deployed, entity: str, i: int = 0) -> dict:
    body = {"entity_id": entity, "features": features_of(deployed.trained.frame, i)}
    response = client.post("/predict", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def _expected(model: Any, deployed: Deployed, i: int) -> dict[str, float]:
    """The model's own probabilities for row ``i``, by class."""
    scores = model.scores(deployed.trained.frame.iloc[[i]])[0]
    return dict(zip(model.classes, scores.tolist(), strict=True))


def test_without_a_rollout_everyone_gets_the_champion(deployed: Deployed) -> None:
    with serving(create_app(deployed.pipeline)) as client:
        answers = [_predict(client, deployed, f"customer-{i}", i) for i in range(5)]
        health = client.get("/health")
        rollout = client.get("/rollout")
        openapi = client.get("/openapi.json").json()
    for i, answer in enumerate(answers):
        assert answer["variant"] == "champion"
        assert answer["model_version"] == 1 and answer["rollout_id"] is None
        assert answer["entity_id"] == f"customer-{i}"
        # exactly the model's own probabilities: the compiled scorer changes nothing
        assert answer["probabilities"] == _expected(deployed.trained.forest, deployed, i)
        probabilities = answer["probabilities"]
        assert answer["prediction"] == max(probabilities, key=probabilities.get)
        assert uuid.UUID(hex=answer["prediction_id"]).version == 7
    assert rollout.json() == {"active": False}
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "ok" and body["pipeline"] == "demo" and body["challenger"] is None
    champion = body["champion"]
    assert champion["version"] == 1 and champion["family"] == "random_forest"
    assert champion["checksum_verified"] is True
    assert champion["artifact_sha256"] == deployed.registry.get_version("demo", 1).artifact_sha256
    assert body["log"]["last_error"] is None and body["problems"] == []
    assert body["log"]["refused"] == 0
    batch = openapi["paths"]["/predict/batch"]["post"]["requestBody"]["content"]
    documented = batch["application/json"]["schema"]["properties"]
    assert set(documented["features"]["properties"]) == set(SPEC.features)
    assert {"/predict", "/feedback", "/feedback/batch"} <= set(openapi["paths"])


def test_a_rollout_routes_every_entity_as_its_router_does(deployed: Deployed) -> None:
    rollout = deployed.start_rollout(2, share=0.5)
    router = rollout.router()
    entities = [f"customer-{i}" for i in range(40)]
    frame = deployed.trained.frame
    with serving(create_app(deployed.pipeline)) as client:
        answers = [_predict(client, deployed, entity, i) for i, entity in enumerate(entities)]
        body = {"entity_ids": entities, "features": columns_of(frame, range(40))}
        batch = client.post("/predict/batch", json=body).json()
        shown = client.get("/rollout").json()
        health = client.get("/health").json()
    expected = [router.assign(entity) for entity in entities]
    assert set(expected) == {"champion", "challenger"}
    assert [answer["variant"] for answer in answers] == expected
    assert batch["variants"] == expected
    versions = [1 if variant == "champion" else 2 for variant in expected]
    assert [answer["model_version"] for answer in answers] == versions
    assert batch["model_versions"] == versions
    assert {answer["rollout_id"] for answer in answers} == {rollout.id} == {batch["rollout_id"]}
    models = {"champion": deployed.trained.forest, "challenger": deployed.trained.boosted}
    for i, (answer, variant) in enumerate(zip(answers, expected, strict=True)):
        assert answer["probabilities"] == _expected(models[variant], deployed, i)
        assert batch["probabilities"]["1"][i] == answer["probabilities"]["1"]
    assert shown["active"] is True and shown["routing"] is True
    assert shown["id"] == rollout.id and shown["share"] == 0.5
    assert (shown["champion_version"], shown["challenger_version"]) == (1, 2)
    assert shown["strategy"] == "ab" and shown["salt"] == rollout.salt
    assert health["challenger"]["version"] == 2 and health["challenger"]["family"] == "xgboost"
    assert health["rollout_id"] == rollout.id


def _features(deployed: Deployed, **changes: Any) -> dict[str, Any]:
    features = features_of(deployed.trained.frame, 0) | changes
    return {name: value for name, value in features.items() if value != "<drop>"}


def test_invalid_single_requests_get_a_422_naming_the_field(deployed: Deployed) -> None:
    good = {"entity_id": "customer-1", "features": _features(deployed)}
    cases: list[tuple[str, dict | bytes, str]] = [
        ("malformed JSON", b'{"entity_id": "a", "features": {', "body: JSON decode error"),
        ("unknown feature", {**good, "features": _features(deployed, shoe_size=42)},
         "features.shoe_size: Extra inputs are not permitted"),
        ("missing feature", {**good, "features": _features(deployed, income="<drop>")},
         "features.income: Field required"),
        ("text for a number", {**good, "features": _features(deployed, age="forty")},
         "features.age: Input should be a valid number"),
        ("boolean for a number", {**good, "features": _features(deployed, age=True)},
         "features.age: Input should be a valid number"),
        ("number for a category", {**good, "features": _features(deployed, region=3)},
         "features.region: Input should be a valid string"),
        ("not finite", json.dumps({**good, "features": _features(deployed, income=math.nan)})
         .encode(),
         "features.income: Input should be a finite number"),
        ("unknown top-level field", {**good, "model": "v2"},
         "model: Extra inputs are not permitted"),
        ("no entity id", {"features": good["features"]}, "entity_id: Field required"),
        ("entity id too long", {**good, "entity_id": "x" * 256},
         "entity_id: String should have at most 255 characters"),
        ("features not an object", {**good, "features": [1, 2]}, "features: Input should be"),
    ]  # fmt: skip
    with serving(create_app(deployed.pipeline)) as client:
        for label, body, message in cases:
            if isinstance(body, bytes):
                response = client.post(
                    "/predict", content=body, headers={"content-type": "application/json"}
                )
            else:
                response = client.post("/predict", json=body)
            assert response.status_code == 422, label
            assert message in response.json()["message"], (label, response.json())
        nulls = {name: None for name in good["features"]}  # every value missing: imputed
        assert client.post("/predict", json={**good, "features": nulls}).status_code == 200
    assert count_rows(deployed.registry.engine, "demo")["predictions"] == 1


def test_invalid_batches_get_a_422_naming_the_column(deployed: Deployed) -> None:
    frame = deployed.trained.frame
    entities = ["a", "b", "c"]
    columns = columns_of(frame, range(3))
    short = columns | {"age": columns["age"][:2]}
    typed = columns | {"age": [30, "x", 40]}
    cases: list[tuple[str, bytes | dict, str]] = [
        ("length", {"entity_ids": entities, "features": short},
         "features.age: has 2 values but entity_ids has 3"),
        ("type", {"entity_ids": entities, "features": typed},
         "features.age.1: Input should be a valid number"),
        ("unknown column", {"entity_ids": entities, "features": columns | {"x": [1, 2, 3]}},
         "features.x: Extra inputs are not permitted"),
        ("missing column", {"entity_ids": entities, "features": columns | {"age": "<drop>"}},
         "features.age: Field required"),
        ("malformed JSON", b'{"entity_ids": [', "body: Invalid JSON"),
    ]  # fmt: skip
    with serving(create_app(deployed.pipeline)) as client:
        for label, body, message in cases:
            if isinstance(body, dict):
                body["features"] = {k: v for k, v in body["features"].items() if v != "<drop>"}
                response = client.post("/predict/batch", json=body)
            else:
                response = client.post("/predict/batch", content=body)
            assert response.status_code == 422, label
            found = response.json()
            assert message in found["message"], (label, found)
        assert "features.income" not in client.post("/predict/batch", json=cases[0][1]).text
        empty = {"entity_ids": [], "features": {name: [] for name in columns}}
        answer = client.post("/predict/batch", json=empty)
    assert answer.status_code == 200 and answer.json()["prediction_ids"] == []
    assert count_rows(deployed.registry.engine, "demo")["predictions"] == 0


def test_feedback_by_prediction_id_or_entity(deployed: Deployed) -> None:
    with serving(create_app(deployed.pipeline)) as client:
        first = _predict(client, deployed, "A", 0)
        _predict(client, deployed, "B", 1)
        latest = _predict(client, deployed, "B", 2)
        by_id = client.post(
            "/feedback", json={"prediction_id": first["prediction_id"], "outcome": "1"}
        )
        by_entity = client.post("/feedback", json={"entity_id": "B", "outcome": 0})
        unknown_id = client.post("/feedback", json={"prediction_id": "f" * 32, "outcome": "1"})
        unknown_entity = client.post("/feedback", json={"entity_id": "nobody", "outcome": "1"})
        bad_class = client.post("/feedback", json={"entity_id": "B", "outcome": "2"})
        both = client.post(
            "/feedback",
            json={"entity_id": "B", "prediction_id": latest["prediction_id"], "outcome": 1},
        )
        neither = client.post("/feedback", json={"outcome": 1})
    assert by_id.status_code == 202
    assert by_id.json() == {"prediction_id": first["prediction_id"], "entity_id": "A"}
    assert by_entity.status_code == 202
    assert by_entity.json() == {"prediction_id": latest["prediction_id"], "entity_id": "B"}
    assert unknown_id.status_code == 404 and "f" * 32 in unknown_id.json()["detail"]
    assert unknown_entity.status_code == 404 and "'nobody'" in unknown_entity.json()["detail"]
    assert bad_class.status_code == 422
    assert bad_class.json()["message"] == "outcome: '2' is not one of the classes ['0', '1']"
    for response in (both, neither):
        assert response.status_code == 422
        assert "exactly one of prediction_id and entity_id" in response.json()["message"]
    engine = deployed.registry.engine
    assert count_rows(engine, "demo") == {"predictions": 3, "outcomes": 2}
    table = schema.prediction_outcomes
    with engine.connect() as connection:
        outcomes = dict(connection.execute(sa.select(table.c.prediction_id, table.c.label)).all())
    assert outcomes == {first["prediction_id"]: "1", latest["prediction_id"]: "0"}


def test_feedback_finds_predictions_of_an_earlier_run_in_the_log(deployed: Deployed) -> None:
    with serving(create_app(deployed.pipeline)) as client:
        earlier = _predict(client, deployed, "A", 0)
        _predict(client, deployed, "B", 1)
        latest = _predict(client, deployed, "B", 2)
    with serving(create_app(deployed.pipeline)) as client:  # nothing in memory
        by_id = client.post(
            "/feedback", json={"prediction_id": earlier["prediction_id"], "outcome": 1}
        )
        by_entity = client.post("/feedback", json={"entity_id": "B", "outcome": "0"})
    assert by_id.status_code == 202 and by_id.json()["entity_id"] == "A"
    assert by_entity.json() == {"prediction_id": latest["prediction_id"], "entity_id": "B"}
    assert count_rows(deployed.registry.engine, "demo") == {"predictions": 3, "outcomes": 2}


def test_an_alias_move_is_served_without_a_restart(deployed: Deployed) -> None:
    with serving(create_app(deployed.pipeline)) as client:
        before = _predict(client, deployed, "A", 0)
        deployed.move_champion(2)
        after = _predict(client, deployed, "A", 0)
        health = client.get("/health").json()
    assert (before["model_version"], after["model_version"]) == (1, 2)
    assert after["variant"] == "champion"
    assert after["probabilities"] == _expected(deployed.trained.boosted, deployed, 0)
    assert health["champion"]["version"] == 2 and health["champion"]["family"] == "xgboost"


def _corrupt(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))


def test_a_corrupt_champion_makes_the_service_unavailable_not_broken(deployed: Deployed) -> None:
    _corrupt(deployed.artifact(1))
    frame = deployed.trained.frame
    with serving(create_app(deployed.pipeline)) as client:
        health = client.get("/health")
        single = client.post("/predict", json={"entity_id": "A", "features": features_of(frame, 0)})
        batch = client.post(
            "/predict/batch", json={"entity_ids": ["A"], "features": columns_of(frame, [0])}
        )
    assert health.status_code == 503
    body = health.json()
    assert body["status"] == "unavailable" and body["champion"] is None
    assert "v1 cannot be loaded" in body["reason"] and "corrupt" in body["reason"]
    for response in (single, batch):
        assert response.status_code == 503
        assert "no model can be served: v1 cannot be loaded" in response.json()["detail"]
    assert count_rows(deployed.registry.engine, "demo")["predictions"] == 0


def test_a_corrupt_new_champion_leaves_the_old_one_serving(deployed: Deployed) -> None:
    _corrupt(deployed.artifact(2))
    with serving(create_app(deployed.pipeline)) as client:
        assert _predict(client, deployed, "A")["model_version"] == 1
        deployed.move_champion(2)
        answer = _predict(client, deployed, "A")
        health = client.get("/health")
    assert answer["model_version"] == 1
    assert health.status_code == 200
    assert health.json()["champion"]["version"] == 1
    (problem,) = health.json()["problems"]
    assert problem.startswith("v2 cannot be loaded") and "corrupt" in problem


def test_every_prediction_is_in_the_log_after_a_graceful_stop(deployed: Deployed) -> None:
    deployed.start_rollout(2, share=0.5)
    frame = deployed.trained.frame
    app = create_app(deployed.pipeline)
    with serving(app) as client:

        def one(i: int) -> dict:
            body = {"entity_id": f"customer-{i}", "features": features_of(frame, i % 50)}
            return client.post("/predict", json=body).json()

        with ThreadPoolExecutor(8) as pool:  # concurrent requests share micro-batches
            singles = list(pool.map(one, range(120)))
        body = {
            "entity_ids": [f"batch-{i}" for i in range(200)],
            "features": columns_of(frame, range(200)),
        }
        batch = client.post("/predict/batch", json=body).json()
    engine = deployed.registry.engine
    assert count_rows(engine, "demo") == {"predictions": 320, "outcomes": 0}
    assert app.state.service.log.written == {"predictions": 320, "outcomes": 0}
    for answer in singles[:5]:
        logged = find_prediction(engine, "demo", prediction_id=answer["prediction_id"])
        assert logged is not None and logged.entity_id == answer["entity_id"]
        assert (logged.variant, logged.model_version) == (
            answer["variant"],
            answer["model_version"],
        )
        assert logged.label == answer["prediction"]
        assert logged.value == answer["probabilities"]["1"]
        assert logged.rollout_id == answer["rollout_id"] and logged.rollout_step == 0
    logged = find_prediction(engine, "demo", entity_id="batch-7")
    assert logged is not None and logged.id == batch["prediction_ids"][7]


@pytest.mark.postgres
def test_the_service_on_postgresql(
    postgres_database: str, tmp_path: Path, trained: Trained
) -> None:
    settings = load_settings(
        home=tmp_path / ".retrain", database_url=postgres_database, serve_refresh_seconds=0
    )
    deployed = deploy(settings, trained)
    rollout = deployed.start_rollout(2, share=0.5)
    frame = trained.frame
    with serving(create_app(deployed.pipeline)) as client:
        answers = [_predict(client, deployed, f"customer-{i}", i) for i in range(10)]
        body = {
            "entity_ids": [f"batch-{i}" for i in range(50)],
            "features": columns_of(frame, range(50)),
        }
        assert client.post("/predict/batch", json=body).status_code == 200
        feedback = client.post("/feedback", json={"entity_id": "customer-3", "outcome": 1})
    assert feedback.status_code == 202
    router = rollout.router()
    assert [a["variant"] for a in answers] == [router.assign(f"customer-{i}") for i in range(10)]
    assert count_rows(deployed.registry.engine, "demo") == {"predictions": 60, "outcomes": 1}


def test_ids_with_a_nul_character_get_a_422_naming_the_field(deployed: Deployed) -> None:
    """PostgreSQL cannot store a NUL; the service refuses it up front instead of logging a
    prediction the database will refuse."""
    frame = deployed.trained.frame
    with serving(create_app(deployed.pipeline)) as client:
        single = client.post(
            "/predict", json={"entity_id": "a\x00b", "features": features_of(frame, 0)}
        )
        batch = client.post(
            "/predict/batch",
            json={"entity_ids": ["ok", "a\x00b"], "features": columns_of(frame, [0, 1])},
        )
        feedback = client.post("/feedback", json={"prediction_id": "\x00", "outcome": "1"})
        by_entity = client.post("/feedback", json={"entity_id": "x\x00", "outcome": "1"})
    nul = "must not contain NUL characters (\\u0000)"
    assert (single.status_code, single.json()["message"]) == (422, f"entity_id: {nul}")
    assert (batch.status_code, batch.json()["message"]) == (422, f"entity_ids.1: {nul}")
    assert (feedback.status_code, feedback.json()["message"]) == (422, f"prediction_id: {nul}")
    assert (by_entity.status_code, by_entity.json()["message"]) == (422, f"entity_id: {nul}")
    assert count_rows(deployed.registry.engine, "demo")["predictions"] == 0


def test_a_second_different_outcome_is_a_409_and_the_same_one_is_accepted(
    deployed: Deployed,
) -> None:
    with serving(create_app(deployed.pipeline)) as client:
        a, b = (_predict(client, deployed, entity)["prediction_id"] for entity in "AB")
        first = client.post("/feedback", json={"prediction_id": a, "outcome": "1"})
        again = client.post("/feedback", json={"prediction_id": a, "outcome": 1})
        other = client.post("/feedback", json={"entity_id": "A", "outcome": "0"})
        mixed = client.post(
            "/feedback/batch", json={"prediction_ids": [b, a], "outcomes": ["1", "0"]}
        )
        twice = client.post(
            "/feedback/batch", json={"prediction_ids": [b, b], "outcomes": ["1", "0"]}
        )
        batch = client.post(
            "/feedback/batch", json={"prediction_ids": [b, a], "outcomes": ["0", "1"]}
        )
    assert (first.status_code, again.status_code) == (202, 202)
    assert other.status_code == 409
    assert other.json()["conflicts"] == [{"prediction_id": a, "recorded": "1", "given": "0"}]
    assert other.json()["detail"].endswith("no outcome was recorded")
    assert (mixed.status_code, twice.status_code, batch.status_code) == (409, 409, 202)
    assert twice.json()["conflicts"] == [{"prediction_id": b, "recorded": "1", "given": "0"}]
    assert batch.json() == {"accepted": 2}
    with serving(create_app(deployed.pipeline)) as client:  # an earlier run's outcome, from the log
        late = client.post("/feedback", json={"prediction_id": b, "outcome": "1"})
        same = client.post("/feedback/batch", json={"prediction_ids": [a], "outcomes": ["1"]})
    assert late.status_code == 409 and late.json()["conflicts"][0]["recorded"] == "0"
    assert same.status_code == 202
    engine = deployed.registry.engine
    table = schema.prediction_outcomes
    with engine.connect() as connection:
        outcomes = dict(connection.execute(sa.select(table.c.prediction_id, table.c.label)).all())
    assert outcomes == {a: "1", b: "0"}
