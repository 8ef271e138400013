"""A paying process for ``test_also_holds``: ``python -m tests.reliability._hold_worker``.

Reads one JSON line of settings from stdin (the wallet key among them: never on the command
line, never printed), builds its own Ledger, SpendPolicy and X402Auth, prints ``ready``, waits
for ``go`` (so every process starts paying at once), makes ``calls`` paid GETs on ``threads``
threads and prints one JSON line of outcomes.

With ``stop`` it halts at a chosen moment instead, prints ``stopped <what>`` and blocks on stdin
until the test kills it with SIGKILL:

- ``{"at": "signed", "n": N}``: the Nth payment is signed and its ``pending`` row committed,
  and its header has not left the process;
- ``{"at": "in-tx", "n": N}``: inside the ledger write transaction of the Nth payment (signed,
  row inserted, not committed): the process holds SQLite's write lock when it dies.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any


def _halt(what: str) -> None:
    print(f"stopped {what}", flush=True)
    sys.stdin.readline()  # the test never answers: it kills this process here
    os._exit(4)  # stdin closed instead: still never finish the payment


class _HaltingTx:
    def __init__(self, tx: Any, owner: HaltingRecorder) -> None:
        self._tx, self._owner = tx, owner

    def spent(self, *args: Any, **kw: Any) -> int:
        return self._tx.spent(*args, **kw)

    def spent_usd(self, **kw: Any) -> int:
        return self._tx.spent_usd(**kw)

    def insert_payment(self, record: Any) -> object:
        out = self._tx.insert_payment(record)
        with self._owner.lock:
            self._owner.count += 1
            n = self._owner.count
        if n == self._owner.n:
            self._owner.halt(f"in-tx {n}")
        return out


class HaltingRecorder:
    """A Ledger whose Nth payment transaction never commits: the process stops inside it."""

    def __init__(self, ledger: Any, n: int, halt: Callable[[str], None]) -> None:
        self.ledger, self.n, self.halt = ledger, n, halt
        self.count = 0
        self.lock = threading.Lock()

    @contextmanager
    def transaction(self) -> Iterator[_HaltingTx]:
        with self.ledger.transaction() as tx:
            yield _HaltingTx(tx, self)

    def update_payment(self, *args: Any, **kw: Any) -> None:
        self.ledger.update_payment(*args, **kw)


def main() -> int:
    settings = json.loads(sys.stdin.readline())
    import httpx

    from tm402_nb.errors import BudgetExceeded
    from tm402_nb.ledger import Ledger
    from tm402_nb.x402 import SpendPolicy, Wallet, X402Auth

    wallet = Wallet.from_key(settings.pop("key"))
    ledger = Ledger(settings["ledger"])
    recorder: Any = ledger
    listeners: list[Callable[[Any], None]] = []
    stop = settings.get("stop")
    if stop and stop["at"] == "signed":
        signed = Counter[str]()
        lock = threading.Lock()

        def on_event(event: Any) -> None:
            if event.kind != "signed":
                return
            with lock:
                signed["n"] += 1
                n = signed["n"]
            if n == stop["n"]:
                _halt(event.payment.record.nonce)

        listeners.append(on_event)
    elif stop and stop["at"] == "in-tx":
        recorder = HaltingRecorder(ledger, stop["n"], _halt)
    policy = SpendPolicy(max_per_call="0.10", daily_cap=settings.get("daily_cap"))
    auth = X402Auth(wallet, policy, ledger=recorder, listeners=listeners)

    def one(client: httpx.Client, i: int) -> str:
        try:
            r = client.get(settings["url"], params={"i": i})
            return "ok" if r.status_code == 200 else f"http-{r.status_code}"
        except BudgetExceeded:
            return "refused"
        except Exception as exc:
            return type(exc).__name__

    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return 3
    with httpx.Client(auth=auth, timeout=60) as client, ThreadPoolExecutor(settings["threads"]) as pool:
        outcomes = Counter(pool.map(lambda i: one(client, i), range(settings["calls"]), timeout=120))
    ledger.close()
    print(json.dumps({"outcomes": dict(outcomes), "pid": os.getpid()}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
