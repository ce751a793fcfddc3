"""The errors that mean bad configuration or input, not a bug: each message is one line naming
the setting, variable, file or column. The ``retrain`` command prints that line (exit status
2); the code location fails to load with that line, without a traceback."""

from __future__ import annotations

from retraining_assets.core.database import DatabaseError
from retraining_assets.core.dataset import DatasetError
from retraining_assets.core.sources import SourceError
from retraining_assets.settings import SettingsError


def is_input_error(error: BaseException) -> bool:
    # imported here, on the error path only: the prediction_log package loads scipy, which
    # would add most of a second to every `retrain` command
    from retraining_assets.core.prediction_log.spool import SpoolError

    return isinstance(error, (SettingsError, DatabaseError, SourceError, DatasetError, SpoolError))
