import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from retraining_assets.core.database import (
    DatabaseError,
    make_engine,
    mask_url,
    normalise_url,
    platform_engine,
)
from retraining_assets.core.schema import demo_records


def test_sqlite_is_opened_in_wal_mode_with_a_busy_timeout(platform_db: sa.Engine) -> None:
    with platform_db.connect() as connection:
        assert connection.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(sa.text("PRAGMA busy_timeout")).scalar() >= 5000


def test_concurrent_writers_do_not_fail(platform_db: sa.Engine) -> None:
    errors: list[Exception] = []

    def write(worker: int) -> None:
        try:
            for i in range(30):
                with platform_db.begin() as connection:
                    connection.execute(demo_records.insert(), [_row(worker * 100 + i)])
        except Exception as error:  # collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=write, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with platform_db.connect() as connection:
        assert (
            connection.execute(sa.select(sa.func.count()).select_from(demo_records)).scalar() == 120
        )


def _row(i: int) -> dict:
    import datetime

    return dict(
        event_time=datetime.datetime(2024, 1, 1),
        customer_id=f"c{i}",
        age=30,
        income=1.0,
        debt_ratio=0.1,
        credit_score=700,
        loan_amount=1.0,
        loan_term=12,
        open_accounts=1,
        late_payments=0,
        utilization=0.1,
        employment_years=1.0,
        home_ownership="OWN",
        purpose="car",
        region="north",
        channel="web",
        defaulted=0,
    )


def test_postgres_urls_are_pinned_to_psycopg2() -> None:
    assert normalise_url("postgresql://u@h/db") == "postgresql+psycopg2://u@h/db"
    assert normalise_url("postgresql+psycopg2://u@h/db") == "postgresql+psycopg2://u@h/db"
    assert normalise_url("sqlite:///x.db") == "sqlite:///x.db"


def test_passwords_are_masked() -> None:
    assert (
        mask_url("postgresql+psycopg2://bob:hunter2@db:5432/x")
        == "postgresql+psycopg2://bob:***@db:5432/x"
    )


def test_unreachable_database_fails_clearly_without_the_password(tmp_path: Path) -> None:
    with pytest.raises(DatabaseError) as caught:
        platform_engine("postgresql+psycopg2://bob:hunter2@127.0.0.1:1/platform")
    assert "bob:***@127.0.0.1:1/platform" in str(caught.value)
    assert "hunter2" not in str(caught.value)
    # an SQLite file in a folder that cannot be created is named too
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises((DatabaseError, OSError)):
        make_engine(f"sqlite:///{blocker}/sub/platform.db")
