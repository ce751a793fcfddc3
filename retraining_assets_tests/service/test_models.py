"""ServedModels: what serves follows the registry, re-read on a clock the test controls."""

from __future__ import annotations

import pytest

from retraining_assets.core.demo import SPEC
from retraining_assets.core.notify import LogChannel, Notifier
from retraining_assets.core.rollout import RolloutPlan, transitions
from retraining_assets.service.models import ModelUnavailableError, ServedModels
from retraining_assets_tests.service.conftest import ACTOR, Deployed


class Clock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _models(deployed: Deployed, refresh_seconds: float, clock: Clock) -> ServedModels:
    return ServedModels(
        deployed.registry, "demo", SPEC, refresh_seconds=refresh_seconds, clock=clock
    )


def test_aliases_are_re_read_once_refresh_seconds_have_passed(deployed: Deployed) -> None:
    clock = Clock()
    models = _models(deployed, 5.0, clock)
    first = models.current()
    assert first.champion is not None and first.champion.version == 1
    deployed.move_champion(2)
    clock.now += 4.9
    assert models.current() is first  # not re-read yet: one cheap query per 5 s at most
    clock.now += 0.1
    assert models.current().champion.version == 2


def test_the_challenger_serves_while_its_rollout_is_active(deployed: Deployed) -> None:
    clock = Clock()
    models = _models(deployed, 0.0, clock)
    assert models.current().router is None
    plan = RolloutPlan.from_dict({"strategy": "gradual", "steps": [{"share": 0.1}, {"share": 0.5}]})
    notifier = Notifier(deployed.registry.engine, [LogChannel()])
    started = transitions.start_rollout(
        deployed.registry, notifier, "demo", 2, plan, actor=ACTOR, reason="test"
    )
    during = models.current()
    assert during.challenger is not None and during.challenger.version == 2
    assert during.rollout.id == started.id and during.router.weights["challenger"] == 0.1
    advanced = transitions.advance(deployed.registry, notifier, started, actor=ACTOR, reason="t")
    assert models.current().router.weights["challenger"] == 0.5
    assert models.current().challenger is during.challenger  # loaded once
    transitions.stop(deployed.registry, notifier, advanced, actor=ACTOR, reason="test")
    after = models.current()
    assert after.challenger is None and after.rollout is None and after.router is None
    assert after.champion is during.champion


def test_without_a_champion_nothing_can_be_served(deployed: Deployed) -> None:
    models = ServedModels(deployed.registry, "other", SPEC, refresh_seconds=0)
    snapshot = models.current()
    assert snapshot.champion is None
    assert snapshot.problems == ("pipeline 'other' has no champion",)
    with pytest.raises(ModelUnavailableError, match="pipeline 'other' has no champion"):
        snapshot.require_champion()


def test_a_version_that_failed_to_load_is_retried_after_a_while(deployed: Deployed) -> None:
    clock = Clock()
    models = _models(deployed, 0.0, clock)
    assert models.current().champion.version == 1
    path = deployed.artifact(2)
    original = path.read_bytes()
    path.write_bytes(b"not a model")
    deployed.move_champion(2)
    broken = models.current()
    assert broken.champion.version == 1
    assert "v2 cannot be loaded" in broken.problems[0] and "corrupt" in broken.problems[0]
    path.write_bytes(original)  # restored from a backup
    assert models.current().champion.version == 1  # not re-read on every request
    clock.now += 60.0
    repaired = models.current()
    assert repaired.champion.version == 2 and repaired.problems == ()
