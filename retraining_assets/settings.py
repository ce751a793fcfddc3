"""Every threshold, window, path and URL of the product, read once.

Values come, highest priority first, from keyword arguments, ``RETRAIN_*`` environment
variables, a TOML settings file (``RETRAIN_SETTINGS_FILE``, default ``$RETRAIN_HOME/settings.toml``)
and the defaults below. An invalid value fails at load time with a message naming the setting.
"""

from __future__ import annotations

import os
import re
import tomllib
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from retraining_assets.core.drift.dataset_verdict import parse_mode
from retraining_assets.core.drift_thresholds import DriftThresholds, ThresholdError
from retraining_assets.core.labels import LabelDelay, parse_label_delay
from retraining_assets.core.locations import (
    Location,
    folder_or_url,
    location,
    unwritable_folder,
)
from retraining_assets.core.strategies import Strategy, share_problem
from retraining_assets.core.timescales import (
    DEFAULT_DRIFT_WINDOW,
    Duration,
    Period,
    TimeScaleError,
    TimeScales,
)

ENV_PREFIX = "RETRAIN_"
ModelFamily = Literal["random_forest", "xgboost", "neural_net", "ensemble"]
CommaList = Annotated[list[str], NoDecode]
# Dagster's VALID_NAME_REGEX_STR (dagster._core.definitions.utils): a pipeline's name prefixes
# its asset keys, jobs and groups
DAGSTER_NAME = re.compile(r"[A-Za-z0-9_]+")
# Each drift setting and the DriftThresholds knob it sets.
DRIFT_KNOBS = {
    "psi_alert": "psi_alert",
    "psi_warning": "psi_warning",
    "wasserstein_threshold": "wasserstein",
    "jensen_shannon_threshold": "jensen_shannon",
    "unseen_share_threshold": "unseen_share",
    "ks_significance": "significance",
    "dataset_drift_share": "dataset_drift_share",
}


class SettingsError(ValueError):
    """A setting has an invalid value; the message names the setting and its variable."""


def _settings_file() -> Path:
    explicit = os.environ.get(f"{ENV_PREFIX}SETTINGS_FILE")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get(f"{ENV_PREFIX}HOME", ".retrain")) / "settings.toml"


