"""``retrain serve``: the prediction service over HTTP (uvicorn, one worker).

Registered in ``cli.py`` with ``main.add_command(serve)``. It serves the champion of the same
state the Dagster UI uses (``RETRAIN_HOME`` / database URL) and follows alias moves and
rollouts without a restart. SIGTERM or Ctrl-C stop it gracefully: requests in flight are
answered and every prediction is written to the log before the process exits.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

import click


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


@click.command()
@click.option("--host", default=None, help="Address to bind (default: RETRAIN_SERVE_HOST).")
@click.option(
    "--port", type=int, default=None, help="Port (default: RETRAIN_SERVE_PORT; 0: any free one)."
)
@click.option(
    "--pipeline", "pipeline_name", default=None, help="Pipeline name (default: yours, else demo)."
)
@click.option("--access-log/--no-access-log", default=False, help="Log every HTTP request.")
def serve(host: str | None, port: int | None, pipeline_name: str | None, access_log: bool) -> None:
    """Serve predictions of the champion (and of a rollout's challenger) over HTTP."""
    import uvicorn

    from retraining_assets.cli import Context
    from retraining_assets.service.app import create_app

    context = Context.open(pipeline_name)
    settings = context.settings
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(name)s: %(message)s")
    host = settings.serve_host if host is None else host
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
        f"{context.pipeline.name}: starting the prediction service (refresh every "
        f"{settings.serve_refresh_seconds:g}s, micro-batches of up to {settings.serve_max_batch})",
        err=True,
    )
    _Server(config, context.pipeline.name, sock).run()
