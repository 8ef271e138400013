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

__all__ = ["AUTHORIZATION_STATE", "BALANCE_OF", "AuthorizationReader", "ChainReader", "redact_rpc"]

#: ``balanceOf(address)``
BALANCE_OF = "0x70a08231"
#: ``authorizationState(address,bytes32)`` (EIP-3009)
AUTHORIZATION_STATE = "0xe94a0102"


def redact_rpc(url: str) -> str:
    """An RPC URL without its user info, path and query: hosted RPCs carry their API key there.

    >>> redact_rpc("https://base-mainnet.g.alchemy.com/v2/KEY")
    'https://base-mainnet.g.alchemy.com/…'
    """
    try:
        u = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return "(unreadable URL)"
    port = f":{u.port}" if u.port else ""
    tail = "/…" if (u.path not in ("", "/") or u.query) else ""
    return f"{u.scheme}://{u.host}{port}{tail}"


def _scrub(text: str, url: str) -> str:
    """``text`` with every secret-bearing part of ``url`` replaced (a node or httpx may echo it)."""
    shown = redact_rpc(url)
    parts, full = {url}, {url}
    try:
        u = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        pass
    else:
        parts |= {str(u), u.userinfo.decode("ascii", "replace"), u.query.decode("ascii", "replace"), u.path}
        parts |= {u.raw_path.decode("ascii", "replace"), *(v for _, v in u.params.multi_items() if len(v) >= 6)}
        parts |= {seg for seg in u.path.split("/") if len(seg) >= 8}
        parts = {p for p in parts if p and p != "/"}
        full.add(str(u))
    for part in sorted(parts, key=len, reverse=True):
        text = text.replace(part, shown if part in full else "…")
    return text


class AuthorizationReader(Protocol):
    """Whether an authorization (EIP-3009, or Permit2 by its nonce bitmap) has been executed on chain."""

    def authorization_used(self, asset: str, authorizer: str, nonce: str) -> bool: ...

    def permit2_nonce_used(self, owner: str, nonce: int) -> bool:
        """Whether Permit2 nonce ``nonce`` of ``owner`` has been consumed."""
        ...


def _hex_int(method: str, value: Any) -> int:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise X402ProtocolError(f"JSON-RPC {method} returned a non-hex value: {str(value)[:40]}")
    try:
        return int(value, 16) if len(value) > 2 else 0
    except ValueError:
        raise X402ProtocolError(f"JSON-RPC {method} returned a non-hex value: {value[:40]}") from None


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
            detail = _scrub(f"{type(exc).__name__}: {exc}", self.rpc_url)
            raise X402ProtocolError(f"JSON-RPC {method} to {redact_rpc(self.rpc_url)} failed: {detail}") from None
        if not isinstance(reply, dict) or "result" not in reply:
            err = reply.get("error") if isinstance(reply, dict) else reply
            detail = _scrub(str(err), self.rpc_url)[:200]
            raise X402ProtocolError(f"JSON-RPC {method} to {redact_rpc(self.rpc_url)} failed: {detail}")
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

    def _quantity(self, method: str, params: list[Any]) -> int:
        """A JSON-RPC call whose result is a hex quantity (``"0x1a"``)."""
        return _hex_int(method, self.call(method, params))

    def chain_id(self) -> int:
        return self._quantity("eth_chainId", [])

    # -- what a transaction needs: the sender's nonce, fees, gas, native balance -----------------
    def transaction_count(self, address: str, block: str = "pending") -> int:
        """``eth_getTransactionCount``: the next nonce of ``address`` (``pending`` counts queued txs)."""
        return self._quantity("eth_getTransactionCount", [address, block])

    def native_balance(self, address: str) -> int:
        """``eth_getBalance``: wei held by ``address`` (what gas is paid in)."""
        return self._quantity("eth_getBalance", [address, "latest"])

    def gas_price(self) -> int:
        """``eth_gasPrice`` in wei."""
        return self._quantity("eth_gasPrice", [])

    def max_priority_fee(self) -> int:
        """``eth_maxPriorityFeePerGas`` in wei, else what ``eth_gasPrice`` says above the base fee."""
        try:
            return self._quantity("eth_maxPriorityFeePerGas", [])
        except X402ProtocolError:  # a node without the method (it is not in the execution API spec)
            return max(0, self.gas_price() - self.base_fee())

    def base_fee(self) -> int:
        """The latest block's ``baseFeePerGas`` in wei (EIP-1559)."""
        block = self.call("eth_getBlockByNumber", ["latest", False])
        if not isinstance(block, dict) or "baseFeePerGas" not in block:
            raise X402ProtocolError(
                "JSON-RPC eth_getBlockByNumber: the latest block has no baseFeePerGas (no EIP-1559)"
            )
        return _hex_int("eth_getBlockByNumber", block["baseFeePerGas"])

    def estimate_gas(self, tx: dict[str, Any]) -> int:
        """``eth_estimateGas`` of ``tx`` (``from``, ``to``, ``data``) against the latest block."""
        return self._quantity("eth_estimateGas", [tx])

    def send_raw_transaction(self, raw: bytes) -> str:
        """``eth_sendRawTransaction``; the transaction hash the node answers."""
        result = self.call("eth_sendRawTransaction", ["0x" + raw.hex()])
        if not isinstance(result, str) or not result.startswith("0x") or len(result) != 66:
            raise X402ProtocolError(f"JSON-RPC eth_sendRawTransaction returned {str(result)[:80]}")
        return result

    def receipt(self, tx_hash: str) -> dict[str, Any] | None:
        """``eth_getTransactionReceipt``: None while the transaction is not mined."""
        result = self.call("eth_getTransactionReceipt", [tx_hash])
        if result is not None and not isinstance(result, dict):
            raise X402ProtocolError(f"JSON-RPC eth_getTransactionReceipt returned {str(result)[:80]}")
        return result

    def __repr__(self) -> str:
        # The URL's path and query (where hosted RPCs put their API key) are never shown.
        return f"ChainReader({redact_rpc(self.rpc_url)})"
