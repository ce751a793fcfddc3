"""The ``rollout`` click group on the state a developer's ``RETRAIN_HOME`` holds (SQLite)."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from click.testing import CliRunner, Result

from retraining_assets.cli.rollout import parse_shares, rollout
from retraining_assets.core.registry import CHALLENGER, CHAMPION, Registry
from retraining_assets.settings import Settings

PIPELINE = "demo"
WHO = ["--by", "alice", "--reason", "try it"]


@pytest.fixture
def registry(settings: Settings) -> Registry:
    """The demo pipeline's registry: v1 champion, v2 registered, v3 rejected."""
    registry = Registry.from_settings(settings)
    for i, status in enumerate(["registered", "registered", "rejected"], start=1):
        registry.register_version(
            PIPELINE,
            family="random_forest",
            model_bytes=f"model-{i}".encode(),
            params={},
            metrics={},
            train_start=datetime(2024, 1, 1),
            train_end=datetime(2024, 4, 1),
            data_fingerprint=f"fp-{i}",
            code_version="test",
            dataset_spec={},
            status=status,
        )
    registry.move_alias(
        PIPELINE, CHAMPION, 1, expected_current=None, by="ci", actual_user="ci", reason="first"
    )
    return registry


def invoke(*args: str) -> Result:
    return CliRunner().invoke(rollout, list(args))


def test_start_status_stop(registry: Registry) -> None:
    plan = ["--strategy", "gradual", "--steps", "0.05,0.25,1.0", "--salt", "exp-42"]
    started = invoke(
        "start", "--challenger", "2", *plan, "--min-hours", "2", "--min-samples", "500", *WHO
    )
    assert started.exit_code == 0, started.output
    assert "v2 vs champion v1, gradual step 1/3, challenger share 5.0%" in started.output
    assert registry.get_alias(PIPELINE, CHALLENGER).version == 2

    shown = invoke("status", "--json")
    assert shown.exit_code == 0, shown.output
    report = json.loads(shown.output)
    assert (report["status"], report["step"], report["share"]) == ("active", 0, 0.05)
    assert report["salt"] == "exp-42"  # the router's assignments can be reproduced elsewhere
    assert report["plan"]["steps"][1] == {"share": 0.25, "min_hours": 2.0, "min_samples": 500}
    assert "started" in invoke("status").output

    again = invoke("start", "--challenger", "2", "--strategy", "canary", *WHO)
    assert again.exit_code == 2
    assert "already has an active rollout" in again.output

    stopped = invoke("stop", "--by", "bob", "--reason", "enough")
    assert stopped.exit_code == 0, stopped.output
    assert "v1 serves all traffic" in stopped.output
    assert registry.get_alias(PIPELINE, CHALLENGER) is None
    assert registry.audit_log(PIPELINE)[-1].action == "rollout_stopped"
    assert invoke("status", "--json").output.strip() == "null"
    assert "no active rollout" in invoke("status").output
    assert invoke("stop", *WHO).exit_code == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--challenger", "3", "--strategy", "canary"], "v3 was rejected"),
        (["--challenger", "7", "--strategy", "canary"], "no model version 7"),
        (["--challenger", "2", "--strategy", "gradual", "--steps", "0.5,0.25"], "steps[1].share"),
        (["--challenger", "2", "--strategy", "canary", "--steps", "0.1,0.2"], "one share"),
        (["--challenger", "2", "--strategy", "immediate", "--steps", "1"], "takes no steps"),
        (["--challenger", "2", "--strategy", "gradual", "--steps", "x"], "'x' is not a number"),
        (["--challenger", "2", "--strategy", "canary", "--salt", "s" * 256], "1 to 255 char"),
    ],
)
def test_refused_starts_say_why_and_change_nothing(
    registry: Registry, args: list[str], message: str
) -> None:
    before = len(registry.audit_log(PIPELINE))
    result = invoke("start", *args, *WHO)
    assert result.exit_code == 2
    assert message in result.output
    assert len(registry.audit_log(PIPELINE)) == before
    assert registry.get_alias(PIPELINE, CHALLENGER) is None


def test_start_builds_the_plan_from_settings_and_the_options(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RETRAIN_ROLLOUT_MIN_HOURS", "6")
    monkeypatch.setenv("RETRAIN_ROLLOUT_ALPHA", "0.01")
    started = invoke("start", "--challenger", "2", "--strategy", "ab", "--min-samples", "80", *WHO)
    assert started.exit_code == 0, started.output
    plan = json.loads(invoke("status", "--json").output)["plan"]
    assert plan["steps"] == [{"share": 0.5, "min_hours": 6.0, "min_samples": 80}]
    assert (plan["metric"], plan["higher_is_better"], plan["alpha"]) == ("binary", True, 0.01)
    assert plan["promote_rule"] == "better"


def test_parse_shares() -> None:
    assert parse_shares("0.05, 0.25,1") == [0.05, 0.25, 1.0]
    assert parse_shares(None) is None and parse_shares(" ") is None
