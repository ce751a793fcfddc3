"""Issue 17's scale targets, one part at a time (each part is its own module).

    python benchmarks/scale_benchmark.py drift [--rows 2000000 8000000 20000000]

``drift``: `retrain drift` on a reference and a current Parquet file of N rows x 10 numeric
and 2 categorical columns, `--engine duckdb` against `--engine memory` (benchmarks/scale_drift.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

PARTS = {"drift": "scale_drift"}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in PARTS:
        raise SystemExit(f"usage: scale_benchmark.py {{{','.join(PARTS)}}} [options]")
    part = sys.argv.pop(1)
    module = __import__(PARTS[part])
    module.main()


if __name__ == "__main__":
    main()
