"""Server-side counters, so client tests can count round trips exactly.

``GET /sandbox/stats`` returns :meth:`Stats.snapshot`. Per path it counts
requests, plain 402 challenges, requests carrying a payment header, paid
answers and refused payments. A payment header is "unchallenged" when the same
client had no open challenge for that path: a warm client that signs against a
remembered challenge sends its payment on first contact, so its paid calls
show ``requests == paid`` and ``unchallenged_payments == paid``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

_PATH_KEYS = (
    "requests",
    "challenges",
    "payment_headers",
    "unchallenged_payments",
    "paid",
    "refused",
    "settle_failures",
)


class Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clear()

    def reset(self) -> None:
        with self._lock:
            self._clear()

    def _clear(self) -> None:
        self._totals: dict[str, int] = {
            "requests": 0,
            "challenges": 0,
            "payment_headers": 0,
            "unchallenged_payments": 0,
            "paid": 0,
            "refused": 0,
            "settlements": 0,
            "settle_failures": 0,
            "rate_limited": 0,
            "dropped": 0,
            "errors_5xx": 0,
        }
        self._paths: dict[str, dict[str, int]] = {}
        self._status: dict[str, int] = {}
        self._open_challenges: OrderedDict[tuple[str, str], None] = OrderedDict()

    def _bump(self, path: str | None, key: str, n: int = 1) -> None:
        self._totals[key] = self._totals.get(key, 0) + n
        if path is not None and key in _PATH_KEYS:
            p = self._paths.setdefault(path, dict.fromkeys(_PATH_KEYS, 0))
            p[key] += n

    def request(self, path: str) -> None:
        with self._lock:
            self._bump(path, "requests")

    def status(self, code: int) -> None:
        with self._lock:
            k = str(code)
            self._status[k] = self._status.get(k, 0) + 1

    def challenge(self, path: str, client: str) -> None:
        with self._lock:
            self._bump(path, "challenges")
            self._open_challenges[(client, path)] = None
            while len(self._open_challenges) > 10_000:
                self._open_challenges.popitem(last=False)

    def payment_header(self, path: str, client: str) -> None:
        with self._lock:
            self._bump(path, "payment_headers")
            if (client, path) in self._open_challenges:
                del self._open_challenges[(client, path)]
            else:
                self._bump(path, "unchallenged_payments")

    def count(self, key: str, path: str | None = None) -> None:
        with self._lock:
            self._bump(path, key)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                **self._totals,
                "by_status": dict(sorted(self._status.items())),
                "paths": {p: dict(v) for p, v in sorted(self._paths.items())},
            }
