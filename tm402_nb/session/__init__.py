"""``connect()``: mode, wallet, policy, client and ledger in one object; the current session.

Mode comes from the arguments, else the environment::

    TM402_MODE          sandbox | x402 | api-key   (explicit choice, e.g. on Binder)
    TM402_PRIVATE_KEY   (or TM402_KEY_FILE) → x402: pay per call from this wallet
    TM_API_KEY          → api-key: your Token Metrics plan, no payments
    (nothing)           → sandbox: the embedded local API with a funded throwaway wallet
"""

from __future__ import annotations

import os
import threading
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from ..errors import ConfigurationError
from ..ledger import Ledger
from ..tokenmetrics.client import DEFAULT_BASE_URL, AsyncClient, Client, RetryPolicy
from ..tokenmetrics.cost import Cost, CostTracker
from ..x402.auth import X402Auth
from ..x402.money import AmountLike, format_amount, to_atomic
from ..x402.networks import get_network
from ..x402.policy import AssetLimit, SpendPolicy
from ..x402.wallet import ENV_KEY, ENV_KEY_FILE, Wallet
from .wallet_view import WalletView

__all__ = ["ENV_API_KEY", "ENV_MODE", "ENV_RPC_URL", "Session", "connect", "current_session", "session"]

ENV_MODE = "TM402_MODE"
ENV_API_KEY = "TM_API_KEY"
ENV_RPC_URL = "TM402_RPC_URL"
ENV_BASE_URL = "TM402_BASE_URL"

#: In the sandbox, TMAI costs $0.01: these limits mirror the USD defaults.
SANDBOX_TMAI_LIMITS = AssetLimit(max_per_call="20", budget="1000")


def _mode_from_env() -> str:
    explicit = os.environ.get(ENV_MODE, "").strip().lower()
    if explicit:
        if explicit not in ("sandbox", "x402", "api-key"):
            raise ConfigurationError(f"${ENV_MODE} must be sandbox, x402 or api-key, got {explicit!r}")
        return explicit
    if os.environ.get(ENV_KEY) or os.environ.get(ENV_KEY_FILE):
        return "x402"
    if os.environ.get(ENV_API_KEY):
        return "api-key"
    return "sandbox"


