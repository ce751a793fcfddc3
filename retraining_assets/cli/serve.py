"""``retrain serve``: the prediction service over HTTP (uvicorn, one worker); ``retrain replay``:
labelled records played to a running service.

Registered in ``cli/__init__.py``. It serves the champion of the same
state the Dagster UI uses (``RETRAIN_HOME`` / database URL) and follows alias moves and
rollouts without a restart. SIGTERM or Ctrl-C stop it gracefully: requests in flight are
answered and every prediction is written to the log before the process exits.
"""

from __future__ import annotations

import logging
import signal
import socket
from typing import Any

import click

from retraining_assets.cli.common import Context, fail, pipeline_option


class _Server:
    """uvicorn's server, saying where it listens once it accepts requests."""

    def __init__(self, config: Any, pipeline: str, sock: socket.socket) -> None:
        import uvicorn

        class Server(uvicorn.Server):
            async def startup(self, sockets: list[socket.socket] | None = None) -> None:
                await super().startup(sockets=sockets)
                if not self.should_exit:
                    host, port = sock.getsockname()[:2]
                    click.echo(f"{pipeline}: serving predictions on http://{host}:{port}", err=True)

        self.server = Server(config)
        self.sock = sock

    def run(self) -> None:
        # SIGTERM and Ctrl-C must stop the service gracefully even when the parent ignored
        # them (the child inherits that): uvicorn restores these dispositions after its
        # graceful stop and re-raises the signal, which an inherited "ignore" swallowed
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL)
        self.server.run(sockets=[self.sock])


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise click.ClickException(f"cannot listen on {host}:{port}: {error.strerror}") from None
    return sock


def chunk_option(description: str) -> Any:
    """``--chunk``: records per replayed batch (``retrain replay``, ``retrain demo --serve``)."""
    return click.option(
        "--chunk", default=1000, show_default=True, type=click.IntRange(min=1), help=description
    )


@click.command()
@click.option("--host", default=None, help="Address to bind (default: RETRAIN_SERVE_HOST).")
@click.option(
    "--port", type=int, default=None, help="Port (default: RETRAIN_SERVE_PORT; 0: any free one)."
)
@pipeline_option
@click.option("--access-log/--no-access-log", default=False, help="Log every HTTP request.")
def serve(host: str | None, port: int | None, pipeline_name: str | None, access_log: bool) -> None:
    """Serve predictions of the champion (and of a rollout's challenger) over HTTP."""
    import uvicorn

    from retraining_assets.service.app import create_app
    from retraining_assets.service.auth import is_loopback

    context = Context.open(pipeline_name)
    settings = context.settings
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(name)s: %(message)s")
    host = settings.serve_host if host is None else host
    if settings.serve_token is None and not is_loopback(host):
        click.echo(
            f"WARNING: listening on {host} without RETRAIN_SERVE_TOKEN: anyone who reaches "
            "this address can request predictions and post outcomes",
            err=True,
        )
    sock = _listen(host, settings.serve_port if port is None else port)
    config = uvicorn.Config(
        create_app(context.pipeline),
        host=host,
        port=sock.getsockname()[1],
        workers=1,
        access_log=access_log,
        log_level="info",
        lifespan="on",
    )
    click.echo(
        f"{context.name}: starting the prediction service (refresh every "
        f"{settings.serve_refresh_seconds:g}s, micro-batches of up to {settings.serve_max_batch}, "
        f"{'bearer token required' if settings.serve_token else 'no authentication'})",
        err=True,
    )
    _Server(config, context.name, sock).run()


@click.command()
@click.option(
    "--data",
    "path",
    required=True,
    type=click.Path(),
    help="CSV, CSV.gz or Parquet: the entity id, the features and the target of each record.",
)
@click.option(
    "--url", default=None, help="The service (default: http://RETRAIN_SERVE_HOST:SERVE_PORT)."
)
@chunk_option("Records per batch request.")
@pipeline_option
def replay(path: str, url: str | None, chunk: int, pipeline_name: str | None) -> None:
    """Replay labelled records through a running prediction service, in time order: each
    batch's predictions, then each record's true outcome, as `retrain demo --serve` does with
    the demo stream. The rollout sensor then judges the rollout on them."""
    import httpx
    from tqdm import tqdm

    from retraining_assets.core.sources import read_table
    from retraining_assets.service.traffic import Replayed, ServiceError, TrafficReplay

    context = Context.open(pipeline_name)
    spec = context.pipeline.spec
    settings = context.settings
    url = url or f"http://{settings.serve_host}:{settings.serve_port}"
    frame = read_table(path)
    if spec.entity_id is None:
        fail(f"pipeline '{context.name}' has no entity_id column to route by")
    needed = [spec.entity_id, *spec.features, spec.target]
    missing = [name for name in needed if name not in frame.columns]
    if missing:
        fail(f"{path}: missing column(s) {', '.join(repr(name) for name in missing)}")
    if spec.time_column in frame.columns:
        frame = frame.sort_values(spec.time_column, kind="stable")
    totals = Replayed()
    try:
        with (
            httpx.Client(base_url=url, timeout=300) as client,
            tqdm(total=len(frame), unit="record", desc="replayed") as progress,
        ):
            for part in TrafficReplay(client, spec).replay(frame, chunk):
                totals.add(part)
                progress.update(part.rows)
    except httpx.TransportError as error:
        fail(f"cannot reach the prediction service at {url}: {error}")
    except (ServiceError, ValueError) as error:
        fail(f"{path}: {error} ({totals.rows:,} records replayed before)")
    click.echo(f"{totals.rows:,} records replayed to {url}:")
    for version, count in sorted(totals.served.items()):
        correct = (
            "" if spec.task == "regression" else f", {totals.correct[version] / count:.1%} correct"
        )
        click.echo(f"  v{version}: {count:,} predictions{correct}")
