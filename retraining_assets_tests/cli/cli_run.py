"""The real `retrain` command in a subprocess, with no RETRAIN_* variable of the caller's shell,
and the shape every config or input error must have: one line naming what is wrong, exit
status 2, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

RETRAIN = str(Path(sys.executable).parent / "retrain")
DAGSTER = str(Path(sys.executable).parent / "dagster")


def retrain_environment(home: Path, **env: str) -> dict[str, str]:
    """This process's environment without RETRAIN_* and DAGSTER_HOME, then ``env``."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith("RETRAIN_")}
    kept.pop("DAGSTER_HOME", None)
    return {**kept, "RETRAIN_HOME": str(home), **env}


def run_retrain(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [RETRAIN, *args],
        env=retrain_environment(home, **env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_one_line_error(done: subprocess.CompletedProcess[str], *names: str) -> str:
    """The error line (``error: ...``), checked to name each of ``names``."""
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    for name in names:
        assert name in lines[0], lines[0]
    return lines[0]
