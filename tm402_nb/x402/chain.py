"""What the chain says about a token and a payment, read over JSON-RPC (``eth_call``).

The payer's own evidence: an EIP-3009 token records every authorization nonce it has
executed (``authorizationState(authorizer, nonce)``), and Permit2 every nonce it has
consumed (``nonceBitmap(owner, word)``), so a payment whose answer was lost can be
decided without trusting the server: used means it settled, unused after its
``validBefore`` (or deadline) means it never can. The same calls work against a real
node and the sandbox's ``/rpc``.
"""

from __future__ import annotations

from typing import Any, Protocol

import httpx

from ..errors import X402ProtocolError
from .permit2 import ALLOWANCE, NONCE_BITMAP, PERMIT2_ADDRESS, nonce_position

__all__ = ["AUTHORIZATION_STATE", "BALANCE_OF", "AuthorizationReader", "ChainReader"]

#: ``balanceOf(address)``
BALANCE_OF = "0x70a08231"
#: ``authorizationState(address,bytes32)`` (EIP-3009)
AUTHORIZATION_STATE = "0xe94a0102"


class AuthorizationReader(Protocol):
    """Whether an authorization (EIP-3009, or Permit2 by its nonce bitmap) has been executed on chain."""

    def authorization_used(self, asset: str, authorizer: str, nonce: str) -> bool: ...

    def permit2_nonce_used(self, owner: str, nonce: int) -> bool:
        """Whether Permit2 nonce ``nonce`` of ``owner`` has been consumed."""
        ...


def _word(hex_value: str) -> str:
    return hex_value.lower().removeprefix("0x").rjust(64, "0")


class ChainReader:
    """Read-only JSON-RPC calls to one node.

    >>> ChainReader("http://127.0.0.1:8545")
    ChainReader(http://127.0.0.1:8545)
    """

    def __init__(self, rpc_url: str, *, timeout: float = 10.0, transport: httpx.BaseTransport | None = None) -> None:
        self.rpc_url = rpc_url
        self._timeout = timeout
        self._transport = transport

    def call(self, method: str, params: list[Any]) -> Any:
        """One JSON-RPC call; its ``result``, or X402ProtocolError naming what went wrong."""
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        try:
            with httpx.Client(timeout=self._timeout, transport=self._transport) as http:
                reply = http.post(self.rpc_url, json=body).json()
        except (httpx.HTTPError, ValueError) as exc:
            raise X402ProtocolError(f"JSON-RPC {method} failed: {type(exc).__name__}: {exc}") from None
        if not isinstance(reply, dict) or "result" not in reply:
            err = reply.get("error") if isinstance(reply, dict) else reply
            raise X402ProtocolError(f"JSON-RPC {method} failed: {str(err)[:200]}")
        return reply["result"]

    def _uint(self, to: str, data: str) -> int:
        result = self.call("eth_call", [{"to": to, "data": data}, "latest"])
        if not isinstance(result, str) or not result.startswith("0x"):
            raise X402ProtocolError(f"JSON-RPC eth_call returned a non-hex value: {str(result)[:40]}")
        return int(result, 16) if len(result) > 2 else 0

    def balance_of(self, token: str, owner: str) -> int:
        """Atomic balance of ``owner`` in ERC-20 ``token``."""
        return self._uint(token, BALANCE_OF + _word(owner))

    def authorization_used(self, asset: str, authorizer: str, nonce: str) -> bool:
        """True when ``nonce`` of ``authorizer`` has been executed (or cancelled) on ``asset``."""
        return self._uint(asset, AUTHORIZATION_STATE + _word(authorizer) + _word(nonce)) != 0

    def allowance(self, token: str, owner: str, spender: str) -> int:
        """ERC-20 ``allowance(owner, spender)`` in atomic units (Permit2 needs one from the payer)."""
        return self._uint(token, ALLOWANCE + _word(owner) + _word(spender))

    def permit2_nonce_used(self, owner: str, nonce: int) -> bool:
        """True when Permit2 nonce ``nonce`` of ``owner`` has been consumed (settled or invalidated)."""
        word, bit = nonce_position(nonce)
        bitmap = self._uint(PERMIT2_ADDRESS, NONCE_BITMAP + _word(owner) + _word(hex(word)))
        return bool(bitmap >> bit & 1)

    def chain_id(self) -> int:
        result = self.call("eth_chainId", [])
        if not isinstance(result, str) or not result.startswith("0x"):
            raise X402ProtocolError(f"JSON-RPC eth_chainId returned {str(result)[:40]}")
        return int(result, 16)

    def __repr__(self) -> str:
        return f"ChainReader({self.rpc_url})"
