"""The sandbox: a local Token Metrics–compatible x402 API with its own facilitator.

It serves every active v2 endpoint with deterministic synthetic data, asks for
x402 payments (v1 body challenge by default, v2 headers by option) in USDC or
TMAI, verifies and settles them with an in-process facilitator backed by
SQLite, and exposes a faucet, a JSON-RPC subset and switchable faults.

>>> from tm402_nb.sandbox import serve
>>> with serve() as sb:                      # doctest: +SKIP
...     sb.url, sb.wallet.address, sb.api_key

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
from .server import SandboxServer, serve

__all__ = [
    "ENDPOINTS",
    "ENDPOINT_TIER",
    "FIXED_ANCHOR",
    "SANDBOX_TMAI_BASE_SEPOLIA",
    "SANDBOX_TMAI_BASE_SEPOLIA_ADDRESS",
    "TIER_USD",
    "TMAI_USD_RATE",
    "Faults",
    "SandboxConfig",
    "SandboxServer",
    "cli_main",
    "create_app",
    "default_anchor",
    "main",
    "serve",
]
