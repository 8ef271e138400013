"""The sandbox's ``erc20ApprovalGasSponsoring``: the facilitator sends the payer's signed approval.

Under the profile switch ``gas_sponsoring="erc20"`` a v2 challenge with a Permit2 offer
advertises the extension (:func:`declaration`, the shape the SDK's server declares). A
Permit2 payment whose payer has not approved Permit2 enough may then carry, in the payload's
``extensions``, an ``approve(Permit2, amount)`` transaction signed but not sent.
:func:`check_sponsored_approval` checks it as the x402 SDK's facilitator does, in its order and
with its reason strings (the info's format, ``from`` is the payer, ``asset`` the token,
``spender`` Permit2, then the signed transaction: it recovers to the payer, calls the token,
is an ``approve`` whose spender is Permit2), and then what a node would refuse at broadcast
(another chain id, a nonce not the sender's next, a gas limit below an approve's) as
``erc20_approval_broadcast_failed``, and an approval too small to pay for as
``permit2_allowance_required``. Settlement (:meth:`.chain.Chain.permit_witness_transfer` with
``approval=``) mines the approval with the facilitator paying its gas, then the transfer,
in one chain transaction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from eth_hash.auto import keccak

from ..x402.messages import PaymentPayload
from ..x402.permit2 import APPROVE, PERMIT2_ADDRESS

KEY = "erc20ApprovalGasSponsoring"

# Reason strings (the Python v2 SDK's, extensions/erc20_approval_gas_sponsoring and constants).
INVALID_FORMAT = "invalid_erc20_approval_extension_format"
FROM_MISMATCH = "erc20_approval_from_mismatch"
ASSET_MISMATCH = "erc20_approval_asset_mismatch"
SPENDER_NOT_PERMIT2 = "erc20_approval_spender_not_permit2"
TX_PARSE_FAILED = "erc20_approval_tx_parse_failed"
TX_INVALID_SIGNATURE = "erc20_approval_tx_invalid_signature"
TX_SIGNER_MISMATCH = "erc20_approval_tx_signer_mismatch"
TX_WRONG_TARGET = "erc20_approval_tx_wrong_target"
TX_WRONG_SELECTOR = "erc20_approval_tx_wrong_selector"
TX_INVALID_CALLDATA = "erc20_approval_tx_invalid_calldata"
TX_WRONG_SPENDER = "erc20_approval_tx_wrong_spender"
BROADCAST_FAILED = "erc20_approval_broadcast_failed"

#: The sandbox chain's fees: a Base-like base fee of 0.01 gwei and a 0.001 gwei tip.
BASE_FEE = 10_000_000
PRIORITY_FEE = 1_000_000
#: Gas an ``approve`` uses on the sandbox chain (a real one: ~46,000 to a fresh slot, ~29,000 to a used one).
APPROVE_GAS = 46_000

_ADDRESS = re.compile(r"^0x[a-fA-F0-9]{40}$")
_DECIMAL = re.compile(r"^[0-9]+$")
_HEX = re.compile(r"^0x[a-fA-F0-9]+$")
_VERSION = re.compile(r"^[0-9]+(\.[0-9]+)*$")


def declaration() -> dict[str, Any]:
    """What a challenge's ``extensions`` carries under :data:`KEY` (the SDK server's declaration)."""
    addr = {"type": "string", "pattern": _ADDRESS.pattern}
    return {
        "info": {
            "description": "The facilitator accepts a raw signed approval transaction and will sponsor the gas fees.",
            "version": "1",
        },
        "schema": {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {
                "from": addr,
                "asset": addr,
                "spender": addr,
                "amount": {"type": "string", "pattern": _DECIMAL.pattern},
                "signedTransaction": {"type": "string", "pattern": _HEX.pattern},
                "version": {"type": "string", "pattern": _VERSION.pattern},
            },
            "required": ["from", "asset", "spender", "amount", "signedTransaction", "version"],
        },
    }


class TxRefused(Exception):
    """A raw transaction that cannot be decoded or recovered (``reason``: the SDK's string)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def decode_signed(raw: bytes) -> tuple[dict[str, Any], str]:
    """A signed EIP-1559 transaction's fields (eth-account's names) and its recovered sender.

    Raises :class:`TxRefused` (``erc20_approval_tx_parse_failed`` / ``..._invalid_signature``).
    """
    from eth_account import Account
    from eth_account.typed_transactions import TypedTransaction
    from hexbytes import HexBytes

    # The SDK's order: recover the signer first (bytes that do not decode recover no one either).
    try:
        sender = Account.recover_transaction(raw)
    except Exception:
        raise TxRefused(TX_INVALID_SIGNATURE, "invalid transaction: failed to recover the signer") from None
    if raw[0] != 2:
        raise TxRefused(TX_PARSE_FAILED, "transaction type not supported: EIP-1559 (type 2) only")
    try:
        tx = TypedTransaction.from_bytes(HexBytes(raw)).as_dict()
    except Exception as exc:  # pragma: no cover - what recovers decodes
        raise TxRefused(TX_PARSE_FAILED, f"invalid transaction: {type(exc).__name__}") from None
    return tx, sender


def hex_field(value: object) -> str:
    """A decoded transaction field (bytes, or already hex text) as 0x-hex."""
    if isinstance(value, str):
        return value if value.startswith("0x") else "0x" + value
    return "0x" + bytes(value).hex() if isinstance(value, (bytes, bytearray)) else "0x"


def approve_args(data: str) -> tuple[str, int] | None:
    """(spender, amount) of ``approve(address,uint256)`` calldata (hex, with 0x), else None."""
    if data[:10].lower() != APPROVE or len(data) != 10 + 128 or int(data[10:34], 16) != 0:
        return None
    return "0x" + data[34:74], int(data[74:138], 16)


@dataclass(frozen=True)
class SponsoredApproval:
    """A checked approval, ready for the chain to mine at the facilitator's gas cost."""

    tx_hash: str
    sender: str
    nonce: int
    token: str
    amount: int
    gas_price: int


@dataclass(frozen=True)
class Refused:
    reason: str
    message: str


def carried(payload: PaymentPayload) -> dict[str, Any] | None:
    """The extension's ``info`` when the payload carries one with the fields the SDK extracts
    (five strings), else None: a payment without it is checked as any other."""
    ext = payload.extensions.get(KEY) if isinstance(payload.extensions, dict) else None
    info = ext.get("info") if isinstance(ext, dict) else None
    if not isinstance(info, dict):
        return None
    if not all(isinstance(info.get(k), str) for k in ("from", "asset", "spender", "amount", "signedTransaction")):
        return None
    return info


def check_sponsored_approval(
    info: dict[str, Any],
    *,
    payer: str,
    token: str,
    chain_id: int,
    next_nonce: int,
    required: int,
    base_fee: int,
) -> SponsoredApproval | Refused:
    """The approval in ``info`` checked for ``payer`` paying ``required`` of ``token``."""
    version = info.get("version", "1")
    if not (
        _ADDRESS.match(info["from"])
        and _ADDRESS.match(info["asset"])
        and _ADDRESS.match(info["spender"])
        and _DECIMAL.match(info["amount"])
        and _HEX.match(info["signedTransaction"])
        and isinstance(version, str)
        and _VERSION.match(version)
    ):
        return Refused(INVALID_FORMAT, "format validation failed")
    if info["from"].lower() != payer.lower():
        return Refused(FROM_MISMATCH, f"from {info['from']} is not the payer {payer}")
    if info["asset"].lower() != token.lower():
        return Refused(ASSET_MISMATCH, f"asset {info['asset']} is not the token {token}")
    if info["spender"].lower() != PERMIT2_ADDRESS.lower():
        return Refused(SPENDER_NOT_PERMIT2, f"spender {info['spender']} is not Permit2 {PERMIT2_ADDRESS}")
    signed = info["signedTransaction"]
    if len(signed) % 2:
        return Refused(TX_PARSE_FAILED, "the signed transaction is an odd number of hex digits")
    raw = bytes.fromhex(signed[2:])
    try:
        tx, sender = decode_signed(raw)
    except TxRefused as exc:
        return Refused(exc.reason, exc.message)
    if sender.lower() != payer.lower():
        return Refused(TX_SIGNER_MISMATCH, f"the transaction is signed by {sender}, not the payer {payer}")
    if hex_field(tx.get("to")).lower() != token.lower():
        return Refused(TX_WRONG_TARGET, f"the transaction calls {hex_field(tx.get('to'))}, not the token {token}")
    data = hex_field(tx.get("data"))
    if data[:10].lower() != APPROVE:
        return Refused(TX_WRONG_SELECTOR, f"the transaction calls {data[:10]}, not approve() ({APPROVE})")
    args = approve_args(data)
    if args is None:
        return Refused(TX_INVALID_CALLDATA, "the approve() calldata is not (address, uint256)")
    spender, amount = args
    if spender.lower() != PERMIT2_ADDRESS.lower():
        return Refused(TX_WRONG_SPENDER, f"approve() spender {spender} is not Permit2 {PERMIT2_ADDRESS}")
    # What the node refuses when the facilitator broadcasts it.
    if tx["chainId"] != chain_id:
        return Refused(BROADCAST_FAILED, f"invalid chain id {tx['chainId']}: this chain is {chain_id}")
    if tx["nonce"] != next_nonce:
        low = "low" if tx["nonce"] < next_nonce else "high"
        return Refused(BROADCAST_FAILED, f"nonce too {low}: next nonce {next_nonce}, tx nonce {tx['nonce']}")
    if tx["value"] != 0:
        return Refused(BROADCAST_FAILED, "an approve sends no ETH")
    if tx["gas"] < APPROVE_GAS:
        return Refused(BROADCAST_FAILED, f"intrinsic gas too low: approve needs {APPROVE_GAS}, gas limit {tx['gas']}")
    max_fee, tip = tx["maxFeePerGas"], tx["maxPriorityFeePerGas"]
    if max_fee < base_fee or tip > max_fee:
        return Refused(BROADCAST_FAILED, f"fees refused: maxFeePerGas {max_fee}, tip {tip}, base fee {base_fee}")
    if amount < required:
        # Mined, it would leave Permit2 short: the transfer after it would revert.
        return Refused(
            "permit2_allowance_required",
            f"the sponsored approval approves {amount} (atomic units), the payment needs {required}",
        )
    return SponsoredApproval(
        tx_hash="0x" + keccak(raw).hex(),
        sender=sender,
        nonce=tx["nonce"],
        token=token,
        amount=amount,
        gas_price=min(max_fee, base_fee + tip),
    )
