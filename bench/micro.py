"""Micro benchmarks: import time against pandas, JSON → typed DataFrame, sandbox throughput."""

from __future__ import annotations

import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.table import render  # noqa: E402


def import_seconds(module: str, runs: int = 5) -> float:
    """Median wall time of a fresh interpreter importing ``module`` (interpreter start subtracted)."""

    def once(code: str) -> float:
        out = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
        )
        total = 0
        for line in out.stderr.splitlines():
            parts = line.split("|")
            if len(parts) == 3 and parts[2].strip() == code.removeprefix("import ").strip():
                total = int(parts[1])
        return total / 1e6

    return statistics.median(once(f"import {module}") for _ in range(runs))


def main(argv: list[str] | None = None) -> str:
    from bench.frames import bench_to_frame

    ours, pandas = import_seconds("tm402_nb"), import_seconds("pandas")
    frame = bench_to_frame(10_000)
    rows = [
        (
            "import time (cumulative, median of 5)",
            f"{ours * 1000:.0f} ms",
            f"pandas: {pandas * 1000:.0f} ms",
            f"{ours / pandas:.2f}× pandas (goal ≤ 1.3×)",
        ),
        ("10,000 rows JSON → typed DataFrame", f"{frame['ms']:.1f} ms", "", "goal ≤ 50 ms"),
        ("  peak memory of that conversion", f"{frame['peak_mb']:.1f} MB", "", ""),
    ]
    text = render("Import time and frame conversion", rows)
    print(text)
    return text


if __name__ == "__main__":
    main()
