"""The wallet's balances over JSON-RPC: the same code against the sandbox's ``/rpc`` and a real node."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from ..errors import ConfigurationError, X402ProtocolError
from ..money import to_display
from ..tokenmetrics.errors import APIError
from ..x402.chain import ChainReader
from ..x402.networks import get_network

if TYPE_CHECKING:
    from ..x402.networks import Asset
    from ..x402.policy import SpendPolicy
    from ..x402.wallet import Wallet


def erc20_balance(rpc_url: str, token: str, owner: str, *, timeout: float = 10.0) -> int:
    """Atomic balance of ``owner`` in ERC-20 ``token``, via ``eth_call``."""
    try:
        return ChainReader(rpc_url, timeout=timeout).balance_of(token, owner)
    except X402ProtocolError as exc:
        raise APIError(f"balance: {exc.message}") from None


class WalletView:
    """Address, network and balances of a session's wallet: the assets its policy may pay with."""

    def __init__(self, wallet: Wallet, policy: SpendPolicy, network: str, rpc_url: str | None) -> None:
        self._wallet = wallet
        self._policy = policy
        self._network = network
        self._rpc_url = rpc_url

    @property
    def address(self) -> str:
        return self._wallet.address

    def assets(self) -> list[Asset]:
        net = get_network(self._network)
        seen: set[str] = set()
        out: list[Asset] = []
        for asset in self._policy.allowed_assets + self._policy.extra_assets:
            if asset.network == net.caip2 and asset.symbol not in seen:
                seen.add(asset.symbol)
                out.append(asset)
        return out

    def balances(self) -> dict[str, Decimal]:
        rpc = self._rpc_url
        if not rpc:
            raise ConfigurationError(
                "no JSON-RPC URL to read balances from",
                hint="set $TM402_RPC_URL (e.g. a Base Sepolia RPC endpoint) or pass rpc_url=",
            )
        return {a.symbol: to_display(erc20_balance(rpc, a.address, self.address), a.decimals) for a in self.assets()}

    def __repr__(self) -> str:
        return f"WalletView({self.address} on {self._network})"
