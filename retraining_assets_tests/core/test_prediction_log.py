"""The prediction log: batched writes, nothing lost on failure or stop, and its aggregates."""

import contextlib
import dataclasses
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from retraining_assets.core.database import make_engine, platform_engine, upgrade
from retraining_assets.core.prediction_log import (
    Outcome,
    Prediction,
    PredictionLog,
    assignment_counts,
    count_rows,
    find_prediction,
    outcome_count,
    rollout_metric,
    variant_summaries,
)

T0 = datetime(2026, 11, 1, 12, 0)


def prediction(
    number: int,
    *,
    variant: str = "champion",
    entity: str | None = None,
    label: str | None = "0",
    value: float | None = 0.2,
    step: int | None = 0,
    at: datetime = T0,
    pipeline: str = "demo",
) -> Prediction:
    return Prediction(
        id=f"p{number:08d}",
        pipeline=pipeline,
        entity_id=entity or f"e{number}",
        variant=variant,
        model_version=1 if variant == "champion" else 2,
        rollout_id=1,
        rollout_step=step,
        label=label,
        value=value,
        created_at=at,
    )


def outcome(number: int, label: str | None = "0", value: float | None = None) -> Outcome:
    return Outcome(f"p{number:08d}", "demo", label, value, T0 + timedelta(hours=1))


def test_rows_are_written_in_batches_and_read_back(platform_db: sa.Engine) -> None:
    with PredictionLog(platform_db, batch_size=7, flush_seconds=60) as log:
        log.add_predictions(prediction(i) for i in range(50))
        log.add_outcomes(outcome(i) for i in range(20))
        log.flush()
        assert log.backlog == 0
        assert log.written == {"predictions": 50, "outcomes": 20}
    assert count_rows(platform_db, "demo") == {"predictions": 50, "outcomes": 20}
    assert count_rows(platform_db, "other") == {"predictions": 0, "outcomes": 0}
    assert find_prediction(platform_db, "demo", prediction_id="p00000003") == prediction(3)
    assert find_prediction(platform_db, "demo", prediction_id="nope") is None


def test_an_entity_resolves_to_its_latest_prediction(platform_db: sa.Engine) -> None:
    with PredictionLog(platform_db) as log:
        log.add_predictions(
            prediction(i, entity="alice", at=T0 + timedelta(minutes=i)) for i in (2, 9, 4)
        )
    assert find_prediction(platform_db, "demo", entity_id="alice").id == "p00000009"
    # rows of one batch share their timestamp: the larger (later, UUIDv7) id is the latest
    with PredictionLog(platform_db) as log:
        log.add_predictions(prediction(i, entity="carol", at=T0) for i in (31, 33, 32))
    assert find_prediction(platform_db, "demo", entity_id="carol").id == "p00000033"
    assert find_prediction(platform_db, "demo", entity_id="bob") is None
    with pytest.raises(ValueError, match="exactly one"):
        find_prediction(platform_db, "demo")


def test_writes_are_idempotent_and_the_first_outcome_wins(platform_db: sa.Engine) -> None:
    with PredictionLog(platform_db) as log:
        log.add_predictions([prediction(1), prediction(1)])
        log.add_outcomes([outcome(1, "1"), outcome(1, "0")])
    assert count_rows(platform_db, "demo") == {"predictions": 1, "outcomes": 1}
    summary = variant_summaries(platform_db, "demo", 1, None, "binary")["champion"]
    assert (summary.n, summary.mean) == (1, 0.0)  # predicted "0", first outcome "1": wrong


def test_classification_summaries_count_correct_predictions_per_variant(
    platform_db: sa.Engine,
) -> None:
    # champion right on 6 of 10, challenger right on 9 of 10; 5 challenger rows lack outcomes
    with PredictionLog(platform_db) as log:
        log.add_predictions(prediction(i, label="1") for i in range(10))
        log.add_predictions(prediction(i, variant="challenger", label="1") for i in range(10, 25))
        log.add_outcomes(outcome(i, "1" if i < 6 else "0") for i in range(10))
        log.add_outcomes(outcome(i, "1" if i < 19 else "0") for i in range(10, 20))
    found = variant_summaries(platform_db, "demo", 1, T0, "binary")
    assert (found["champion"].n, found["champion"].mean) == (10, pytest.approx(0.6))
    assert (found["challenger"].n, found["challenger"].mean) == (10, pytest.approx(0.9))
    assert found["challenger"].variance == pytest.approx(0.9 * 0.1 * 10 / 9)
    assert outcome_count(platform_db, "demo", 1, T0) == 20
    assert assignment_counts(platform_db, "demo", 1, T0) == {"champion": 10, "challenger": 15}
    later = T0 + timedelta(seconds=1)
    assert variant_summaries(platform_db, "demo", 1, later, "binary")["champion"].n == 0
    assert rollout_metric("binary") == rollout_metric("multiclass") == ("binary", True)


