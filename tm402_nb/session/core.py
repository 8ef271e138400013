"""The :class:`Session`: a wallet, a spend policy, a client and a ledger that belong together."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from ..money import AmountLike, format_amount, plain, to_atomic
from ..tokenmetrics.client import AsyncClient
from ..tokenmetrics.cost import Cost
from .modes import SessionOptions, SessionParts, build, resolve_mode
from .wallet_view import WalletView

if TYPE_CHECKING:
    from ..tokenmetrics.modes import Mode
    from ..x402.approval import Allowance
    from ..x402.networks import Asset
    from .approve import Approved
    from .doctor import DoctorReport

__all__ = ["Session"]

#: Assets a session can pay with by default (the policy and the client agree on the choice).
PAYABLE = ("usdc", "tmai")

# Closes of async clients scheduled on a running loop: the loop keeps only weak references to tasks.
_CLOSING: set[asyncio.Task[None]] = set()

#: What each open session must close (its client, its sandbox with the sandbox's temporary
#: database, its ledger), held until ``close()`` or interpreter exit, whichever comes first: a
#: session ended without ``close()`` (the end of a script, a kernel shut down or restarted)
#: leaves nothing in the temporary folder. Only at exit: a session merely dropped keeps working
#: for whoever still holds its client.
_UNCLOSED: set[contextlib.ExitStack] = set()
_UNCLOSED_LOCK = threading.Lock()


def _close_unclosed() -> None:
    with _UNCLOSED_LOCK:
        stacks = list(_UNCLOSED)
        _UNCLOSED.clear()
    for stack in stacks:
        with contextlib.suppress(Exception):  # the interpreter is going: close what can be closed
            stack.close()


atexit.register(_close_unclosed)


class Session:
    """Everything a notebook needs to pay for and read Token Metrics data.

    Use :func:`~tm402_nb.session.connect` to make one and make it the current session
    (:func:`~tm402_nb.session.session`); ``Session(mode, **options)`` makes one that is not.
    ``options`` are the fields of :class:`~tm402_nb.session.modes.SessionOptions`.
    """

    def __init__(self, mode: Mode | str | None = None, **options: Any) -> None:
        self._adopt(build(resolve_mode(mode), SessionOptions(**options)))

    def _adopt(self, parts: SessionParts) -> None:
        self.mode = parts.mode
        self.id = parts.id
        self.network = parts.network
        self.wallet = parts.wallet
        self.policy = parts.policy
        self.auth = parts.auth
        self.sandbox = parts.sandbox
        self.ledger = parts.ledger
        self.cost = parts.cost
        self.client = parts.client
        self.base_url = parts.base_url
        self.low_balance = parts.low_balance
        self._rpc_url = parts.rpc_url
        self._client_options = parts.client_options
        self._resources = parts.resources
        with _UNCLOSED_LOCK:
            _UNCLOSED.add(self._resources)
        self._aclient: AsyncClient | None = None
        self._closed = False
        self.wallet_view = (
            WalletView(self.wallet, self.policy, self.network, self._rpc_url)
            if self.wallet is not None and self.policy is not None and self.network is not None
            else None
        )

    # -- clients --------------------------------------------------------------------
    def async_client(self) -> AsyncClient:
        """An AsyncClient sharing this session's wallet, policy, ledger and cost accounting."""
        if self._aclient is None:
            self._aclient = AsyncClient(
                **{**self._client_options, "pay_with": self.pay_with, "confirm_above": self.confirm_above}
            )
        return self._aclient

    @property
    def confirm_above(self) -> Decimal | None:
        """Plans that may pay more than this many USD ask [y/N] first (None: never ask)."""
        above = self.client.confirm_above
        return None if above is None else _plain(Decimal(above).scaleb(-6))

    @confirm_above.setter
    def confirm_above(self, value: AmountLike | float | None) -> None:
        atomic = None if value is None else to_atomic(value, 6, what="confirm_above")
        for client in (self.client, self._aclient):
            if client is not None:
                client.confirm_above = atomic

    @property
    def max_per_cell(self) -> Decimal | None:
        """The most one notebook cell run may pay, in USD (None: no per-cell cap)."""
        if self.policy is None or self.policy.max_per_cell is None:
            return None
        return _plain(Decimal(self.policy.max_per_cell).scaleb(-6))

    @max_per_cell.setter
    def max_per_cell(self, value: AmountLike | float | None) -> None:
        if self.policy is None:
            raise ConfigurationError("API-key mode pays nothing, so it has no per-cell cap")
        self.policy.set_max_per_cell(value)

    # -- money ------------------------------------------------------------------------
    @property
    def pay_with(self) -> str:
        """The asset calls pay with unless a call asks for another (``"usdc"`` or ``"tmai"``)."""
        return self.client.pay_with

    @pay_with.setter
    def pay_with(self, asset: str) -> None:
        choice = str(asset).strip().lower()
        if choice not in PAYABLE:
            raise ConfigurationError(f"pay_with must be usdc or tmai, got {asset!r}")
        if self.policy is None:
            raise ConfigurationError("API-key mode pays nothing, so it has no asset to pay with")
        # Under the policy's lock: a payment being chosen sees the old default or the new one, never a mix.
        with self.policy.lock:
            self.policy.pay_with = choice
            for client in (self.client, self._aclient):
                if client is not None:
                    client.pay_with = choice

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
        """USD signed for in this session across assets, pending and unknown included."""
        return _plain(Decimal(self.policy.spent_usd()).scaleb(-6)) if self.policy is not None else Decimal(0)

    def budget_text(self) -> str:
        """What the session counted against its budget, in USD across the assets it paid in.

        Refused authorizations that could still settle are counted, and shown apart as *reserved*.
        """
        if self.policy is None:
            return "0.00 USD spent (no budget set)"
        reserved = self.policy.reserved_usd()
        spent = format_amount(self.policy.spent_usd() - reserved, 6, "USD")
        held = f" + {format_amount(reserved, 6, 'USD')} reserved" if reserved else ""
        if self.policy.budget is None:
            return f"{spent} spent{held} (no budget set)"
        return f"{spent}{held} of {format_amount(self.policy.budget, 6, 'USD')} budget"

    @contextmanager
    def scope(self, name: str = "scope", *, max_cost: AmountLike | float | None = None) -> Iterator[Cost]:
        """A block of calls: yields what they cost; ``max_cost`` refuses any payment past that total."""
        block_cost = self.cost.open_tally(name)
        block_cap = self.policy.open_scope(name, max_cost) if self.policy is not None and max_cost is not None else None
        try:
            yield block_cost
        finally:
            self.cost.close_tally(block_cost)
            if block_cap is not None and self.policy is not None:
                self.policy.close_scope(block_cap)

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

    def allowance(self, asset: str | Asset = "tmai", *, decimals: int | None = None) -> Allowance:
        """What Permit2 may move of the wallet's ``asset`` (``"tmai"``, ``"usdc"`` or an address), read
        over JSON-RPC: a token paid by Permit2 needs it to cover each payment. Sends nothing."""
        from .approve import allowance

        return allowance(self, asset, decimals=decimals)

    def approve_permit2(
        self, asset: str | Asset, amount: AmountLike | float, *, yes: bool = False, decimals: int | None = None
    ) -> Approved:
        """Send the one-time ERC-20 ``approve(Permit2, amount)`` a token paid by Permit2 (TMAI) needs.

        ``asset``: ``"tmai"``, ``"usdc"``, the address of one of them, or any token address with its
        ``decimals`` given. ``amount``: display units (``"50"``), or ``"unlimited"``. Shows the
        token, spender, amount, the most the gas may cost (paid in ETH) and the network, asks
        [y/N] (refused where no one can answer; ``yes=True`` sends unasked), refuses when the
        wallet's ETH cannot pay the gas, then sends it, waits for the receipt and reads the
        allowance back. A real transaction outside the sandbox.
        """
        from .approve import approve_permit2

        return approve_permit2(self, asset, amount, yes=yes, decimals=decimals)

    def doctor(self, *, probe: str | None = None, timeout: float = 10.0) -> DoctorReport:
        """Preflight that pays nothing: key, network, clock, RPC, balances, one unpaid 402 probe, ledger.

        ``probe``: the paid request to send unpaid (a catalogue endpoint, default ``tm-grade``, or any
        x402 URL). See :mod:`tm402_nb.session.doctor`.
        """
        from .doctor import diagnose

        return diagnose(self, probe=probe, timeout=timeout)

    # -- lifecycle ---------------------------------------------------------------------
    def close(self) -> None:
        """Close the clients, stop the sandbox, close the ledger this session opened. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self._close_async_client()
        finally:
            with _UNCLOSED_LOCK:
                _UNCLOSED.discard(self._resources)
            self._resources.close()  # the client, then the sandbox, then the ledger
            self.sandbox = None
            from . import _forget

            _forget(self)

    async def aclose(self) -> None:
        """:meth:`close` for async code: the async client's close is awaited on this loop."""
        if self._closed:
            return
        aclient, self._aclient = self._aclient, None
        try:
            if aclient is not None:
                await aclient.aclose()
        finally:
            self.close()

    def _close_async_client(self) -> None:
        aclient, self._aclient = self._aclient, None
        if aclient is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # plain code: no loop runs here, so close it on a fresh one
            # RuntimeError: its pooled connections were opened on a loop that has closed since (an
            # earlier asyncio.run) and no loop can close them any more. httpx has marked the client
            # closed and dropped them from its pool, so their sockets close when they are collected.
            with contextlib.suppress(RuntimeError):
                asyncio.run(aclient.aclose())
            return
        # Called from a running loop (a Jupyter cell runs inside the kernel's): that loop owns the
        # client's connections and cannot be blocked from its own thread, so the close runs on it
        # as soon as the cell gives control back. Async code that must see it done awaits aclose().
        task = loop.create_task(aclient.aclose())
        _CLOSING.add(task)
        task.add_done_callback(_closed_async_client)

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


def _closed_async_client(task: asyncio.Task[None]) -> None:
    _CLOSING.discard(task)
    if not task.cancelled() and task.exception() is not None:
        warnings.warn(f"closing the session's AsyncClient failed: {task.exception()}", RuntimeWarning, stacklevel=1)


def _plain(value: Decimal) -> Decimal:
    """Exact, without trailing zeros (Decimal('1.5'), not Decimal('1.500000'))."""
    return Decimal(plain(value))
