"""``retrain init`` and ``retrain notify-test``: set the local instance up, check the channels."""

from __future__ import annotations

import sys

import click

from retraining_assets.cli.common import cli_settings, prepare_dagster_home


@click.command()
def init() -> None:
    """Create the state folder and the local Dagster instance (what `make dev` starts on)."""
    settings = cli_settings()
    click.echo(prepare_dagster_home(settings))


@click.command("notify-test")
def notify_test_command() -> None:
    """Send a test message through every configured channel and say which worked."""
    from retraining_assets.core.notify import notify_test

    results = notify_test(cli_settings())
    for result in results:
        status = "ok" if result.ok else f"FAILED: {result.error}"
        click.echo(f"  {result.channel:<8} {status}")
    if not all(result.ok for result in results):
        sys.exit(1)
