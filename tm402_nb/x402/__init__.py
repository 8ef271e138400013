"""x402 protocol layer: any httpx client can pay any x402 server with it.

Knows nothing of Token Metrics, pandas or Jupyter::

    auth = X402Auth(Wallet.from_env(), policy=SpendPolicy(max_per_call="0.05"))
    r = httpx.get(url, auth=auth)
    receipt(r)
"""

from .auth import Payment, PaymentEvent, X402Auth, payment_of, receipt
from .client import async_paying_client, paying_client
from .eip3009 import Eip712Domain, recover_signer, sign_authorization, transfer_digest
from .messages import (
    Authorization,
    PaymentPayload,
    PaymentRequired,
    PaymentRequirements,
    SettlementResponse,
    build_payment_payload,
    parse_challenge,
    read_receipt,
)
from .money import format_amount, to_atomic, to_display
from .networks import BASE, BASE_SEPOLIA, TMAI_BASE, USDC_BASE, USDC_BASE_SEPOLIA, Asset, Network, get_network
from .policy import AssetLimit, Offer, SpendPolicy
from .transport import AsyncPaymentReplayTransport, PaymentReplayTransport
from .wallet import Wallet

__all__ = [
    "BASE", "BASE_SEPOLIA", "TMAI_BASE", "USDC_BASE", "USDC_BASE_SEPOLIA",
    "Asset", "AssetLimit", "AsyncPaymentReplayTransport", "Authorization", "Eip712Domain", "Network", "Offer",
    "Payment", "PaymentEvent", "PaymentPayload", "PaymentReplayTransport", "PaymentRequired", "PaymentRequirements",
    "SettlementResponse", "SpendPolicy", "Wallet", "X402Auth", "async_paying_client", "build_payment_payload",
    "format_amount", "get_network", "parse_challenge", "paying_client", "payment_of", "read_receipt", "receipt",
    "recover_signer", "sign_authorization", "to_atomic", "to_display", "transfer_digest",
]
