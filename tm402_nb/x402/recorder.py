"""Where X402Auth writes its payments down: the small interface a ledger implements.

The x402 layer owns no storage. :class:`~tm402_nb.x402.auth.X402Auth` describes
each signed payment as a :class:`PaymentRecord` and hands it to a
:class:`PaymentRecorder`; ``tm402_nb.ledger.Ledger`` is the one the toolkit
ships, and it satisfies this interface without importing x402 (any object with
these methods will do, e.g. a test double)::

    auth = X402Auth(wallet, policy, ledger=Ledger())

The write-ahead rule lives in the shape of :meth:`PaymentRecorder.transaction`:
the daily cap is read and the ``pending`` row inserted in one transaction,
before the signed header leaves the machine.
"""

from __future__ import annotations

import time
import uuid
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol

from ..status import PaymentStatus

__all__ = ["PaymentRecord", "PaymentRecorder", "PaymentTransaction", "SpendCounter"]


@dataclass
class PaymentRecord:
    """One signed payment. ``amount`` is in atomic units of ``asset``."""

    amount: int
    asset: str
    network: str
    pay_to: str
    payer: str
    nonce: str
    valid_before: int
    decimals: int = 6
    asset_symbol: str = ""
    method: str = "GET"
    url: str = ""
    endpoint: str | None = None
    x402_version: int = 1
    scheme: str = "exact"
    status: PaymentStatus = PaymentStatus.PENDING
    tx: str | None = None
    error: str | None = None
    session_id: str | None = None
    cell_id: str | None = None
    #: What the payment is worth in micro-dollars (the daily cap counts it across assets).
    usd: int | None = None
    #: How the transfer is authorised: ``eip3009`` (transferWithAuthorization) or ``permit2``.
    transfer: str = "eip3009"
    #: The ``payment-identifier`` extension's id sent with it, when the server advertises it.
    identifier: str | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created_at: float = field(default_factory=time.time)


class SpendCounter(Protocol):
    """What a cross-process daily cap reads: what was counted since a time, per asset and in dollars."""

    def spent(self, asset: str, network: str, *, since: float | None = None) -> int: ...

    def spent_usd(self, *, since: float | None = None) -> int:
        """Micro-dollars counted since ``since``, across assets."""
        ...


class PaymentTransaction(SpendCounter, Protocol):
    """An open write transaction: the cap read and the row written commit together."""

    # The return value (the row id) is not used by X402Auth.
    def insert_payment(self, record: PaymentRecord) -> object: ...


class PaymentRecorder(Protocol):
    """Exactly what X402Auth needs from a ledger."""

    def transaction(self) -> AbstractContextManager[PaymentTransaction]:
        """Begin a write transaction other writers wait for; commit on exit, roll back on error."""
        ...

    def update_payment(
        self,
        payment_id: str,
        status: PaymentStatus,
        *,
        tx: str | None = None,
        error: str | None = None,
        discrepancy: str | None = None,
        settled_amount: int | None = None,
    ) -> None:
        """Record what became of a payment: ``tx`` when a receipt names it, ``discrepancy`` when
        a receipt disagrees with what was signed, ``settled_amount`` when an ``upto`` payment
        moved less than its ceiling. The signed facts (payer, amount...) never change."""
        ...
