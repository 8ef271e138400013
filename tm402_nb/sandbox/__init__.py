"""The sandbox: a local Token Metrics–compatible x402 API with its own facilitator.

It serves every active v2 endpoint with deterministic synthetic data (newest
day: yesterday, UTC, unless pinned), asks for x402 payments (v1 body challenge
by default, v2 headers by option) in USDC or TMAI, verifies and settles them
with an in-process facilitator backed by SQLite, and exposes a faucet, a
JSON-RPC subset and switchable faults. A profile (``classic``, ``docs-2026``, or
either with switches flipped) chooses which reading of the real API it plays.

>>> from tm402_nb.sandbox import serve
>>> with serve() as sb:                      # doctest: +SKIP
...     sb.url, sb.wallet.address, sb.api_key
>>> with serve(profile="docs-2026", field_case="lower") as sb:   # doctest: +SKIP
...     sb.profile.label

It imports only the x402 message layer, never the client side.
"""

from .app import create_app
from .assets import SANDBOX_TMAI_BASE_SEPOLIA, SANDBOX_TMAI_BASE_SEPOLIA_ADDRESS
from .catalogue import ENDPOINTS
from .cli import cli_main, main
from .config import SandboxConfig
from .faults import Faults
from .market import FIXED_ANCHOR, default_anchor
from .pricing import ENDPOINT_TIER, TIER_USD, TMAI_USD_RATE
from .profiles import PROFILES, SWITCHES, SandboxProfile, resolve_profile
from .server import SandboxServer, serve

__all__ = [
    "ENDPOINTS",
    "ENDPOINT_TIER",
    "FIXED_ANCHOR",
    "PROFILES",
    "SANDBOX_TMAI_BASE_SEPOLIA",
    "SANDBOX_TMAI_BASE_SEPOLIA_ADDRESS",
    "SWITCHES",
    "TIER_USD",
    "TMAI_USD_RATE",
    "Faults",
    "SandboxConfig",
    "SandboxProfile",
    "SandboxServer",
    "cli_main",
    "create_app",
    "default_anchor",
    "main",
    "resolve_profile",
    "serve",
]
