"""The prediction log: batched writes, nothing lost on failure or stop, and its aggregates."""

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from retraining_assets.core.database import make_engine, platform_engine, upgrade
from retraining_assets.core.prediction_log import (
    Outcome,
    Prediction,
    PredictionLog,
    SpoolError,
    assignment_counts,
    count_rows,
    find_prediction,
    outcome_count,
    variant_summaries,
)
from retraining_assets.core.rollout.plan import rollout_metric

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


# --- a value the driver refuses, the spool, the supervised writer ----------------------------


@pytest.mark.postgres
def test_a_nul_character_psycopg2_refuses_is_set_aside_and_the_writer_goes_on(
    postgres_database: str, tmp_path: Path
) -> None:
    """psycopg2 refuses a NUL with a plain ValueError (not a SQLAlchemy error): the row is
    set aside with the reason, the innocent rows of its batch are written, and so is
    everything logged after it."""
    engine = platform_engine(postgres_database)
    spool = tmp_path / "spool"
    with PredictionLog(engine, batch_size=50, flush_seconds=3600, spool_dir=spool) as log:
        log.add_predictions(
            [
                prediction(1),
                prediction(2, entity="bad\x00id"),
                *(prediction(i) for i in range(3, 9)),
            ]
        )
        log.flush(timeout=60)
        assert (log.refused, log.backlog, log.state) == (1, 0, "writing")
        log.add_predictions(prediction(i) for i in range(9, 20))
        log.flush(timeout=60)
    assert count_rows(engine, "demo")["predictions"] == 18
    (refused,) = spool.glob("refused-*.jsonl")
    (line,) = [json.loads(text) for text in refused.read_text().splitlines()]
    assert line["id"] == "p00000002" and line["entity_id"] == "bad\x00id"
    assert line["reason"].startswith("ValueError") and "NUL" in line["reason"]
    engine.dispose()


CHILD = """
import sys, time
from pathlib import Path
from datetime import datetime
from retraining_assets.core.database import make_engine
from retraining_assets.core.prediction_log import Prediction, PredictionLog
log = PredictionLog(make_engine(sys.argv[1]), flush_seconds=3600, batch_size=10**6,
                    spool_dir=Path(sys.argv[2])).start()
for i in range(int(sys.argv[3])):
    seq = log.add_predictions([Prediction(f"p{i:08d}", "demo", f"e{i}", "champion", 1, None,
                                          "0", 0.5, datetime(2026, 11, 1))])
    assert log.wait_durable(seq, timeout=60)
    print(f"durable {i}", flush=True)
time.sleep(3600)
"""


def test_rows_on_disk_survive_a_sigkill_and_are_replayed_at_the_next_start(
    platform_db: sa.Engine, tmp_path: Path
) -> None:
    spool, url = tmp_path / "spool", platform_db.url.render_as_string(hide_password=False)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, url, str(spool), "300"],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ | {"PYTHONPATH": str(Path(__file__).parents[3])},
    )
    assert child.stdout is not None
    for number, line in enumerate(child.stdout):  # each line: one row acknowledged durable
        assert line == f"durable {number}\n"
        if number == 299:
            break
    os.kill(child.pid, signal.SIGKILL)
    assert child.wait() == -signal.SIGKILL
    assert count_rows(platform_db, "demo")["predictions"] == 0  # only the spool has them
    with PredictionLog(platform_db, spool_dir=spool) as log:
        assert log.backlog == 300
        log.flush()
    assert count_rows(platform_db, "demo")["predictions"] == 300
    assert list(spool.glob("prediction-log-*.jsonl")) == []  # written, then removed


def test_a_torn_last_line_is_skipped_and_every_complete_one_replayed(
    platform_db: sa.Engine, tmp_path: Path
) -> None:
    """A crash in the middle of a write leaves a partial last line: its rows were never
    acknowledged (the sync comes after the write), so they are skipped, with a warning."""
    spool = tmp_path / "spool"
    log = PredictionLog(make_engine("sqlite://"), flush_seconds=3600, spool_dir=spool).start()
    assert log.wait_durable(log.add_predictions(prediction(i) for i in range(10)))
    assert log.wait_durable(log.add_outcomes(outcome(i) for i in range(4)))
    (segment,) = spool.glob("prediction-log-*.jsonl")
    with segment.open("ab") as torn:
        torn.write(b'{"kind": "predictions", "rows": [["p00000099", "de')
    replay = PredictionLog(platform_db, spool_dir=spool)
    replay.start()  # the first log still holds its segment: untouched (see the next test)
    replay.close()
    assert count_rows(platform_db, "demo") == {"predictions": 0, "outcomes": 0}
    log.spool.close(0)  # as if that process had died: its lock is gone, the file stays
    with PredictionLog(platform_db, spool_dir=spool) as again:
        again.flush()
    assert count_rows(platform_db, "demo") == {"predictions": 10, "outcomes": 4}
    assert find_prediction(platform_db, "demo", prediction_id="p00000099") is None


def test_a_live_log_keeps_its_segment_from_a_second_log_on_the_same_folder(
    platform_db: sa.Engine, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    first = PredictionLog(platform_db, flush_seconds=3600, spool_dir=spool).start()
    assert first.wait_durable(first.add_predictions(prediction(i) for i in range(5)))
    with PredictionLog(platform_db, spool_dir=spool) as second:
        assert second.backlog == 0  # the first one's segment is locked: not replayed
    assert count_rows(platform_db, "demo")["predictions"] == 0
    first.close()
    assert count_rows(platform_db, "demo")["predictions"] == 5


def test_a_writer_failing_outside_a_write_restarts_and_loses_nothing(
    platform_db: sa.Engine, tmp_path: Path
) -> None:
    """Setting a refused row aside fails (the spool folder was replaced by a file): the
    writer logs it and restarts, the rows stay queued, the state says so; once the folder is
    back, the row is set aside and the rest written."""
    spool, moved = tmp_path / "spool", tmp_path / "moved"
    poison = dataclasses.replace(prediction(1000), pipeline=None)
    log = PredictionLog(platform_db, flush_seconds=3600, spool_dir=spool).start()
    spool.rename(moved)
    spool.write_text("not a folder")
    log.add_predictions([prediction(1), poison, prediction(2)])
    with contextlib.suppress(TimeoutError):
        log.flush(timeout=0)  # wakes the writer up: it fails, and restarts
    while log.status()["restarts"] == 0:
        time.sleep(0.01)
    status = log.status()
    assert status["state"] == "restarting" and status["backlog"] == 3
    assert "NotADirectoryError" in status["last_error"]
    spool.unlink()
    moved.rename(spool)
    log.flush()
    assert (log.state, log.backlog, log.refused) == ("writing", 0, 1)
    log.close()
    assert count_rows(platform_db, "demo")["predictions"] == 2
    assert len(list(spool.glob("refused-*.jsonl"))) == 1


def test_a_spool_folder_that_cannot_be_created_is_named_when_the_log_is_built(
    tmp_path: Path,
) -> None:
    # built, not started: `retrain serve` builds the app before uvicorn, whose failed startup
    # would print a traceback
    (tmp_path / "spool").write_text("")
    folder = tmp_path / "spool" / "demo"
    with pytest.raises(SpoolError, match=rf"spool folder {folder} \(in RETRAIN_HOME\).*Not a dir"):
        PredictionLog(make_engine("sqlite://"), spool_dir=folder)
