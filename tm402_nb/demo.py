"""``tm402-nb demo``: start the sandbox, make paid calls, show what each one cost.

Needs no wallet: the sandbox funds a throwaway one. The figures printed are
the ledger's, so what you see is what was recorded.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


def _steps(s: Any) -> list[tuple[str, Callable[[], Any]]]:
    c = s.client
    return [
        ('frame("tm-grade", symbol=["BTC", "ETH"])', lambda: c.frame("tm-grade", symbol=["BTC", "ETH"])),
        ('frame("tm-grade", symbol=["BTC", "ETH"])  # again', lambda: c.frame("tm-grade", symbol=["BTC", "ETH"])),
        ('quote("ai-reports", symbol="BTC")', lambda: c.quote("ai-reports", symbol="BTC")),
        ('frame("trading-signals", symbol="BTC", start=…, end=…)',
         lambda: c.frame("trading-signals", symbol="BTC", start="2026-07-01", end="2026-10-31")),
        ('frame("price-prediction", symbol="ETH")', lambda: c.frame("price-prediction", symbol="ETH")),
        ('frame("tokens", symbol="SOL")', lambda: c.frame("tokens", symbol="SOL")),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tm402-nb demo", description=__doc__)
    parser.add_argument("--x402-version", type=int, choices=(1, 2), default=1)
    parser.add_argument("--budget", default="1.00")
    args = parser.parse_args(argv)

    from .session import Session

    home = Path(tempfile.mkdtemp(prefix="tm402-demo-"))
    with Session("sandbox", budget=args.budget, x402_version=args.x402_version, ledger=home / "ledger.sqlite3",
                 progress=False) as s:
        print(f"SANDBOX  {s.sandbox.url}  (x402 v{args.x402_version}, {s.network}, synthetic data, no real money)")
        print(f"wallet   {s.wallet.address}  (throwaway, funded by the sandbox)\n")
        for label, step in _steps(s):
            with s.scope(label) as cost:
                started = time.perf_counter()
                result = step()
                ms = (time.perf_counter() - started) * 1000
            what = f"{len(result):>3} rows" if hasattr(result, "columns") else repr(result)
            print(f"» {label}\n    {what} in {ms:.0f} ms — {cost.summary()}")
            if cost.receipts:
                print(f"    receipt {cost.receipts[-1][:18]}…")
        payments = s.ledger.payments()
        counts = ", ".join(f"{k} {v}" for k, v in payments["status"].value_counts().items()) or "none"
        print(f"\nsession  {s.cost.total.summary()}; {s.budget_text()}")
        print(f"ledger   {len(payments)} payments ({counts}) in {s.ledger.path}")
    return 0
