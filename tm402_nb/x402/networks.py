"""Networks and assets the payment layer knows, with their exact EIP-712 domains.

A wrong token name in the EIP-712 domain gives a well-formed signature that no
facilitator will ever verify (Base mainnet USDC is ``"USD Coin"``, Base Sepolia
USDC is ``"USDC"``), so the domains live here as data, not in the signer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import X402ProtocolError

_ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")


def is_address(value: object) -> bool:
    """True for a 0x-prefixed 20-byte hex string (any checksum casing)."""
    return isinstance(value, str) and bool(_ADDRESS_RE.match(value))


def same_address(a: str, b: str) -> bool:
    return is_address(a) and is_address(b) and a.lower() == b.lower()


@dataclass(frozen=True)
class Network:
    """An EVM network as x402 names it in v1 (``base-sepolia``) and v2 (``eip155:84532``)."""

    caip2: str
    v1_name: str
    chain_id: int
    testnet: bool
    label: str

    def __str__(self) -> str:
        return self.v1_name


BASE = Network("eip155:8453", "base", 8453, False, "Base")
BASE_SEPOLIA = Network("eip155:84532", "base-sepolia", 84532, True, "Base Sepolia")

NETWORKS: dict[str, Network] = {}
for _n in (BASE, BASE_SEPOLIA):
    NETWORKS[_n.caip2] = _n
    NETWORKS[_n.v1_name] = _n


def get_network(name: str | Network) -> Network:
    """Look a network up by v1 name or CAIP-2 id; raise X402ProtocolError if unknown."""
    if isinstance(name, Network):
        return name
    if isinstance(name, str):
        net = NETWORKS.get(name.strip().lower())
        if net is not None:
            return net
    known = ", ".join(sorted({n.v1_name for n in NETWORKS.values()}))
    raise X402ProtocolError(f"unknown network {name!r}", hint=f"known networks: {known} (or their eip155 ids)")


@dataclass(frozen=True)
class Asset:
    """A token that can be paid with: where it lives and how to sign for it."""

    symbol: str
    address: str
    network: str  # CAIP-2
    decimals: int
    eip712_name: str | None
    eip712_version: str | None
    #: False when the address comes from an unconfirmed source; such an asset
    #: is only payable when the user configures it explicitly.
    verified: bool = True
    #: True for USD stablecoins: the USD-denominated caps apply to them directly.
    usd_stable: bool = False

    @property
    def key(self) -> tuple[str, str]:
        return (self.network, self.address.lower())

    def __str__(self) -> str:
        return f"{self.symbol} on {get_network(self.network).v1_name}"


USDC_BASE = Asset("USDC", "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913", BASE.caip2, 6, "USD Coin", "2", True, True)
USDC_BASE_SEPOLIA = Asset(
    "USDC", "0x036CbD53842c5426634e7929541eC2318f3dCF7e", BASE_SEPOLIA.caip2, 6, "USDC", "2", True, True
)
# TMAI's address comes from a community token list, not from Token Metrics; its
# EIP-712 domain is unknown, so it must come from the challenge's `extra`.
TMAI_BASE = Asset("TMAI", "0xca4569949699d56e1834efe9f58747ca0f151b01", BASE.caip2, 18, None, None, False, False)

KNOWN_ASSETS: tuple[Asset, ...] = (USDC_BASE, USDC_BASE_SEPOLIA, TMAI_BASE)


def find_asset(network: str | Network, address: str, extra_assets: tuple[Asset, ...] = ()) -> Asset | None:
    """The known (or user-configured) asset at ``address`` on ``network``, else None."""
    net = get_network(network)
    for asset in (*extra_assets, *KNOWN_ASSETS):
        if asset.network == net.caip2 and same_address(asset.address, address):
            return asset
    return None
