"""Drift engine: the one place where the data-drift verdict is made."""

from retraining_assets.core.drift.compare import *  # noqa: F403