class Settings(BaseSettings):
    """The product's settings. Every field can be set as ``RETRAIN_<FIELD NAME IN CAPITALS>``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="forbid", frozen=True, validate_default=True
    )

    # --- state -------------------------------------------------------------------------
    home: Path = Field(
        Path(".retrain"), description="State folder: Dagster home, database, artifacts."
    )
    database_url: str | None = Field(
        None, description="Platform database URL (SQLAlchemy). Default: SQLite file in home."
    )
    artifact_root: Path | str | None = Field(
        None,
        description="Model artifact folder, file:// URL or fsspec URL on object storage "
        "(s3://bucket/prefix; needs the [s3] extra). Default: home/artifacts.",
    )
    artifact_key: SecretStr | None = Field(
        None,
        description="Secret (32+ bytes) that signs model artifacts (never logged, never in the "
        "database). Default: the key file home/artifact.key, created on first use (0600).",
    )
    legacy_pickles: bool = Field(
        True,
        description="Load model files that versions from before the zip format stored as "
        "pickles (only after their signature check). Set false once none is needed: then no "
        "model load can run pickle, even with a stolen signing key.",
    )

    # --- execution ---------------------------------------------------------------------
    executor: Literal["multiprocess", "celery", "k8s"] = Field(
        "multiprocess",
        description="Where the retraining job's steps run: Dagster's multiprocess executor on "
        "the run's machine, Celery workers (dagster-celery) or one Kubernetes job per step "
        "(dagster-k8s). README: Production.",
    )
    celery_broker_url: str = Field(
        "amqp://guest:guest@127.0.0.1:5672//",
        description="Celery broker of RETRAIN_EXECUTOR=celery (RabbitMQ amqp:// or Redis "
        "redis://); the workers must use the same one (deploy/celery.yaml).",
    )
    celery_backend_url: str = Field(
        "rpc://", description="Celery result backend of RETRAIN_EXECUTOR=celery."
    )

    # --- time scales ---------------------------------------------------------------------
    partition: Period = Field(
        "daily",
        description="Monitoring period: the partition of current_data, drift_report and "
        "champion_performance (hourly, daily, weekly or monthly).",
    )
    partition_start: str | None = Field(
        None, description="First partition (YYYY-MM-DD). Default: the start of the data."
    )
    drift_window: int | None = Field(
        None,
        ge=1,
        description="Trailing monitoring periods compared with the reference. Default: 7 "
        "daily (a week), 24 hourly, 1 weekly or monthly.",
    )
    drift_min_records: int = Field(
        500, ge=0, description="The drift window widens, a period at a time, to this many records."
    )
    drift_max_records: int = Field(
        100_000,
        ge=0,
        description="Drift and live performance are computed on a seeded uniform sample of at "
        "most this many records of the drift window (0: all of them).",
    )
    engine: Literal["auto", "memory", "duckdb", "sql", "spark"] = Field(
        "auto",
        description="Where a drift window's statistics are computed: memory (pandas), sql (the "
        "source database), duckdb (Parquet/CSV files, out of core), spark (Spark SQL); auto: "
        "memory below 1,000,000 records, else the source's own engine (core.engines.choice).",
    )
    materialize_max_rows: int = Field(
        1_000_000,
        ge=0,
        description="A larger period is stored by current_data as a validated description "
        "(row count, query or Parquet row groups, statistics of a seeded sample of "
        "RETRAIN_DRIFT_MAX_RECORDS) instead of a frame (0: always a frame).",
    )
    io_manager_url: str | None = Field(
        None,
        description="Where the assets' values are stored (a folder or an fsspec URL such as "
        "s3://bucket/dagster; frames as Parquet). Default: the Dagster instance's storage.",
    )
    training_window: str = Field(
        "90d",
        description="Training window: a duration (90d, 12w, 3M, 36h) ending with the period "
        "that triggered the run.",
    )
    retrain_schedule: str = Field(
        "monthly",
        description="Retraining calendar, independent of the monitoring period: monthly, "
        "weekly, daily, none, or a cron string (UTC).",
    )
    retrain_schedule_hour: int = Field(
        3, ge=0, le=23, description="Hour (UTC) of the monthly, weekly or daily retraining."
    )

    # --- validation (Great Expectations) -----------------------------------------------
    range_tolerance: float = Field(
        0.1, ge=0, description="Numeric range check widens the reference range by this share."
    )
    allowed_out_of_range_share: float = Field(
        0.01, ge=0, le=1, description="Share of values allowed outside the widened range."
    )
    allowed_unseen_share: float = Field(
        0.05, ge=0, le=1, description="Share of categorical values allowed outside the domain."
    )
    null_rate_tolerance: float = Field(
        0.05, ge=0, le=1, description="Allowed increase of a column's null rate over reference."
    )

    # --- drift ---------------------------------------------------------------------------
    # (their ranges are DriftThresholds' rules, checked where the settings are assembled)
    psi_alert: float = Field(0.2, description="PSI at or above which a feature drifts.")
    psi_warning: float = Field(0.1, description="PSI warning tier (reported only).")
    ks_significance: float = Field(
        0.05, description="Significance level for the BH-adjusted q-values."
    )
    wasserstein_threshold: float = Field(
        0.1, description="Wasserstein distance / reference std at which a feature drifts."
    )
    jensen_shannon_threshold: float = Field(
        0.1, description="Jensen-Shannon distance at which a feature drifts."
    )
    unseen_share_threshold: float = Field(
        0.1, description="Share of unseen categories at which a feature drifts."
    )
    dataset_drift_share: float = Field(
        0.0, description="Share of drifted features for dataset drift (0: any)."
    )
    drift_verdict: str = Field(
        "weighted",  # measured best in benchmarks/alarm_benchmark.py (README: The dataset verdict)
        description="The dataset verdict that raises the drift alarm: univariate (any drifted "
        "feature), weighted, calibrated, multivariate, estimated (the drift alarm only when the "
        "champion's metric estimated without labels drops by RETRAIN_PERFORMANCE_DEGRADATION) "
        "or a '+' combination (core/drift/dataset_verdict.py).",
    )
    drift_reference: Literal["validated", "training"] = Field(
        # validated: weather auto's alarms 0.94 -> 0.40, but 2.25x monthly's daily model
        # changes (issue 15's <= 2x); README: What drift is measured against
        "training",
        description="What drift is measured against: validated (the newest training window "
        "the champion was judged on: a rejected candidate's window becomes the reference, so a "
        "drift the champion has just survived stops alarming) or training (the champion's own "
        "training window until the champion changes).",
    )
    drift_notify: Literal["onset", "every"] = Field(
        "onset",
        description="Which drift alarms page administrators: onset (the first period of an "
        "alarm, and a period where a new feature joins it; core/notify/paging.py) or every.",
    )
    drift_weighted_share: float = Field(
        0.1,
        gt=0,
        le=1,
        description="Importance-weighted share of drifted features at which the weighted "
        "verdict alarms.",
    )

    # --- retraining triggers -----------------------------------------------------------
    volume_trigger: int = Field(
        1000, ge=1, description="Retrain when more new labelled records arrived than this."
    )
    performance_degradation: float = Field(
        0.1, gt=0, lt=1, description="Retrain when the live metric drops by this relative share."
    )
    label_delay: str = Field(
        "0",
        description="A record's label arrives this long after its timestamp (a duration such "
        "as 30d, 6w, 1M; 0: at once): the volume trigger, champion_performance and the backtest "
        "see labels only then, the features at once.",
    )
    retrain_cooldown_hours: float = Field(
        6.0, ge=0, description="After a training, only the schedule starts another within this."
    )
    automation_running: bool = Field(
        True, description="Sensors and schedules start RUNNING (false: STOPPED)."
    )

    # --- training and promotion --------------------------------------------------------
    model_families: CommaList = Field(
        ["random_forest", "xgboost", "neural_net", "ensemble"],
        description="Model families to train (comma-separated).",
    )
    primary_metric: str | None = Field(
        None, description="Promotion metric. Default: accuracy (classification), rmse (regression)."
    )
    holdout_records: int = Field(
        500,
        ge=0,
        description="The newest records of a training window, held out to judge candidates "
        "and champion (at most 20% of the window; 0: the newest 20%).",
    )
    validation_records: int = Field(
        500,
        ge=0,
        description="Records drawn (seeded, by recency weight) from before the holdout for "
        "early stopping and ensemble weights (at most 15% of the window; 0: the 15% before the "
        "holdout).",
    )
    training_max_rows: int = Field(
        1_000_000,
        ge=0,
        description="A larger training window is read as its whole holdout plus a seeded, "
        "time-stratified sample of the records before it, this many rows in all (0: no cap).",
    )
    training_half_life: str | None = Field(
        "10d",
        description="Weigh a training record half as much as one this much newer (a duration); "
        "empty: every record of the window weighs the same.",
    )
    promotion_min_lift: float = Field(
        0.05, ge=0, description="Relative lift over the champion needed to promote."
    )
    promotion_floor: float | None = Field(
        None,
        description="First model only: minimum (maximum for lower-is-better) primary metric.",
    )

    # --- gradual rollout and A/B tests ---------------------------------------------------
    promotion_strategy: Strategy = Field(
        Strategy.IMMEDIATE,
        description="How a candidate that passes the gate reaches traffic: immediate (becomes "
        "champion at once), or canary/gradual/ab (enters a rollout as challenger).",
    )
    rollout_steps: Annotated[list[float], NoDecode] = Field(
        [0.05, 0.25, 0.5, 1.0],
        description="Challenger traffic shares: the gradual schedule (canary: the first; ab: 50%).",
    )
    rollout_min_hours: float = Field(
        1.0, ge=0, description="Minimum hours a rollout step runs before it may advance."
    )
    rollout_min_samples: int = Field(
        500, ge=0, description="Minimum outcomes per arm before a rollout step may advance."
    )
    rollout_max_samples: int | None = Field(
        None, ge=1, description="ab: roll back without a winner after this many outcomes per arm."
    )
    rollout_sequential: bool = Field(
        True, description="Always-valid sequential test (mSPRT), safe to peek at every check."
    )
    rollout_alpha: float = Field(
        0.05, gt=0, lt=0.5, description="Significance level of the rollout's test."
    )
    rollout_check_seconds: int = Field(
        60, ge=1, description="Seconds between rollout sensor evaluations."
    )

    # --- prediction service (`retrain serve`) -------------------------------------------
    serve_host: str = Field("127.0.0.1", description="Address the prediction service binds.")
    serve_port: int = Field(8000, ge=1, le=65535, description="Port of the prediction service.")
    serve_refresh_seconds: float = Field(
        5.0, ge=0, description="How often the service re-reads aliases and the rollout (0: always)."
    )
    serve_max_batch: int = Field(
        256, ge=1, description="Most single-row requests the service scores in one model call."
    )
    log_batch_size: int = Field(
        1000, ge=1, description="Predictions/outcomes written to the log per database round trip."
    )
    log_flush_seconds: float = Field(
        0.5, gt=0, description="Longest a logged prediction waits before it is written."
    )
    serve_durable: bool = Field(
        True,
        description="Answer only once the prediction is synced to the local spool (false: at "
        "once; a SIGKILL may then lose the answers of the last ~1 ms).",
    )
    serve_token: SecretStr | None = Field(
        None,
        description="Bearer token every route but /health requires (unset: no authentication).",
    )
    serve_docs: bool = Field(
        True, description="Serve the API docs (/docs, /redoc; assets self-hosted, no CDN)."
    )

    @field_validator("artifact_root", mode="before")
    @classmethod
    def _local_url(cls, value: object) -> object:
        return folder_or_url(value) if isinstance(value, str) else value

    @field_validator("home", "artifact_root")
    @classmethod
    def _writable(cls, value: Path | str | None) -> Path | str | None:
        # object storage is checked on first use (a registration names the bucket's problem)
        problem = unwritable_folder(value) if isinstance(value, Path) else None
        if problem:
            raise ValueError(f"cannot create or write the folder {value}: {problem}")
        return value

    @field_validator("artifact_key")
    @classmethod
    def _long_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().strip().encode()) < 32:
            raise ValueError("must be at least 32 bytes (e.g. 64 hex digits)")
        return value

    @field_validator("serve_token")
    @classmethod
    def _strong_token(cls, value: SecretStr | None) -> SecretStr | None:
        token = None if value is None else value.get_secret_value()
        if token is not None and (len(token) < 16 or token != token.strip() or " " in token):
            raise ValueError("must be at least 16 characters, without spaces")
        return value

    # --- notifications -----------------------------------------------------------------
    notify_to: CommaList = Field(
        [], description="Administrator e-mail addresses (comma-separated)."
    )
    asset_owners: CommaList = Field(
        [],
        description="Owners of every asset in the UI: e-mail addresses or team:<name> "
        "(comma-separated). Default: the administrators (RETRAIN_NOTIFY_TO).",
    )
    notify_from: str = Field("retraining-assets@localhost", description="Sender address.")
    smtp_host: str | None = Field(None, description="SMTP server; unset disables e-mail.")
    smtp_port: int = Field(587, ge=1, le=65535, description="SMTP port.")
    smtp_username: str | None = Field(None, description="SMTP login user.")
    smtp_password: str | None = Field(None, description="SMTP login password (never logged).")
    smtp_security: Literal["none", "starttls", "ssl"] = Field("starttls", description="SMTP TLS.")
    slack_webhook_url: str | None = Field(None, description="Slack incoming webhook URL.")
    teams_webhook_url: str | None = Field(None, description="Microsoft Teams webhook URL.")
    ui_base_url: str = Field("http://localhost:3000", description="Dagster UI URL for links.")
    reports_url: str = Field(
        "http://127.0.0.1:3001",
        description="Report server URL (`make dev` starts it: `python -m retraining_assets."
        "reports`); the UI links each report under the artifact root's reports/ below it.",
    )

    # --- the user's own pipeline (optional) --------------------------------------------
    pipeline_name: str = Field(
        "records",
        description="Name (asset key prefix) of your pipeline: letters, digits and underscores, "
        "not demo.",
    )
    source_url: str | None = Field(None, description="SQLAlchemy URL of your record table.")
    source_table: str | None = Field(None, description="Table holding your records.")
    source_path: str | None = Field(None, description="CSV/Parquet file or glob of your records.")
    time_column: str | None = Field(None, description="Timestamp column of your records.")
    target: str | None = Field(None, description="Target column of your records.")
    task: Literal["binary", "multiclass", "regression"] | None = Field(
        None, description="Learning task. Default: inferred from the target."
    )
    numeric_features: CommaList = Field([], description="Numeric features (default: inferred).")
    categorical_features: CommaList = Field([], description="Categorical features (inferred).")
    drop_columns: CommaList = Field([], description="Columns that must not be features.")
    entity_id_column: str | None = Field(None, description="Entity id column, if any.")

    @field_validator(
        "model_families",
        "notify_to",
        "asset_owners",
        "numeric_features",
        "categorical_features",
        "drop_columns",
        "rollout_steps",
        mode="before",
    )
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("drift_verdict")
    @classmethod
    def _known_verdict(cls, value: str) -> str:
        return "+".join(parse_mode(value))

    @field_validator("label_delay", mode="before")
    @classmethod
    def _label_delay(cls, value: object) -> str:
        delay = parse_label_delay(None if value is None else str(value))
        return str(delay) if delay else "0"

    @property
    def label_delay_duration(self) -> LabelDelay:
        """``RETRAIN_LABEL_DELAY`` as a duration (None: labels arrive with their records)."""
        return parse_label_delay(self.label_delay)

    @field_validator("pipeline_name")
    @classmethod
    def _dagster_name(cls, value: str) -> str:
        if not DAGSTER_NAME.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a valid name: letters, digits and underscores only (it "
                "prefixes the pipeline's asset keys, jobs and groups in Dagster)"
            )
        if value == "demo":
            raise ValueError("'demo' is the demo pipeline's name; choose another")
        return value

    @field_validator("model_families")
    @classmethod
    def _known_families(cls, value: list[str]) -> list[str]:
        known = set(ModelFamily.__args__)
        unknown = [family for family in value if family not in known]
        if unknown:
            raise ValueError(f"unknown model families {unknown}; choose from {sorted(known)}")
        return value

    @field_validator("training_window", "training_half_life", mode="before")
    @classmethod
    def _duration(cls, value: object) -> str | None:
        return None if value in (None, "") else str(Duration.parse(value))  # type: ignore[arg-type]

    @field_validator("rollout_steps")
    @classmethod
    def _shares(cls, value: list[float]) -> list[float]:
        if not value:
            raise ValueError("a rollout needs at least one step")
        if (problem := share_problem(value)) is not None:
            index, message = problem
            raise ValueError(f"share {index + 1} of {value} {message}")
        return value

    def drift_thresholds(self) -> DriftThresholds:
        """The drift verdict's thresholds, all from these settings."""
        return DriftThresholds(**{knob: getattr(self, name) for name, knob in DRIFT_KNOBS.items()})

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        try:
            self.drift_thresholds()
        except ThresholdError as error:
            setting = {knob: name for name, knob in DRIFT_KNOBS.items()}
            named = [
                f"'{name}' ({ENV_PREFIX}{name.upper()}) = {getattr(self, name):g}"
                for name in (setting[knob] for knob in error.fields)
            ]
            problem = f"setting {named[0]} {error.problem} {' '.join(named[1:])}"
            raise ValueError(problem.strip()) from None
        if self.source_url and self.source_path:
            raise ValueError(
                f"set either 'source_url' ({ENV_PREFIX}SOURCE_URL) or 'source_path' "
                f"({ENV_PREFIX}SOURCE_PATH), not both"
            )
        if self.source_url or self.source_path:  # (cached properties would go stale)
            unset = [name for name in ("time_column", "target") if not getattr(self, name)]
            if unset:
                named = " and ".join(f"'{name}' ({ENV_PREFIX}{name.upper()})" for name in unset)
                raise ValueError(
                    f"{'setting' if len(unset) == 1 else 'settings'} {named} "
                    f"{'is' if len(unset) == 1 else 'are'} required with "
                    f"{ENV_PREFIX}{'SOURCE_URL' if self.source_url else 'SOURCE_PATH'}"
                )
        try:
            self.timescales.validate()
        except TimeScaleError as error:
            variable = f"{ENV_PREFIX}{error.setting.upper()}"
            raise ValueError(f"setting '{error.setting}' ({variable}): {error.problem}") from None
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=_settings_file())
        return init_settings, env_settings, toml

    @property
    def timescales(self) -> TimeScales:
        """The four time scales, which turn periods into windows (``core.timescales``); built
        on each access, so ``model_copy(update=...)`` never sees stale ones."""
        return TimeScales(
            period=self.partition,
            drift_window=self.drift_window or DEFAULT_DRIFT_WINDOW[self.partition],
            drift_min_records=self.drift_min_records,
            drift_max_records=self.drift_max_records,
            training_window=Duration.parse(self.training_window),
            schedule=self.retrain_schedule,
            schedule_hour=self.retrain_schedule_hour,
        )

    # --- derived paths -----------------------------------------------------------------
    @cached_property
    def platform_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.home / 'platform.db').resolve()}"

    @cached_property
    def artifact_path(self) -> Location:
        """A resolved local folder, or a ``UPath`` on object storage."""
        return location(self.artifact_root or self.home / "artifacts")

    @cached_property
    def artifact_key_path(self) -> Path:
        """The artifact signing key file, used when ``artifact_key`` is not set."""
        return (self.home / "artifact.key").resolve()

    @cached_property
    def dagster_home(self) -> Path:
        return Path(os.environ.get("DAGSTER_HOME") or self.home / "dagster").resolve()

    @cached_property
    def user_pipeline_configured(self) -> bool:
        return bool(self.source_url or self.source_path)


def load_settings(**overrides: object) -> Settings:
    """Read the settings, turning a validation error into one naming each bad setting."""
    try:
        return Settings(**overrides)
    except tomllib.TOMLDecodeError as error:  # its message ends "(at line L, column C)"
        raise SettingsError(
            f"settings file {_settings_file()} ({ENV_PREFIX}SETTINGS_FILE) is not valid TOML: "
            f"{error}"
        ) from None
    except ValidationError as error:
        problems = []
        for item in error.errors():
            message = str(item["msg"]).removeprefix("Value error, ")
            if not item["loc"]:  # a cross-setting check: its message names the setting
                problems.append(message)
                continue
            name = str(item["loc"][0])
            problems.append(f"setting '{name}' ({ENV_PREFIX}{name.upper()}): {message}")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None
