"""Sandbox configuration and the identities derived from its seed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from eth_hash.auto import keccak

from ..x402.networks import Network, get_network
from ..x402.wallet import Wallet
from .faults import Faults

DEFAULT_SEED = 402
DEFAULT_PORT = 8402


@dataclass
class SandboxConfig:
    """Everything that shapes one sandbox server.

    ``db_path=None`` gives each app its own temporary SQLite file (deleted when
    the server stops); pass a path to keep balances across restarts.
    ``rate_limit``/``rate_burst`` are per caller (payer, API key or IP); 0 turns
    the limit off.
    """

    network: str = "base-sepolia"
    x402_version: int = 1
    seed: int = DEFAULT_SEED
    api_key: str | None = None
    db_path: str | None = None
    #: The newest day of data; None: yesterday (UTC) when the server starts.
    anchor: date | None = None
    rate_limit: float = 20.0
    rate_burst: int = 40
    max_timeout_seconds: int = 60
    faults: Faults = field(default_factory=Faults)

    def __post_init__(self) -> None:
        if self.x402_version not in (1, 2) or isinstance(self.x402_version, bool):
            raise ValueError(f"x402_version must be 1 or 2, got {self.x402_version!r}")
        get_network(self.network)  # raises ValueError for an unknown network name
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")
        if self.api_key is None:
            self.api_key = sandbox_api_key(self.seed)
        if not 5 <= self.max_timeout_seconds <= 3600:
            raise ValueError("max_timeout_seconds must be between 5 and 3600")
        if self.faults is None:
            self.faults = Faults()

    @property
    def net(self) -> Network:
        return get_network(self.network)


def _derive(label: str, seed: int) -> bytes:
    return keccak(f"tm402-sandbox:{label}:{seed}".encode())


def sandbox_api_key(seed: int) -> str:
    """A key shaped like Token Metrics' (``tm-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx``), valid only here."""
    h = _derive("api-key", seed).hex()
    return f"tm-{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def payee_address(seed: int) -> str:
    """The sandbox's fixed ``payTo`` (its key is derived from the seed and never used to sign)."""
    return Wallet(_derive("payee", seed), source="sandbox-payee").address


def facilitator_address(seed: int) -> str:
    return Wallet(_derive("facilitator", seed), source="sandbox-facilitator").address
