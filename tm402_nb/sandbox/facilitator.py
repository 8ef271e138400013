"""The sandbox facilitator: verifies and settles ``exact`` payments (EIP-3009 and Permit2) and
``upto`` Permit2 payments.

It checks what a real facilitator checks, in the Python v2 SDK's order and with
its reason strings: scheme, network, asset, recipient, exact amount, the
``validBefore``/``validAfter`` window, the signature (the recovered signer must
be ``authorization.from``, under the token's own EIP-712 domain), then — as the
chain would — the nonce and the balance. Settlement moves the money in
:class:`~.chain.Chain` and returns a deterministic fake transaction hash.

A Permit2 payment is checked in :mod:`.permit2_verify` (the SDK's order and reason strings)
and settled here: the owner's Permit2 nonce burnt, the allowance to Permit2 spent, the tokens
moved, in one chain transaction; with gas sponsoring on (:mod:`.sponsoring`) a payer short of
allowance may carry a signed approval, which is mined first in that same transaction at the
facilitator's gas cost. ``upto`` settles any amount up to the permitted one
(``settle(..., amount=N)``).

Used in-process by the paywall and over HTTP at ``/facilitator/verify``,
``/facilitator/settle`` and ``/facilitator/supported``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from eth_hash.auto import keccak

from ..errors import X402ProtocolError
from ..x402.eip3009 import Eip712Domain, recover_signer
from ..x402.messages import (
    Authorization,
    PaymentPayload,
    PaymentRequirements,
    Permit2Authorization,
    SettlementResponse,
)
from ..x402.networks import Network, get_network, is_address
from ..x402.permit2 import PERMIT2_ADDRESS
from . import permit2_verify as P2
from . import sponsoring as S
from .assets import PayAsset
from .chain import TRANSACTION_FAILED, Chain, Mempool

# Reason strings (Python v2 SDK names, reference §3.5).
INVALID_SIGNATURE = "invalid_exact_evm_payload_signature"
RECIPIENT_MISMATCH = "invalid_exact_evm_payload_recipient_mismatch"
VALUE_MISMATCH = "invalid_exact_evm_payload_authorization_value_mismatch"
VALID_BEFORE = "invalid_exact_evm_payload_authorization_valid_before"
VALID_AFTER = "invalid_exact_evm_payload_authorization_valid_after"
NONCE_USED = "invalid_exact_evm_nonce_already_used"
INSUFFICIENT_FUNDS = "insufficient_funds"
NETWORK_MISMATCH = "network_mismatch"
UNSUPPORTED_SCHEME = "unsupported_scheme"
INVALID_REQUIREMENTS = "invalid_payment_requirements"
INVALID_PAYLOAD = "invalid_payload"
INVALID_VERSION = "invalid_x402_version"
#: A settlement broadcast but not confirmed yet: non-terminal, carries the tx (x402 SDK ``ERR_SETTLEMENT_PENDING``).
SETTLEMENT_PENDING = "settlement_pending"

#: Seconds a payment must still be valid for when verified (a block's margin, as the SDKs use).
VALID_BEFORE_MARGIN = 6


@dataclass(frozen=True)
class VerifyResult:
    is_valid: bool
    payer: str | None
    invalid_reason: str | None = None
    message: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"isValid": self.is_valid}
        if self.invalid_reason:
            out["invalidReason"] = self.invalid_reason
        if self.message:
            out["invalidMessage"] = self.message
        if self.payer:
            out["payer"] = self.payer
        return out


@dataclass(frozen=True)
class SettleResult:
    success: bool
    transaction: str
    network: str
    payer: str | None
    error_reason: str | None = None
    message: str | None = None
    #: What an ``upto`` settlement moved (None for ``exact``: the amount signed).
    amount: int | None = None

    def receipt(self) -> SettlementResponse:
        return SettlementResponse(
            self.success, self.transaction, self.network, self.payer, self.error_reason, self.amount
        )

    def to_json(self) -> dict[str, Any]:
        out = self.receipt().to_json()
        if self.message and not self.success:
            out["errorMessage"] = self.message
        return out


def fake_tx_hash(chain_id: int, asset: str, payer: str, nonce: str) -> str:
    """A deterministic 32-byte "transaction hash": keccak of what makes the transfer unique."""
    return "0x" + keccak(f"tm402-sandbox-tx:{chain_id}:{asset.lower()}:{payer.lower()}:{nonce.lower()}".encode()).hex()


class Facilitator:
    def __init__(
        self,
        chain: Chain,
        network: Network,
        assets: dict[str, PayAsset],
        *,
        clock: Callable[[], float] = time.time,
        signer_address: str | None = None,
        gas_sponsoring: bool = False,
    ) -> None:
        self.chain = chain
        #: Send a payer's signed approval carried in ``erc20ApprovalGasSponsoring`` at this
        #: facilitator's gas cost (the profile switch ``gas_sponsoring="erc20"``).
        self.gas_sponsoring = gas_sponsoring
        self.network = network
        self.assets = assets
        self.clock = clock
        self.signer_address = signer_address
        #: Broadcast transfers not mined yet (settlement_pending), mined later by the chain.
        self.mempool = Mempool(chain, clock)
        # What the SDK's PendingSettlementStore holds: a pending payload's key → its broadcast tx, so
        # settling the same payload again reconciles with that transfer instead of sending a second.
        self._pending: dict[str, str] = {}

    # -- discovery --------------------------------------------------------------------------
    def supported(self) -> dict[str, Any]:
        kinds = [
            {"x402Version": 1, "scheme": "exact", "network": self.network.v1_name},
            {"x402Version": 2, "scheme": "exact", "network": self.network.caip2},
        ]
        out: dict[str, Any] = {"kinds": kinds, "extensions": [S.KEY] if self.gas_sponsoring else []}
        if self.signer_address:
            out["signers"] = {"eip155:*": [self.signer_address]}
        return out

    def network_name(self, version: int) -> str:
        return self.network.v1_name if version == 1 else self.network.caip2

    def asset_for(self, address: str) -> PayAsset | None:
        if not is_address(address):
            return None
        for a in self.assets.values():
            if a.address.lower() == address.lower():
                return a
        return None

    def domain(self, asset: PayAsset) -> Eip712Domain:
        return Eip712Domain(asset.eip712_name, asset.eip712_version, self.network.chain_id, asset.address)

    # -- verify --------------------------------------------------------------------------------
    def verify(self, payload: PaymentPayload, req: PaymentRequirements, *, reserve: bool = False) -> VerifyResult:
        """Check ``payload`` against ``req``; with ``reserve`` also claim its nonce atomically."""
        auth = payload.authorization
        payer = auth.from_

        def bad(reason: str, message: str) -> VerifyResult:
            return VerifyResult(False, payer, reason, message)

        if payload.x402_version != req.x402_version:
            return bad(
                INVALID_VERSION, f"payment is x402 v{payload.x402_version}, requirements are v{req.x402_version}"
            )
        if isinstance(auth, Permit2Authorization):
            return self._verify_permit2(payload, req, reserve=reserve)
        if payload.scheme != "exact" or req.scheme != "exact":
            return bad(UNSUPPORTED_SCHEME, f"only the 'exact' scheme is supported, got {payload.scheme!r}")
        try:
            paid_net, req_net = get_network(payload.network), get_network(req.network)
        except X402ProtocolError:
            return bad(NETWORK_MISMATCH, f"unknown network {payload.network!r} / {req.network!r}")
        if req_net != self.network:
            return bad(NETWORK_MISMATCH, f"this facilitator settles on {self.network.v1_name}, not {req_net.v1_name}")
        if paid_net != req_net:
            return bad(NETWORK_MISMATCH, f"payment is for {paid_net.v1_name}, requirements are for {req_net.v1_name}")
        asset = self.asset_for(req.asset)
        if asset is None:
            return bad(INVALID_REQUIREMENTS, f"asset {req.asset[:42]} is not a token this sandbox settles")
        if not is_address(req.pay_to) or auth.to.lower() != req.pay_to.lower():
            return bad(RECIPIENT_MISMATCH, f"authorization pays {auth.to}, requirements pay {req.pay_to[:42]}")
        # What the token contract would revert on is refused before anything is reserved
        # (a real facilitator simulates the transfer; settling it would fail on chain).
        revert = self.chain.revert_reason(asset.address, payer, auth.to)
        if revert is not None:
            return bad(revert, f"the token would revert a transfer from {payer} to {auth.to}")
        if auth.value != req.amount:
            return bad(VALUE_MISMATCH, f"authorization value {auth.value} != required amount {req.amount}")
        now = int(self.clock())
        if auth.valid_before < now + VALID_BEFORE_MARGIN:
            return bad(VALID_BEFORE, f"authorization expired (validBefore {auth.valid_before}, now {now})")
        if auth.valid_after >= now:  # the contract requires block.timestamp > validAfter, strictly
            return bad(VALID_AFTER, f"authorization not valid yet (validAfter {auth.valid_after}, now {now})")
        try:
            _canonical_signature(payload.signature)
            signer = recover_signer(auth, self.domain(asset), payload.signature)
        except X402ProtocolError as exc:
            return bad(INVALID_SIGNATURE, f"signature is malformed: {exc.message}")
        if signer.lower() != payer.lower():
            return bad(INVALID_SIGNATURE, f"signature recovers to {signer}, not to authorization.from {payer}")
        state = self.chain.nonce_state(asset.address, payer, auth.nonce)
        if state is not None:
            return bad(NONCE_USED, f"nonce {auth.nonce[:18]}… is already {'used' if state == 'used' else 'in flight'}")
        if self.chain.balance(asset.address, payer) < auth.value:
            return bad(INSUFFICIENT_FUNDS, f"{payer} holds less than {auth.value} of {asset.symbol} (atomic units)")
        if reserve and not self.chain.reserve_nonce(asset.address, payer, auth.nonce):
            return bad(NONCE_USED, f"nonce {auth.nonce[:18]}… is already in flight")
        return VerifyResult(True, payer)

    def _verify_permit2(self, payload: PaymentPayload, req: PaymentRequirements, *, reserve: bool) -> VerifyResult:
        auth = payload.authorization
        refusal = P2.check_permit2(
            payload,
            req,
            chain=self.chain,
            network=self.network,
            asset=self.asset_for(req.asset),
            facilitator_address=self.signer_address,
            now=int(self.clock()),
            sponsoring=self.gas_sponsoring,
        )
        if refusal is not None:
            return VerifyResult(False, auth.from_, refusal.reason, refusal.message)
        # Of many parallel requests carrying this payment, exactly one gets past here.
        if (
            reserve
            and isinstance(auth, Permit2Authorization)
            and not self.chain.reserve_nonce(PERMIT2_ADDRESS, auth.from_, auth.nonce_hex)
        ):
            return VerifyResult(False, auth.from_, P2.INVALID_NONCE, "Permit2 nonce is already in flight")
        return VerifyResult(True, auth.from_)

    def release(self, payload: PaymentPayload, req: PaymentRequirements) -> None:
        asset, auth = self.asset_for(req.asset), payload.authorization
        if isinstance(auth, Permit2Authorization):
            self.chain.release_nonce(PERMIT2_ADDRESS, auth.from_, auth.nonce_hex)
        elif asset is not None:
            self.chain.release_nonce(asset.address, auth.from_, auth.nonce)

    # -- settle ----------------------------------------------------------------------------------
    @staticmethod
    def _pending_key(payload: PaymentPayload) -> str:
        a = payload.authorization
        return f"{a.from_.lower()}:{str(a.nonce).lower()}:{payload.signature.lower()}"

    def pending_tx(self, payload: PaymentPayload) -> str | None:
        """The transfer this very payload broadcast and that was answered ``settlement_pending``, if any."""
        return self._pending.get(self._pending_key(payload))

    def settle(
        self,
        payload: PaymentPayload,
        req: PaymentRequirements,
        *,
        reserved: bool = False,
        path: str | None = None,
        chain_time: float | None = None,
        pending: bool = False,
        confirm_reads: int = 1,
        amount: int | None = None,
    ) -> SettleResult:
        """Re-check and execute the transfer. ``reserved``: the caller holds the nonce from verify.

        ``pending``: broadcast it but answer ``settlement_pending`` (the sandbox's fault); the
        chain mines it after ``confirm_reads`` JSON-RPC requests (0: only when mined explicitly).
        Settling a payload that was answered pending reconciles with its broadcast transfer.

        ``amount``: what to move. ``exact`` moves what was signed (``amount`` may only repeat it);
        an ``upto`` Permit2 payment moves ``amount`` (default ``req.amount``, as the SDK's resource
        server sends the actual price there) up to what was permitted, and is verified against
        the permitted amount. (Permit2 payments settle at once: the pending fault plays EIP-3009.)
        """
        auth = payload.authorization
        network = self.network_name(req.x402_version)
        payer = auth.from_

        def fail(reason: str, message: str) -> SettleResult:
            return SettleResult(False, "", network, payer, reason, message)

        key = self._pending_key(payload)
        known = self._pending.get(key)
        if known is not None:
            if self.mempool.has(known):
                return SettleResult(False, known, network, payer, SETTLEMENT_PENDING, "broadcast, not confirmed yet")
            self._pending.pop(key, None)
            if self.chain.settlement_by_tx(known) is not None:
                return SettleResult(True, known, network, payer)
            return SettleResult(
                False, known, network, payer, TRANSACTION_FAILED, "the broadcast transfer was not mined"
            )

        if isinstance(auth, Permit2Authorization):
            return self._settle_permit2(
                payload, req, auth, reserved=reserved, path=path, chain_time=chain_time, amount=amount
            )
        if amount is not None and amount != auth.value:
            return fail(VALUE_MISMATCH, f"an exact payment settles what was signed ({auth.value}), not {amount}")

        if not reserved:
            v = self.verify(payload, req)
            if not v.is_valid:
                return fail(v.invalid_reason or INVALID_PAYLOAD, v.message or "")
        asset = self.asset_for(req.asset)
        if asset is None or not isinstance(auth, Authorization):
            return fail(INVALID_REQUIREMENTS, "asset is not settled by this sandbox")
        # The chain enforces validAfter < block.timestamp < validBefore at execution time.
        now = self.clock() if chain_time is None else chain_time
        if now >= auth.valid_before:
            return fail(VALID_BEFORE, f"authorization expired before settlement (validBefore {auth.valid_before})")
        tx = fake_tx_hash(self.network.chain_id, asset.address, payer, auth.nonce)
        if pending:
            if not reserved and not self.chain.reserve_nonce(asset.address, payer, auth.nonce):
                return fail(NONCE_USED, f"nonce {auth.nonce[:18]}… is already in flight")
            self.mempool.broadcast(
                tx=tx,
                network=network,
                asset=asset.address,
                payer=payer,
                pay_to=auth.to,
                amount=auth.value,
                nonce=auth.nonce,
                valid_before=auth.valid_before,
                path=path,
                x402_version=req.x402_version,
                reads=confirm_reads,
            )
            self._pending[key] = tx
            return SettleResult(False, tx, network, payer, SETTLEMENT_PENDING, "broadcast, not confirmed yet")
        reason = self.chain.transfer_with_authorization(
            asset=asset.address,
            payer=payer,
            pay_to=auth.to,
            amount=auth.value,
            nonce=auth.nonce,
            tx=tx,
            network=network,
            path=path,
            x402_version=req.x402_version,
            reserved=reserved,
        )
        if reason is not None:
            return fail(reason, "transfer reverted")
        return SettleResult(True, tx, network, payer)

    def _settle_permit2(
        self,
        payload: PaymentPayload,
        req: PaymentRequirements,
        auth: Permit2Authorization,
        *,
        reserved: bool,
        path: str | None,
        chain_time: float | None,
        amount: int | None,
    ) -> SettleResult:
        network = self.network_name(req.x402_version)
        payer = auth.from_

        def fail(reason: str, message: str) -> SettleResult:
            return SettleResult(False, "", network, payer, reason, message)  # a reservation is the caller's

        upto = P2.is_upto(payload, req)
        to_move = amount if amount is not None else (req.amount if upto else auth.amount)
        # upto is verified against the ceiling the payer signed; what moves is checked below.
        verify_req = replace(req, amount=auth.amount) if upto else req
        if not reserved:
            v = self.verify(payload, verify_req)
            if not v.is_valid:
                return fail(v.invalid_reason or INVALID_PAYLOAD, v.message or "")
        asset = self.asset_for(req.asset)
        if asset is None:
            return fail(INVALID_REQUIREMENTS, "asset is not settled by this sandbox")
        if upto and not 0 <= to_move <= auth.amount:
            return fail(P2.UPTO_SETTLEMENT_EXCEEDS_AMOUNT, f"cannot settle {to_move}: {auth.amount} was permitted")
        if not upto and to_move != auth.amount:
            return fail(P2.AMOUNT_MISMATCH, f"an exact payment settles what was signed ({auth.amount}), not {to_move}")
        # Permit2 refuses once block.timestamp > deadline; the proxy before witness.validAfter.
        now = self.clock() if chain_time is None else chain_time
        if now > auth.deadline:
            return fail(P2.DEADLINE_EXPIRED, f"the deadline {auth.deadline} passed before settlement")
        if now < auth.valid_after:
            return fail(P2.PAYMENT_TOO_EARLY, f"witness.validAfter {auth.valid_after} is still ahead")
        if to_move == 0:
            # As the SDK does: nothing to move, no transaction (the nonce is not used up, so it is given back).
            if reserved:
                self.release(payload, req)
            return SettleResult(True, "", network, payer, amount=0)
        approval = None
        if self.gas_sponsoring:
            # Verified above (or by the caller's verify): checked again against the chain as it is now.
            approval = P2.sponsored_approval(payload, verify_req, chain=self.chain, network=self.network, asset=asset)
            if isinstance(approval, P2.Refusal):
                return fail(approval.reason, approval.message)
        tx = fake_tx_hash(self.network.chain_id, PERMIT2_ADDRESS, payer, auth.nonce_hex)
        reason = self.chain.permit_witness_transfer(
            token=asset.address,
            payer=payer,
            pay_to=auth.to,
            amount=to_move,
            nonce=auth.nonce_hex,
            tx=tx,
            network=network,
            path=path,
            x402_version=req.x402_version,
            reserved=reserved,
            approval=approval,
        )
        if reason is not None:
            return fail(reason, "Permit2 transfer reverted")
        return SettleResult(True, tx, network, payer, amount=to_move if upto else None)

    # -- HTTP facade ---------------------------------------------------------------------------------
    def parse_request(self, body: Any) -> tuple[PaymentPayload, PaymentRequirements]:
        """Parse ``{x402Version, paymentPayload, paymentRequirements}``; raises X402ProtocolError."""
        if not isinstance(body, dict):
            raise X402ProtocolError("request body must be a JSON object")
        version = body.get("x402Version")
        payload_json = body.get("paymentPayload")
        req_json = body.get("paymentRequirements")
        if not isinstance(payload_json, dict) or not isinstance(req_json, dict):
            raise X402ProtocolError("body needs 'paymentPayload' and 'paymentRequirements' objects")
        payload = PaymentPayload.from_json(payload_json)
        if version is None:
            version = payload.x402_version
        if isinstance(version, bool) or version not in (1, 2):
            raise X402ProtocolError(f"unsupported x402Version {str(version)[:10]!r}")
        req = PaymentRequirements.from_json(req_json, version)
        return payload, req


_SECP256K1_HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0


def _canonical_signature(signature: str) -> None:
    """As the USDC contract checks: v is 27 or 28 and s is in the lower half of the curve order
    (a malleated twin of a valid signature is refused, as on chain)."""
    from ..errors import X402ProtocolError

    raw = bytes.fromhex(signature[2:]) if signature.startswith("0x") else b""
    if len(raw) != 65:
        return  # recover_signer reports the length
    if raw[64] not in (27, 28):
        raise X402ProtocolError("v must be 27 or 28")
    if int.from_bytes(raw[32:64], "big") > _SECP256K1_HALF_N:
        raise X402ProtocolError("s is in the upper half of the curve order (malleable signature)")
