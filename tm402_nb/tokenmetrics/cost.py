"""Cost accounting: what each call cost, summed in tallies.

Every request the client makes (or serves from cache) becomes a
:class:`CallCost`. A :class:`CostTracker` adds it to the session's total and to
every open *tally*, a :class:`Cost` counting the calls of one task: a
``with session.scope() as cost:`` block, one ``frame()`` call, an enrichment.
A tally only counts; capping what a task may pay is the spend policy's
(:meth:`~tm402_nb.x402.policy.SpendPolicy.open_scope`).
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from ..money import format_amount, plain, to_display
from ..status import PaymentStatus
from ..x402.upto import of_up_to
from .catalogue import SYMBOL_LOOKUP, SYMBOL_RANKING

#: Payment states a footer warns about: refused, or perhaps paid with no answer.
_UNSETTLED = frozenset({PaymentStatus.FAILED, PaymentStatus.UNKNOWN, PaymentStatus.SETTLEMENT_PENDING})

#: The tallies open in this context, with the tracker each belongs to (see CostTracker.record).
_open_tallies: contextvars.ContextVar[tuple[tuple[CostTracker, Cost], ...]] = contextvars.ContextVar(
    "tm402_open_tallies", default=()
)

#: Free endpoints the client calls itself to turn symbols into token ids (what a footer calls "symbol lookup").
LOOKUP_ENDPOINTS = frozenset({SYMBOL_LOOKUP.name, SYMBOL_RANKING.name})

#: What a footer calls each kind of free call, one and several.
_FREE_WORDS = {"symbol lookup": "symbol lookups", "quote": "quotes", "failed": "failed"}

#: How many calls the session's total remembers in full (its sums stay exact regardless).
SESSION_CALLS_KEPT = 1000

#: Called with every CallCost of every session (the notebook footer listens here, so a
#: session created in the middle of a cell is counted too).
GLOBAL_LISTENERS: list[Any] = []


@dataclass(frozen=True)
class CallCost:
    endpoint: str | None
    url: str
    params: dict[str, Any] | None
    status: int | None
    cached: bool = False
    paid: bool = False
    amount: int = 0  # atomic units of `asset`
    asset: str | None = None  # symbol, e.g. USDC
    decimals: int = 6
    network: str | None = None
    tx: str | None = None
    payment_status: str | None = None
    payment_id: str | None = None
    elapsed_ms: float = 0.0
    #: A refused payment whose authorization could still settle: counted until this time (epoch s).
    reserved_until: float | None = None
    #: What the settlement receipt said that differs from what was signed.
    discrepancy: str | None = None
    #: An ``upto`` payment's signed ceiling (``amount`` is then what settled); None for ``exact``.
    ceiling: int | None = None
    #: The call re-sent a payment the session counted already (a lost answer's replay): nothing more paid.
    resent: bool = False


class Cost:
    """Calls made within one tally, and what they cost.

    Totals are kept as running sums, so they stay exact however many calls a tally
    sees; ``keep`` bounds how many calls are remembered in full (the session's total
    keeps the most recent ones, so a long session's memory does not grow per call).
    """

    def __init__(self, name: str = "tally", calls: list[CallCost] | None = None, *, keep: int | None = None) -> None:
        self.name = name
        self.calls: deque[CallCost] = deque(maxlen=keep)
        self._n = self._paid = self._cached = 0
        self._atomic: dict[tuple[str, int], int] = {}
        #: The most the paid calls could have cost, per asset: an upto call's ceiling, else its amount.
        self._bound: dict[tuple[str, int], int] = {}
        self._receipts: deque[str] = deque(maxlen=keep)
        self._networks: set[str] = set()
        self._unsettled: list[CallCost] = []
        self._refused = 0
        #: Refused payments whose authorization may still settle: (asset, decimals, until, HTTP status) → atomic.
        self._reserved: dict[tuple[str, int, float, int | None], int] = {}
        #: Refused payments whose authorization has expired: (asset, decimals) → atomic, and their HTTP statuses.
        self._released: dict[tuple[str, int], int] = {}
        self._released_status: set[int | None] = set()
        self._released_until = 0.0
        self._discrepancies: list[CallCost] = []
        #: Free calls by what they were (``free_kind``): symbol lookup, quote, ...
        self._free: dict[str, int] = {}
        #: Payments already counted: a lost answer's replay re-sends the same signed payment, and
        #: counting its call again would show twice what the ledger holds once.
        self._payments: set[str] = set()
        self._resent = 0
        for call in calls or ():
            self.add(call)

    def has_payment(self, payment_id: str) -> bool:
        return payment_id in self._payments

    def add(self, call: CallCost) -> None:
        self.calls.append(call)
        self._n += 1
        if call.cached:
            self._cached += 1
        if call.paid and (call.resent or (call.payment_id is not None and call.payment_id in self._payments)):
            self._resent += 1
            if call.tx:
                self._receipts.append(call.tx)
            return
        if call.paid:
            if call.payment_id is not None:
                self._payments.add(call.payment_id)
            self._paid += 1
            if call.asset:
                key = (call.asset, call.decimals)
                self._atomic[key] = self._atomic.get(key, 0) + call.amount
                bound = call.amount if call.ceiling is None else max(call.ceiling, call.amount)
                self._bound[key] = self._bound.get(key, 0) + bound
        if call.tx:
            self._receipts.append(call.tx)
        if call.network:
            self._networks.add(call.network)
        if call.payment_status in _UNSETTLED and len(self._unsettled) < 1000:
            self._unsettled.append(call)
        if call.payment_status == PaymentStatus.FAILED and not call.paid and not call.cached:
            self._refused += 1
        elif not call.paid and not call.cached:
            kind = free_kind(call)
            self._free[kind] = self._free.get(kind, 0) + 1
        if call.reserved_until is not None and call.asset:
            held = (call.asset, call.decimals, call.reserved_until, call.status)
            self._reserved[held] = self._reserved.get(held, 0) + call.amount
            self._expire(time.time())
        if call.discrepancy and len(self._discrepancies) < 1000:
            self._discrepancies.append(call)

    @property
    def n_calls(self) -> int:
        return self._n

    @property
    def n_paid(self) -> int:
        return self._paid

    @property
    def n_cached(self) -> int:
        return self._cached

    @property
    def n_refused(self) -> int:
        """Calls whose payment the server refused (a 404 answer, a failed settlement): nothing spent."""
        return self._refused

    @property
    def n_resent(self) -> int:
        """Calls that re-sent a payment already counted (a lost answer's replay): nothing more paid."""
        return self._resent

    @property
    def n_free(self) -> int:
        return self._n - self._paid - self._cached - self._refused - self._resent

    @property
    def free_kinds(self) -> dict[str, int]:
        """The free calls by what they were: ``{"symbol lookup": 3, "quote": 1}``."""
        return dict(self._free)

    def free_text(self) -> str:
        """``3 free: symbol lookup``; ``4 free: 3 symbol lookups + 1 quote``; ``""`` when none was free."""
        if not self.n_free:
            return ""
        kinds = sorted(self._free.items(), key=lambda kv: (-kv[1], kv[0]))
        if len(kinds) == 1:
            return f"{self.n_free} free: {kinds[0][0]}"
        parts = [f"{n} {_FREE_WORDS.get(kind, kind) if n > 1 else kind}" for kind, n in kinds]
        return f"{self.n_free} free: {' + '.join(parts)}"

    @property
    def unknown(self) -> list[CallCost]:
        """Calls whose payment may have settled, with no answer saying so: counted as paid."""
        return [c for c in self._unsettled if c.payment_status == PaymentStatus.UNKNOWN]

    @property
    def settlement_pending(self) -> list[CallCost]:
        """Calls whose payment's settlement was broadcast but not confirmed yet: counted as paid."""
        return [c for c in self._unsettled if c.payment_status == PaymentStatus.SETTLEMENT_PENDING]

    def _expire(self, now: float) -> None:
        """Fold refused payments that can no longer settle into the released sums (keeps memory bounded)."""
        for held in [h for h in self._reserved if h[2] <= now]:
            sym, dec, until, status = held
            self._released[(sym, dec)] = self._released.get((sym, dec), 0) + self._reserved.pop(held)
            self._released_status.add(status)
            self._released_until = max(self._released_until, until)

    def _refusals(self, now: float | None) -> tuple[_Refusals, _Refusals]:
        """Refused payments as of ``now`` (default: the clock): still reserved, and released."""
        now = time.time() if now is None else now
        reserved, released = _Refusals(), _Refusals(dict(self._released), set(self._released_status))
        released.until = self._released_until
        for (sym, dec, until, status), v in list(self._reserved.items()):  # a snapshot: add() may run meanwhile
            (reserved if until > now else released).add(sym, dec, v, until, status)
        return reserved, released

    def reserved_text(self, now: float | None = None) -> str | None:
        """Refused payments whose signed authorization could still settle (counted against the caps
        until it expires, but not spent), or None: ``0.017 USDC refused (HTTP 404), not spent:
        reserved until 14:05 UTC (may still settle until then), then released``."""
        held = self._refusals(now)[0]
        if not held.amounts:
            return None
        return f"{held.text()}, not spent: reserved until {_clock(held.until)} (may still settle until then), then released"

    def released_text(self, now: float | None = None) -> str | None:
        """Refused payments whose authorization has expired: no longer counted, never spent; or None."""
        gone = self._refusals(now)[1]
        if not gone.amounts:
            return None
        return f"{gone.text()}, not spent: released (expired {_clock(gone.until)})"

    @property
    def discrepancies(self) -> list[CallCost]:
        """Settled calls whose receipt disagrees with what was signed."""
        return list(self._discrepancies)

    def amounts(self) -> dict[str, Decimal]:
        """Display amounts per asset symbol (exact Decimals)."""
        # Exact, without the asset's trailing zeros (6.12 TMAI, not 6.120000000000000000).
        return {sym: Decimal(plain(to_display(v, dec))) for (sym, dec), v in self._atomic.items()}

    def amount_text(self) -> str:
        """``0.017 USDC``; with upto calls, what settled and the most it could have been:
        ``0.012 TMAI (of up to 0.050)``."""
        return _amounts_text(self._atomic, self._bound) or "nothing paid"

    @property
    def receipts(self) -> list[str]:
        return list(self._receipts)

    @property
    def networks(self) -> list[str]:
        return sorted(self._networks)

    def summary(self) -> str:
        """One line: ``4 calls (1 paid, 3 free: symbol lookup) · 0.017 USDC``."""
        bits = []
        if self.n_paid:
            bits.append(f"{self.n_paid} paid")
        if self.n_cached:
            bits.append(f"{self.n_cached} cached")
        if self.n_refused:
            bits.append(f"{self.n_refused} refused")
        if self.n_resent:
            bits.append(f"{self.n_resent} re-sent, paid once")
        if self.n_free:
            bits.append(self.free_text())
        word = "call" if self.n_calls == 1 else "calls"
        return f"{self.n_calls} {word} ({', '.join(bits)}) · {self.amount_text()}"

    def as_attrs(self) -> dict[str, Any]:
        """What ``df.attrs["tm402"]`` carries (plain types: survives copies and pickling)."""
        return {
            "calls": self.n_calls,
            "paid": self.n_paid,
            "cached": self.n_cached,
            "amount": {k: _amount_text(v) for k, v in self.amounts().items()},
            "receipts": self.receipts,
            "networks": self.networks,
            "free_text": self.free_text(),
        }

    def __repr__(self) -> str:
        return f"<Cost {self.name}: {self.summary()}>"


def free_kind(call: CallCost) -> str:
    """What an unpaid, uncached call was, in a footer's words.

    ``quote``: an unpaid probe answered 402 (its challenge carries the price); ``symbol lookup``:
    the tokens lists the client reads to turn symbols into ids; ``failed``: no answer, or an error
    answer (nothing paid); else the free endpoint's own name (``price``).
    """
    if call.status == 402:
        return "quote"
    if call.status is None or call.status >= 400:
        return "failed"
    if call.endpoint in LOOKUP_ENDPOINTS:
        return "symbol lookup"
    return call.endpoint or "other"


@dataclass
class _Refusals:
    """Refused payments summed per asset, with when the last one expires and the HTTP statuses seen."""

    amounts: dict[tuple[str, int], int] = field(default_factory=dict)
    statuses: set[int | None] = field(default_factory=set)
    until: float = 0.0

    def add(self, sym: str, dec: int, amount: int, until: float, status: int | None) -> None:
        self.amounts[(sym, dec)] = self.amounts.get((sym, dec), 0) + amount
        self.statuses.add(status)
        self.until = max(self.until, until)

    def text(self) -> str:
        """``0.017 USDC refused (HTTP 404)``."""
        codes = sorted(s for s in self.statuses if s is not None and s >= 400 and s != 402)
        why = f" (HTTP {', '.join(map(str, codes))})" if codes else ""
        return f"{_amounts_text(self.amounts)} refused{why}"


def _clock(epoch: float) -> str:
    return time.strftime("%H:%M UTC", time.gmtime(epoch))


def _amounts_text(amounts: dict[tuple[str, int], int], bounds: dict[tuple[str, int], int] | None = None) -> str:
    """``1.53 TMAI + 0.051 USDC`` (empty when there is nothing); an asset whose ``bounds`` (upto
    ceilings) exceed what was paid: ``0.012 TMAI (of up to 0.050)``."""
    bounds = bounds or {}
    return " + ".join(
        of_up_to(v, bounds[key], key[1], key[0]) if bounds.get(key, v) > v else format_amount(v, key[1], key[0])
        for key, v in sorted(amounts.items())
    )


def _amount_text(amount: Decimal) -> str:
    """At least two decimals, every significant one kept: 0.10, 0.017, 6.12."""
    exponent = amount.as_tuple().exponent  # always an int: amounts are finite
    return format(amount, "f") if isinstance(exponent, int) and exponent < -1 else f"{amount:.2f}"


class CostTracker:
    """Thread-safe: adds each call to the session total and every open tally."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.total = Cost("session", keep=SESSION_CALLS_KEPT)
        self.listeners: list[Any] = []

    def record(self, call: CallCost) -> None:
        # The tallies open in the *caller's* context: a call running at the same time on
        # another thread (or task) of the same session lands in its own tallies, never in
        # this one's. The client carries the context into its pool threads and tasks.
        tallies = [cost for tracker, cost in _open_tallies.get() if tracker is self]
        with self._lock:
            # A cell that re-sends a payment an earlier cell counted (its answer was lost) pays nothing more.
            if call.paid and call.payment_id is not None and self.total.has_payment(call.payment_id):
                call = replace(call, resent=True)
            self.total.add(call)
            for tally in tallies:
                tally.add(call)
            listeners = list(self.listeners) + list(GLOBAL_LISTENERS)
        for listener in listeners:
            with suppress(Exception):
                listener(call)

    def open_tally(self, name: str = "tally") -> Cost:
        """Start counting calls into a new :class:`Cost` (until :meth:`close_tally`)."""
        cost = Cost(name)
        _open_tallies.set((*_open_tallies.get(), (self, cost)))
        return cost

    def close_tally(self, cost: Cost) -> None:
        _open_tallies.set(tuple(pair for pair in _open_tallies.get() if pair[1] is not cost))

    @contextmanager
    def tally(self, name: str = "tally") -> Iterator[Cost]:
        """The calls made inside the block, and what they cost."""
        cost = self.open_tally(name)
        try:
            yield cost
        finally:
            self.close_tally(cost)
