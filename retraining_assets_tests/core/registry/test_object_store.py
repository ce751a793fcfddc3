"""The artifact root on object storage, tested against a real S3-compatible server (moto's, on
loopback) through s3fs: what a platform engineer gets with RETRAIN_ARTIFACT_ROOT=s3://..."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from retraining_assets.core.registry import (
    CHAMPION,
    ArtifactRootError,
    CorruptArtifactError,
    MissingArtifactError,
    Registry,
)
from retraining_assets.settings import Settings, load_settings
from retraining_assets_tests import s3_server
from retraining_assets_tests.conftest import MONTHLY, SMALL_STREAM, trained_version
from retraining_assets_tests.s3_server import moto_server, s3_environment

s3_endpoint, bucket = s3_server.s3_endpoint, s3_server.bucket  # the shared fixtures
KEY = "k" * 64  # every worker signs with the same key: the one a Secret would hold
REPOSITORY = Path(__file__).resolve().parents[3]


def _settings(tmp_path: Path, root: str) -> Settings:
    return load_settings(
        home=tmp_path / ".retrain", artifact_root=root, artifact_key=KEY, **MONTHLY
    )


def _objects(bucket: str) -> dict[str, bytes]:
    client = boto3.client("s3")
    listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {
        item["Key"]: client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
        for item in listed
    }


def _with_champion(settings: Settings) -> tuple[Registry, int]:
    """A registry on the bucket whose champion is a freshly trained version."""
    registry = Registry.from_settings(settings)
    version = trained_version(registry)
    registry.move_alias(
        "demo", CHAMPION, version, expected_current=None, by="ci", actual_user="ci", reason="t"
    )
    return registry, version


def test_a_trained_version_lives_in_the_bucket_and_a_fresh_process_serves_it(
    tmp_path: Path, bucket: str
) -> None:
    settings = _settings(tmp_path, f"s3://{bucket}/prod/artifacts")
    registry, version = _with_champion(settings)
    record = registry.get_version("demo", version)
    objects = _objects(bucket)
    key = f"prod/artifacts/{record.artifact_uri}"
    assert key in objects and f"prod/artifacts/{record.profile_uri}" in objects
    assert not (tmp_path / ".retrain" / "artifacts").exists()  # nothing went to a local folder
    # a fresh process with only the environment a worker has: it loads, verifies and serves
    row = SMALL_STREAM.generate(0).iloc[[0]]
    features = {name: row[name].item() for name in registry_spec_features()}
    served = _in_fresh_process(tmp_path, f"s3://{bucket}/prod/artifacts", features)
    assert served["model_version"] == version
    from retraining_assets.core.candidates import load_model

    expected = load_model(registry, "demo", version).scores(row)[0]
    assert served["probabilities"]["1"] == pytest.approx(float(expected[1]), abs=1e-12)


def registry_spec_features() -> list[str]:
    from retraining_assets.core.demo import SPEC

    return list(SPEC.features)


_CLIENT = """
import json, sys
from retraining_assets.core.demo import DemoStream
from retraining_assets.core.pipeline import demo_pipeline
from retraining_assets.service.app import create_app
from retraining_assets.service.server import LiveServer
from retraining_assets.settings import load_settings
import httpx
settings = load_settings(partition="monthly", training_window="3M", drift_window=1)
app = create_app(demo_pipeline(settings))
with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=60) as client:
    body = {"entity_id": "e1", "features": json.loads(sys.argv[1])}
    response = client.post("/predict", json=body)
    print(json.dumps(response.json()))
"""


def _in_fresh_process(tmp_path: Path, root: str, features: dict) -> dict:
    environment = {
        **os.environ,
        "RETRAIN_HOME": str(tmp_path / ".retrain"),
        "RETRAIN_ARTIFACT_ROOT": root,
        "RETRAIN_ARTIFACT_KEY": KEY,
        "PYTHONPATH": str(REPOSITORY),
    }
    done = subprocess.run(
        [sys.executable, "-c", _CLIENT, json.dumps(features)],
        env=environment, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_bucket_copy_is_checked_like_a_local_file(tmp_path: Path, bucket: str) -> None:
    registry = Registry.from_settings(_settings(tmp_path, f"s3://{bucket}/a"))
    version = trained_version(registry)
    record = registry.get_version("demo", version)
    client = boto3.client("s3")
    client.put_object(Bucket=bucket, Key=f"a/{record.artifact_uri}", Body=b"PK\x03\x04forged")
    with pytest.raises(CorruptArtifactError, match=f"demo v{version} fails its signature"):
        registry.load_model_bytes("demo", version)
    client.delete_object(Bucket=bucket, Key=f"a/{record.artifact_uri}")
    with pytest.raises(MissingArtifactError, match=f"demo v{version} is missing"):
        registry.load_model_bytes("demo", version)


def test_a_missing_bucket_is_one_error_naming_the_setting_and_nothing_is_registered(
    tmp_path: Path, bucket: str
) -> None:
    registry = Registry.from_settings(_settings(tmp_path, f"s3://{bucket}-gone/artifacts"))
    with pytest.raises(ArtifactRootError) as raised:
        trained_version(registry)
    message = str(raised.value)
    assert f"RETRAIN_ARTIFACT_ROOT=s3://{bucket}-gone/artifacts" in message
    assert "bucket does not exist" in message
    assert registry.list_versions("demo") == []


@pytest.fixture(scope="module")
def s3_endpoint_with_authentication() -> Iterator[str]:
    """A server that checks signatures against its own IAM users (it has none)."""
    yield from moto_server(INITIAL_NO_AUTH_ACTION_COUNT="0")


def test_refused_credentials_are_one_error_naming_the_setting(
    tmp_path: Path, s3_endpoint_with_authentication: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3_environment(monkeypatch, s3_endpoint_with_authentication)
    registry = Registry.from_settings(_settings(tmp_path, "s3://models/artifacts"))
    with pytest.raises(ArtifactRootError, match=r"RETRAIN_ARTIFACT_ROOT=s3://models/artifacts"):
        trained_version(registry)
    assert registry.list_versions("demo") == []


def test_local_folders_and_file_urls_stay_plain_folders(tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    for root in (str(folder), folder.as_uri()):
        settings = _settings(tmp_path, root)
        assert settings.artifact_path == folder.resolve() and isinstance(
            settings.artifact_path, Path
        )


def test_the_current_reference_lives_in_the_bucket_beside_the_versions(
    tmp_path: Path, bucket: str
) -> None:
    from retraining_assets.core.reference import ReferenceStore, champion_reference

    settings = _settings(tmp_path, f"s3://{bucket}/refs")
    registry, _ = _with_champion(settings)
    store = ReferenceStore(settings.artifact_path)
    assert store.load("demo") is None  # nothing stored yet: None, not an error
    current = store.current("demo", registry)  # the champion's own, written to the bucket
    assert current.to_bytes() == champion_reference(registry, "demo").to_bytes()
    assert _objects(bucket)["refs/demo/reference/current.bin"] == current.to_bytes()
    assert ReferenceStore(f"s3://{bucket}/refs").load("demo").to_bytes() == current.to_bytes()
