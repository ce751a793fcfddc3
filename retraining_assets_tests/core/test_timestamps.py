"""core/timestamps.py: the one form of a time in the project's JSON."""

from datetime import UTC, datetime, timedelta, timezone

from retraining_assets.core.timestamps import iso_utc, utc_now


def test_iso_utc_is_iso_8601_utc_with_a_z() -> None:
    assert iso_utc(datetime(2024, 3, 1, 12)) == "2024-03-01T12:00:00Z"  # naive: UTC
    assert iso_utc(datetime(2024, 3, 1, 12, tzinfo=UTC)) == "2024-03-01T12:00:00Z"
    paris = timezone(timedelta(hours=1))
    assert iso_utc(datetime(2024, 3, 1, 13, 0, 0, 5, tzinfo=paris)) == "2024-03-01T12:00:00.000005Z"
    assert iso_utc(None) is None
    assert datetime.fromisoformat(iso_utc(utc_now())).tzinfo == UTC  # reads back as UTC
