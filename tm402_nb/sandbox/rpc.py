"""A JSON-RPC subset at ``/rpc``, so wallet-balance code is the same against the sandbox and a real node.

Methods: ``eth_chainId``, ``net_version``, ``eth_blockNumber``, ``eth_getBalance``
(native ETH, funded by the faucet's ``eth``), ``eth_call`` on the sandbox USDC/TMAI contracts
(``balanceOf``, ``allowance``, ``decimals``, ``symbol``, ``name`` and EIP-3009
``authorizationState(address,bytes32)``), ``eth_call`` of ``nonceBitmap(address,uint256)``
on the Permit2 contract, and ``eth_getTransactionReceipt`` for the sandbox's settlement
hashes and the transactions it mined. Batches are accepted. Errors use JSON-RPC codes.

Transactions: the one a wallet sends before paying by Permit2, ``approve(spender, amount)``
on a sandbox token, as a signed EIP-1559 (type 2) ``eth_sendRawTransaction``; with what
building one needs (``eth_getTransactionCount``, ``eth_gasPrice``, ``eth_maxPriorityFeePerGas``,
``eth_getBlockByNumber`` with ``baseFeePerGas``, ``eth_estimateGas``). The chain checks what a
node checks (chain id, signature, the sender's nonce, fee above the base fee, ETH for
gas limit × max fee) and mines it at once: the sender pays gas used × effective price in ETH.
Any other transaction is refused.
"""

from __future__ import annotations

import re
from typing import Any

from eth_hash.auto import keccak

from ..x402.permit2 import ALLOWANCE, NONCE_BITMAP, PERMIT2_ADDRESS
from .chain import NATIVE
from .sponsoring import APPROVE_GAS, BASE_FEE, PRIORITY_FEE, TxRefused, decode_signed
from .sponsoring import approve_args as _approve_args
from .sponsoring import hex_field as _hex
from .state import SandboxState


def selector(signature: str) -> str:
    return "0x" + keccak(signature.encode())[:4].hex()


BALANCE_OF = selector("balanceOf(address)")  # 0x70a08231
DECIMALS = selector("decimals()")
SYMBOL = selector("symbol()")
NAME = selector("name()")
AUTHORIZATION_STATE = selector("authorizationState(address,bytes32)")

_HEX_RE = re.compile(r"^0x[0-9a-fA-F]*$")
_ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")

#: Gas of a plain ETH transfer (the intrinsic cost of any transaction).
TRANSFER_GAS = 21_000
#: The sandbox's block gas limit (Base's, about).
BLOCK_GAS_LIMIT = 150_000_000


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


def _address_param(method: str, params: list[Any]) -> str:
    if not params or not isinstance(params[0], str) or not _ADDRESS_RE.match(params[0]):
        raise RpcError(-32602, f"{method} expects [address, block]")
    return params[0]


def _token(st: SandboxState, to: object) -> Any:
    return next((a for a in st.assets.values() if isinstance(to, str) and a.address.lower() == to.lower()), None)


def _estimate_gas(st: SandboxState, params: list[Any]) -> str:
    if not params or not isinstance(params[0], dict):
        raise RpcError(-32602, "eth_estimateGas expects [{from, to, data}]")
    call = params[0]
    data = call.get("data", call.get("input")) or "0x"
    if not isinstance(data, str) or not _HEX_RE.match(data):
        raise RpcError(-32602, "eth_estimateGas needs hex 'data'")
    if data == "0x" and _token(st, call.get("to")) is None:
        return hex(TRANSFER_GAS)
    if _token(st, call.get("to")) is not None and _approve_args(data) is not None:
        return hex(APPROVE_GAS)
    raise RpcError(3, "execution reverted: the sandbox chain executes only approve(address,uint256) on its tokens")


def _block(st: SandboxState, params: list[Any]) -> dict[str, Any] | None:
    tag = params[0] if params else "latest"
    latest = st.chain.block_number()
    if tag in ("latest", "pending", "safe", "finalized"):
        number = latest
    elif tag == "earliest":
        number = 0
    elif isinstance(tag, str) and _HEX_RE.match(tag) and len(tag) > 2:
        number = int(tag, 16)
    else:
        raise RpcError(-32602, "eth_getBlockByNumber expects [blockTag or hex number, fullTransactions]")
    if number > latest:
        return None
    return {
        "number": hex(number),
        "hash": "0x" + keccak(b"tm402-sandbox-block" + number.to_bytes(8, "big")).hex(),
        "baseFeePerGas": hex(BASE_FEE),
        "gasLimit": hex(BLOCK_GAS_LIMIT),
        "transactions": [],
    }


