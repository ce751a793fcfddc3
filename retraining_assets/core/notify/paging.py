"""Which drift alarms page administrators (``RETRAIN_DRIFT_NOTIFY``).

A drift that persists raises the alarm period after period (weather's champion alarmed in 44
of 47 months): the alarm keeps the trigger, the UI and the backtest informed, but mailing the
same shift every period is how a monitor gets muted. An *episode* is a run of consecutive
alarmed periods measured against one reference; with ``onset`` (the default) the first period
of an episode pages, and a later one only when a feature outside the episode's features so far
joins. A period without an alarm, or a new reference (a promotion, a rollback, a re-validated
reference), ends the episode. ``every`` pages each alarmed period.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

NOTIFY_MODES = ("onset", "every")


@dataclass(frozen=True)
class Episode:
    """An alarm that has lasted since period ``since`` against the reference ``reference``
    (its profile hash), with every feature that alarmed in it."""

    since: str
    reference: str
    features: tuple[str, ...]

    def metadata(self) -> dict[str, object]:
        """As the next period reads it back (``Episode.of``)."""
        return {
            "drift_episode_since": self.since,
            "drift_episode_reference": self.reference,
            "drift_episode_features": list(self.features),
        }

    @classmethod
    def of(cls, metadata: Mapping[str, object]) -> Episode | None:
        """The episode a period's ``drift_report`` metadata recorded; None when it recorded
        none (no alarm, or a report from before episodes)."""
        since, reference = (
            metadata.get("drift_episode_since"),
            metadata.get("drift_episode_reference"),
        )
        if not since or not reference:
            return None
        features = metadata.get("drift_episode_features") or ()
        return cls(str(since), str(reference), tuple(str(f) for f in features))  # type: ignore[union-attr]


@dataclass(frozen=True)
class Page:
    """This period's paging decision: ``reason`` is why it pages (None: it does not), ``quiet``
    why not, ``episode`` the episode after this period (None without an alarm)."""

    episode: Episode | None
    reason: str | None = None
    quiet: str | None = None


def page(
    previous: Episode | None,
    *,
    alarm: bool,
    features: Sequence[str],
    partition: str,
    reference: str,
    mode: str = "onset",
) -> Page:
    """Whether this period's drift alarm pages, given the episode the previous period ended
    with (see the module docstring)."""
    if mode not in NOTIFY_MODES:
        raise ValueError(f"RETRAIN_DRIFT_NOTIFY must be one of {list(NOTIFY_MODES)}, got {mode!r}")
    if not alarm:
        return Page(None)
    if previous is None or previous.reference != reference:
        reason = "a new alarm" if previous is None else "a new alarm against a new reference"
        return Page(Episode(partition, reference, tuple(features)), reason)
    known = set(previous.features)
    joined = [f for f in features if f not in known]
    episode = Episode(previous.since, reference, (*previous.features, *joined))
    if joined:
        return Page(episode, f"{', '.join(joined)} joined the alarm raised on {previous.since}")
    if mode == "every":
        return Page(episode, "every alarmed period pages (RETRAIN_DRIFT_NOTIFY=every)")
    return Page(episode, quiet=f"the alarm raised on {previous.since} continues, no new feature")
