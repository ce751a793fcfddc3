"""Every time in the JSON the project emits is ISO 8601 UTC with a ``Z``: ``retrain status
--json``, ``retrain rollout status --json`` and the service's responses, walked key by key."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from retraining_assets.cli import main
from retraining_assets.service.app import create_app
from retraining_assets_tests.service.conftest import Deployed, features_of, serving

# anything that starts like a date and a time, with or without a zone
LOOKS_LIKE_A_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
ONE_FORM = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{6})?Z$")


def _times(value: Any, path: str = "$") -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _times(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _times(item, f"{path}[{index}]")
    elif isinstance(value, str) and LOOKS_LIKE_A_TIME.match(value):
        yield path, value


def _cli(*args: str) -> Any:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_every_time_in_status_and_the_service_is_utc_with_a_z(
    deployed: Deployed, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RETRAIN_HOME", str(deployed.settings.home))
    deployed.registry.request_approval(
        "demo", 2, decision={"verdict": "pending_approval"}, by="ci", actual_user="ci"
    )
    deployed.start_rollout(2, share=0.5)
    emitted = {"status": _cli("status", "--json"), "rollout": _cli("rollout", "status", "--json")}
    with serving(create_app(deployed.pipeline)) as client:
        body = {"entity_id": "c-1", "features": features_of(deployed.trained.frame, 0)}
        emitted["predict"] = client.post("/predict", json=body).json()
        emitted["health"] = client.get("/health").json()
        emitted["service_rollout"] = client.get("/rollout").json()
    times = [found for name, value in emitted.items() for found in _times(value, name)]
    wrong = [(path, value) for path, value in times if not ONE_FORM.match(value)]
    assert wrong == []
    paths = {re.sub(r"\[\d+\]", "[]", path) for path, _ in times}
    assert {
        "status.champion.promoted_at",
        "status.champion.trained_on[]",
        "status.pending_approvals[].requested_at",
        "status.alias_history[].at",
        "status.audit[].at",
        "status.rollout.started_at",
        "rollout.step_started_at",
        "health.checked_at",
        "service_rollout.started_at",
    } <= paths