def test_regression_summaries_are_absolute_errors(platform_db: sa.Engine) -> None:
    with PredictionLog(platform_db) as log:
        log.add_predictions(prediction(i, label=None, value=10.0) for i in range(3))
        log.add_outcomes(outcome(i, None, v) for i, v in enumerate([7.0, 10.0, 14.0]))
    champion = variant_summaries(platform_db, "demo", 1, None, "regression")["champion"]
    assert (champion.n, champion.mean) == (3, pytest.approx(7 / 3))  # errors 3, 0, 4
    assert champion.variance == pytest.approx(
        ((3 - 7 / 3) ** 2 + (7 / 3) ** 2 + (4 - 7 / 3) ** 2) / 2
    )
    assert rollout_metric("regression") == ("continuous", False)


def test_a_step_counts_only_traffic_routed_by_that_step(platform_db: sa.Engine) -> None:
    """A service that has not seen a step change yet logs the old step: it must not count
    against the new step's weights (that would look like a sample ratio mismatch)."""
    with PredictionLog(platform_db) as log:
        log.add_predictions(prediction(i, step=0) for i in range(8))
        log.add_predictions(prediction(i, step=1, variant="challenger") for i in range(8, 11))
    assert assignment_counts(platform_db, "demo", 1, None, step=1) == {
        "champion": 0,
        "challenger": 3,
    }
    assert assignment_counts(platform_db, "demo", 1, None, step=0)["champion"] == 8


def test_a_failed_write_keeps_its_rows_and_retries(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'late.db'}"
    engine = make_engine(url)  # not migrated yet: every write fails with "no such table"
    log = PredictionLog(engine, batch_size=5, flush_seconds=0.01).start()
    log.add_predictions(prediction(i) for i in range(12))
    while log.last_error is None:  # the first attempt has failed once this is set
        with contextlib.suppress(TimeoutError):
            log.flush(timeout=0.1)
    assert log.backlog == 12 and "no such table" in log.last_error
    upgrade(engine)  # the database comes back
    log.flush()
    log.close()
    assert count_rows(engine, "demo")["predictions"] == 12
    assert log.last_error is None


def test_rows_that_cannot_be_written_at_close_are_spooled_and_replayed(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    broken = make_engine(f"sqlite:///{tmp_path / 'missing.db'}")  # no tables
    log = PredictionLog(broken, flush_seconds=0.01, spool_dir=spool).start()
    log.add_predictions(prediction(i) for i in range(30))
    log.add_outcomes(outcome(i, "0") for i in range(10))
    log.close(timeout=10)
    assert len(list(spool.glob("*.jsonl"))) == 1
    with pytest.raises(RuntimeError, match="closed"):
        log.add_predictions([prediction(99)])

    healthy = platform_engine(f"sqlite:///{tmp_path / 'platform.db'}")
    with PredictionLog(healthy, spool_dir=spool) as replay:
        replay.flush()
    assert count_rows(healthy, "demo") == {"predictions": 30, "outcomes": 10}
    assert find_prediction(healthy, "demo", prediction_id="p00000007") == prediction(7)
    assert list(spool.glob("*.jsonl")) == []  # replayed once, then removed


def test_a_row_the_database_refuses_is_set_aside_not_retried_forever(
    platform_db: sa.Engine, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    poison = [dataclasses.replace(prediction(i), pipeline=None) for i in (1000, 1001)]
    with PredictionLog(platform_db, batch_size=10, spool_dir=spool) as log:
        log.add_predictions([*(prediction(i) for i in range(50)), poison[0]])
        log.add_predictions([*(prediction(i) for i in range(50, 100)), poison[1]])
        log.flush(timeout=60)  # returns: the poison rows no longer block the queue
        assert (log.backlog, log.refused, log.last_error) == (0, 2, None)
    assert count_rows(platform_db, "demo") == {"predictions": 100, "outcomes": 0}
    (refused,) = spool.glob("refused-*.jsonl")
    lines = [json.loads(line) for line in refused.read_text().splitlines()]
    assert [line["id"] for line in lines] == ["p00001000", "p00001001"]
    assert all("NOT NULL constraint failed: predictions.pipeline" in x["reason"] for x in lines)
    with PredictionLog(platform_db, spool_dir=spool) as again:  # set aside, never replayed
        again.flush()
    assert count_rows(platform_db, "demo")["predictions"] == 100 and refused.exists()


def test_close_writes_everything_still_queued(platform_db: sa.Engine) -> None:
    log = PredictionLog(platform_db, batch_size=100_000, flush_seconds=3600).start()
    log.add_predictions(prediction(i) for i in range(2_500))
    log.close()
    assert count_rows(platform_db, "demo")["predictions"] == 2_500


def test_the_log_works_on_postgresql(postgres_database: str) -> None:
    engine = platform_engine(postgres_database)
    with PredictionLog(engine, batch_size=50) as log:
        log.add_predictions([prediction(1), prediction(1), *(prediction(i) for i in range(2, 200))])
        log.add_outcomes(outcome(i, "0" if i % 2 else "1") for i in range(1, 101))
        # a value PostgreSQL cannot store (entity_id is VARCHAR(255)) is set aside, alone
        log.add_predictions([prediction(500, entity="x" * 300)])
        log.flush(timeout=60)
        assert log.refused == 1
    assert count_rows(engine, "demo") == {"predictions": 199, "outcomes": 100}
    summary = variant_summaries(engine, "demo", 1, T0, "binary")["champion"]
    assert (summary.n, summary.mean) == (100, pytest.approx(0.5))
    assert find_prediction(engine, "demo", entity_id="e5").id == "p00000005"
    engine.dispose()
