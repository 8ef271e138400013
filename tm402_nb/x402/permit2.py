"""Permit2: the contracts and the on-chain reads a Permit2 payment depends on.

A token without EIP-3009 (Token Metrics' TMAI) is paid in x402 through Uniswap's
canonical Permit2 contract: the payer approves Permit2 once (an ERC-20 ``approve``),
then signs a ``PermitWitnessTransferFrom`` whose spender is the x402 Permit2 proxy.
Permit2 nonces are per owner (not per token) and kept in a bitmap: nonce ``n`` is bit
``n & 0xff`` of word ``n >> 8`` of ``nonceBitmap(owner, word)``.

The addresses are the same on every EVM chain (deterministic deployments).
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from eth_hash.auto import keccak

from ..errors import PaymentRefused
from .eip3009 import recover_digest_signer, word_address, word_uint
from .messages import PaymentRequirements, Permit2Authorization
from .networks import get_network, is_address

if TYPE_CHECKING:
    from .wallet import Wallet

__all__ = [
    "ALLOWANCE",
    "APPROVE",
    "EXACT_PERMIT2_PROXY",
    "NONCE_BITMAP",
    "PERMIT2_ADDRESS",
    "PERMIT2_MAX_TIMEOUT",
    "TRANSFER_METHODS",
    "UPTO_PERMIT2_PROXY",
    "build_permit2_authorization",
    "new_permit2_nonce",
    "nonce_position",
    "permit2_digest",
    "permit2_offer_problem",
    "recover_permit2_signer",
    "sign_permit2",
    "transfer_method",
]

#: Uniswap's canonical Permit2.
PERMIT2_ADDRESS = "0x000000000022D473030F116dDEE9F6B43aC78BA3"
#: The spender an ``exact`` Permit2 payment names (x402ExactPermit2Proxy).
EXACT_PERMIT2_PROXY = "0x402085c248EeA27D92E8b30b2C58ed07f9E20001"
#: The spender an ``upto`` Permit2 payment names (x402UptoPermit2Proxy).
UPTO_PERMIT2_PROXY = "0x4020A4f3b7b90ccA423B9fabCc0CE57C6C240002"


def _selector(signature: str) -> str:
    return "0x" + keccak(signature.encode())[:4].hex()


#: ERC-20 ``allowance(address owner, address spender)``.
ALLOWANCE = _selector("allowance(address,address)")
#: ERC-20 ``approve(address spender, uint256 amount)``.
APPROVE = _selector("approve(address,uint256)")
#: Permit2 ``nonceBitmap(address owner, uint256 wordPosition)``.
NONCE_BITMAP = _selector("nonceBitmap(address,uint256)")


def nonce_position(nonce: int) -> tuple[int, int]:
    """(word, bit) of a Permit2 nonce in its owner's bitmap.

    >>> nonce_position(0), nonce_position(257)
    ((0, 0), (1, 1))
    """
    if not 0 <= nonce < 2**256:
        raise ValueError("a Permit2 nonce is a uint256")
    return nonce >> 8, nonce & 0xFF


# -- EIP-712 -------------------------------------------------------------------------------------------
# Permit2's domain has no version. The witness type is x402's: the exact proxy's names the payee
# and a start time; upto's also names the one facilitator allowed to settle. EIP-712 appends the
# referenced types sorted by name (TokenPermissions < Witness), as Permit2's witness stub expects.
_DOMAIN_TYPEHASH = keccak(b"EIP712Domain(string name,uint256 chainId,address verifyingContract)")
_TOKEN_PERMISSIONS = "TokenPermissions(address token,uint256 amount)"
_TOKEN_PERMISSIONS_TYPEHASH = keccak(_TOKEN_PERMISSIONS.encode())
_EXACT_WITNESS = "Witness(address to,uint256 validAfter)"
_UPTO_WITNESS = "Witness(address to,address facilitator,uint256 validAfter)"
_PERMIT = (
    "PermitWitnessTransferFrom(TokenPermissions permitted,address spender,uint256 nonce,uint256 deadline,"
    "Witness witness)"
)
_EXACT_TYPEHASH = keccak((_PERMIT + _TOKEN_PERMISSIONS + _EXACT_WITNESS).encode())
_UPTO_TYPEHASH = keccak((_PERMIT + _TOKEN_PERMISSIONS + _UPTO_WITNESS).encode())
_EXACT_WITNESS_TYPEHASH = keccak(_EXACT_WITNESS.encode())
_UPTO_WITNESS_TYPEHASH = keccak(_UPTO_WITNESS.encode())
_SEPARATORS: dict[int, bytes] = {}


def domain_separator(chain_id: int) -> bytes:
    """Permit2's EIP-712 domain separator on ``chain_id`` (cached: a handful of chains)."""
    sep = _SEPARATORS.get(chain_id)
    if sep is None:
        sep = keccak(_DOMAIN_TYPEHASH + keccak(b"Permit2") + word_uint(chain_id) + word_address(PERMIT2_ADDRESS))
        if len(_SEPARATORS) < 64:
            _SEPARATORS[chain_id] = sep
    return sep


