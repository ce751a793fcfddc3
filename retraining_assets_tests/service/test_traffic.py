"""Outcomes in batches (``POST /feedback/batch``) and the traffic replay client, over real HTTP:
all outcomes of a batch recorded or none, clear errors, predictions of an earlier run found in
the log, and a replay of labelled records that logs every prediction with its true outcome."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from retraining_assets.cli import main
from retraining_assets.core import schema
from retraining_assets.core.demo import SPEC
from retraining_assets.core.prediction_log import count_rows
from retraining_assets.service.app import create_app
from retraining_assets.service.server import LiveServer, local_service
from retraining_assets.service.traffic import ServiceError, TrafficReplay
from retraining_assets_tests.service.conftest import Deployed, columns_of, serving


def _predict_batch(client, deployed: Deployed, n: int, prefix: str = "e") -> list[str]:
    body = {
        "entity_ids": [f"{prefix}{i}" for i in range(n)],
        "features": columns_of(deployed.trained.frame, range(n)),
    }
    response = client.post("/predict/batch", json=body)
    assert response.status_code == 200, response.text
    return response.json()["prediction_ids"]


def _outcomes(deployed: Deployed) -> dict[str, str]:
    table = schema.prediction_outcomes
    with deployed.registry.engine.connect() as connection:
        return dict(connection.execute(sa.select(table.c.prediction_id, table.c.label)).all())


def test_a_batch_of_outcomes_is_recorded_whole(deployed: Deployed) -> None:
    with serving(create_app(deployed.pipeline)) as client:
        ids = _predict_batch(client, deployed, 6)
        # 1 and 1.0 are class "1", as in single feedback
        accepted = client.post(
            "/feedback/batch", json={"prediction_ids": ids, "outcomes": [1, "0", 1.0, 0, "1", 0]}
        )
    assert accepted.status_code == 202 and accepted.json() == {"accepted": 6}
    assert _outcomes(deployed) == dict(zip(ids, ["1", "0", "1", "0", "1", "0"], strict=True))


def test_a_batch_with_an_unknown_id_records_nothing_and_names_it(deployed: Deployed) -> None:
    with serving(create_app(deployed.pipeline)) as client:
        ids = _predict_batch(client, deployed, 3)
        unknown = "f" * 32
        response = client.post(
            "/feedback/batch", json={"prediction_ids": [*ids, unknown], "outcomes": [1, 0, 1, 0]}
        )
    assert response.status_code == 404
    body = response.json()
    assert body["unknown"] == [unknown]
    assert "1 of 4 prediction ids are unknown in pipeline 'demo'" in body["detail"]
    assert "no outcome was recorded" in body["detail"]
    assert count_rows(deployed.registry.engine, "demo") == {"predictions": 3, "outcomes": 0}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"prediction_ids": ["a" * 32, "b" * 32], "outcomes": [1]}, "outcomes has 1 values but"),
        ({"prediction_ids": ["a" * 32], "outcomes": ["2"]}, "outcomes.0: '2' is not one of"),
        ({"prediction_ids": ["a" * 32], "outcomes": [None]}, "outcomes.0: must be a class label"),
        ({"prediction_ids": [], "outcomes": []}, "prediction_ids: List should have at least 1"),
        ({"prediction_ids": ["a" * 33], "outcomes": [1]}, "prediction_ids.0: String should have"),
        ({"prediction_ids": ["a" * 32], "outcomes": [1], "x": 1}, "x: Extra inputs are not"),
        ({"outcomes": [1]}, "prediction_ids: Field required"),
    ],
)
def test_invalid_feedback_batches_get_a_422_naming_the_field(
    deployed: Deployed, body: dict, message: str
) -> None:
    with serving(create_app(deployed.pipeline)) as client:
        response = client.post("/feedback/batch", json=body)
    assert response.status_code == 422
    assert message in response.json()["message"]


def test_a_batch_finds_predictions_of_an_earlier_run_in_the_log(deployed: Deployed) -> None:
    with serving(create_app(deployed.pipeline)) as client:
        earlier = _predict_batch(client, deployed, 4, prefix="old")
    with serving(create_app(deployed.pipeline)) as client:  # nothing in memory
        recent = _predict_batch(client, deployed, 2, prefix="new")
        response = client.post(
            "/feedback/batch",
            json={"prediction_ids": [*earlier, *recent], "outcomes": [0, 1, 0, 1, 0, 1]},
        )
    assert response.status_code == 202 and response.json() == {"accepted": 6}
    assert set(_outcomes(deployed)) == {*earlier, *recent}


def test_a_replay_logs_every_record_with_its_true_outcome(deployed: Deployed) -> None:
    frame = deployed.trained.frame.iloc[:250].copy()
    frame.loc[frame.index[:5], SPEC.numeric_features[0]] = np.nan  # missing values travel too
    frame.loc[frame.index[5:10], SPEC.categorical_features[0]] = None
    deployed.start_rollout(2, share=0.5)
    with local_service(deployed.pipeline) as service:
        chunks = list(service.replay.replay(frame, chunk_rows=100))
    assert [chunk.rows for chunk in chunks] == [100, 100, 50]
    totals = chunks[0]
    for chunk in chunks[1:]:
        totals.add(chunk)
    assert totals.rows == 250 and set(totals.variants) == {"champion", "challenger"}
    assert set(totals.served) == {1, 2} and sum(totals.served.values()) == 250
    p, o = schema.predictions, schema.prediction_outcomes
    with deployed.registry.engine.connect() as connection:
        labels = connection.execute(sa.select(o.c.label)).scalars().all()
        correct = connection.execute(
            sa.select(p.c.model_version, sa.func.count())
            .join(o, o.c.prediction_id == p.c.id)
            .where(p.c.label == o.c.label)
            .group_by(p.c.model_version)
        ).all()
    # the replay's own tally of correct predictions is the log's
    assert dict(correct) == dict(totals.correct) and 0 < sum(totals.correct.values()) < 250
    # every record's own label, as the classes' strings
    assert sorted(labels) == sorted(frame[SPEC.target].astype(int).astype(str))
    assert count_rows(deployed.registry.engine, "demo") == {"predictions": 250, "outcomes": 250}


def test_a_replay_stops_with_the_service_s_reason(deployed: Deployed) -> None:
    frame = deployed.trained.frame.iloc[:10].drop(columns=[SPEC.categorical_features[0]])
    with serving(create_app(deployed.pipeline)) as client:
        replay = TrafficReplay(client, SPEC)
        with pytest.raises(KeyError, match=SPEC.categorical_features[0]):
            replay.serve(frame)
        infinite = deployed.trained.frame.iloc[:10].copy()
        infinite[SPEC.numeric_features[0]] = np.inf
        with pytest.raises(ValueError, match=f"column '{SPEC.numeric_features[0]}' has infinite"):
            replay.serve(infinite)
        unlabelled = deployed.trained.frame.iloc[:10].copy()
        unlabelled.loc[unlabelled.index[3], SPEC.target] = np.nan
        with pytest.raises(ValueError, match=f"target column '{SPEC.target}' has missing"):
            replay.serve(unlabelled)
        long_id = deployed.trained.frame.iloc[:10].copy()
        long_id[SPEC.entity_id] = "x" * 256
        with pytest.raises(ServiceError, match=r"HTTP 422: entity_ids\.0: String should have"):
            replay.serve(long_id)
    assert count_rows(deployed.registry.engine, "demo") == {"predictions": 0, "outcomes": 0}


def test_retrain_replay_plays_a_file_to_a_running_service(
    deployed: Deployed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RETRAIN_HOME", str(deployed.settings.home))
    path = tmp_path / "records.csv"
    frame = deployed.trained.frame.iloc[:300]
    frame.sample(frac=1, random_state=0).to_csv(path, index=False)  # replay restores time order
    with LiveServer(create_app(deployed.pipeline)) as server:
        result = CliRunner().invoke(
            main, ["replay", "--data", str(path), "--url", server.url, "--chunk", "120"]
        )
    assert result.exit_code == 0, result.output
    assert f"300 records replayed to {server.url}:" in result.output
    assert re.search(r"v1: 300 predictions, \d+\.\d% correct", result.output)
    assert count_rows(deployed.registry.engine, "demo") == {"predictions": 300, "outcomes": 300}
    p = schema.predictions
    with deployed.registry.engine.connect() as connection:
        entities = connection.execute(sa.select(p.c.entity_id).order_by(p.c.id)).scalars().all()
    assert entities == frame.sort_values(SPEC.time_column)[SPEC.entity_id].tolist()


def test_retrain_replay_names_a_missing_column_or_an_unreachable_service(
    deployed: Deployed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RETRAIN_HOME", str(deployed.settings.home))
    path = tmp_path / "records.csv"
    deployed.trained.frame.iloc[:10].drop(columns=[SPEC.target]).to_csv(path, index=False)
    missing = CliRunner().invoke(main, ["replay", "--data", str(path), "--url", "http://x"])
    assert missing.exit_code == 2 and f"missing column(s) '{SPEC.target}'" in missing.output
    deployed.trained.frame.iloc[:10].to_csv(path, index=False)
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
        unreachable = CliRunner().invoke(main, ["replay", "--data", str(path), "--url", url])
    assert unreachable.exit_code == 2
    assert f"cannot reach the prediction service at {url}" in unreachable.output
