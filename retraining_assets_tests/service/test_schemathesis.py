"""The running service against its own OpenAPI document, by schemathesis: a bounded number of
generated requests per operation (valid and invalid), with the bearer token; every response
must be no server error and conform to the document (status code, content type, body schema,
headers), and a request without the token must be refused."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from retraining_assets.service.app import create_app
from retraining_assets.settings import load_settings
from retraining_assets_tests.service.conftest import Trained, deploy, serving

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
TOKEN = "schemathesis-token-0123456789"
EXAMPLES = 100  # per operation and phase: a bounded run (~1,400 requests, ~30 s here)
# Both batch bodies need columns as long as their id list: JSON Schema cannot say so, so a
# schema-valid body may be refused (422, naming the column). Only that check is off there.
CONFIG = """
[checks]
enabled = true  # every check schemathesis has

[[operations]]
include-path = ["/predict/batch", "/feedback/batch"]
checks.positive_data_acceptance.enabled = false
"""


def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    tmp_path: Path, trained: Trained
) -> None:
    settings = load_settings(home=tmp_path / ".retrain", serve_refresh_seconds=0, serve_token=TOKEN)
    deployed = deploy(settings, trained)
    deployed.start_rollout(2, share=0.5)
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    with serving(create_app(deployed.pipeline)) as client:
        run = subprocess.run(
            [
                str(SCHEMATHESIS),
                "--config-file",
                str(config),
                "run",
                f"{client.base_url}/openapi.json",
                "--header",
                f"Authorization: Bearer {TOKEN}",
                "--phases",
                "examples,coverage,fuzzing,stateful",
                "--max-examples",
                str(EXAMPLES),
                "--seed",
                "13",
                "--generation-database",
                "none",
                "--no-color",
                "--request-timeout",
                "60",
            ],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=600,
        )
    report = run.stdout + run.stderr
    assert run.returncode == 0, report
    counts = re.search(r"(\d+) generated, (\d+) passed", report)
    assert counts is not None and counts[1] == counts[2], report  # no failure of any kind
    assert int(counts[1]) >= 6 * EXAMPLES, report  # it did reach every operation
