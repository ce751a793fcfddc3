"""The rollout in the Dagster graph, on a real instance: the rollout sensor evaluated
daemon-less, the rollout job run in process on simulated live traffic with known effects
(written through the prediction log), the promotion gate starting rollouts, and rolling back
mid-rollout from the CLI and the operator job."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from retraining_assets.cli import main
from retraining_assets.core import schema
from retraining_assets.core.demo import SPEC, DemoStream
from retraining_assets.core.pipeline import Pipeline, demo_pipeline, rollout_plan
from retraining_assets.core.prediction_log import Outcome, Prediction, PredictionLog
from retraining_assets.core.registry import CHALLENGER, CHAMPION, Actor, Registry, utc_now
from retraining_assets.core.rollout import RolloutPlan, RolloutPlanError
from retraining_assets.core.rollout import transitions as rs
from retraining_assets.core.schema import notification_outbox
from retraining_assets.definitions import build_definitions
from retraining_assets.defs.jobs import job_names
from retraining_assets.demo.launch import QUIET
from retraining_assets.demo.simulation import Simulation, TrafficOutcome
from retraining_assets.service.server import local_service
from retraining_assets.settings import Settings
from retraining_assets_tests.conftest import MONTHLY, trained_version
from retraining_assets_tests.defs.homes import build_template, copied_state
from retraining_assets_tests.reports_client import serving_reports

STREAM = DemoStream(rows_per_month=400, months=4, end_month=pd.Timestamp("2024-04-01"))
ACTOR = Actor(by="alice", actual_user="test")
BETTER = {CHAMPION: 0.6, CHALLENGER: 0.9}  # share of correct predictions per variant


@dataclass
class World:
    settings: Settings
    pipeline: Pipeline
    simulation: Simulation

    @property
    def registry(self) -> Registry:
        return Registry.from_settings(self.settings)

    @property
    def instance(self) -> dg.DagsterInstance:
        return self.simulation.instance


# A gradual rollout (20%, 50%, 100%), each step after 100 outcomes per arm, no waiting.
ROLLOUT_SETTINGS = {
    **MONTHLY,
    "retrain_cooldown_hours": 0,
    "model_families": ["random_forest"],
    "promotion_strategy": "gradual",
    "rollout_steps": [0.2, 0.5, 1.0],
    "rollout_min_hours": 0,
    "rollout_min_samples": 100,
}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three months monitored and a first random forest champion: built once per module, then
    copied for each test (``world``), so no test sees another's rollouts, versions or outbox."""
    home = tmp_path_factory.mktemp("rollout") / ".retrain"
    build_template(home, STREAM, 3, **ROLLOUT_SETTINGS)
    return home


