"""``tm402-nb demo``: start the sandbox, make a few paid calls, show what each cost.

Needs no wallet: the sandbox funds a throwaway one. The figures printed are
the ledger's, so what you see is what was recorded.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

CALLS = [
    ("tokens", {"symbol": "BTC,ETH"}),
    ("tm-grade", {"symbol": "BTC,ETH"}),
    ("tm-grade", {"symbol": "SOL"}),
    ("trading-signals", {"symbol": "BTC", "limit": "5"}),
    ("price-prediction", {"symbol": "ETH"}),
]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tm402-nb demo", description=__doc__)
    parser.add_argument("--x402-version", type=int, choices=(1, 2), default=1)
    args = parser.parse_args(argv)

    from .ledger import Ledger
    from .sandbox import serve
    from .x402 import SpendPolicy, paying_client, payment_of
    from .x402.money import format_amount

    home = Path(tempfile.mkdtemp(prefix="tm402-demo-"))
    with serve(x402_version=args.x402_version) as sandbox, Ledger(home / "ledger.sqlite3") as ledger:
        print(f"SANDBOX  {sandbox.url}  (x402 v{args.x402_version}, base-sepolia, synthetic data)")
        print(f"wallet   {sandbox.wallet.address}  (throwaway, funded by the sandbox)\n")
        policy = SpendPolicy(max_per_call="0.10", budget="1.00")
        headers = {"x-coinbase-402": "true", "x-payment-token": "usdc"}
        with paying_client(sandbox.wallet, policy, ledger=ledger, headers=headers) as client:
            for endpoint, params in CALLS:
                started = time.perf_counter()
                r = client.get(f"{sandbox.api_url}/{endpoint}", params=params)
                ms = (time.perf_counter() - started) * 1000
                pay = payment_of(r)
                rows = len(r.json().get("data", [])) if r.status_code == 200 else 0
                q = "&".join(f"{k}={v}" for k, v in params.items())
                cost = f"{pay.display:<28} tx {pay.tx[:10]}…" if pay and pay.tx else "free"
                print(f"  {endpoint:<18} {q:<22} {r.status_code}  {rows:>3} rows  {ms:6.1f} ms  {cost}")
        payments = ledger.payments()
        total = int(payments["amount_atomic"].sum()) if not payments.empty else 0
        print(f"\n{len(payments)} payments, {format_amount(total, 6, 'USDC')} of a "
              f"{format_amount(policy.budget or 0, 6, 'USD')} budget; statuses: "
              f"{', '.join(f'{k}={v}' for k, v in payments['status'].value_counts().items())}")
        print(f"ledger   {ledger.path}")
    return 0