class Session:
    """Everything a notebook needs to pay for and read Token Metrics data.

    Use :func:`connect` to make one; it becomes the current session (:func:`session`).
    """

    def __init__(
        self,
        mode: str | None = None,
        *,
        network: str | None = None,
        pay_with: str = "usdc",
        max_per_call: AmountLike | float | None = "0.10",
        budget: AmountLike | float | None = None,
        daily_cap: AmountLike | float | None = None,
        tmai_limits: AssetLimit | dict[str, Any] | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        wallet: Wallet | None = None,
        ledger: Ledger | str | os.PathLike[str] | None = None,
        cache: bool = True,
        rpc_url: str | None = None,
        low_balance: AmountLike | float | None = "1.00",
        x402_version: int = 1,
        sandbox_options: dict[str, Any] | None = None,
        retry: RetryPolicy | None = None,
        max_concurrency: int = 4,
        progress: bool = True,
        on_empty: str = "raise",
    ) -> None:
        self.mode = mode or _mode_from_env()
        if self.mode not in ("sandbox", "x402", "api-key"):
            raise ConfigurationError(f"mode must be sandbox, x402 or api-key, got {self.mode!r}")
        self.id = uuid.uuid4().hex[:12]
        self.sandbox = None
        self.cost = CostTracker()
        self._closed = False
        self._aclient: AsyncClient | None = None
        self.low_balance = None if low_balance is None else to_atomic(low_balance, 6, what="low_balance")
        if isinstance(ledger, Ledger):
            self.ledger = ledger
            self._own_ledger = False
        else:
            self.ledger = Ledger(ledger) if ledger is not None else Ledger()
            self._own_ledger = True

        policy_kw: dict[str, Any] = dict(
            max_per_call=max_per_call, budget=budget, daily_cap=daily_cap, pay_with=pay_with
        )
        if tmai_limits is not None:
            policy_kw["asset_limits"] = {"TMAI": tmai_limits}
        self._rpc_url = rpc_url or os.environ.get(ENV_RPC_URL)
        api_key = api_key or (os.environ.get(ENV_API_KEY) if self.mode == "api-key" else None)
        base_url = base_url or os.environ.get(ENV_BASE_URL)

        try:
            if self.mode == "sandbox":
                from ..sandbox import serve
                from ..sandbox.assets import SANDBOX_TMAI_BASE_SEPOLIA

                if api_key:
                    raise ConfigurationError("an API key was given in sandbox mode", hint="use mode='api-key'")
                net = get_network(network or "base-sepolia")
                self.sandbox = serve(x402_version=x402_version, network=net.v1_name, **(sandbox_options or {}))
                self.wallet = wallet or self.sandbox.wallet
                self.network = net.v1_name
                extra = (SANDBOX_TMAI_BASE_SEPOLIA,) if net.testnet else ()
                policy_kw.setdefault("asset_limits", {"TMAI": SANDBOX_TMAI_LIMITS})
                self.policy = SpendPolicy(network=net.v1_name, extra_assets=extra, **policy_kw)
                base_url = base_url or self.sandbox.api_url
                self._rpc_url = self._rpc_url or self.sandbox.rpc_url
            elif self.mode == "x402":
                if api_key:
                    raise ConfigurationError(
                        "an API key was given in x402 mode",
                        hint="x402 pays per call and must not send x-api-key; use mode='api-key' for a key",
                    )
                net = get_network(network or "base-sepolia")
                self.network = net.v1_name
                self.wallet = wallet or Wallet.load(network=net.v1_name)
                self.policy = SpendPolicy(network=net.v1_name, **policy_kw)
                base_url = base_url or DEFAULT_BASE_URL
            else:
                self.network = None
                self.wallet = None
                self.policy = None
                base_url = base_url or DEFAULT_BASE_URL
            self.auth = (
                X402Auth(
                    self.wallet,
                    self.policy,
                    ledger=self.ledger,
                    session_id=self.id,
                    endpoint_of=_endpoint_of,
                    cell_id=_cell_id,
                )
                if self.policy is not None
                else None
            )
            self.base_url = base_url
            self._client_kw = dict(
                mode=self.mode,
                base_url=base_url,
                auth=self.auth,
                api_key=api_key,
                pay_with=pay_with,
                ledger=self.ledger,
                cache=cache,
                cost=self.cost,
                retry=retry,
                max_concurrency=max_concurrency,
                progress=progress,
                session_id=self.id,
                on_empty=on_empty,
            )
            self.client = Client(**self._client_kw)
        except BaseException:
            self._teardown()
            raise
        self.wallet_view = WalletView(self) if self.wallet is not None else None

    # -- clients --------------------------------------------------------------------
    def async_client(self) -> AsyncClient:
        """An AsyncClient sharing this session's wallet, policy, ledger and cost accounting."""
        if self._aclient is None:
            self._aclient = AsyncClient(**self._client_kw)
        return self._aclient

    # -- money ------------------------------------------------------------------------
    @property
    def budget(self) -> Decimal | None:
        if self.policy is None or self.policy.budget is None:
            return None
        return _plain(Decimal(self.policy.budget).scaleb(-6))

    @budget.setter
    def budget(self, value: AmountLike | float | None) -> None:
        if self.policy is None:
            raise ConfigurationError("API-key mode has no payment budget")
        self.policy.set_budget(value)

    @property
    def spent(self) -> Decimal:
        """USD (stablecoins) signed for in this session, pending and unknown included."""
        return _plain(Decimal(self.policy.spent_usd()).scaleb(-6)) if self.policy is not None else Decimal(0)

    def budget_text(self) -> str:
        spent = format_amount(self.policy.spent_usd(), 6, "USDC") if self.policy else "0.00 USDC"
        if self.policy is None or self.policy.budget is None:
            return f"{spent} spent (no budget set)"
        return f"{spent} of {format_amount(self.policy.budget, 6, 'USDC')} budget"

    @contextmanager
    def scope(self, name: str = "scope", *, max_cost: AmountLike | float | None = None) -> Iterator[Cost]:
        """Account for the calls in a block; ``max_cost`` refuses any payment past that total."""
        cost = self.cost.open_tally(name)
        spend_scope = self.policy.open_scope(name, max_cost) if (self.policy and max_cost is not None) else None
        try:
            yield cost
        finally:
            self.cost.close_tally(cost)
            if spend_scope is not None:
                self.policy.close_scope(spend_scope)

    # -- wallet ---------------------------------------------------------------------------
    def balances(self) -> dict[str, Decimal]:
        """USDC and TMAI balances of the wallet, read over JSON-RPC (warns when USDC is low)."""
        if self.wallet_view is None:
            raise ConfigurationError("API-key mode has no wallet")
        found = self.wallet_view.balances()
        usdc = found.get("USDC")
        if usdc is not None and self.low_balance is not None and usdc < Decimal(self.low_balance).scaleb(-6):
            warnings.warn(
                f"low USDC balance: {usdc} on {self.network} (threshold {format_amount(self.low_balance, 6, 'USDC')})",
                stacklevel=2,
            )
        return found

    @property
    def rpc_url(self) -> str | None:
        return self._rpc_url

    # -- lifecycle ---------------------------------------------------------------------
    def _teardown(self) -> None:
        client = getattr(self, "client", None)  # absent when construction failed early
        if client is not None:
            client.close()
        if self.sandbox is not None:
            self.sandbox.stop()
            self.sandbox = None
        if getattr(self, "_own_ledger", False) and getattr(self, "ledger", None) is not None:
            self.ledger.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._aclient is not None:
            import asyncio

            try:
                asyncio.get_running_loop()
            except RuntimeError:
                asyncio.run(self._aclient.aclose())
            self._aclient = None
        self._teardown()
        global _current
        with _lock:
            if _current is self:
                _current = None

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        bits = [f"mode={self.mode}"]
        if self.network:
            bits.append(f"network={self.network}")
        if self.wallet is not None:
            bits.append(f"wallet={self.wallet.address}")
        if self.policy is not None:
            bits.append(self.budget_text())
        if self.sandbox is not None:
            bits.append(f"sandbox={self.sandbox.url}")
        return f"Session({', '.join(bits)})"


