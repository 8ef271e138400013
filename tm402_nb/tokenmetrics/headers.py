"""The headers Token Metrics expects: one set shared by every request, one per request.

Shared (on the httpx client): ``accept``, ``user-agent`` and the mode's
credential, ``x-api-key`` or ``x-coinbase-402: true``. Per request (never on the
shared client, so concurrent calls paying in different assets cannot see each
other's): ``x-payment-token``, the asset this call pays in.
"""

from __future__ import annotations

from .modes import Mode

__all__ = ["PAYMENT_TOKEN", "request_headers", "shared_headers"]

USER_AGENT = "tm402-nb/0.1"
#: Which asset an x402 call pays in; the server lists that asset's offer first.
PAYMENT_TOKEN = "x-payment-token"


def shared_headers(mode: Mode, api_key: str | None) -> dict[str, str]:
    """Headers every request of a client in ``mode`` carries."""
    headers = {"accept": "application/json", "user-agent": USER_AGENT}
    if mode.pays:
        headers["x-coinbase-402"] = "true"
    else:
        headers["x-api-key"] = api_key or ""
    return headers


def request_headers(mode: Mode, asset: str) -> dict[str, str]:
    """Headers of one request paying in ``asset`` (none in API-key mode, which does not pay)."""
    return {PAYMENT_TOKEN: asset} if mode.pays else {}
