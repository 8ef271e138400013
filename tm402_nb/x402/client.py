"""Ready-made httpx clients that pay x402: auth + replay transport + 30 s timeout."""

from __future__ import annotations

from typing import Any

import httpx

from .auth import X402Auth, astrip_payment_on_redirect, strip_payment_on_redirect
from .policy import SpendPolicy
from .recorder import PaymentRecorder
from .transport import AsyncPaymentReplayTransport, PaymentReplayTransport
from .wallet import Wallet

#: The seed article's advice: paid calls include a settlement, give them time.
DEFAULT_TIMEOUT = 30.0


def paying_client(
    wallet: Wallet,
    policy: SpendPolicy | None = None,
    *,
    ledger: PaymentRecorder | None = None,
    auth: X402Auth | None = None,
    replay_attempts: int = 2,
    **httpx_kwargs: Any,
) -> httpx.Client:
    """An ``httpx.Client`` that pays x402 challenges within ``policy``."""
    auth = auth or X402Auth(wallet, policy, ledger=ledger)
    transport = PaymentReplayTransport(httpx_kwargs.pop("transport", None), attempts=replay_attempts)
    httpx_kwargs.setdefault("timeout", DEFAULT_TIMEOUT)
    hooks = dict(httpx_kwargs.pop("event_hooks", None) or {})
    hooks["request"] = [strip_payment_on_redirect, *hooks.get("request", [])]
    return httpx.Client(auth=auth, transport=transport, event_hooks=hooks, **httpx_kwargs)


def async_paying_client(
    wallet: Wallet,
    policy: SpendPolicy | None = None,
    *,
    ledger: PaymentRecorder | None = None,
    auth: X402Auth | None = None,
    replay_attempts: int = 2,
    **httpx_kwargs: Any,
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` that pays x402 challenges within ``policy``."""
    auth = auth or X402Auth(wallet, policy, ledger=ledger)
    transport = AsyncPaymentReplayTransport(httpx_kwargs.pop("transport", None), attempts=replay_attempts)
    httpx_kwargs.setdefault("timeout", DEFAULT_TIMEOUT)
    hooks = dict(httpx_kwargs.pop("event_hooks", None) or {})
    hooks["request"] = [astrip_payment_on_redirect, *hooks.get("request", [])]
    return httpx.AsyncClient(auth=auth, transport=transport, event_hooks=hooks, **httpx_kwargs)