@pytest.fixture
def world(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """A private copy of the template: its settings, a simulation on its own Dagster instance."""
    home = tmp_path / "copy" / ".retrain"
    with copied_state(template, home, STREAM, monkeypatch, **ROLLOUT_SETTINGS) as state:
        settings, simulation = state
        yield World(settings, simulation.pipeline, simulation)


@pytest.fixture
def cli_env(world: World, monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.setenv("RETRAIN_HOME", str(world.settings.home))
    monkeypatch.setenv("DAGSTER_HOME", str(world.settings.dagster_home))
    return world


def _notifier(world: World):
    from retraining_assets.core.notify import Notifier

    return Notifier.from_settings(world.settings)


def register_model(world: World, seed: int, *, flipped: bool = False, months: int = 1) -> int:
    """A real random forest trained on the first ``months`` demo months (400 rows each);
    ``flipped`` learns the opposite labels (a deliberately bad model)."""
    return trained_version(world.registry, STREAM, seed=seed, flipped=flipped, months=months)


def start(world: World, plan: RolloutPlan | None = None, **model: bool | int) -> rs.Rollout:
    challenger = register_model(world, seed=len(world.registry.list_versions("demo")), **model)
    return rs.start_rollout(
        world.registry,
        _notifier(world),
        "demo",
        challenger,
        plan or rollout_plan(world.pipeline),
        actor=ACTOR,
        reason="test",
        salt=f"test-v{challenger}",  # the same routing in every run
    )


def traffic(
    world: World,
    entities: int,
    accuracy: dict[str, float],
    *,
    routed: dict[str, int] | None = None,
) -> rs.Rollout:
    """Serve ``entities`` new entities at the active rollout's current step, as the service
    does (routed by the rollout's router unless ``routed`` forces the counts), and observe
    each prediction's outcome: exactly ``accuracy[variant]`` of them correct (in tenths)."""
    active = rs.active_rollout(world.registry, "demo")
    tag = f"{active.id}-{active.step}-{utc_now():%H%M%S%f}"
    ids = [f"{tag}-{i}" for i in range(entities)]
    if routed is None:
        variants = list(active.router().assign_many(ids))
    else:
        variants = [v for v, n in routed.items() for _ in range(n)]
    served: Counter[str] = Counter()
    predictions, outcomes = [], []
    for entity, variant in zip(ids, variants, strict=True):
        correct = served[variant] % 10 < round(accuracy[variant] * 10)
        served[variant] += 1
        version = active.challenger_version if variant == CHALLENGER else active.champion_version
        step = active.step
        predictions.append(
            Prediction(
                entity, "demo", entity, variant, version, active.id, "1", 0.8, utc_now(), step
            )
        )
        outcomes.append(Outcome(entity, "demo", "1" if correct else "0", None, utc_now()))
    with PredictionLog(world.registry.engine) as log:
        log.add_predictions(predictions)
        log.add_outcomes(outcomes)
        log.flush()
    return active


def outbox(world: World) -> list[tuple[str, datetime]]:
    table = notification_outbox
    with world.registry.engine.connect() as connection:
        rows = connection.execute(
            sa.select(table.c.subject, table.c.created_at).order_by(table.c.id)
        ).all()
    return [(subject, at) for subject, at in rows]


def subjects_of(world: World, rollout: rs.Rollout) -> list[str]:
    name = f"v{rollout.challenger_version} vs"
    return [subject for subject, _ in outbox(world) if name in subject]


def test_the_rollout_sensor_and_job_are_wired(settings: Settings) -> None:
    quick = settings.model_copy(update={"rollout_check_seconds": 15, "automation_running": False})
    defs = build_definitions(quick, [demo_pipeline(quick, STREAM)])
    sensor = defs.resolve_sensor_def("demo_rollout_sensor")
    assert sensor.minimum_interval_seconds == 15
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED
    assert sensor.job_name == "demo_rollout_job" and "demo_rollout_job" in job_names("demo")
    rollout_assets = {
        dg.AssetKey(["demo", "ab_test_results"]),
        dg.AssetKey(["demo", "traffic_split"]),
    }
    graph = defs.resolve_asset_graph()
    assert graph.get(dg.AssetKey(["demo", "traffic_split"])).group_name == "demo_serving"
    job_keys = {
        name: set(defs.resolve_job_def(name).asset_layer.selected_asset_keys)
        for name in ("demo_rollout_job", "demo_retraining_job")
    }
    assert job_keys["demo_rollout_job"] == rollout_assets
    assert not job_keys["demo_retraining_job"] & rollout_assets


def test_rollout_plans_follow_the_settings_and_the_task(settings: Settings) -> None:
    tuned = settings.model_copy(update={"rollout_steps": [0.1, 0.3, 1.0], "rollout_min_hours": 2.0})
    pipeline = demo_pipeline(tuned, STREAM)
    gradual = rollout_plan(pipeline, "gradual")
    assert [s.share for s in gradual.steps] == [0.1, 0.3, 1.0]
    assert {(s.min_hours, s.min_samples) for s in gradual.steps} == {(2.0, 500)}
    assert (gradual.metric, gradual.higher_is_better) == ("binary", True)
    assert rollout_plan(pipeline, "canary").steps[0].share == 0.1  # the ramp's first share
    ab = rollout_plan(pipeline, "ab", min_samples=50)
    assert (ab.steps[0].share, ab.steps[0].min_samples, ab.promote_rule) == (0.5, 50, "better")
    assert rollout_plan(pipeline).strategy == "immediate"  # the default promotion strategy
    regression = dataclasses.replace(SPEC, task="regression", classes=())
    plan = rollout_plan(dataclasses.replace(pipeline, spec=regression), "canary")
    assert (plan.metric, plan.higher_is_better) == ("continuous", False)  # absolute error
    with pytest.raises(RolloutPlanError, match="one share"):
        rollout_plan(pipeline, "ab", steps=[0.2, 0.5])


# --- the experiment decides -----------------------------------------------------------------


def test_a_better_challenger_advances_step_by_step_then_becomes_champion(
    world: World,
) -> None:
    champion = world.registry.get_alias("demo", CHAMPION).version
    started = start(world)
    decisions, shares = [], []
    for entities in (1000, 400, 200):  # >= 100 outcomes per arm with traffic at each step
        traffic(world, entities, BETTER)
        outcome = world.simulation.rollout()
        assert outcome is not None and outcome.result.success
        decisions.append(outcome.value("ab_test_results", "decision"))
        shares.append(outcome.value("traffic_split", "share"))
    assert decisions == ["advance", "advance", "promote"]
    assert shares == [0.5, 1.0, 1.0]
    ended = rs.get_rollout(world.registry, started.id)
    assert ended.status == "promoted"
    assert world.registry.get_alias("demo", CHAMPION).version == started.challenger_version
    assert world.registry.get_alias("demo", CHALLENGER) is None
    # the UI shows the new champion and the rollout's evidence
    event = world.instance.get_latest_materialization_event(dg.AssetKey(["demo", "champion_model"]))
    metadata = event.asset_materialization.metadata
    assert metadata["version"].value == started.challenger_version
    assert metadata["previous_version"].value == champion
    results = outcome.metadata["ab_test_results"]
    assert results["rollout_id"] == started.id and results["step"] == "3/3"
    assert "| challenger | v" in results["variants"]
    with serving_reports(world.settings) as get:  # one click from the UI
        assert get(results["plot"]).content.startswith(b"\x89PNG")
    assert results["plot_preview"] == f"![rollout]({results['plot']})"  # shown inline
    # administrators heard of every traffic change before it, and of the promotion before the
    # champion moved
    assert [s.split(":")[0] for s in subjects_of(world, started)] == [
        "Rollout started",
        "Rollout step",
        "Rollout step",
        "Rollout promoted",
    ]
    notified = next(at for s, at in outbox(world) if s.startswith("Rollout promoted:"))
    move = world.registry.alias_history("demo", CHAMPION)[-1]
    audit = next(e for e in world.registry.audit_log("demo") if e.action == "rollout_promote")
    assert move.version == started.challenger_version and notified <= move.at
    assert notified <= audit.at and audit.details["rollout_id"] == started.id
    subjects = [s for s, _ in outbox(world)]
    promoted = f"Promoted: demo v{started.challenger_version} is the champion"
    assert subjects.index(promoted) > subjects.index(subjects_of(world, started)[-1])


def test_a_worse_challenger_is_rolled_back_automatically(world: World) -> None:
    champion = world.registry.get_alias("demo", CHAMPION).version
    started = start(world)
    traffic(world, 1000, {CHAMPION: 0.9, CHALLENGER: 0.5})
    outcome = world.simulation.rollout()
    assert outcome.value("ab_test_results", "decision") == "rollback"
    assert "significantly worse" in outcome.value("ab_test_results", "reason")
    assert outcome.value("traffic_split", "share") == 0.0
    assert rs.get_rollout(world.registry, started.id).status == "rolled_back"
    assert world.registry.get_alias("demo", CHAMPION).version == champion
    assert world.registry.get_alias("demo", CHALLENGER) is None
    assert subjects_of(world, started)[-1].startswith("Rollout rolled back:")
    assert world.simulation.rollout() is None  # nothing left to judge


def test_a_sample_ratio_mismatch_halts_the_rollout(world: World) -> None:
    started = start(world)  # 20% to the challenger, but the service sent half
    traffic(world, 600, BETTER, routed={CHAMPION: 300, CHALLENGER: 300})
    outcome = world.simulation.rollout()
    assert outcome.value("ab_test_results", "decision") == "halt"
    assert outcome.value("ab_test_results", "srm_p_value") < 0.001
    assert rs.get_rollout(world.registry, started.id).status == "halted"
    assert subjects_of(world, started)[-1].startswith("Rollout halted:")


def test_an_ab_test_without_a_winner_continues_then_rolls_back_at_max_samples(
    world: World,
) -> None:
    capped = world.settings.model_copy(update={"rollout_max_samples": 150})
    plan = rollout_plan(dataclasses.replace(world.pipeline, settings=capped), "ab")
    started = start(world, plan)
    same = {CHAMPION: 0.7, CHALLENGER: 0.7}
    traffic(world, 200, same)  # about 100 per arm: below max_samples
    first = world.simulation.rollout()
    assert first.value("ab_test_results", "decision") == "continue"
    assert "traffic_split" not in first.metadata  # no change, nothing materialized
    traffic(world, 200, same)
    second = world.simulation.rollout()
    assert second.value("ab_test_results", "decision") == "rollback"
    assert "no significant improvement" in second.value("ab_test_results", "reason")
    assert rs.get_rollout(world.registry, started.id).status == "rolled_back"


def test_the_sensor_never_requests_twice_for_the_same_state(world: World) -> None:
    assert isinstance(world.simulation.tick("rollout"), dg.SkipReason)  # no rollout
    started = start(world)
    skip = world.simulation.tick("rollout")
    assert isinstance(skip, dg.SkipReason) and "no outcomes yet" in skip.skip_message
    traffic(world, 100, BETTER)  # too few outcomes to advance: the decision is to continue
    request = world.simulation.tick("rollout")
    assert isinstance(request, dg.RunRequest)
    assert request.run_key == f"{started.id}:0:100:timed"
    assert request.tags["retrain/rollout_id"] == str(started.id)
    assert request.tags["retrain/challenger"] == f"v{started.challenger_version}"
    assert world.simulation.rollout().value("ab_test_results", "decision") == "continue"
    again = world.simulation.tick("rollout")
    assert isinstance(again, dg.SkipReason) and "already judged" in again.skip_message
    traffic(world, 10, BETTER)  # news: a new state, a new request
    assert world.simulation.tick("rollout").run_key == f"{started.id}:0:110:timed"


def test_a_stale_decision_is_skipped_not_applied(world: World) -> None:
    started = start(world)
    traffic(world, 1000, BETTER)
    job = world.simulation.job("demo_rollout_job")

    def run(asset: str) -> dg.ExecuteInProcessResult:
        selection = [dg.AssetKey(["demo", asset])]
        return job.execute_in_process(
            instance=world.instance, asset_selection=selection, run_config=QUIET
        )

    measured = run("ab_test_results")
    (event,) = measured.get_asset_materialization_events()
    decision = event.step_materialization_data.materialization.metadata["decision"].value
    assert decision == "advance"
    # a person moves the rollout on before the decision is carried out
    rs.advance(world.registry, _notifier(world), started, actor=ACTOR, reason="by hand")
    before = outbox(world)
    applied = run("traffic_split")
    assert applied.success  # a stale decision is news, not a failure
    assert applied.asset_materializations_for_node("demo__traffic_split") == []
    assert rs.active_rollout(world.registry, "demo").step == 1  # not advanced twice
    assert outbox(world) == before  # and nobody was told of a change that did not happen
    logs = [e.user_message for e in world.instance.all_logs(applied.run_id)]
    assert any("stale decision not applied (advance)" in m for m in logs)


# --- wiring with promotion and the operator's rollback ----------------------------------------


def test_a_passing_candidate_starts_a_rollout_instead_of_becoming_champion(
    world: World,
) -> None:
    registry = world.registry
    bad = register_model(world, seed=7, flipped=True)  # a champion any candidate beats
    current = registry.get_alias("demo", CHAMPION).version
    registry.move_alias(
        "demo", CHAMPION, bad, expected_current=current, by="t", actual_user="t", reason="setup"
    )
    job = world.simulation.job("demo_retraining_job")

    def retrain() -> dg.ExecuteInProcessResult:
        return job.execute_in_process(
            instance=world.instance,
            partition_key=STREAM.partition_key(2),
            tags={"retrain/force": "true"},
            run_config=QUIET,
        )

    result = retrain()
    gate = next(
        e for e in result.get_asset_check_evaluations() if e.check_name == "promotion_threshold"
    )
    assert gate.passed
    assert registry.get_alias("demo", CHAMPION).version == bad  # the champion stays
    started = rs.active_rollout(registry, "demo")
    assert started is not None and started.champion_version == bad
    assert started.plan == rollout_plan(world.pipeline) and started.share == 0.2
    assert registry.get_alias("demo", CHALLENGER).version == started.challenger_version
    event = world.instance.get_latest_materialization_event(dg.AssetKey(["demo", "traffic_split"]))
    assert event.asset_materialization.metadata["rollout_id"].value == started.id
    assert subjects_of(world, started) == [
        f"Rollout started: demo v{started.challenger_version} vs v{bad}, challenger traffic "
        "0% -> 20%"
    ]
    # a second passing candidate while the first is rolled out stays registered, nothing more
    result = retrain()
    assert rs.active_rollout(registry, "demo") == started
    newest = registry.list_versions("demo")[-1].version
    assert newest > started.challenger_version
    messages = [e.user_message for e in world.instance.all_logs(result.run_id)]
    assert any(f"v{newest} not rolled out" in m and "already has an active" in m for m in messages)


def test_rollback_from_the_cli_mid_rollout_rolls_the_rollout_back(
    world: World, cli_env: World
) -> None:
    champion = world.registry.get_alias("demo", CHAMPION).version
    started = start(world)
    status = CliRunner().invoke(main, ["status", "--json"])
    assert json.loads(status.output)["rollout"]["id"] == started.id
    assert f"rollout {started.id}: v{started.challenger_version} at 20.0%" in (
        CliRunner().invoke(main, ["status"]).output
    )
    refused = CliRunner().invoke(main, ["rollback", "--to", "1", "--by", "bob", "--reason", "x"])
    assert refused.exit_code == 2 and "roll it back first" in refused.output
    result = CliRunner().invoke(main, ["rollback", "--by", "bob", "--reason", "complaints"])
    assert result.exit_code == 0, result.output
    assert f"champion v{champion} serves all traffic" in result.output
    assert rs.get_rollout(world.registry, started.id).status == "rolled_back"
    assert world.registry.get_alias("demo", CHAMPION).version == champion
    entry = world.registry.audit_log("demo")[-1]
    assert (entry.action, entry.by, entry.reason) == ("rollout_rolled_back", "bob", "complaints")
    assert subjects_of(world, started)[-1].startswith("Rollout rolled back:")
    event = world.instance.get_latest_materialization_event(dg.AssetKey(["demo", "traffic_split"]))
    assert event.asset_materialization.metadata["share"].value == 0.0
    assert json.loads(CliRunner().invoke(main, ["status", "--json"]).output)["rollout"] is None


def test_approving_a_candidate_mid_rollout_is_refused_and_changes_nothing(
    world: World, cli_env: World
) -> None:
    champion = world.registry.get_alias("demo", CHAMPION).version
    pending = register_model(world, seed=99)
    decision = {"champion_version": champion, "metric": "accuracy", "lift": 0.02}
    world.registry.request_approval("demo", pending, decision=decision, by="test")
    started = start(world)
    sent = len(outbox(world))
    result = CliRunner().invoke(main, ["approve", str(pending), "--by", "al", "--reason", "ok"])
    assert result.exit_code == 2
    assert f"rollout {started.id} of 'demo" in result.output and "end it first" in result.output
    # the champion, the approval, the rollout and the outbox are as they were
    assert world.registry.get_alias("demo", CHAMPION).version == champion
    assert world.registry.get_approval("demo", pending).status == "pending"
    assert rs.active_rollout(world.registry, "demo").id == started.id
    assert len(outbox(world)) == sent
    # once the rollout has ended, the approval goes through
    rs.stop(world.registry, _notifier(world), started, actor=ACTOR, reason="test")
    again = CliRunner().invoke(main, ["approve", str(pending), "--by", "al", "--reason", "ok"])
    assert again.exit_code == 0, again.output
    assert world.registry.get_alias("demo", CHAMPION).version == pending


def test_the_rollback_job_mid_rollout_rolls_the_rollout_back(world: World) -> None:
    champion = world.registry.get_alias("demo", CHAMPION).version
    started = start(world)
    result = world.simulation.job("demo_rollback_job").execute_in_process(
        instance=world.instance,
        run_config={"ops": {"demo_rollback": {"config": {"user": "carol", "reason": "alerts"}}}},
    )
    assert result.success
    assert rs.get_rollout(world.registry, started.id).status == "rolled_back"
    assert world.registry.get_alias("demo", CHAMPION).version == champion
    (event,) = result.get_asset_materialization_events()
    materialization = event.step_materialization_data.materialization
    assert materialization.asset_key == dg.AssetKey(["demo", "traffic_split"])
    assert materialization.metadata["status"].value == "rolled_back"


# --- live traffic through the prediction service ------------------------------------------

LIVE = DemoStream(rows_per_month=1500, months=4, end_month=pd.Timestamp("2024-04-01"))


def live_traffic(world: World, chunk_rows: int = 250) -> TrafficOutcome:
    """Month 4's 1,500 records (new entities) replayed through the real service over HTTP,
    the rollout judged after every chunk; the service re-reads the rollout at each request."""
    settings = world.settings.model_copy(update={"serve_refresh_seconds": 0.0})
    pipeline = dataclasses.replace(world.pipeline, settings=settings)
    with local_service(pipeline) as service:
        return world.simulation.traffic(service, LIVE.generate(3), chunk_rows)


def logged(world: World, **where: object) -> int:
    table = schema.predictions
    query = sa.select(sa.func.count()).select_from(table)
    query = query.where(*(table.c[name] == value for name, value in where.items()))
    with world.registry.engine.connect() as connection:
        return connection.execute(query).scalar_one()


def test_live_traffic_rolls_a_challenger_out_step_by_step_to_champion(
    world: World,
) -> None:
    before = logged(world)
    # a champion that learnt the opposite labels: the challenger is far better at every step
    # whatever the rollout's (random) salt routes where, so no look can find it worse
    current = world.registry.get_alias("demo", CHAMPION).version
    weak = register_model(world, seed=7, flipped=True)
    world.registry.move_alias(
        "demo", CHAMPION, weak, expected_current=current, by="ci", actual_user="ci", reason="test"
    )
    started = start(world, months=3)
    version = started.challenger_version
    outcome = live_traffic(world)
    assert outcome.changes == [(version, "50%"), (version, "100%"), (version, "promoted")]
    assert all(run.result.success for run in outcome.rollouts)
    assert rs.get_rollout(world.registry, started.id).status == "promoted"
    assert world.registry.get_alias("demo", CHAMPION).version == version
    # every record was served, logged and answered; the challenger's share grew with the steps
    served = outcome.replayed
    assert served.rows == len(LIVE.generate(3)) == logged(world) - before
    assert served.variants[CHALLENGER] > served.rows * 0.2 and set(served.served) > {version}
    assert logged(world, rollout_id=started.id, rollout_step=0, variant=CHALLENGER) > 0
    assert logged(world, rollout_id=started.id, rollout_step=2, variant=CHAMPION) == 0
    # once promoted, the service answered with the new champion without a restart
    assert logged(world, rollout_id=None, variant=CHAMPION, model_version=version) > 0
    assert world.simulation.rollout() is None


def test_live_traffic_rolls_a_bad_challenger_back_and_keeps_serving(world: World) -> None:
    champion = world.registry.get_alias("demo", CHAMPION).version
    started = start(world, flipped=True)  # learnt the opposite labels
    outcome = live_traffic(world)
    assert outcome.changes == [(started.challenger_version, "rolled back")]
    assert "significantly worse" in outcome.rollouts[-1].value("ab_test_results", "reason")
    assert world.registry.get_alias("demo", CHAMPION).version == champion
    # the challenger served only its first share; after the rollback, everyone the champion
    assert outcome.replayed.variants[CHALLENGER] < outcome.replayed.rows * 0.2
    assert logged(world, rollout_id=None, variant=CHAMPION, model_version=champion) > 0
    assert subjects_of(world, started)[-1].startswith("Rollout rolled back:")
