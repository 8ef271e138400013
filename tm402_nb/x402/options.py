"""Payment choices for one request, carried on the request itself.

A caller that wants one request paid differently (another asset, a higher
per-call cap) attaches a :class:`PaymentOptions` to that request instead of
changing the shared :class:`~tm402_nb.x402.policy.SpendPolicy`; concurrent
requests on the same auth never see each other's choices. It travels in
``request.extensions``, the place httpx keeps per-request settings such as
timeouts, so it survives ``Client.send`` and the auth flow untouched::

    request = client.build_request("GET", url, extensions=PaymentOptions(pay_with="tmai").extensions())
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx

from ..money import AmountLike

if TYPE_CHECKING:
    from .policy import Reservation

__all__ = ["EXTENSION", "PaymentOptions"]

#: The key under ``request.extensions``.
EXTENSION = "tm402.payment"


@dataclass(frozen=True)
class PaymentOptions:
    """What this one request may pay: overrides of the policy's defaults, nothing else.

    >>> PaymentOptions.of(httpx.Request("GET", "https://example.test"))
    PaymentOptions(pay_with=None, max_per_call=None, max_cost=None, reservation=None, schemes=None)
    """

    #: The asset symbol to prefer (``"usdc"``, ``"tmai"``); None keeps the policy's choice.
    pay_with: str | None = None
    #: A per-call cap in USD that replaces the policy's for this request only; None keeps it.
    max_per_call: AmountLike | Decimal | None = None
    #: The most the plan this request belongs to may pay in all, in USD (checked when it is reserved).
    max_cost: AmountLike | Decimal | None = None
    #: The plan this request belongs to: its payment draws on what the plan reserved.
    reservation: Reservation | None = None
    #: The x402 schemes this request may pay, most preferred first (``("upto", "exact")``), among
    #: those the policy allows; None keeps the policy's order (``exact`` before ``upto`` at a tie).
    schemes: tuple[str, ...] | None = None

    def extensions(self) -> dict[str, Any]:
        """The ``extensions=`` mapping that carries these options on a request."""
        return {EXTENSION: self}

    @classmethod
    def of(cls, request: httpx.Request) -> PaymentOptions:
        """The options attached to ``request``; the defaults when none are."""
        found = request.extensions.get(EXTENSION)
        return found if isinstance(found, PaymentOptions) else cls()
