"""Sandbox configuration and the identities derived from its seed."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import date
from typing import Any

from eth_hash.auto import keccak

from ..errors import ConfigurationError
from ..x402.networks import Network, get_network
from ..x402.wallet import Wallet
from .faults import Faults
from .profiles import SWITCHES, SandboxProfile, resolve_profile, switch_names

DEFAULT_SEED = 402
DEFAULT_PORT = 8402


@dataclass
class SandboxConfig:
    """Everything that shapes one sandbox server.

    ``profile`` is the reading of the real API it plays (a preset name or a
    :class:`~.profiles.SandboxProfile`; default ``classic``). ``network``,
    ``x402_version`` and ``anchor`` are switches of it, kept here as arguments:
    given, they override the profile's (``anchor`` pins the data to that day);
    after construction ``network`` and ``x402_version`` hold the values in force,
    ``anchor`` stays what was given and :attr:`anchor_date` is the newest day of
    data. Use :meth:`build` to pass any other switch by name.

    ``db_path=None`` gives each app its own temporary SQLite file (deleted when
    the server stops); pass a path to keep balances across restarts.
    ``rate_limit``/``rate_burst`` are per caller (payer, API key or IP); 0 turns
    the limit off.
    """

    network: str | None = None
    x402_version: int | None = None
    seed: int = DEFAULT_SEED
    api_key: str | None = None
    db_path: str | None = None
    anchor: date | None = None
    rate_limit: float = 20.0
    rate_burst: int = 40
    max_timeout_seconds: int = 60
    faults: Faults = field(default_factory=Faults)
    profile: SandboxProfile = field(default_factory=SandboxProfile)
    #: The newest day of data (the pinned anchor, or yesterday in UTC when the config was made).
    anchor_date: date = field(init=False)

    def __post_init__(self) -> None:
        self.profile = resolve_profile(
            self.profile, network=self.network, x402_version=self.x402_version, anchor=self.anchor
        )
        self.network = self.profile.network
        self.x402_version = self.profile.x402_version
        self.anchor = self.profile.anchor if self.anchor is not None else None
        self.anchor_date = self.profile.anchor_date()
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
        return get_network(self.profile.network)

    @classmethod
    def build(cls, profile: SandboxProfile | str | None = None, **options: Any) -> SandboxConfig:
        """A config from a profile and keyword options, each a config field or a profile switch:
        ``SandboxConfig.build("docs-2026", seed=7, field_case="lower")``."""
        own = {f.name for f in fields(cls) if f.init} - {"profile"}
        # network, x402_version and anchor are settings and switches: the profile takes them at
        # once with the others, so a switch that depends on one (agent_scheme="upto" needs v2) sees it.
        switches = {k: v for k, v in options.items() if k not in own or k in switch_names()}
        unknown = sorted(set(switches) - set(switch_names()))
        if unknown:
            raise ConfigurationError(
                f"unknown sandbox option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}",
                hint=f"switches: {', '.join(SWITCHES)}, anchor; settings: {', '.join(sorted(own))}",
            )
        config = {k: v for k, v in options.items() if k in own}
        return cls(profile=resolve_profile(profile, **switches), **config)


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
