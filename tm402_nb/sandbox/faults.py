"""Switchable faults, so clients can be tested against a misbehaving server.

Set them with ``serve(faults=Faults(...))``, CLI flags, ``server.set_faults(...)``
or ``POST /sandbox/faults``. Count fields take an integer N ("the next N times")
or ``True`` ("every time", stored as -1). Rates use a RNG seeded from the
server seed, so a run with the same seed injects the same faults.
"""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass, fields
from typing import Any

ALWAYS = -1


def _count(value: Any, name: str) -> int:
    if value is True:
        return ALWAYS
    if value is False or value is None:
        return 0
    if isinstance(value, int) and value >= ALWAYS:
        return value
    raise ValueError(f"{name} must be True/False or an integer count >= 0 (or -1 for always), got {value!r}")


@dataclass
class Faults:
    """Faults to inject. All off by default.

    - ``latency_ms``: added to every /v2 request.
    - ``burst_429``: the next N /v2 requests answer 429 with ``Retry-After: retry_after_s``.
    - ``error_5xx_rate``: probability that a /v2 request answers 500 (after payment
      verification, so the payment is released, never settled); ``error_5xx_next``
      does it for the next N requests.
    - ``settle_failure``: settlement fails (402 with a failed receipt, reason
      ``settle_failure_reason``); nothing moves.
    - ``slow_settle_past_valid_before``: settlement waits ``slow_settle_ms`` and then
      finds the chain clock past ``validBefore``: fails with
      ``invalid_exact_evm_payload_authorization_valid_before``.
    - ``malformed_challenge``: the 402 challenge is unparseable (truncated JSON body
      in v1, a non-base64 ``PAYMENT-REQUIRED`` in v2).
    - ``oversized_challenge``: the challenge is padded to ~20 KB.
    - ``settle_pending``: the facilitator broadcasts the transfer but answers
      ``settlement_pending`` (402 with a receipt naming the transaction, the body
      withheld, as the reference middleware does); the chain mines it after
      ``settle_pending_reads`` JSON-RPC requests (0: only by ``POST /sandbox/mine``).
      Re-sending the identical payment reconciles with that transfer (never a second one).
    - ``drop_after_settle``: after settling, the connection is closed before the
      response body is sent (the client sees a transport error, the money moved).
    """

    latency_ms: int = 0
    burst_429: int = 0
    retry_after_s: int = 1
    error_5xx_rate: float = 0.0
    error_5xx_next: int = 0
    settle_failure: int = 0
    settle_failure_reason: str = "unexpected_settle_error"
    slow_settle_past_valid_before: int = 0
    slow_settle_ms: int = 1000
    malformed_challenge: int = 0
    oversized_challenge: int = 0
    drop_after_settle: int = 0
    settle_pending: int = 0
    settle_pending_reads: int = 1

    def __post_init__(self) -> None:
        for name in (
            "burst_429",
            "error_5xx_next",
            "settle_failure",
            "slow_settle_past_valid_before",
            "malformed_challenge",
            "oversized_challenge",
            "drop_after_settle",
            "settle_pending",
        ):
            setattr(self, name, _count(getattr(self, name), name))
        if not isinstance(self.latency_ms, int) or not 0 <= self.latency_ms <= 60_000:
            raise ValueError(f"latency_ms must be an integer 0..60000, got {self.latency_ms!r}")
        if not isinstance(self.slow_settle_ms, int) or not 0 <= self.slow_settle_ms <= 120_000:
            raise ValueError(f"slow_settle_ms must be an integer 0..120000, got {self.slow_settle_ms!r}")
        if (
            isinstance(self.settle_pending_reads, bool)
            or not isinstance(self.settle_pending_reads, int)
            or not 0 <= self.settle_pending_reads <= 1000
        ):
            raise ValueError(f"settle_pending_reads must be an integer 0..1000, got {self.settle_pending_reads!r}")
        if not isinstance(self.retry_after_s, int) or not 0 <= self.retry_after_s <= 3600:
            raise ValueError(f"retry_after_s must be an integer 0..3600, got {self.retry_after_s!r}")
        rate = self.error_5xx_rate
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= float(rate) <= 1.0:
            raise ValueError(f"error_5xx_rate must be a number in [0, 1], got {rate!r}")
        self.error_5xx_rate = float(rate)
        if not isinstance(self.settle_failure_reason, str) or not self.settle_failure_reason:
            raise ValueError("settle_failure_reason must be a non-empty string")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Faults:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**data)


class FaultState:
    """The live faults of one server: counters decrement as faults fire."""

    def __init__(self, faults: Faults | None = None, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(f"tm402-faults:{seed}")
        self.faults = faults or Faults()
        self.fired: dict[str, int] = {}

    def set(self, faults: Faults) -> None:
        with self._lock:
            self.faults = faults

    def snapshot(self) -> Faults:
        with self._lock:
            return Faults(**asdict(self.faults))

    def _take(self, name: str) -> bool:
        with self._lock:
            n = getattr(self.faults, name)
            if n == 0:
                return False
            if n > 0:
                setattr(self.faults, name, n - 1)
            self.fired[name] = self.fired.get(name, 0) + 1
            return True

    @property
    def latency_s(self) -> float:
        return self.faults.latency_ms / 1000.0

    def take_429(self) -> bool:
        return self._take("burst_429")

    def take_5xx(self) -> bool:
        if self._take("error_5xx_next"):
            return True
        with self._lock:
            rate = self.faults.error_5xx_rate
            if rate > 0 and self._rng.random() < rate:
                self.fired["error_5xx_rate"] = self.fired.get("error_5xx_rate", 0) + 1
                return True
        return False

    def take_settle_failure(self) -> bool:
        return self._take("settle_failure")

    def take_slow_settle(self) -> bool:
        return self._take("slow_settle_past_valid_before")

    def take_malformed_challenge(self) -> bool:
        return self._take("malformed_challenge")

    def take_oversized_challenge(self) -> bool:
        return self._take("oversized_challenge")

    def take_settle_pending(self) -> bool:
        return self._take("settle_pending")

    def take_drop(self) -> bool:
        return self._take("drop_after_settle")

    def fired_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self.fired)
