"""``to_frame`` speed and memory: 10,000 daily-ohlcv rows → a typed DataFrame (``python -m bench.frames``)."""

from __future__ import annotations

import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tm402_nb.tokenmetrics.catalogue import get_endpoint  # noqa: E402
from tm402_nb.tokenmetrics.frames import to_frame  # noqa: E402


def daily_ohlcv_rows(n: int) -> list[dict[str, Any]]:
    """``n`` daily-ohlcv rows shaped like reference §4.3 (newest first per token, several tokens)."""
    tokens = [
        (3306, "Ethereum", "ETH"),
        (3375, "Bitcoin", "BTC"),
        (3377, "Litecoin", "LTC"),
        (3988, "Solana", "SOL"),
        (3311, "Cardano", "ADA"),
    ]
    per = max(1, -(-n // len(tokens)))
    days = pd.date_range(end="2021-05-02", periods=per, freq="D")[::-1].strftime("%Y-%m-%dT00:00:00.000Z")
    rng = np.random.default_rng(402)
    rows: list[dict[str, Any]] = []
    for tid, name, sym in tokens:
        close = 2950.337798 * np.exp(np.cumsum(rng.normal(0, 0.03, per)))
        for i, d in enumerate(days):
            if len(rows) == n:
                break
            c = float(close[i])
            rows.append(
                {
                    "TOKEN_ID": tid,
                    "TOKEN_NAME": name,
                    "TOKEN_SYMBOL": sym,
                    "DATE": d,
                    "OPEN": c * 0.998,
                    "HIGH": c * 1.013,
                    "LOW": c * 0.967,
                    "CLOSE": c,
                    "VOLUME": 1.388496e08 * (1 + 0.1 * (i % 7)),
                }
            )
    return rows


def bench_to_frame(n: int = 10_000, *, repeat: int = 7) -> dict[str, float]:
    """Time ``to_frame`` on ``n`` daily-ohlcv rows: best-of-``repeat`` milliseconds and peak traced MiB."""
    ep = get_endpoint("daily-ohlcv")
    rows = daily_ohlcv_rows(n)
    to_frame(ep, rows)  # warm-up (imports, caches)
    times = []
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        to_frame(ep, rows)
        times.append(time.perf_counter() - t0)
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    to_frame(ep, rows)
    peak = tracemalloc.get_traced_memory()[1] - base
    if not was_tracing:
        tracemalloc.stop()
    times.sort()
    return {
        "n": n,
        "ms": round(min(times) * 1000, 3),
        "median_ms": round(times[len(times) // 2] * 1000, 3),
        "peak_mb": round(peak / 2**20, 3),
    }


if __name__ == "__main__":
    print(bench_to_frame(10_000))
