"""``retrain serve`` as a child process, for the tests and the benchmark: started on a free
port, its URL read from its output, stopped gracefully with SIGTERM."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

RETRAIN = Path(sys.executable).parent / "retrain"
READY = re.compile(r"serving predictions on (http://\S+)")


@dataclass
class ServeProcess:
    """The running service: its URL and process id; its output and exit code once stopped."""

    url: str
    pid: int
    output: list[str] = field(default_factory=list)
    returncode: int | None = None


@contextmanager
def serve_process(env: dict[str, str], timeout: float = 300) -> Iterator[ServeProcess]:
    """``retrain serve --port 0`` with ``env`` until the block ends, then SIGTERM and wait."""
    process = subprocess.Popen(
        [str(RETRAIN), "serve", "--port", "0"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    output: list[str] = []
    found: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            output.append(line)
            if match := READY.search(line):
                found.append(match[1])
                ready.set()
        ready.set()  # the process ended

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    ready.wait(timeout)
    if not found:
        process.kill()
        raise RuntimeError("retrain serve did not start:\n" + "".join(output))
    served = ServeProcess(found[0], process.pid, output)
    try:
        yield served
    finally:
        process.send_signal(signal.SIGTERM)
        served.returncode = process.wait(timeout)
        reader.join()
