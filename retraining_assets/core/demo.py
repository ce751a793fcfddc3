"""The embedded demo stream: a seeded credit-risk table with documented drift events.

Each month of the stream is generated from ``(seed, month offset)`` alone, so any month can be
(re)generated on its own, seeding is idempotent and "the next month arrives" is one call.
Offsets count months from the stream's first month; by default the stream has 27 months
ending with the last complete calendar month, so partitions and schedules line up with today.

Ground truth, as data (``DEMO_EVENTS``) that tests and the documentation read. Every event
starts *inside* a month, on day ``ONSET_DAY`` (the 12th), at the moment ``DemoStream.onset``
gives, so a product that only looks at whole months notices it up to 19 days late:

- offsets 0-8, **stable**: one fixed distribution and one fixed label relation;
- from the 12th of offset 9 to the 12th of offset 14, **gradual covariate shift**: ``income``
  and ``utilization`` rise steadily (inflation; credit lines used more), and ``loan_amount``,
  which scales with income, follows; the label relation unchanged;
- from the 12th of offset 17, **abrupt covariate shift**: ``credit_score`` drops,
  ``loan_amount`` jumps and a new ``channel`` ("partner_api") appears;
- from the 12th of offset 22, **concept drift**: feature distributions stay, but the relation
  of features to ``defaulted`` changes (region and employment start to matter, utilization
  stops mattering).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from retraining_assets.core.dataset import DatasetSpec
from retraining_assets.core.schema import demo_records

TIME_COLUMN = "event_time"
TARGET = "defaulted"
ENTITY_ID = "customer_id"
NUMERIC_FEATURES = (
    "age",
    "income",
    "debt_ratio",
    "credit_score",
    "loan_amount",
    "loan_term",
    "open_accounts",
    "late_payments",
    "utilization",
    "employment_years",
)
CATEGORICAL_FEATURES = ("home_ownership", "purpose", "region", "channel")
DEFAULT_MONTHS = 27
DEFAULT_ROWS_PER_MONTH = 5000
ONSET_DAY = 12  # the day of its first month on which each drift event starts


@dataclass(frozen=True)
class DriftEvent:
    """A ground-truth event: what changes, in which features, over which month offsets. A
    change starts on day ``ONSET_DAY`` of ``first_offset`` (``DemoStream.onset``); the stable
    stretch starts with the stream."""

    name: str
    kind: str  # "stable" | "gradual_covariate" | "abrupt_covariate" | "concept"
    first_offset: int
    last_offset: int | None  # None: the change persists to the end of the stream
    features: tuple[str, ...]
    description: str


DEMO_EVENTS: tuple[DriftEvent, ...] = (
    DriftEvent("stable", "stable", 0, 8, (), "One distribution, one label relation."),
    DriftEvent(
        "inflation",
        "gradual_covariate",
        9,
        14,
        ("income", "utilization", "loan_amount"),
        "Income rises 30% and utilization 0.21 in five months, steadily, then stay; "
        "loan amounts follow income.",
    ),
    DriftEvent(
        "new_partner_channel",
        "abrupt_covariate",
        17,
        None,
        ("credit_score", "loan_amount", "channel"),
        "A partner channel brings lower credit scores and 1.6x larger loans at once.",
    ),
    DriftEvent(
        "recession",
        "concept",
        22,
        None,
        (),
        "Defaults start to depend on region and short employment; utilization stops mattering.",
    ),
)
STABLE = DEMO_EVENTS[0]
GRADUAL = DEMO_EVENTS[1]
ABRUPT = DEMO_EVENTS[2]
CONCEPT = DEMO_EVENTS[3]

SPEC = DatasetSpec(
    time_column=TIME_COLUMN,
    target=TARGET,
    task="binary",
    numeric_features=NUMERIC_FEATURES,
    categorical_features=CATEGORICAL_FEATURES,
    entity_id=ENTITY_ID,
    classes=("0", "1"),
)


def last_complete_month(today: datetime | None = None) -> pd.Timestamp:
    """The first day of the last calendar month that has ended."""
    today = pd.Timestamp(today or datetime.now()).normalize()
    return (today.replace(day=1) - pd.DateOffset(months=1)).normalize()


@dataclass(frozen=True)
class DemoStream:
    """A seeded stream of monthly credit applications with known drift events."""

    seed: int = 7
    months: int = DEFAULT_MONTHS
    rows_per_month: int = DEFAULT_ROWS_PER_MONTH
    end_month: pd.Timestamp | None = None  # default: the last complete calendar month

    @property
    def first_month(self) -> pd.Timestamp:
        end = self.end_month if self.end_month is not None else last_complete_month()
        return pd.Timestamp(end) - pd.DateOffset(months=self.months - 1)

    def month_start(self, offset: int) -> pd.Timestamp:
        return self.first_month + pd.DateOffset(months=offset)

    def offset_of(self, month: datetime | str) -> int:
        month = pd.Timestamp(month)
        first = self.first_month
        return (month.year - first.year) * 12 + month.month - first.month

    def partition_key(self, offset: int) -> str:
        return self.month_start(offset).strftime("%Y-%m-%d")

    def onset(self, event: DriftEvent) -> pd.Timestamp:
        """When ``event`` starts: the 12th of its first month (the stream's start if stable)."""
        start = self.month_start(event.first_offset)
        return start if event.kind == "stable" else start + pd.Timedelta(days=ONSET_DAY - 1)

    def generate(self, offset: int) -> pd.DataFrame:
        """The records of month ``offset`` (any offset >= 0, also beyond ``months``)."""
        if offset < 0:
            raise ValueError(f"month offset must be >= 0, got {offset}")
        rng = np.random.default_rng([self.seed, offset])
        n = int(rng.integers(int(self.rows_per_month * 0.95), int(self.rows_per_month * 1.05) + 1))
        start = self.month_start(offset)
        seconds = (start + pd.DateOffset(months=1) - start).total_seconds()
        # arrival times from a stream of their own: the regime of a row depends on its time
        clock = np.random.default_rng([self.seed, offset, 1])
        times = (start + pd.to_timedelta(np.sort(clock.uniform(0, seconds, n)), unit="s")).floor(
            "s"
        )
        regime = self._regime(times)
        frame = _features(rng, n, regime)
        frame[TARGET] = _labels(rng, frame, regime)
        frame.insert(0, TIME_COLUMN, times)
        frame.insert(1, ENTITY_ID, [f"C{offset:03d}-{i:06d}" for i in rng.permutation(n)])
        return frame

    def _regime(self, times: pd.DatetimeIndex) -> _Regime:
        """Where each row stands in the events, from its timestamp."""
        gradual_start, gradual_end = self.onset(GRADUAL), self._onset_in(GRADUAL.last_offset)
        progress = (times - gradual_start) / (gradual_end - gradual_start)
        return _Regime(
            gradual=np.clip(np.asarray(progress, dtype=float), 0.0, 1.0),
            abrupt=np.asarray(times >= self.onset(ABRUPT)),
            concept=np.asarray(times >= self.onset(CONCEPT)),
        )

    def _onset_in(self, offset: int) -> pd.Timestamp:
        return self.month_start(offset) + pd.Timedelta(days=ONSET_DAY - 1)

    def records(self) -> pd.DataFrame:
        """Every month of the stream, in time order."""
        return pd.concat([self.generate(o) for o in range(self.months)], ignore_index=True)

    def events(self) -> list[dict[str, object]]:
        """``DEMO_EVENTS`` with their onsets in this stream, as ``FILE.events.json`` holds them."""
        return [
            {
                "name": event.name,
                "kind": event.kind,
                "onset": f"{self.onset(event):%Y-%m-%d}",
                "features": list(event.features),
            }
            for event in DEMO_EVENTS
        ]

    def export(self, path: str | Path) -> tuple[Path, Path]:
        """Write the records to ``path`` (CSV: ``event_time``, ``customer_id``, the features,
        ``defaulted``) and the events beside it (``FILE.events.json``), so anyone can backtest
        the stream and measure the reaction to its ground truth; returns both paths."""
        path = Path(path)
        if path.suffix.lower() != ".csv":
            raise ValueError(f"the demo stream is exported as CSV: '{path}' does not end in .csv")
        path.parent.mkdir(parents=True, exist_ok=True)
        records = self.records()
        records[TIME_COLUMN] = records[TIME_COLUMN].dt.strftime("%Y-%m-%d %H:%M:%S")
        events = path.with_suffix(".events.json")
        records.to_csv(path, index=False)
        events.write_text(json.dumps(self.events(), indent=2) + "\n")
        return path, events

    # --- the embedded database ---------------------------------------------------------
    def seed_database(self, engine: sa.Engine, through: int | None = None) -> list[int]:
        """Insert every month up to offset ``through`` (default: the whole stream) that is not
        there yet; returns the offsets inserted. Idempotent: run it as often as you like."""
        last = self.months - 1 if through is None else through
        return [offset for offset in range(last + 1) if self._insert_month(engine, offset)]

    def append_next_month(self, engine: sa.Engine) -> int:
        """New data arrives: insert the first month not in the database; returns its offset."""
        offset = self.months_present(engine)
        self._insert_month(engine, offset)
        return offset

    def months_present(self, engine: sa.Engine) -> int:
        """How many consecutive months from the first are in the database."""
        offset = 0
        while self._month_count(engine, offset):
            offset += 1
        return offset

    def _month_count(self, engine: sa.Engine, offset: int) -> int:
        column = demo_records.c[TIME_COLUMN]
        start, end = self.month_start(offset), self.month_start(offset + 1)
        query = sa.select(sa.func.count()).where(
            column >= start.to_pydatetime(), column < end.to_pydatetime()
        )
        with engine.connect() as connection:
            return int(connection.execute(query).scalar_one())

    def _insert_month(self, engine: sa.Engine, offset: int) -> bool:
        if self._month_count(engine, offset):
            return False
        rows = self.generate(offset)
        rows[TIME_COLUMN] = rows[TIME_COLUMN].dt.to_pydatetime()
        records = rows.astype(object).where(rows.notna(), None).to_dict("records")
        with engine.begin() as connection:  # a month is inserted whole or not at all
            connection.execute(demo_records.insert(), records)
        return True


@dataclass(frozen=True)
class _Regime:
    """Per row: how far the gradual shift has gone (0 to 1), and whether the abrupt shift and
    the concept drift have started."""

    gradual: np.ndarray
    abrupt: np.ndarray
    concept: np.ndarray


def _features(rng: np.random.Generator, n: int, regime: _Regime) -> pd.DataFrame:
    shift, abrupt = regime.gradual, regime.abrupt
    age = np.clip(rng.normal(41, 12, n), 18, 85).astype(int)
    employment = np.minimum(rng.gamma(2.0, 3.0, n), age - 16).round(1)
    employment[rng.random(n) < 0.02] = np.nan  # applicants who left it blank
    income = rng.lognormal(np.log(52) + 0.006 * (age - 41), 0.45, n) * (1 + 0.3 * shift)
    debt_ratio = np.clip(rng.beta(2.2, 5.0, n), 0, 1)
    credit_score = np.clip(rng.normal(680 - 45 * abrupt, 60, n), 300, 850).astype(int)
    loan_amount = rng.lognormal(np.log(14) + 0.35 * np.log(income / 52), 0.5, n) * np.where(
        abrupt, 1.6, 1.0
    )
    utilization = np.clip(rng.beta(2.0, 3.5, n) + 0.21 * shift, 0, 1)
    return pd.DataFrame(
        {
            "age": age,
            "income": income.round(2),
            "debt_ratio": debt_ratio.round(4),
            "credit_score": credit_score,
            "loan_amount": loan_amount.round(2),
            "loan_term": rng.choice([12, 24, 36, 48, 60], n, p=[0.1, 0.2, 0.35, 0.15, 0.2]),
            "open_accounts": rng.poisson(4.0, n),
            "late_payments": rng.poisson(0.6, n),
            "utilization": utilization.round(4),
            "employment_years": employment,
            "home_ownership": rng.choice(["RENT", "OWN", "MORTGAGE"], n, p=[0.4, 0.2, 0.4]),
            "purpose": rng.choice(
                ["debt_consolidation", "car", "home", "education", "business"],
                n,
                p=[0.4, 0.2, 0.15, 0.1, 0.15],
            ),
            "region": rng.choice(["north", "south", "east", "west"], n, p=[0.3, 0.25, 0.25, 0.2]),
            "channel": _channels(rng, abrupt),
        }
    )


def _channels(rng: np.random.Generator, abrupt: np.ndarray) -> np.ndarray:
    """The application channel; the partner API opens with the abrupt shift."""
    channels = np.array(["branch", "web", "broker", "partner_api"])
    before = np.cumsum([0.45, 0.35, 0.20, 0.0])
    after = np.cumsum([0.30, 0.25, 0.10, 0.35])
    draws = rng.random(len(abrupt))
    picked = np.where(
        abrupt, np.searchsorted(after, draws, side="right"), np.searchsorted(before, draws, "right")
    )
    return channels[np.minimum(picked, len(channels) - 1)]


def _labels(rng: np.random.Generator, frame: pd.DataFrame, regime: _Regime) -> np.ndarray:
    """Default probability from a logistic score; its coefficients change at the concept drift.

    Scores use standardised features with *fixed* centres, so a covariate shift moves default
    rates the way it would in reality without changing the relation itself.
    """
    debt = (frame["debt_ratio"] - 0.31) / 0.16
    score = (frame["credit_score"] - 680) / 60
    late = frame["late_payments"] - 0.6
    employment = frame["employment_years"].fillna(6.0)
    util = (frame["utilization"] - 0.36) / 0.19
    before = -0.9 + 1.3 * debt - 1.2 * score + 1.0 * util + 0.6 * late
    south = (frame["region"] == "south").to_numpy()
    short_job = (employment < 2.0).to_numpy()
    after = -1.1 + 1.3 * debt - 0.3 * score + 0.6 * late + 2.4 * south + 1.8 * short_job
    logit = np.where(regime.concept, after, before)
    probability = 1.0 / (1.0 + np.exp(-np.asarray(logit, dtype=float)))
    return (rng.random(len(frame)) < probability).astype(int)
