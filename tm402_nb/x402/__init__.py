"""x402 protocol layer: any httpx client can pay any x402 server with it.

Knows nothing of Token Metrics, pandas or Jupyter::

    auth = X402Auth(Wallet.from_env(), policy=SpendPolicy(max_per_call="0.05"))
    r = httpx.get(url, auth=auth)
    receipt(r)

Names load lazily: importing the message layer (as the sandbox does) never
loads the client side (auth, policy, transports).
"""

from __future__ import annotations

from .._lazy import lazy_exports

_LAZY = {
    "Payment": "auth",
    "PaymentEvent": "auth",
    "X402Auth": "auth",
    "payment_of": "auth",
    "receipt": "auth",
    "astrip_payment_on_redirect": "auth",
    "strip_payment_on_redirect": "auth",
    "async_paying_client": "client",
    "ChainReader": "chain",
    "paying_client": "client",
    "Eip712Domain": "eip3009",
    "recover_signer": "eip3009",
    "sign_authorization": "eip3009",
    "transfer_digest": "eip3009",
    "Authorization": "messages",
    "PaymentPayload": "messages",
    "PaymentRequired": "messages",
    "PaymentRequirements": "messages",
    "SettlementResponse": "messages",
    "build_payment_payload": "messages",
    "parse_challenge": "messages",
    "read_receipt": "messages",
    "format_amount": "money",
    "to_atomic": "money",
    "to_display": "money",
    "BASE": "networks",
    "BASE_SEPOLIA": "networks",
    "TMAI_BASE": "networks",
    "USDC_BASE": "networks",
    "USDC_BASE_SEPOLIA": "networks",
    "Asset": "networks",
    "Network": "networks",
    "get_network": "networks",
    "AssetLimit": "policy",
    "Offer": "policy",
    "SpendPolicy": "policy",
    "PaymentOptions": "options",
    "PaymentRecord": "recorder",
    "PaymentRecorder": "recorder",
    "AsyncPaymentReplayTransport": "transport",
    "PaymentReplayTransport": "transport",
    "Wallet": "wallet",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
