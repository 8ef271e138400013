"""The life of a payment, named once for every layer.

``x402`` writes these states and ``ledger`` stores them; neither imports the
other, so the names live here, beside :mod:`tm402_nb.errors`, at the bottom of
the layer diagram. A :class:`PaymentStatus` is a ``str``: it is stored in SQLite
and compared with plain strings unchanged.

>>> PaymentStatus.SETTLED == "settled"
True
>>> PaymentStatus.UNKNOWN in COUNTED
True
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["COUNTED", "EXPIRY_MARGIN_SECONDS", "FINAL", "PaymentStatus", "may_settle_until"]


class PaymentStatus(StrEnum):
    #: Signed and written down; its answer has not come back yet.
    PENDING = "pending"
    #: The server returned a settlement receipt: the money moved.
    SETTLED = "settled"
    #: The server refused the payment outright: nothing moved.
    FAILED = "failed"
    #: The header may have reached the server and no answer says what happened.
    UNKNOWN = "unknown"
    #: The server broadcast the settlement but it was not confirmed yet (x402's
    #: ``settlement_pending``): not a failure, not final; resolved later from a receipt,
    #: the facilitator or the chain.
    SETTLEMENT_PENDING = "settlement_pending"


#: States that count against budgets and caps: the money moved or still may.
COUNTED = frozenset(
    {PaymentStatus.PENDING, PaymentStatus.SETTLED, PaymentStatus.UNKNOWN, PaymentStatus.SETTLEMENT_PENDING}
)
#: States that never change again.
FINAL = frozenset({PaymentStatus.SETTLED, PaymentStatus.FAILED})

#: A refused payment's signature can still be settled by whoever holds it until its
#: ``validBefore``; it stays counted (reserved) until then plus this margin for clock skew.
EXPIRY_MARGIN_SECONDS = 30


def may_settle_until(valid_before: float) -> float:
    """Until when a signed authorization may still be settled by whoever holds it (epoch s).

    >>> may_settle_until(1_000)
    1030
    """
    return valid_before + EXPIRY_MARGIN_SECONDS
