"""Choices for one call, carried down the call instead of set on the shared client.

The client is shared (by threads, by notebook cells); a ``--pay-with tmai`` cell
or a ``--max-cost`` must not change what the calls in flight beside it do. So a
call's choices travel with it as one immutable :class:`CallOptions`, from
``frame()`` down to every request it sends: the asset names the
``x-payment-token`` header and, with the per-call cap, the
:class:`~tm402_nb.x402.options.PaymentOptions` on each request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from ..money import AmountLike, to_atomic
from ..x402.options import PaymentOptions

if TYPE_CHECKING:
    from ..x402.policy import Reservation

__all__ = ["PAYMENT_TOKENS", "CallOptions", "ProgressHook", "payment_token"]

#: What ``x-payment-token`` may name: the assets the Token Metrics API accepts.
PAYMENT_TOKENS = ("usdc", "tmai")

#: Called as ``hook(done, total, stage)`` with stage "start", "progress" or "done".
ProgressHook = Callable[[int, int, str], None]


def payment_token(asset: str) -> str:
    """``asset`` as ``x-payment-token`` spells it; ConfigurationError for an asset the API does not take."""
    token = str(asset).strip().lower()
    if token not in PAYMENT_TOKENS:
        raise ConfigurationError(f"pay_with must be usdc or tmai, got {asset!r}")
    return token


@dataclass(frozen=True)
class CallOptions:
    """What one ``get``/``frame``/``quote`` call asks for beyond its parameters; None keeps the client's default.

    >>> CallOptions(pay_with="TMAI").pay_with
    'tmai'
    """

    #: Asset to pay in ("usdc" or "tmai").
    pay_with: str | None = None
    #: A per-call cap in USD for this call's payments only.
    max_per_call: AmountLike | Decimal | None = None
    #: The most this whole call may pay, in USD (the notebook's ``--max-cost``): its plan is
    #: refused before the first payment when its quote is above it.
    max_cost: AmountLike | Decimal | None = None
    #: Ask the API again even when the cache holds a fresh answer.
    refresh: bool = False
    #: Seconds a fresh answer stays cached (None: the endpoint's default).
    ttl: float | None = None
    #: Stop paging after this many pages.
    max_pages: int | None = None
    #: Progress of multi-request work (None: the client's ``on_progress``, else a tqdm bar).
    on_progress: ProgressHook | None = None
    #: What the call's plan reserved (set by the client once every cap agreed; not a user choice).
    reservation: Reservation | None = None
    #: Answers already in hand, by (endpoint, wire parameters): the unpaid probe that priced a plan
    #: found the endpoint free, and its answer is the plan's first page (set by the client).
    answers: tuple[tuple[tuple[str, tuple[tuple[str, str], ...]], dict[str, Any]], ...] = ()

    def __post_init__(self) -> None:
        if self.pay_with is not None:
            object.__setattr__(self, "pay_with", payment_token(self.pay_with))
        if self.max_per_call is not None:
            to_atomic(self.max_per_call, 6, what="max_per_call")  # refuse a bad cap before anything is sent
        if self.max_cost is not None:
            to_atomic(self.max_cost, 6, what="max_cost")
        if self.max_pages is not None and (isinstance(self.max_pages, bool) or self.max_pages < 1):
            raise ConfigurationError(f"max_pages must be a positive integer, got {self.max_pages!r}")
        if self.ttl is not None and self.ttl < 0:
            raise ConfigurationError(f"ttl must be seconds ≥ 0, got {self.ttl!r}")

    def payment(self, default_asset: str) -> PaymentOptions:
        """The payment choices every request of this call carries (the asset resolved against the client's)."""
        return PaymentOptions(
            pay_with=self.pay_with or default_asset,
            max_per_call=self.max_per_call,
            max_cost=self.max_cost,
            reservation=self.reservation,
        )

    def for_lookup(self) -> CallOptions:
        """The same payment choices for the symbol lookups a call makes first: cached pages welcome, all of
        them; within the call's ``max_cost`` (lookups that answer 402 are paid and count against it)."""
        return replace(self, refresh=False, ttl=None, max_pages=None, reservation=None, answers=())

    def after_spending(self, usd: int) -> CallOptions:
        """These options once ``usd`` micro-dollars of the call's ``max_cost`` went on its symbol lookups."""
        if not usd or self.max_cost is None:
            return self
        left = max(Decimal(0), Decimal(to_atomic(self.max_cost, 6, what="max_cost") - usd).scaleb(-6))
        return replace(self, max_cost=left)

    def with_answer(self, endpoint: str, wire: Mapping[str, str], envelope: dict[str, Any]) -> CallOptions:
        """These options, ``envelope`` in hand as the answer to ``endpoint`` with ``wire``."""
        return replace(self, answers=(*self.answers, (_answer_key(endpoint, wire), envelope)))

    def answer_for(self, endpoint: str, wire: Mapping[str, str]) -> dict[str, Any] | None:
        """The answer in hand for ``endpoint`` with ``wire``, if any."""
        key = _answer_key(endpoint, wire)
        return next((envelope for k, envelope in self.answers if k == key), None)


def _answer_key(endpoint: str, wire: Mapping[str, str]) -> tuple[str, tuple[tuple[str, str], ...]]:
    return endpoint, tuple(sorted(wire.items()))
