"""EIP-712 hashing and signing of EIP-3009 ``TransferWithAuthorization``.

The digest is computed directly (one fixed type, so no generic typed-data
machinery is needed) and signed with libsecp256k1 through coincurve: about a
tenth of the time eth-account's generic path takes. Tests check every digest
against eth-account's ``encode_typed_data`` and the spec's vectors.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from eth_hash.auto import keccak

from ..errors import PaymentRefused, X402ProtocolError
from .messages import Authorization, PaymentRequirements
from .networks import Asset, find_asset, get_network, is_address

if TYPE_CHECKING:
    from .wallet import Wallet

TRANSFER_WITH_AUTHORIZATION_TYPE = "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
EIP712_DOMAIN_TYPE = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
TRANSFER_TYPEHASH = keccak(TRANSFER_WITH_AUTHORIZATION_TYPE.encode())
DOMAIN_TYPEHASH = keccak(EIP712_DOMAIN_TYPE.encode())

#: Back-date validAfter by ten minutes: clock skew between server and chain
#: above a minute made settlements fail as "not yet valid" in the reference SDK.
VALID_AFTER_SKEW = 600

_UINT256_MAX = 2**256 - 1


def word_uint(value: int) -> bytes:
    if not 0 <= value <= _UINT256_MAX:
        raise X402ProtocolError("value out of uint256 range")
    return value.to_bytes(32, "big")


def word_address(address: str) -> bytes:
    if not is_address(address):
        raise X402ProtocolError(f"not an address: {address[:50]!r}")
    return bytes(12) + bytes.fromhex(address[2:])


@dataclass(frozen=True)
class Eip712Domain:
    name: str
    version: str
    chain_id: int
    verifying_contract: str

    def separator(self) -> bytes:
        return _domain_separator(self.name, self.version, self.chain_id, self.verifying_contract.lower())


_SEPARATORS: dict[tuple[str, str, int, str], bytes] = {}


def _domain_separator(name: str, version: str, chain_id: int, contract: str) -> bytes:
    key = (name, version, chain_id, contract)
    sep = _SEPARATORS.get(key)
    if sep is None:
        sep = keccak(
            DOMAIN_TYPEHASH
            + keccak(name.encode())
            + keccak(version.encode())
            + word_uint(chain_id)
            + word_address(contract)
        )
        if len(_SEPARATORS) < 256:  # a handful of tokens in practice; bounded anyway
            _SEPARATORS[key] = sep
    return sep


def struct_hash(auth: Authorization) -> bytes:
    return keccak(
        TRANSFER_TYPEHASH
        + word_address(auth.from_)
        + word_address(auth.to)
        + word_uint(auth.value)
        + word_uint(auth.valid_after)
        + word_uint(auth.valid_before)
        + bytes.fromhex(auth.nonce[2:])
    )


def transfer_digest(auth: Authorization, domain: Eip712Domain) -> bytes:
    """The 32-byte EIP-712 digest that is signed."""
    return keccak(b"\x19\x01" + domain.separator() + struct_hash(auth))


def recover_digest_signer(digest: bytes, signature: str) -> str:
    """The checksummed address that signed the EIP-712 ``digest`` (a 0x-hex, 65-byte signature)."""
    from .wallet import recover_address

    try:
        sig = bytes.fromhex(signature[2:] if signature.startswith("0x") else signature)
    except ValueError:
        raise X402ProtocolError("signature is not hex") from None
    if len(sig) != 65:
        raise X402ProtocolError(f"signature must be 65 bytes, got {len(sig)}")
    return recover_address(digest, sig)


def recover_signer(auth: Authorization, domain: Eip712Domain, signature: str) -> str:
    """Recover the checksummed address that signed ``auth`` under ``domain``."""
    return recover_digest_signer(transfer_digest(auth, domain), signature)


def domain_for(requirements: PaymentRequirements, extra_assets: tuple[Asset, ...] = ()) -> Eip712Domain:
    """The EIP-712 domain to sign under: ``extra`` name/version, else the known asset table.

    Refuses (before any signing) when neither gives a domain.
    """
    network = get_network(requirements.network)
    name, version = requirements.eip712_name, requirements.eip712_version
    if not (name and version):
        asset = find_asset(network, requirements.asset, extra_assets) if is_address(requirements.asset) else None
        if asset is None or not (asset.eip712_name and asset.eip712_version):
            raise PaymentRefused(
                f"cannot sign for asset {requirements.asset[:42]}: the challenge gives no EIP-712 name/version "
                "in 'extra' and the asset is not a known token",
                hint="ask the server to include extra.name and extra.version, or configure the asset",
            )
        name, version = asset.eip712_name, asset.eip712_version
    if not is_address(requirements.asset):
        raise PaymentRefused(f"asset {requirements.asset[:50]!r} is not a token address")
    return Eip712Domain(name, version, network.chain_id, requirements.asset)


def new_nonce() -> str:
    return "0x" + os.urandom(32).hex()


#: Facilitators refuse an authorization with less than this many seconds left (the x402 reference
#: verifier's margin), so a clock this close to the window's edge already fails.
SETTLE_MARGIN_SECONDS = 6


def clock_problem(skew: float, window: int) -> str | None:
    """Why an authorization signed now would be refused by a server whose clock is ``skew`` seconds
    ahead of this machine's (negative: behind), valid ``window`` seconds by this clock; None if it fits.

    >>> clock_problem(0, 300) is None
    True
    >>> "expired" in clock_problem(600, 300)
    True
    """
    if skew > window - SETTLE_MARGIN_SECONDS:
        return (
            f"this machine's clock is {round(skew)} s behind the server's: an authorization valid {window} s "
            "by this clock has expired by the server's"
        )
    if -skew > VALID_AFTER_SKEW - SETTLE_MARGIN_SECONDS:
        return (
            f"this machine's clock is {round(-skew)} s ahead of the server's: an authorization back-dated "
            f"{VALID_AFTER_SKEW} s is not yet valid by the server's"
        )
    return None


def build_authorization(
    payer: str,
    requirements: PaymentRequirements,
    *,
    now: int | None = None,
    nonce: str | None = None,
    valid_for: int | None = None,
) -> Authorization:
    """validAfter = now − 600, validBefore = now + maxTimeoutSeconds (or ``valid_for`` when
    shorter: the payer may offer less time than the server allows), a random 32-byte nonce."""
    now = int(time.time()) if now is None else now
    window = requirements.max_timeout_seconds if valid_for is None else min(valid_for, requirements.max_timeout_seconds)
    return Authorization(
        from_=payer,
        to=requirements.pay_to,
        value=requirements.amount,
        valid_after=max(0, now - VALID_AFTER_SKEW),
        valid_before=now + window,
        nonce=nonce or new_nonce(),
    )


def sign_authorization(
    wallet: Wallet,
    requirements: PaymentRequirements,
    *,
    now: int | None = None,
    nonce: str | None = None,
    extra_assets: tuple[Asset, ...] = (),
    valid_for: int | None = None,
) -> tuple[Authorization, str]:
    """Build and sign the authorization for ``requirements``; returns (authorization, 0x-signature)."""
    domain = domain_for(requirements, extra_assets)
    auth = build_authorization(wallet.address, requirements, now=now, nonce=nonce, valid_for=valid_for)
    signature = wallet.sign_digest(transfer_digest(auth, domain))
    return auth, "0x" + signature.hex()
