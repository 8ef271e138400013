"""The sandbox facilitator's Permit2 checks, for ``exact`` and ``upto`` payments.

A Permit2 payment (``permit2Authorization``) is verified as the x402 SDKs verify it, in
their order and with their reason strings (reference ``x402-protocol.md`` §3.5): scheme,
network, the spender is the scheme's x402 proxy, ``witness.to`` is the payee (and, for
``upto``, ``witness.facilitator`` is this facilitator), the deadline has a block's margin
left, ``validAfter`` has passed, the amount and the token are the requirement's, the
signature recovers to ``from`` under Permit2's EIP-712 domain; then what the chain would
refuse: a nonce already in the owner's bitmap, an allowance to Permit2 below the amount,
a short balance. Settlement is in :mod:`.facilitator` (it moves money in :class:`.chain.Chain`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import X402ProtocolError
from ..x402.messages import PaymentPayload, PaymentRequirements, Permit2Authorization
from ..x402.networks import Network, get_network
from ..x402.permit2 import EXACT_PERMIT2_PROXY, PERMIT2_ADDRESS, UPTO_PERMIT2_PROXY, recover_permit2_signer
from . import sponsoring as S
from .assets import PayAsset
from .chain import PERMIT2_ALLOWANCE_REQUIRED, PERMIT2_INSUFFICIENT_BALANCE, PERMIT2_INVALID_NONCE, Chain

# Reason strings (Python v2 SDK constants; permit2_invalid_nonce is the TypeScript/Go facilitators').
INVALID_SPENDER = "invalid_permit2_spender"
RECIPIENT_MISMATCH = "invalid_permit2_recipient_mismatch"
DEADLINE_EXPIRED = "permit2_deadline_expired"
NOT_YET_VALID = "permit2_not_yet_valid"
AMOUNT_MISMATCH = "permit2_amount_mismatch"
TOKEN_MISMATCH = "permit2_token_mismatch"
INVALID_SIGNATURE = "invalid_permit2_signature"
INVALID_NONCE = PERMIT2_INVALID_NONCE
ALLOWANCE_REQUIRED = PERMIT2_ALLOWANCE_REQUIRED
INSUFFICIENT_BALANCE = PERMIT2_INSUFFICIENT_BALANCE
PAYMENT_TOO_EARLY = "permit2_payment_too_early"
UPTO_INVALID_SCHEME = "invalid_upto_evm_scheme"
UPTO_NETWORK_MISMATCH = "invalid_upto_evm_network_mismatch"
UPTO_FACILITATOR_MISMATCH = "upto_facilitator_mismatch"
UPTO_SETTLEMENT_EXCEEDS_AMOUNT = "invalid_upto_evm_payload_settlement_exceeds_amount"

#: Seconds a Permit2 deadline must still be away when verified (a block's margin, as the SDKs use).
DEADLINE_MARGIN = 6


@dataclass(frozen=True)
class Refusal:
    """Why a Permit2 payment is refused: the reason string and a message for people."""

    reason: str
    message: str


def is_upto(payload: PaymentPayload, req: PaymentRequirements) -> bool:
    """Whether this is (meant as) an ``upto`` payment: the scheme or the witness says so."""
    auth = payload.authorization
    facilitator = auth.facilitator if isinstance(auth, Permit2Authorization) else None
    return "upto" in (payload.scheme, req.scheme) or facilitator is not None


def check_permit2(
    payload: PaymentPayload,
    req: PaymentRequirements,
    *,
    chain: Chain,
    network: Network,
    asset: PayAsset | None,
    facilitator_address: str | None,
    now: int,
    sponsoring: bool = False,
) -> Refusal | None:
    """The first check a Permit2 payment fails, or None when it would settle now.

    ``asset`` is the sandbox's token for ``req.asset`` (None: not one it settles);
    ``facilitator_address`` the address an ``upto`` witness must name; ``sponsoring``: this
    facilitator sends a payer's signed approval carried in ``erc20ApprovalGasSponsoring``
    (an allowance short of the amount is then made good by it, when it checks out).
    """
    auth = payload.authorization
    if not isinstance(auth, Permit2Authorization):
        return Refusal("invalid_payload", "not a Permit2 payment")
    upto = is_upto(payload, req)
    scheme = "upto" if upto else "exact"
    if payload.scheme != scheme or req.scheme != scheme:
        return Refusal(
            UPTO_INVALID_SCHEME if upto else "unsupported_scheme",
            f"payment scheme {payload.scheme!r} and requirement scheme {req.scheme!r} must both be {scheme!r}",
        )
    net_reason = UPTO_NETWORK_MISMATCH if upto else "network_mismatch"
    try:
        paid_net, req_net = get_network(payload.network), get_network(req.network)
    except X402ProtocolError:
        return Refusal(net_reason, f"unknown network {payload.network[:40]!r} / {req.network[:40]!r}")
    if req_net != network or paid_net != req_net:
        return Refusal(
            net_reason, f"payment is for {paid_net.v1_name}, requirements for {req_net.v1_name}; this sandbox "
            f"settles on {network.v1_name}",
        )  # fmt: skip
    if asset is None:
        return Refusal("invalid_payment_requirements", f"asset {req.asset[:42]} is not a token this sandbox settles")
    proxy = UPTO_PERMIT2_PROXY if upto else EXACT_PERMIT2_PROXY
    if auth.spender.lower() != proxy.lower():
        return Refusal(INVALID_SPENDER, f"spender {auth.spender} is not the x402 {scheme} Permit2 proxy {proxy}")
    if auth.to.lower() != req.pay_to.lower():
        return Refusal(RECIPIENT_MISMATCH, f"witness.to {auth.to} is not payTo {req.pay_to[:42]}")
    if upto and (
        auth.facilitator is None
        or facilitator_address is None
        or auth.facilitator.lower() != facilitator_address.lower()
    ):
        return Refusal(
            UPTO_FACILITATOR_MISMATCH,
            f"witness.facilitator {auth.facilitator} is not this facilitator ({facilitator_address})",
        )
    if auth.deadline < now + DEADLINE_MARGIN:
        return Refusal(DEADLINE_EXPIRED, f"deadline {auth.deadline} has passed (now {now}, margin {DEADLINE_MARGIN} s)")
    if auth.valid_after > now:
        return Refusal(NOT_YET_VALID, f"witness.validAfter {auth.valid_after} is in the future (now {now})")
    if auth.amount != req.amount:
        return Refusal(AMOUNT_MISMATCH, f"permitted amount {auth.amount} != required amount {req.amount}")
    if auth.token.lower() != req.asset.lower():
        return Refusal(TOKEN_MISMATCH, f"permitted token {auth.token} is not the asset {req.asset[:42]}")
    try:
        signer = recover_permit2_signer(auth, network.chain_id, payload.signature)
    except X402ProtocolError as exc:
        return Refusal(INVALID_SIGNATURE, f"signature is malformed: {exc.message}")
    if signer.lower() != auth.from_.lower():
        return Refusal(
            INVALID_SIGNATURE, f"signature recovers to {signer}, not to permit2Authorization.from {auth.from_}"
        )
    # What the chain would revert on (the SDKs simulate the proxy's settle).
    if chain.nonce_state(PERMIT2_ADDRESS, auth.from_, auth.nonce_hex) is not None:
        return Refusal(INVALID_NONCE, f"Permit2 nonce {str(auth.nonce)[:20]}… of {auth.from_} is already used")
    approval = sponsored_approval(payload, req, chain=chain, network=network, asset=asset) if sponsoring else None
    if isinstance(approval, Refusal):
        return approval
    allowance = chain.allowance(asset.address, auth.from_, PERMIT2_ADDRESS)
    if allowance < req.amount and approval is None:
        return Refusal(
            ALLOWANCE_REQUIRED,
            f"{auth.from_} has approved Permit2 for {allowance} of {asset.symbol} (atomic units), the payment needs "
            f"{req.amount}: approve the Permit2 contract {PERMIT2_ADDRESS} once",
        )
    revert = chain.revert_reason(asset.address, auth.from_, auth.to)
    if revert is not None:
        return Refusal(revert, f"the token would revert a transfer from {auth.from_} to {auth.to}")
    if chain.balance(asset.address, auth.from_) < req.amount:
        return Refusal(
            INSUFFICIENT_BALANCE, f"{auth.from_} holds less than {req.amount} of {asset.symbol} (atomic units)"
        )
    return None


def sponsored_approval(
    payload: PaymentPayload, req: PaymentRequirements, *, chain: Chain, network: Network, asset: PayAsset
) -> S.SponsoredApproval | Refusal | None:
    """The payer's sponsored approval when Permit2's allowance is short of ``req.amount`` and the
    payload carries one (checked as the SDK's facilitator checks it; a :class:`Refusal` when it
    fails); None when the allowance suffices or none is carried (as the SDK, the SDK's order:
    the allowance on chain first, the extension only when it is short)."""
    payer = payload.authorization.from_
    if chain.allowance(asset.address, payer, PERMIT2_ADDRESS) >= req.amount:
        return None
    info = S.carried(payload)
    if info is None:
        return None
    checked = S.check_sponsored_approval(
        info,
        payer=payer,
        token=asset.address,
        chain_id=network.chain_id,
        next_nonce=chain.transaction_count(payer),
        required=req.amount,
        base_fee=S.BASE_FEE,
    )
    return Refusal(checked.reason, checked.message) if isinstance(checked, S.Refused) else checked
