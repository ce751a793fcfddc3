"""A real S3-compatible server (moto's, in its own process on loopback) and a fresh bucket on
it, with s3fs and boto3 pointed at it: the object-storage tests' shared fixtures."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import boto3
import pytest


def moto_server(**environment: str) -> Iterator[str]:
    """``moto_server`` in its own process on a free loopback port; its endpoint URL."""
    pytest.importorskip("moto.server", reason="pip install -e '.[dev]' (moto[server], s3fs)")
    pytest.importorskip("s3fs", reason="pip install -e '.[dev]' (moto[server], s3fs)")
    process = subprocess.Popen(
        [sys.executable, "-c", _SERVER],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **environment},
        text=True,
    )
    try:
        port = ""
        for line in process.stdout:  # the port is printed once the server listens
            if line.startswith("PORT="):
                port = line.removeprefix("PORT=").strip()
                break
        assert port.isdigit(), "moto's server did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait()


# SIGTERM back to its default first: a parent that ignored it (some test's Dagster or Celery
# code, in the same pytest worker) passes that on, and the teardown's terminate() then hung
_SERVER = """
import signal
signal.signal(signal.SIGTERM, signal.SIG_DFL)
from moto.server import ThreadedMotoServer
import threading
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
server.start()
print("PORT=%d" % server.get_host_and_port()[1], flush=True)
threading.Event().wait()
"""


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    yield from moto_server()


@pytest.fixture
def bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket on the server, the environment pointing s3fs (and boto3) at it."""
    s3_environment(monkeypatch, s3_endpoint)
    name = f"models-{uuid.uuid4().hex[:10]}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name


def s3_environment(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()  # a cached filesystem keeps another endpoint
