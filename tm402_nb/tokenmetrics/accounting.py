"""Every request the client makes, or serves from its cache, written down once: a ledger row and a cost.

The ledger row (:class:`~tm402_nb.ledger.CallRecord`) is the durable record, the
:class:`~tm402_nb.tokenmetrics.cost.CallCost` feeds the session's total, every
open cost tally and the notebook footer. A call that raised may still have
signed (failed) or sent (unknown) a payment: the error carries it, so such a
call is never shown as free.
"""

from __future__ import annotations

import httpx

from ..cells import current_cell_id
from ..ledger import CallRecord, Ledger
from ..status import COUNTED, PaymentStatus, may_settle_until
from ..x402.auth import Payment, payment_of
from .catalogue import Endpoint
from .cost import CallCost, CostTracker
from .modes import Mode

__all__ = ["CallAccounting", "payment_of_error"]


class CallAccounting:
    """Writes each call to the ledger (when there is one) and to the cost tracker; thread-safe as they are."""

    def __init__(self, cost: CostTracker, ledger: Ledger | None, *, mode: Mode, session_id: str | None) -> None:
        self.cost = cost
        self.ledger = ledger
        self.mode = mode
        self.session_id = session_id

    def record(
        self,
        endpoint: Endpoint | None,
        url: str,
        params: dict[str, str] | None,
        response: httpx.Response | None,
        elapsed: float,
        *,
        cached: bool = False,
        error: str | None = None,
        payment: Payment | None = None,
    ) -> CallCost:
        """Account for one call: ``response`` when one came back, else ``error`` and the ``payment`` it carried."""
        pay = payment_of(response) if response is not None else payment
        call = CallCost(
            endpoint=endpoint.name if endpoint else None,
            url=url,
            params=params,
            status=response.status_code if response is not None else None,
            cached=cached,
            paid=pay is not None and pay.status in COUNTED,
            amount=pay.amount if pay else 0,
            asset=pay.offer.asset.symbol if pay else None,
            decimals=pay.offer.asset.decimals if pay else 6,
            network=pay.offer.network.v1_name if pay else None,
            tx=pay.tx if pay else None,
            payment_status=pay.status if pay else None,
            payment_id=pay.id if pay else None,
            elapsed_ms=elapsed * 1000,
            reserved_until=_reserved_until(pay),
            discrepancy=pay.discrepancy if pay else None,
            ceiling=pay.ceiling if pay else None,
        )
        if self.ledger is not None:
            self.ledger.record_call(
                CallRecord(
                    url=url,
                    endpoint=call.endpoint,
                    params=params,
                    status_code=call.status,
                    bytes=_body_size(response),
                    elapsed_ms=call.elapsed_ms,
                    cache_hit=cached,
                    paid=call.paid,
                    payment_id=call.payment_id,
                    session_id=self.session_id,
                    mode=str(self.mode),
                    cell_id=current_cell_id.get(),
                    error=error,
                )
            )
        self.cost.record(call)
        return call


def _body_size(response: httpx.Response | None) -> int:
    # Only a body already read: reading one here would consume a stream the caller still owns.
    if response is None or not hasattr(response, "_content"):
        return 0
    return len(response.content)


def payment_of_error(exc: BaseException) -> Payment | None:
    """The payment an error carries (the lost answer to a paid request), if any."""
    found = getattr(exc, "payment", None)
    return found if isinstance(found, Payment) else None


def _reserved_until(payment: Payment | None) -> float | None:
    """When a refused payment stops counting: its authorization's expiry plus the skew margin."""
    if payment is None or payment.status != PaymentStatus.FAILED:
        return None
    return float(may_settle_until(payment.record.valid_before))