def _plain(value: Decimal) -> Decimal:
    """Exact, without trailing zeros (Decimal('1.5'), not Decimal('1.500000'))."""
    return Decimal(format(value.normalize(), "f"))


def _endpoint_of(request: Any) -> str | None:
    path = request.url.path.rstrip("/")
    return path.rsplit("/", 1)[-1] or None


def _cell_id() -> str | None:
    from ..tokenmetrics.cost import current_cell_id

    return current_cell_id.get()


_current: Session | None = None
_lock = threading.Lock()


def connect(mode: str | None = None, **kwargs: Any) -> Session:
    """Open a session and make it the current one (closing the previous one).

    >>> import tm402_nb as tm
    >>> s = tm.connect(mode="sandbox", budget="1.00")       # doctest: +SKIP
    >>> s.client.frame("tm-grade", symbol=["BTC", "ETH"])    # doctest: +SKIP
    """
    global _current
    new = Session(mode, **kwargs)
    with _lock:
        old, _current = _current, new
    if old is not None and old is not new:
        old.close()
    return new


def session() -> Session:
    """The current session; connects with the defaults (mode from the environment) on first use."""
    global _current
    with _lock:
        cur = _current
    if cur is not None and not cur.closed:
        return cur
    return connect()


def current_session() -> Session | None:
    """The current session, or None (never connects)."""
    with _lock:
        return _current if _current is not None and not _current.closed else None


# `tm402_nb.session` is both this layer's package and the function users call as
# `tm.session()`. Once the package is imported, Python binds the *module* to that
# name on `tm402_nb`, so the module itself is made callable: calling it calls session().
import sys as _sys
import types as _types


class _SessionModule(_types.ModuleType):
    def __call__(self) -> Session:
        return session()


_sys.modules[__name__].__class__ = _SessionModule
