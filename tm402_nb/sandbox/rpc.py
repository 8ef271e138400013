"""A JSON-RPC subset at ``/rpc``, so wallet-balance code is the same against the sandbox and a real node.

Methods: ``eth_chainId``, ``net_version``, ``eth_blockNumber``, ``eth_getBalance``
(native balance, always 0), ``eth_call`` on the sandbox USDC/TMAI contracts
(``balanceOf``, ``allowance``, ``decimals``, ``symbol``, ``name`` and EIP-3009
``authorizationState(address,bytes32)``), ``eth_call`` of ``nonceBitmap(address,uint256)``
on the Permit2 contract, and ``eth_getTransactionReceipt`` for
the sandbox's settlement hashes. Batches are accepted. Errors use JSON-RPC codes.
"""

from __future__ import annotations

import re
from typing import Any

from eth_hash.auto import keccak

from ..x402.permit2 import ALLOWANCE, NONCE_BITMAP, PERMIT2_ADDRESS
from .state import SandboxState


def selector(signature: str) -> str:
    return "0x" + keccak(signature.encode())[:4].hex()


BALANCE_OF = selector("balanceOf(address)")  # 0x70a08231
DECIMALS = selector("decimals()")
SYMBOL = selector("symbol()")
NAME = selector("name()")
AUTHORIZATION_STATE = selector("authorizationState(address,bytes32)")

_HEX_RE = re.compile(r"^0x[0-9a-fA-F]*$")


class RpcError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _word(value: int) -> str:
    return "0x" + value.to_bytes(32, "big").hex()


def _abi_string(text: str) -> str:
    raw = text.encode()
    padded = raw + b"\x00" * (-len(raw) % 32)
    return "0x" + (32).to_bytes(32, "big").hex() + len(raw).to_bytes(32, "big").hex() + padded.hex()


def _eth_call(st: SandboxState, params: list[Any]) -> str:
    if not params or not isinstance(params[0], dict):
        raise RpcError(-32602, "eth_call expects [{to, data}, block]")
    call = params[0]
    to, data = call.get("to"), call.get("data", call.get("input"))
    if not isinstance(to, str) or not isinstance(data, str) or not _HEX_RE.match(data):
        raise RpcError(-32602, "eth_call needs 'to' and hex 'data'")
    sel, args = data[:10].lower(), data[10:]
    if to.lower() == PERMIT2_ADDRESS.lower():
        if sel != NONCE_BITMAP:
            raise RpcError(3, "execution reverted")
        if len(args) < 128:
            raise RpcError(-32602, "nonceBitmap(address,uint256) needs two 32-byte arguments")
        return _word(st.chain.permit2_bitmap("0x" + args[24:64], int(args[64:128], 16)))
    asset = next((a for a in st.assets.values() if a.address.lower() == to.lower()), None)
    if asset is None:
        return "0x"  # no code at that address, as a node answers for an EOA
    if sel == BALANCE_OF:
        if len(args) < 64:
            raise RpcError(-32602, "balanceOf(address) needs a 32-byte argument")
        owner = "0x" + args[24:64]
        return _word(st.chain.balance(asset.address, owner))
    if sel == ALLOWANCE:
        if len(args) < 128:
            raise RpcError(-32602, "allowance(address,address) needs two 32-byte arguments")
        return _word(st.chain.allowance(asset.address, "0x" + args[24:64], "0x" + args[88:128]))
    if sel == AUTHORIZATION_STATE:
        if len(args) < 128:
            raise RpcError(-32602, "authorizationState(address,bytes32) needs two 32-byte arguments")
        owner, nonce = "0x" + args[24:64], "0x" + args[64:128]
        return _word(1 if st.chain.nonce_state(asset.address, owner, nonce) == "used" else 0)
    if sel == DECIMALS:
        return _word(asset.decimals)
    if sel == SYMBOL:
        return _abi_string(asset.symbol)
    if sel == NAME:
        return _abi_string(asset.eip712_name)
    raise RpcError(3, "execution reverted")


def _receipt(st: SandboxState, params: list[Any]) -> dict[str, Any] | None:
    if not params or not isinstance(params[0], str):
        raise RpcError(-32602, "eth_getTransactionReceipt expects [txHash]")
    s = st.chain.settlement_by_tx(params[0])
    if s is None:
        return None
    return {
        "transactionHash": s["transaction"],
        "blockNumber": hex(s["block"]),
        "from": s["payer"],
        "to": s["asset"],
        "status": "0x1",
        "logs": [],
    }


def handle_call(st: SandboxState, call: Any) -> dict[str, Any] | None:
    """One JSON-RPC request object → response object (None for a notification)."""
    if not isinstance(call, dict) or call.get("jsonrpc") != "2.0" or not isinstance(call.get("method"), str):
        return {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "Invalid Request"}}
    cid = call.get("id")
    method = call["method"]
    params = call.get("params", [])
    if not isinstance(params, list):
        params = [params]
    try:
        if method == "eth_chainId":
            result: Any = hex(st.network.chain_id)
        elif method == "net_version":
            result = str(st.network.chain_id)
        elif method == "eth_blockNumber":
            result = hex(st.chain.block_number())
        elif method == "eth_getBalance":
            result = "0x0"
        elif method == "eth_call":
            result = _eth_call(st, params)
        elif method == "eth_getTransactionReceipt":
            result = _receipt(st, params)
        elif method == "web3_clientVersion":
            result = "tm402-sandbox/1"
        else:
            raise RpcError(-32601, f"Method not found: {method[:60]}")
    except RpcError as exc:
        return {"jsonrpc": "2.0", "id": cid, "error": {"code": exc.code, "message": exc.message}}
    if "id" not in call:
        return None
    return {"jsonrpc": "2.0", "id": cid, "result": result}


def handle(st: SandboxState, body: Any) -> Any:
    # Each request is time passing: broadcast transfers (settlement_pending) due by now are mined first.
    st.facilitator.mempool.tick()
    if isinstance(body, list):
        if not body:
            return {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "Invalid Request"}}
        out = [r for r in (handle_call(st, c) for c in body[:100]) if r is not None]
        return out
    return handle_call(st, body)