def _send_raw(st: SandboxState, params: list[Any]) -> str:
    """Decode, check and mine a signed type-2 ``approve`` transaction; its hash."""
    if not params or not isinstance(params[0], str) or not _HEX_RE.match(params[0]) or len(params[0]) < 4:
        raise RpcError(-32602, "eth_sendRawTransaction expects [signed transaction hex]")
    raw = bytes.fromhex(params[0][2:])
    if raw[0] != 2:
        raise RpcError(-32000, "transaction type not supported: the sandbox chain takes EIP-1559 (type 2) only")
    try:
        tx, sender = decode_signed(raw)
    except TxRefused as exc:  # undecodable, or a signature that recovers to no key
        raise RpcError(
            -32000, exc.message if exc.message.startswith("invalid") else f"invalid transaction: {exc.message}"
        ) from None
    if tx["chainId"] != st.network.chain_id:
        raise RpcError(-32000, f"invalid chain id {tx['chainId']}: this chain is {st.network.chain_id}")
    token = _token(st, _hex(tx.get("to")))
    args = _approve_args(_hex(tx.get("data")))
    if token is None or args is None or tx["value"] != 0:
        raise RpcError(-32000, "the sandbox chain executes only approve(address,uint256) on its tokens, sending no ETH")
    if tx["gas"] < APPROVE_GAS:
        raise RpcError(-32000, f"intrinsic gas too low: approve needs {APPROVE_GAS}, gas limit {tx['gas']}")
    max_fee, tip = tx["maxFeePerGas"], tx["maxPriorityFeePerGas"]
    if max_fee < BASE_FEE:
        raise RpcError(-32000, f"max fee per gas less than block base fee: maxFeePerGas {max_fee}, baseFee {BASE_FEE}")
    if tip > max_fee:
        raise RpcError(-32000, "max priority fee per gas higher than max fee per gas")
    tx_hash = "0x" + keccak(raw).hex()
    spender, amount = args
    refused = st.chain.mine_approval(
        tx_hash=tx_hash,
        sender=sender,
        nonce=tx["nonce"],
        token=token.address,
        spender=spender,
        amount=amount,
        upfront=tx["gas"] * max_fee,
        gas_used=APPROVE_GAS,
        gas_price=min(max_fee, BASE_FEE + tip),
    )
    if refused is not None:
        raise RpcError(-32000, refused)
    return tx_hash


def _approval_receipt(tx: dict[str, Any]) -> dict[str, Any]:
    from ..x402.wallet import to_checksum

    owner, spender = tx["sender"], tx["spender"]
    return {
        "transactionHash": tx["hash"],
        "blockNumber": hex(tx["block"]),
        "from": to_checksum(owner),
        "to": to_checksum(tx["target"]),
        "type": "0x2",
        "status": "0x1",
        "gasUsed": hex(tx["gas_used"]),
        "cumulativeGasUsed": hex(tx["gas_used"]),
        "effectiveGasPrice": hex(int(tx["gas_price"])),
        "logs": [
            {  # Approval(address indexed owner, address indexed spender, uint256 value)
                "address": to_checksum(tx["target"]),
                "topics": [
                    "0x" + keccak(b"Approval(address,address,uint256)").hex(),
                    "0x" + owner[2:].rjust(64, "0"),
                    "0x" + spender[2:].rjust(64, "0"),
                ],
                "data": _word(int(tx["amount"])),
            }
        ],
    }


def _receipt(st: SandboxState, params: list[Any]) -> dict[str, Any] | None:
    if not params or not isinstance(params[0], str):
        raise RpcError(-32602, "eth_getTransactionReceipt expects [txHash]")
    mined = st.chain.transaction(params[0])
    if mined is not None:
        return _approval_receipt(mined)
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
            result = hex(st.chain.balance(NATIVE, _address_param(method, params)))
        elif method == "eth_getTransactionCount":
            result = hex(st.chain.transaction_count(_address_param(method, params)))
        elif method == "eth_gasPrice":
            result = hex(BASE_FEE + PRIORITY_FEE)
        elif method == "eth_maxPriorityFeePerGas":
            result = hex(PRIORITY_FEE)
        elif method == "eth_getBlockByNumber":
            result = _block(st, params)
        elif method == "eth_estimateGas":
            result = _estimate_gas(st, params)
        elif method == "eth_sendRawTransaction":
            result = _send_raw(st, params)
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
