import pytest

from retraining_assets.core.notify.paging import Episode, page


def _run(periods: list[tuple[bool, tuple[str, ...], str]], mode: str = "onset") -> list[str | None]:
    """Page a sequence of (alarm, features, reference) periods, each reading the episode the
    one before recorded, as ``drift_report`` does through its metadata."""
    previous, reasons = None, []
    for index, (alarm, features, reference) in enumerate(periods):
        paging = page(
            previous, alarm=alarm, features=features, partition=f"p{index}",
            reference=reference, mode=mode,
        )  # fmt: skip
        reasons.append(paging.reason)
        previous = Episode.of(paging.episode.metadata()) if paging.episode else None
    return reasons


def test_a_lasting_alarm_pages_at_its_onset_only() -> None:
    reasons = _run([(True, ("income",), "r1")] * 4)
    assert reasons == ["a new alarm", None, None, None]


def test_a_feature_joining_the_alarm_pages_once_and_leaving_does_not() -> None:
    reasons = _run([
        (True, ("income",), "r1"),
        (True, ("income", "channel"), "r1"),  # channel joins: page
        (True, ("income",), "r1"),  # channel gone: quiet
        (True, ("channel",), "r1"),  # back, but already part of the episode: quiet
    ])  # fmt: skip
    assert reasons == ["a new alarm", "channel joined the alarm raised on p0", None, None]


def test_a_quiet_period_or_a_new_reference_ends_the_episode() -> None:
    reasons = _run([
        (True, ("income",), "r1"),
        (False, (), "r1"),
        (True, ("income",), "r1"),  # the alarm is back after a quiet period
        (True, ("income",), "r2"),  # measured against a new champion's reference
    ])  # fmt: skip
    assert reasons == ["a new alarm", None, "a new alarm", "a new alarm against a new reference"]


def test_every_pages_each_alarmed_period_and_a_quiet_one_never() -> None:
    reasons = _run(
        [(True, ("income",), "r1"), (True, ("income",), "r1"), (False, (), "r1")], "every"
    )
    assert reasons[:2] == ["a new alarm", "every alarmed period pages (RETRAIN_DRIFT_NOTIFY=every)"]
    assert reasons[2] is None


def test_the_episode_survives_its_metadata_and_older_reports_have_none() -> None:
    episode = Episode("2025-03-01", "abc", ("income", "channel"))
    assert Episode.of(episode.metadata()) == episode
    assert Episode.of({"drift_alarm": True}) is None  # a report from before episodes


def test_an_unknown_mode_is_named() -> None:
    with pytest.raises(ValueError, match="RETRAIN_DRIFT_NOTIFY"):
        page(None, alarm=True, features=(), partition="p", reference="r", mode="sometimes")
