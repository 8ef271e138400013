"""Everything one sandbox app holds: data, chain, facilitator, paywall, limits and counters."""

from __future__ import annotations

import contextlib
import os
import tempfile
from decimal import Decimal

from ..money import plain, to_atomic, to_display
from ..x402.permit2 import PERMIT2_ADDRESS
from .assets import PayAsset, pay_assets, resolve_asset
from .chain import NATIVE, Chain
from .config import SandboxConfig, facilitator_address, payee_address
from .datasets import DataService
from .facilitator import Facilitator
from .faults import Faults, FaultState
from .market import Market
from .paywall import Paywall
from .pricing import PriceList
from .ratelimit import RateLimiter
from .stats import Stats


def display(atomic: int, decimals: int) -> str:
    """Exact display string: ``display(17000, 6) == "0.017"``, ``display(0, 18) == "0"``."""
    return plain(to_display(atomic, decimals))


#: Largest faucet drip, in display units.
FAUCET_MAX = Decimal(1_000_000_000)
#: What the faucet and the balance route call the chain's native coin (gas is paid in it).
ETH_NAMES = ("eth", "native")


def is_eth(asset: object) -> bool:
    return isinstance(asset, str) and asset.strip().lower() in ETH_NAMES


#: The native coin, as the faucet describes it (never a payment asset: it is not in ``assets``).
ETH = PayAsset("eth", "ETH", NATIVE, 18, "Ether", "")


class SandboxState:
    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.profile = profile = config.profile
        self.network = config.net
        self.assets: dict[str, PayAsset] = pay_assets(self.network)
        self.pay_to = payee_address(config.seed)
        self.prices = PriceList(free_is_paid=profile.free_endpoints == "paid")
        self.market = Market(seed=config.seed, anchor=config.anchor_date)
        self.data = DataService(self.market, docs_signals="trading-signals" in profile.lowercase_endpoints)
        self._owned_db: str | None = None
        db_path = config.db_path
        if db_path is None:
            fd, db_path = tempfile.mkstemp(prefix="tm402-sandbox-", suffix=".sqlite3")
            os.close(fd)
            self._owned_db = db_path
        self.db_path = db_path
        self.chain = Chain(db_path)
        self.facilitator = Facilitator(
            self.chain,
            self.network,
            self.assets,
            signer_address=facilitator_address(config.seed),
            gas_sponsoring=profile.gas_sponsoring == "erc20",
        )
        self.faults = FaultState(config.faults, seed=config.seed)
        self.limiter = RateLimiter(config.rate_limit, config.rate_burst)
        self.stats = Stats()
        self.paywall = Paywall(
            version=profile.x402_version,
            network_name=self.network.v1_name if profile.x402_version == 1 else self.network.caip2,
            assets=self.assets,
            prices=self.prices,
            offer_all=profile.offers == "both",
            charge_empty=profile.empty_answer == "charged",
            pay_to=self.pay_to,
            max_timeout_seconds=config.max_timeout_seconds,
            facilitator=self.facilitator,
            faults=self.faults,
            stats=self.stats,
            tmai_transfer=profile.tmai_transfer,
            agent_scheme=profile.agent_scheme,
            identifiers=profile.payment_identifier == "on",
            gas_sponsoring=profile.gas_sponsoring == "erc20",
        )

    # -- helpers shared by the admin routes and the Python server object ------------------------
    def asset(self, name_or_address: str) -> PayAsset:
        a = resolve_asset(self.assets, name_or_address)
        if a is None:
            known = ", ".join(f"{k} ({v.address})" for k, v in self.assets.items())
            raise ValueError(f"unknown asset {str(name_or_address)[:60]!r}; this sandbox takes {known}")
        return a

    def fund(self, address: str, asset: str, amount: object, *, approve_permit2: bool = False) -> dict[str, object]:
        """Credit ``amount`` (display units) of ``asset`` to ``address``; returns the faucet receipt.

        ``approve_permit2`` also grants the Permit2 contract an unlimited allowance for the
        asset, as the one-time approval a wallet sends before its first Permit2 payment.
        ``asset`` ``"eth"`` is the native coin, which pays for gas (an approval transaction); it
        has no allowance, so ``approve_permit2`` is ignored for it."""
        from ..x402.networks import is_address
        from ..x402.wallet import to_checksum

        if not is_address(address):
            raise ValueError(f"address must be 0x followed by 40 hex digits, got {str(address)[:50]!r}")
        a = ETH if is_eth(asset) else self.asset(asset)
        try:
            atomic = to_atomic(amount, a.decimals, what="amount")  # type: ignore[arg-type]
        except Exception as exc:  # ConfigurationError carries a clean message
            raise ValueError(getattr(exc, "message", str(exc))) from None
        if atomic <= 0:
            raise ValueError("amount must be greater than 0")
        if atomic > to_atomic(FAUCET_MAX, a.decimals):
            raise ValueError(f"amount is over the faucet limit of {FAUCET_MAX} {a.symbol}")
        balance = self.chain.credit(a.address, address, atomic)
        approve_permit2 = approve_permit2 and a is not ETH
        if approve_permit2:
            self.chain.approve(a.address, address, PERMIT2_ADDRESS, 2**256 - 1)
        return {
            "success": True,
            "address": to_checksum(address),
            "asset": a.symbol,
            "asset_address": a.address,
            "amount": display(atomic, a.decimals),
            "amount_atomic": str(atomic),
            "balance": display(balance, a.decimals),
            "balance_atomic": str(balance),
            "network": self.network.v1_name,
        } | ({"permit2_allowance": "unlimited"} if approve_permit2 else {})

    def balance(self, address: str, asset: str) -> int:
        return self.chain.balance(NATIVE if is_eth(asset) else self.asset(asset).address, address)

    def set_faults(self, faults: Faults) -> None:
        self.faults.set(faults)

    def close(self) -> None:
        self.chain.close()
        if self._owned_db:
            for suffix in ("", "-wal", "-shm", "-journal"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self._owned_db + suffix)
            self._owned_db = None