def _struct_hash(auth: Permit2Authorization) -> bytes:
    permitted = keccak(_TOKEN_PERMISSIONS_TYPEHASH + word_address(auth.token) + word_uint(auth.amount))
    if auth.facilitator is None:
        typehash = _EXACT_TYPEHASH
        witness = keccak(_EXACT_WITNESS_TYPEHASH + word_address(auth.to) + word_uint(auth.valid_after))
    else:
        typehash = _UPTO_TYPEHASH
        witness = keccak(
            _UPTO_WITNESS_TYPEHASH
            + word_address(auth.to)
            + word_address(auth.facilitator)
            + word_uint(auth.valid_after)
        )
    return keccak(
        typehash + permitted + word_address(auth.spender) + word_uint(auth.nonce) + word_uint(auth.deadline) + witness
    )


def permit2_digest(auth: Permit2Authorization, chain_id: int) -> bytes:
    """The 32-byte EIP-712 digest a Permit2 authorization signs (exact or upto witness)."""
    return keccak(b"\x19\x01" + domain_separator(chain_id) + _struct_hash(auth))


def recover_permit2_signer(auth: Permit2Authorization, chain_id: int, signature: str) -> str:
    """The checksummed address that signed ``auth`` on ``chain_id``."""
    return recover_digest_signer(permit2_digest(auth, chain_id), signature)


# -- reading an offer ----------------------------------------------------------------------------------

#: The ``extra.assetTransferMethod`` values this client can pay (absent means ``eip3009``). The spec
#: also names ``erc7710`` (smart-account delegation), which an EOA wallet cannot pay.
TRANSFER_METHODS = ("eip3009", "permit2")

#: The longest ``maxTimeoutSeconds`` a Permit2 offer may ask for. The EIP-3009 path accepts up to a
#: day (the policy's ``max_timeout_seconds``), but a Permit2 signature draws on a standing allowance
#: (usually unlimited) and the reference clients fall back to one hour when an offer gives none: a
#: server asking a Permit2 payer for more than an hour is not one of them. (We sign for the policy's
#: ``authorization_seconds`` at most anyway; an offer past this bound is refused, not shortened.)
PERMIT2_MAX_TIMEOUT = 3600

# Names a server might give the spender or the token in ``extra``. The reference servers send only
# ``assetTransferMethod`` (plus the token's EIP-712 name/version); if one names either, it must be
# what we would sign, or the offer means something we do not understand.
_SPENDER_KEYS = ("spender", "permit2Proxy", "proxy")
_TOKEN_KEYS = ("token", "permit2Token")


def transfer_method(requirements: PaymentRequirements) -> str:
    """How an offer's payment moves: ``extra.assetTransferMethod``, ``"eip3009"`` when absent.

    Anything else is returned as given (lower-cased when it is a string) so the caller can name it.
    """
    method = (requirements.extra or {}).get("assetTransferMethod")
    if method is None:
        return "eip3009"
    return method.strip().lower() if isinstance(method, str) else repr(method)[:40]


