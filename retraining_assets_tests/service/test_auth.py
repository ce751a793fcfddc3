"""Who may talk to the service: the bearer token, the open ``/health`` (without file paths),
the docs served without a CDN or switched off, and the warning of an open public address."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import httpx
import pytest

from retraining_assets.core.prediction_log import count_rows
from retraining_assets.service.app import create_app
from retraining_assets.service.auth import is_loopback
from retraining_assets.service.process import serve_process
from retraining_assets.service.server import STARTUP_TIMEOUT
from retraining_assets.settings import SettingsError, load_settings
from retraining_assets_tests.service.conftest import Deployed, Trained, deploy, features_of, serving

TOKEN = "s3cret-token-for-tests-0123456789"


@pytest.fixture
def protected(tmp_path: Path, trained: Trained) -> Deployed:
    settings = load_settings(home=tmp_path / ".retrain", serve_refresh_seconds=0, serve_token=TOKEN)
    return deploy(settings, trained)


def test_every_route_but_health_needs_the_bearer_token(protected: Deployed) -> None:
    body = {"entity_id": "A", "features": features_of(protected.trained.frame, 0)}
    good = {"authorization": f"Bearer {TOKEN}"}
    with serving(create_app(protected.pipeline)) as client:
        health = client.get("/health")
        anonymous = client.post("/predict", json=body)
        wrong = client.post("/predict", json=body, headers={"authorization": "Bearer guess"})
        basic = client.post("/predict", json=body, headers={"authorization": f"Basic {TOKEN}"})
        forged = client.post("/feedback", json={"entity_id": "A", "outcome": "1"})
        hidden = [client.get(path) for path in ("/rollout", "/openapi.json", "/docs", "/nope")]
        answer = client.post("/predict", json=body, headers=good)
        feedback = client.post(
            "/feedback",
            json={"entity_id": "A", "outcome": "1"},
            headers={"AUTHORIZATION": f"bearer {TOKEN}"},
        )
        schema = client.get("/openapi.json", headers=good).json()
    assert health.status_code == 200 and health.json()["status"] == "ok"
    for refused in (anonymous, wrong, basic, forged, *hidden):
        assert refused.status_code == 401, refused.request.url
        assert refused.headers["www-authenticate"].startswith('Bearer realm="retraining_assets"')
    assert anonymous.json()["detail"].startswith("authentication required")
    assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
    assert "error" not in anonymous.headers["www-authenticate"]
    assert answer.status_code == 200 and feedback.status_code == 202
    assert count_rows(protected.registry.engine, "demo") == {"predictions": 1, "outcomes": 1}
    # the OpenAPI document says so: a bearer scheme on every operation but /health
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert schema["paths"]["/health"]["get"]["security"] == []
    predict = schema["paths"]["/predict"]["post"]
    assert predict["security"] == [{"bearerAuth": []}] and "401" in predict["responses"]


def test_a_short_token_is_refused_at_load_time() -> None:
    with pytest.raises(SettingsError, match=r"'serve_token' \(RETRAIN_SERVE_TOKEN\).*16"):
        load_settings(serve_token="short")


def test_health_shows_no_file_paths(deployed: Deployed) -> None:
    """A corrupt artifact is named by its file, not by where the state folder lives."""
    deployed.start_rollout(2)  # verified when it starts; damaged afterwards
    path = deployed.artifact(2)
    path.write_bytes(path.read_bytes()[:-1])
    with serving(create_app(deployed.pipeline)) as client:
        health = client.get("/health").json()
    (problem,) = health["problems"]
    # named by its place under the artifact root
    assert problem.startswith("v2 cannot be loaded") and f"demo/v2/{path.name}" in problem
    text = json.dumps(health, ensure_ascii=False)
    assert str(deployed.settings.home.resolve()) not in text
    assert not re.search(r"(?<![\w.])/(?:[\w.-]+/)+", text), text


def test_the_docs_are_served_without_a_cdn(deployed: Deployed) -> None:
    with serving(create_app(deployed.pipeline)) as client:
        docs, redoc = client.get("/docs"), client.get("/redoc")
        assets = re.findall(r'(?:src|href)="([^"]+)"', docs.text + redoc.text)
        fetched = {url: client.get(url) for url in assets if url.startswith("/")}
    assert docs.status_code == redoc.status_code == 200
    assert "//" not in "".join(assets), assets  # no asset from another host
    assert {url.rsplit("/", 1)[-1] for url in fetched} >= {
        "swagger-ui-bundle.js",
        "swagger-ui.css",
        "redoc.standalone.js",
    }
    assert all(response.status_code == 200 for response in fetched.values())


def test_the_docs_can_be_switched_off(tmp_path: Path, trained: Trained) -> None:
    settings = load_settings(home=tmp_path / ".retrain", serve_docs=False)
    deployed = deploy(settings, trained)
    with serving(create_app(deployed.pipeline)) as client:
        pages = [client.get(path) for path in ("/docs", "/redoc", "/docs-assets/swagger-ui.css")]
        assert client.get("/openapi.json").status_code == 200  # clients still read the schema
    assert [page.status_code for page in pages] == [404, 404, 404]


def test_binding_a_public_address_without_a_token_warns(tmp_path: Path, trained: Trained) -> None:
    home = tmp_path / ".retrain"
    deploy(load_settings(home=home), trained)
    env = {name: value for name, value in os.environ.items() if not name.startswith("RETRAIN_")}
    env |= {"RETRAIN_HOME": str(home), "RETRAIN_SERVE_HOST": "0.0.0.0"}
    with serve_process(env, STARTUP_TIMEOUT) as open_to_all:
        assert httpx.get(f"{open_to_all.url}/health").status_code == 200
    with serve_process(env | {"RETRAIN_SERVE_TOKEN": TOKEN}, STARTUP_TIMEOUT) as guarded:
        assert httpx.get(f"{guarded.url}/rollout").status_code == 401
    warning = "WARNING: listening on 0.0.0.0 without RETRAIN_SERVE_TOKEN"
    assert warning in "".join(open_to_all.output)
    assert warning not in "".join(guarded.output)
    assert "bearer token required" in "".join(guarded.output)
    assert TOKEN not in "".join(guarded.output)


def test_loopback_addresses() -> None:
    assert all(map(is_loopback, ["127.0.0.1", "127.8.0.1", "::1", "[::1]", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "10.0.0.5", "example.org"]))
