"""Subprocess workers for the ledger tests (run with ``python -m tests.ledger._worker``)."""

from __future__ import annotations

import sys


def spend(path: str, n: int, cap: str) -> None:
    """Try ``n`` payments of 0.017 USDC under a shared daily cap; print how many were allowed."""
    from tm402_nb.errors import BudgetExceeded
    from tm402_nb.ledger import CallRecord, Ledger
    from tm402_nb.x402.messages import PaymentRequired
    from tm402_nb.x402.networks import USDC_BASE_SEPOLIA
    from tm402_nb.x402.policy import SpendPolicy
    from tm402_nb.x402.recorder import PaymentRecord

    ledger = Ledger(path)
    policy = SpendPolicy(daily_cap=cap, max_per_call="1")
    req = PaymentRequired.from_json(
        {
            "x402Version": 1,
            "accepts": [
                {
                    "scheme": "exact",
                    "network": "base-sepolia",
                    "maxAmountRequired": "17000",
                    "asset": USDC_BASE_SEPOLIA.address,
                    "payTo": "0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
                    "maxTimeoutSeconds": 60,
                }
            ],
        },
        source="body",
    )
    offer = policy.select(req)
    allowed = 0
    for i in range(n):
        try:
            with ledger.transaction() as tx:
                policy.authorize(offer, tx)
                tx.insert_payment(
                    PaymentRecord(
                        17_000,
                        offer.asset.address,
                        offer.network.caip2,
                        offer.requirements.pay_to,
                        "0xpayer",
                        f"0x{i:064x}",
                        0,
                    )
                )
            allowed += 1
        except BudgetExceeded:
            pass
        ledger.record_call(CallRecord(url=f"http://x/{i}", endpoint="t"))
    print(allowed)


def hang_while_paying(path: str, url: str) -> None:
    """Pay a server that never answers; the parent kills us mid-request."""
    import httpx

    from tm402_nb.ledger import Ledger
    from tm402_nb.x402 import SpendPolicy, Wallet, X402Auth

    auth = X402Auth(Wallet.create(), SpendPolicy(budget="1"), ledger=Ledger(path))
    with httpx.Client(auth=auth, timeout=120) as client:
        client.get(url)


def pending(path: str, then: str) -> None:
    """Write one ``pending`` payment, print its id, then end as ``then`` says.

    ``hold``: keep the ledger open until stdin closes (a live writer the parent controls
    through the pipe), then exit without closing it. ``exit``: end at once without closing
    the ledger, skipping every cleanup (as a crash would). ``close``: close the ledger first.
    """
    import os

    from tm402_nb.ledger import Ledger
    from tm402_nb.x402.recorder import PaymentRecord

    ledger = Ledger(path)
    rec = PaymentRecord(17_000, "0xa", "eip155:84532", "0xb", "0xpayer", f"0x{os.getpid():064x}", 2**40)
    ledger.record_payment(rec)
    print(rec.id, flush=True)
    if then == "hold":
        sys.stdin.read()
    elif then == "close":
        ledger.close()
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    cmd, *rest = sys.argv[1:]
    if cmd == "spend":
        spend(rest[0], int(rest[1]), rest[2])
    elif cmd == "hang":
        hang_while_paying(rest[0], rest[1])
    elif cmd == "pending":
        pending(rest[0], rest[1])
