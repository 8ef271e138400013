"""When a request is tried again, and how long the client waits first.

The executors (:class:`~tm402_nb.tokenmetrics.client.Client` and its async twin)
only send and sleep; every decision is here, so both make the same one:

* 429 honours ``Retry-After`` (seconds or an HTTP date, capped); an unreadable
  value counts as absent, so the usual backoff applies;
* 5xx is retried only when a retry cannot pay twice (no payment went out, the
  server refused it outright, or the retry replays the very same signed payment);
* a network error is retried only when no payment is awaiting its answer; a lost
  answer to a paid request raises :class:`PaymentOutcomeUnknown` instead.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from dataclasses import dataclass
from datetime import UTC

import httpx

from ..errors import PaymentOutcomeUnknown
from ..status import PaymentStatus
from ..x402.auth import X402Auth, payment_of
from .errors import APIError

__all__ = ["RetryPolicy", "retry_after_seconds", "wait_after_network_error", "wait_before_retry"]


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries: ``attempts`` more tries after the first, delays base·2ⁿ capped, with jitter."""

    attempts: int = 4
    base: float = 1.0
    cap: float = 16.0
    jitter: float = 0.25
    #: Never wait longer than this for a server's Retry-After.
    max_retry_after: float = 60.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds before retry number ``attempt`` (from 0): the server's wish when given, else backoff."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        d = min(self.cap, self.base * (2**attempt))
        return d * (1 + random.uniform(-self.jitter, self.jitter))


def retry_after_seconds(response: httpx.Response) -> float | None:
    """The wait a ``Retry-After`` header asks for, in seconds (≥ 0); None when absent or unreadable.

    >>> retry_after_seconds(httpx.Response(429, headers={"Retry-After": "3"}))
    3.0
    >>> retry_after_seconds(httpx.Response(429, headers={"Retry-After": "soon"})) is None
    True
    """
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    seconds: float | None
    try:
        seconds = float(value)
    except ValueError:
        seconds = _seconds_until(value)
    # "nan" and "inf" parse as floats but are no wait a server can mean.
    if seconds is None or not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _seconds_until(http_date: str) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(http_date)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # HTTP dates are GMT (RFC 9110 §5.6.7)
        when = when.replace(tzinfo=UTC)
    try:
        return when.timestamp() - time.time()
    except (OverflowError, OSError, ValueError):
        return None


def wait_after_network_error(
    retry: RetryPolicy, auth: X402Auth | None, request: httpx.Request, exc: httpx.TransportError, attempt: int
) -> float:
    """Seconds to wait before retrying ``request`` after ``exc``; raises when it must not be retried."""
    pending = auth.pending_for(request) if auth is not None else None
    if pending is not None:
        err = PaymentOutcomeUnknown(
            f"no answer from {request.url.path} after the payment was sent ({type(exc).__name__})",
            hint="it may have settled; re-running replays the same payment, never a new one",
        )
        err.payment = pending  # type: ignore[attr-defined]  # accounted as paid (unknown), not free
        raise err from exc
    if attempt >= retry.attempts:
        raise APIError(f"network error talking to {request.url.host}: {exc}") from exc
    return retry.delay(attempt)


def wait_before_retry(
    retry: RetryPolicy, auth: X402Auth | None, response: httpx.Response, attempt: int
) -> float | None:
    """Seconds to wait before retrying ``response``'s request, or None to keep the response."""
    if attempt >= retry.attempts:
        return None
    if response.status_code == 429:
        return retry.delay(attempt, retry_after_seconds(response))
    if response.status_code >= 500 and _cannot_pay_twice(auth, response):
        return retry.delay(attempt)
    return None


def _cannot_pay_twice(auth: X402Auth | None, response: httpx.Response) -> bool:
    """True when retrying cannot pay twice: no payment went out, the server refused it outright
    (failed), or the retry will replay the very same signed payment."""
    pay = payment_of(response)
    if pay is None or pay.status == PaymentStatus.FAILED:
        return True
    return pay.status == PaymentStatus.UNKNOWN and auth is not None and auth.pending_for(response.request) is pay
