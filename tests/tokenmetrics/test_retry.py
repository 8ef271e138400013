"""Retry decisions: Retry-After in every shape a server may send, through the client, without paying twice."""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.tokenmetrics.conftest import make_client, settled_match
from tm402_nb.tokenmetrics.retry import retry_after_seconds
from tm402_nb.x402.messages import PAYMENT_SIGNATURE, X_PAYMENT


def after(value: str) -> float | None:
    return retry_after_seconds(httpx.Response(429, headers={"Retry-After": value}))


@pytest.mark.parametrize(
    "value, seconds",
    [("3", 3.0), (" 2.5 ", 2.5), ("0", 0.0), ("-4", 0.0), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0)],
)
def test_readable_retry_after(value, seconds):
    assert after(value) == seconds


def test_retry_after_as_a_future_http_date():
    when = datetime.now(UTC) + timedelta(minutes=2)
    assert 0 < after(email.utils.format_datetime(when, usegmt=True)) <= 121


BAD_RETRY_AFTER = ["soon", "", "nan", "inf", "Wed, 99 Foo 2025 25:61:00 GMT", "12 apples", "Tue, 32 Jan"]


@pytest.mark.parametrize("value", BAD_RETRY_AFTER)
def test_unreadable_retry_after_is_absent(value):
    assert after(value) is None
    assert retry_after_seconds(httpx.Response(429)) is None


class RateLimitTheFirstPayment(httpx.BaseTransport):
    """Answers the first request that carries a payment with 429 and ``Retry-After: <value>``,
    without forwarding it (so that payment is still unused); everything else goes to the server."""

    def __init__(self, value: str) -> None:
        self.inner = httpx.HTTPTransport()
        self.value = value
        self.limited = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        paid = X_PAYMENT in request.headers or PAYMENT_SIGNATURE in request.headers
        if paid and not self.limited:
            self.limited += 1
            return httpx.Response(429, headers={"Retry-After": self.value}, json={"message": "slow down"})
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


@pytest.mark.parametrize("value", ["soon", "nan", "Wed, 99 Foo 2025 25:61:00 GMT"])
def test_malformed_retry_after_falls_back_to_backoff_and_pays_once(sandbox, funded, ledger, value):
    transport = RateLimitTheFirstPayment(value)
    with make_client(sandbox, funded, ledger, transport=transport) as client:
        df = client.frame("tm-grade", symbol="BTC")
        assert len(df) == 1 and df.attrs["tm402"]["paid"] == 1
        assert transport.limited == 1
        assert client.auth.stats["signed"] == 1  # the retry replayed the signed payment
    assert ledger.payments()["status"].tolist() == ["settled"]
    settled_match(sandbox, funded, ledger)
