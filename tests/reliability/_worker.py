"""A paying process for the concurrency test: ``python -m tests.reliability._worker``.

Reads one JSON line of settings from stdin (API URL, ledger path, daily cap,
number of calls, client kind, and the wallet key: the key never travels on the
command line and is never printed), builds its own Ledger, SpendPolicy and
X402Auth, prints ``ready``, waits for ``go`` on stdin (so both processes start
paying at the same moment), makes its calls concurrently and prints one JSON
line of counts.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any


def main() -> int:
    settings = json.loads(sys.stdin.readline())
    from tm402_nb.errors import BudgetExceeded
    from tm402_nb.ledger import Ledger
    from tm402_nb.tokenmetrics.client import AsyncClient, Client, RetryPolicy
    from tm402_nb.x402 import SpendPolicy, Wallet, X402Auth

    wallet = Wallet.from_key(settings.pop("key"))
    ledger = Ledger(settings["ledger"])
    policy = SpendPolicy(max_per_call="0.10", daily_cap=settings["daily_cap"])
    auth = X402Auth(wallet, policy, ledger=ledger)
    retry = RetryPolicy(attempts=3, base=0.01, cap=0.05, jitter=0, max_retry_after=0.1)
    kw: dict[str, Any] = dict(
        mode="sandbox",
        base_url=settings["api_url"],
        auth=auth,
        ledger=ledger,
        retry=retry,
        progress=False,
        timeout=30,
        max_concurrency=settings["concurrency"],
    )
    # Two tokens only: identical requests are in flight at the same time, on purpose.
    tokens = [3375, 3306]
    n = settings["calls"]
    outcomes: Counter[str] = Counter()

    def classify(result: Any) -> str:
        if isinstance(result, BudgetExceeded):
            return "refused"
        if isinstance(result, BaseException):
            return type(result).__name__
        return "ok" if result.get("data") else "empty"

    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return 3
    started = time.monotonic()
    if settings["kind"] == "async":

        async def run() -> list[Any]:
            gate = asyncio.Semaphore(settings["concurrency"])
            async with AsyncClient(**kw) as client:

                async def one(i: int) -> Any:
                    async with gate:
                        return await client.get("tm-grade", token_id=[tokens[i % 2]], refresh=True)

                return await asyncio.gather(*(one(i) for i in range(n)), return_exceptions=True)

        results = asyncio.run(asyncio.wait_for(run(), timeout=120))
    else:
        with Client(**kw) as client, ThreadPoolExecutor(settings["concurrency"]) as pool:

            def one(i: int) -> Any:
                try:
                    return client.get("tm-grade", token_id=[tokens[i % 2]], refresh=True)
                except Exception as exc:
                    return exc

            results = list(pool.map(one, range(n), timeout=120))
    outcomes.update(classify(r) for r in results)
    ledger.close()
    print(
        json.dumps(
            {"outcomes": dict(outcomes), "payer": wallet.address, "seconds": round(time.monotonic() - started, 3)}
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
