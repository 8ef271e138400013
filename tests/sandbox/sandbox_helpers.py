"""Helpers for the sandbox tests: a tiny x402 payer and balance snapshots.

The payer is deliberately minimal (challenge → sign → header) so the sandbox is
tested on its own, not through the toolkit's client.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

import httpx

from tm402_nb.sandbox import SandboxServer
from tm402_nb.x402.eip3009 import sign_authorization
from tm402_nb.x402.encoding import b64json_decode, b64json_encode
from tm402_nb.x402.messages import (
    Authorization,
    PaymentPayload,
    PaymentRequired,
    PaymentRequirements,
    build_payment_payload,
    parse_challenge,
)
from tm402_nb.x402.permit2 import sign_permit2, transfer_method
from tm402_nb.x402.wallet import Wallet

X402 = {"x-coinbase-402": "true"}


def key_headers(server: SandboxServer) -> dict[str, str]:
    return {"x-api-key": server.api_key}


def fresh_wallet(
    server: SandboxServer, usdc: str | None = "10", tmai: str | None = "1000", *, approve_permit2: bool = False
) -> Wallet:
    """A new wallet funded through the faucet (so each test starts from known balances);
    ``approve_permit2`` also approves the Permit2 contract for TMAI."""
    w = Wallet.create()
    if usdc:
        server.fund(w.address, "usdc", usdc)
    if tmai:
        server.fund(w.address, "tmai", tmai, approve_permit2=approve_permit2)
    return w


def get_challenge(c: httpx.Client, path: str, params: dict | None = None, token: str | None = None) -> PaymentRequired:
    headers = dict(X402)
    if token:
        headers["x-payment-token"] = token
    r = c.get(path, params=params, headers=headers)
    assert r.status_code == 402, r.text
    return parse_challenge(r.headers, r.content)


def offer(required: PaymentRequired, asset: str = "usdc") -> PaymentRequirements:
    """The challenge's USDC or TMAI requirement."""
    names = {"usdc": ("USDC", "USD Coin"), "tmai": ("Token Metrics AI",)}[asset]
    return next(
        r for r in required.accepts if r.eip712_name in names or (asset == "tmai" and transfer_method(r) == "permit2")
    )


def sign(
    wallet: Wallet, required: PaymentRequired, *, pay_with: str = "usdc", now: int | None = None, **req_overrides: Any
) -> PaymentPayload:
    """Sign for the USDC (or TMAI) offer, optionally against altered requirements (a Permit2 offer by Permit2)."""
    req = offer(required, pay_with)
    if req_overrides:
        req = PaymentRequirements.from_json({**req.raw, **req_overrides}, req.x402_version)
    auth: Authorization | Any
    if transfer_method(req) == "permit2":
        auth, sig = sign_permit2(wallet, req, now=now)
    else:
        auth, sig = sign_authorization(wallet, req, now=now)
    return build_payment_payload(required, req, auth, sig)


def headers_for(payload: PaymentPayload | dict, version: int | None = None) -> dict[str, str]:
    if isinstance(payload, PaymentPayload):
        return {**X402, payload.header_name: payload.encode()}
    name = "X-PAYMENT" if (version or payload.get("x402Version")) == 1 else "PAYMENT-SIGNATURE"
    return {**X402, name: b64json_encode(payload)}


def tamper(payload: PaymentPayload, edit: Callable[[dict], None]) -> dict:
    """The payload's JSON with ``edit`` applied (signature unchanged)."""
    d = copy.deepcopy(payload.to_json())
    edit(d)
    return d


def snapshot(server: SandboxServer, *addresses: str) -> dict[str, Any]:
    """Balances of the given addresses and the payee, plus the settlement count."""
    out: dict[str, Any] = {"settlements": len(server.settlements())}
    for a in (*addresses, server.pay_to):
        out[(a, "usdc")] = server.balance(a, "usdc")
        out[(a, "tmai")] = server.balance(a, "tmai")
    return out


def decode_header(value: str) -> dict:
    return b64json_decode(value)


def now() -> int:
    return int(time.time())
