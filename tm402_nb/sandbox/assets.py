"""The tokens the sandbox accepts as payment, per network.

USDC is the real USDC contract address of each network with its real EIP-712
domain (Base mainnet ``"USD Coin"``, Base Sepolia ``"USDC"``, version ``"2"``).
TMAI on Base uses the address from the reference (a community token list);
Base Sepolia has no TMAI, so the sandbox invents one at
:data:`SANDBOX_TMAI_BASE_SEPOLIA_ADDRESS` — ``0x7E57…7A1A`` ("test … TMAI"),
an address nobody controls. TMAI's EIP-712 domain is not documented anywhere;
the sandbox uses ``("Token Metrics AI", "1")`` and always sends it in the
challenge's ``extra``, so clients never need to know it in advance.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..x402.networks import BASE, TMAI_BASE, USDC_BASE, USDC_BASE_SEPOLIA, Asset, Network, get_network
from ..x402.wallet import to_checksum

SANDBOX_TMAI_BASE_SEPOLIA_ADDRESS = to_checksum("0x7e57000000000000000000000000000000007a1a")
TMAI_EIP712_NAME = "Token Metrics AI"
TMAI_EIP712_VERSION = "1"

#: The sandbox-only TMAI on Base Sepolia, as an ``Asset`` a client can register.
SANDBOX_TMAI_BASE_SEPOLIA = Asset(
    "TMAI", SANDBOX_TMAI_BASE_SEPOLIA_ADDRESS, "eip155:84532", 18, TMAI_EIP712_NAME, TMAI_EIP712_VERSION, False, False
)


@dataclass(frozen=True)
class PayAsset:
    """One accepted payment token: ``key`` is what ``x-payment-token`` and the faucet call it."""

    key: str  # "usdc" | "tmai"
    symbol: str
    address: str
    decimals: int
    eip712_name: str
    eip712_version: str

    @property
    def extra(self) -> dict[str, str]:
        return {"name": self.eip712_name, "version": self.eip712_version}


def pay_assets(network: str | Network) -> dict[str, PayAsset]:
    """``{"usdc": ..., "tmai": ...}`` for ``network`` (base or base-sepolia)."""
    net = get_network(network)
    usdc = USDC_BASE if net == BASE else USDC_BASE_SEPOLIA
    tmai_addr = TMAI_BASE.address if net == BASE else SANDBOX_TMAI_BASE_SEPOLIA_ADDRESS
    return {
        "usdc": PayAsset(
            "usdc",
            "USDC",
            to_checksum(usdc.address),
            usdc.decimals,
            usdc.eip712_name or "USDC",
            usdc.eip712_version or "2",
        ),
        "tmai": PayAsset("tmai", "TMAI", to_checksum(tmai_addr), 18, TMAI_EIP712_NAME, TMAI_EIP712_VERSION),
    }


def resolve_asset(assets: dict[str, PayAsset], name_or_address: str) -> PayAsset | None:
    """Find an asset by key ("usdc"), symbol ("USDC") or contract address (any casing)."""
    if not isinstance(name_or_address, str):
        return None
    low = name_or_address.strip().lower()
    for a in assets.values():
        if low in (a.key, a.symbol.lower(), a.address.lower()):
            return a
    return None