def permit2_offer_problem(requirements: PaymentRequirements) -> str | None:
    """Why a Permit2 offer cannot be signed as it stands, or None.

    Its spender (when ``extra`` names one) must be the scheme's x402 proxy, its token (when named)
    the offered asset, and ``maxTimeoutSeconds`` within 1..:data:`PERMIT2_MAX_TIMEOUT`.
    """
    extra = requirements.extra or {}
    proxy = UPTO_PERMIT2_PROXY if requirements.scheme == "upto" else EXACT_PERMIT2_PROXY
    for key in _SPENDER_KEYS:
        if key in extra and not (isinstance(extra[key], str) and extra[key].lower() == proxy.lower()):
            return (
                f"the Permit2 offer names spender {str(extra[key])[:42]!r} (extra.{key}), not the x402 Permit2 "
                f"proxy {proxy}: a signature for another spender could move the tokens anywhere"
            )
    for key in _TOKEN_KEYS:
        if key in extra and not (isinstance(extra[key], str) and extra[key].lower() == requirements.asset.lower()):
            return f"the Permit2 offer names token {str(extra[key])[:42]!r} (extra.{key}), not its asset {requirements.asset[:42]}"
    timeout = requirements.max_timeout_seconds
    if not 0 < timeout <= PERMIT2_MAX_TIMEOUT:
        return f"the Permit2 offer's maxTimeoutSeconds {timeout} is outside 1..{PERMIT2_MAX_TIMEOUT}"
    return None


# -- building and signing ------------------------------------------------------------------------------


def new_permit2_nonce() -> int:
    """A random uint256: Permit2 nonces are unordered, so a random one never collides in practice."""
    return int.from_bytes(os.urandom(32), "big")


def build_permit2_authorization(
    payer: str,
    requirements: PaymentRequirements,
    *,
    now: int | None = None,
    nonce: int | None = None,
    valid_for: int | None = None,
) -> Permit2Authorization:
    """The Permit2 authorization that pays ``requirements`` (scheme ``exact`` or ``upto``).

    The spender is the scheme's x402 proxy, the witness names the payee (and, for upto, the
    facilitator from ``extra.facilitatorAddress``); ``validAfter`` is 0 as the reference
    clients sign it (no clock skew can make it "not yet valid"); the deadline is now plus
    ``maxTimeoutSeconds`` (or ``valid_for`` when shorter).
    """
    now = int(time.time()) if now is None else now
    window = requirements.max_timeout_seconds if valid_for is None else min(valid_for, requirements.max_timeout_seconds)
    if window <= 0:
        raise PaymentRefused(
            f"the offer's maxTimeoutSeconds ({requirements.max_timeout_seconds}) leaves no time to pay"
        )
    for what, value in (("asset", requirements.asset), ("payTo", requirements.pay_to)):
        if not is_address(value):
            raise PaymentRefused(f"the offer's {what} {value[:50]!r} is not an address")
    facilitator: str | None = None
    if requirements.scheme == "upto":
        spender = UPTO_PERMIT2_PROXY
        facilitator = (requirements.extra or {}).get("facilitatorAddress")
        if not isinstance(facilitator, str) or not is_address(facilitator):
            raise PaymentRefused(
                "an upto offer must name its facilitator (extra.facilitatorAddress): its witness binds who may settle",
                hint="nothing was signed",
            )
    elif requirements.scheme == "exact":
        spender = EXACT_PERMIT2_PROXY
    else:
        raise PaymentRefused(f"cannot pay scheme {requirements.scheme[:30]!r} with Permit2")
    return Permit2Authorization(
        from_=payer,
        token=requirements.asset,
        amount=requirements.amount,
        spender=spender,
        nonce=new_permit2_nonce() if nonce is None else nonce,
        deadline=now + window,
        to=requirements.pay_to,
        valid_after=0,
        facilitator=facilitator,
    )


def sign_permit2(
    wallet: Wallet,
    requirements: PaymentRequirements,
    *,
    now: int | None = None,
    nonce: int | None = None,
    valid_for: int | None = None,
) -> tuple[Permit2Authorization, str]:
    """Build and sign the Permit2 authorization for ``requirements``; (authorization, 0x-signature)."""
    auth = build_permit2_authorization(wallet.address, requirements, now=now, nonce=nonce, valid_for=valid_for)
    chain_id = get_network(requirements.network).chain_id
    return auth, "0x" + wallet.sign_digest(permit2_digest(auth, chain_id)).hex()
