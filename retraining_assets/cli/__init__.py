"""The ``retrain`` command: the demo, data validation, and (growing) operations on the state
shared with the Dagster UI (same ``RETRAIN_HOME`` / database URL)."""

from __future__ import annotations

import click

from retraining_assets.cli import admin, data, demo, models, rollout, serve
from retraining_assets.cli.common import fail
from retraining_assets.errors import is_input_error

__all__ = ["main", "run"]


@click.group()
def main() -> None:
    """Keep production ML models fresh: drift, retraining, promotion, notification, rollout."""


for command in (
    data.validate,
    data.drift,
    data.backtest,
    admin.init,
    admin.notify_test_command,
    models.approve,
    models.reject,
    models.rollback,
    models.status,
    models.sign_artifacts,
    demo.demo,
    rollout.rollout,
    serve.serve,
    serve.replay,
):
    main.add_command(command)


def run() -> None:
    """Entry point that turns expected errors into one clear line instead of a traceback."""
    try:
        main(standalone_mode=True)
    except Exception as error:
        if not is_input_error(error):
            raise
        fail(str(error))


if __name__ == "__main__":
    run()
