"""What a call would cost, read from the server's 402 challenge before anything is paid.

A quote prices the call's :class:`~tm402_nb.tokenmetrics.plan.Plan`: ``calls`` is
the most paid requests the call can make (one per page of every window and id
batch), ``total`` what they cost at most, and a run never pays more than its
quote (:meth:`~tm402_nb.x402.policy.SpendPolicy.reserve` holds it against every
cap before the first payment). ``exact`` says the count is not only a bound.

Symbol lookups come first. They are free in the catalogue, but the server decides: when
``/tokens`` answers 402, a quote prices the lookups from that challenge without paying
(``lookup_calls`` and ``lookup_cost``, in ``total``), and a run reserves them before paying.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ..errors import PaymentRefused, X402ProtocolError
from ..money import format_amount, plain, to_display
from ..x402.messages import PaymentRequired
from ..x402.networks import find_asset, get_network
from ..x402.policy import Offer, SpendPolicy, usd_text
from ..x402.recorder import PaymentRecorder
from .catalogue import Endpoint
from .modes import Mode
from .plan import Plan

__all__ = ["Quote", "quote_from"]


@dataclass(frozen=True)
class Quote:
    """What a request would cost at most, from its plan and the 402 challenge; nothing paid.

    Amounts are atomic units of ``asset`` (``per_call``, ``total``); ``*_text`` and
    ``usd`` are for people.
    """

    endpoint: str
    params: dict[str, str]
    #: Paid calls at most (one per page of every planned request).
    calls: int
    per_call: int = 0
    asset: str | None = None
    decimals: int = 6
    network: str | None = None
    pay_to: str | None = None
    offers: tuple[str, ...] = ()
    refused: str | None = None
    mode: str = Mode.X402
    #: True when the call makes exactly ``calls`` requests (each planned request is one page).
    exact: bool = True
    #: True when a page limit bounds the call, not the data: more rows may exist past it.
    open_ended: bool = False
    #: Planned requests (windows × id batches); ``calls`` counts their pages.
    requests: int = 1
    #: The USD value of one call, in micro-dollars (None: free, or it cannot be valued).
    usd_per_call: int | None = None
    #: Symbol lookup requests the call needs first (none once the symbols are known: they are
    #: remembered in the ledger for a week).
    lookups: int = 0
    #: Paid calls those lookups may make at most (0 when the server answers them unpaid).
    lookup_calls: int = 0
    #: What they cost at most, in atomic units of ``asset``.
    lookup_cost: int = 0
    #: ... and in micro-dollars (None: cannot be valued).
    lookup_usd: int | None = 0

    @property
    def free(self) -> bool:
        return self.total == 0

    @property
    def total(self) -> int:
        """Atomic units of ``asset`` the call pays at most (its symbol lookups included)."""
        return self.per_call * self.calls + self.lookup_cost

    @property
    def total_text(self) -> str:
        return format_amount(self.total, self.decimals, self.asset or "USDC")

    @property
    def per_call_text(self) -> str:
        return format_amount(self.per_call, self.decimals, self.asset or "USDC")

    @property
    def usd(self) -> Decimal | None:
        """What the call costs at most in US dollars (None when it cannot be valued)."""
        if self.free:
            return Decimal(0)
        if self.usd_per_call is None or self.lookup_usd is None:
            return None
        return Decimal(plain(to_display(self.usd_per_call * self.calls + self.lookup_usd, 6)))

    def __repr__(self) -> str:
        if self.mode == Mode.API_KEY:
            return f"<Quote {self.endpoint}: {self._calls_text()}, API-key mode: no payment>"
        if self.free:
            return f"<Quote {self.endpoint}: {self._calls_text()}, free>"
        s = f"<Quote {self.endpoint}: {self._calls_text()} × {self.per_call_text}"
        if self.lookup_calls:
            lookups = format_amount(self.lookup_cost, self.decimals, self.asset or "USDC")
            s += f" + at most {self.lookup_calls} symbol lookup call(s) = {lookups}"
        s += f" = {self.total_text}"
        if self.asset != "USDC" and self.usd is not None:
            s += f" (≈ {usd_text(int(self.usd.scaleb(6)))})"
        s += f" on {self.network}"
        if self.open_ended:
            s += "; first page(s) only, more rows may exist (max_pages= asks for more)"
        if self.refused:
            s += f"; would be refused: {self.refused}"
        return s + ">"

    def _calls_text(self) -> str:
        bound = "" if self.exact else "at most "
        return f"{bound}{self.calls} call{'s' if self.calls != 1 else ''}"


def quote_from(
    endpoint: Endpoint,
    wire: dict[str, str],
    plan: Plan,
    required: PaymentRequired | None,
    *,
    mode: Mode,
    policy: SpendPolicy | None,
    pay_with: str | None = None,
    lookups: int = 0,
    lookup_prices: Sequence[tuple[PaymentRequired, int]] = (),
    ledger: PaymentRecorder | None = None,
) -> Quote:
    """The quote for ``plan`` (whose first request is ``wire``), given the challenge (None: free),
    and ``lookup_prices``: (challenge, calls at most) of the symbol lookups the server charges for.
    ``ledger`` is where a daily cap reads today's spending, as a run would."""
    shape: dict[str, Any] = {
        "exact": plan.exact and not lookup_prices,
        "open_ended": plan.open_ended,
        "requests": len(plan.requests),
        "lookups": lookups,
        "mode": mode,
    }
    if not mode.pays or policy is None or (required is None and not lookup_prices):
        return Quote(endpoint.name, wire, plan.calls, **shape)
    lookup, lookup_refused = _lookup_cost(lookup_prices, policy, pay_with)
    if lookup is not None:
        shape.update(lookup_calls=lookup[0], lookup_cost=lookup[1], lookup_usd=lookup[2])
    if required is None:  # the endpoint answers unpaid: only its symbol lookups cost
        asset = lookup[3] if lookup is not None else None
        return Quote(
            endpoint.name,
            wire,
            plan.calls,
            0,
            asset.asset.symbol if asset else None,
            asset.asset.decimals if asset else 6,
            asset.network.v1_name if asset else None,
            asset.requirements.pay_to if asset else None,
            refused=lookup_refused,
            usd_per_call=0,
            **shape,
        )
    offers = tuple(f"{r.amount} of {r.asset} on {r.network}" for r in required.accepts)
    try:
        offer = policy.select(required, pay_with=pay_with)
    except PaymentRefused as exc:
        # Still say what it would cost, in the first offer's terms, and why it would be refused.
        first = required.accepts[0]
        try:
            known = find_asset(get_network(first.network), first.asset, policy.extra_assets)
        except X402ProtocolError:
            known = None
        return Quote(
            endpoint.name,
            wire,
            plan.calls,
            first.amount,
            known.symbol if known else first.asset[:10],
            known.decimals if known else 6,
            first.network,
            first.pay_to,
            offers,
            refused=exc.message,
            **shape,
        )
    refused = lookup_refused
    if lookup is not None and lookup[3].asset.symbol != offer.asset.symbol:
        refused = (
            f"the symbol lookups are priced in {lookup[3].asset.symbol} and the data in {offer.asset.symbol}: "
            "pass token_id=... to quote without lookups"
        )
    try:  # the whole plan against every cap, as a run would reserve it (nothing is held)
        needs = ledger is not None and policy.needs_ledger(offer)
        with ledger.transaction() if needs and ledger is not None else nullcontext(None) as tx:
            policy.check_batch(offer, plan.calls, tx=tx)
    except PaymentRefused as exc:
        refused = refused or exc.message
    return Quote(
        endpoint.name,
        wire,
        plan.calls,
        offer.amount,
        offer.asset.symbol,
        offer.asset.decimals,
        offer.network.v1_name,
        offer.requirements.pay_to,
        offers,
        refused=refused,
        usd_per_call=offer.usd,
        **shape,
    )


def _lookup_cost(
    prices: Sequence[tuple[PaymentRequired, int]], policy: SpendPolicy, pay_with: str | None
) -> tuple[tuple[int, int, int | None, Offer] | None, str | None]:
    """(calls, atomic cost, micro-dollars, the offer) of the paid symbol lookups, and why they would
    be refused (None: they would not)."""
    calls = cost = usd = 0
    priced: Offer | None = None
    valued = True
    for required, n in prices:
        try:
            offer = policy.select(required, pay_with=pay_with)
        except PaymentRefused as exc:
            return None, f"symbol lookups: {exc.message}"
        if priced is not None and offer.asset.symbol != priced.asset.symbol:
            return None, "symbol lookups are priced in several assets: pass token_id=... to quote without lookups"
        priced = offer
        calls += n
        cost += offer.amount * n
        valued = valued and offer.usd is not None
        usd += (offer.usd or 0) * n
    if priced is None:
        return None, None
    return (calls, cost, usd if valued else None, priced), None
