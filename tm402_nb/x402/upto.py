"""``upto``: the payer signs a ceiling, the server settles what the call actually cost.

An upto offer's ``amount`` is the most it may take. The client checks that ceiling
against every cap, reserves it and signs it (a Permit2 ``PermitWitnessTransferFrom``
whose witness names the one facilitator allowed to settle); the receipt's ``amount``
then says what moved. This module reads that receipt; the spend policy gives back
the difference (:meth:`~tm402_nb.x402.policy.SpendPolicy.settle_upto`).

A receipt that claims more than the ceiling is not believed (Permit2 cannot move more
than was permitted): the ceiling is counted and the claim kept as a discrepancy. A
receipt that names no amount counts the ceiling, the most that could have moved.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..money import format_amount
from .messages import SettlementResponse

__all__ = ["UptoOutcome", "of_up_to", "upto_outcome"]


@dataclass(frozen=True)
class UptoOutcome:
    """What an upto payment counts once its receipt of success is read."""

    #: Atomic units counted as spent: the receipt's amount, or the ceiling when it names none or too much.
    counted: int
    #: The receipt's amount when it named one at or under the ceiling (what the ledger records as settled).
    settled: int | None
    #: A receipt above the ceiling, in words; None when the receipt is believable.
    discrepancy: str | None = None


def upto_outcome(ceiling: int, receipt: SettlementResponse) -> UptoOutcome:
    """Read a successful receipt for an upto payment signed for ``ceiling``.

    >>> upto_outcome(50, SettlementResponse(True, "0x01", "eip155:84532", amount=12))
    UptoOutcome(counted=12, settled=12, discrepancy=None)
    >>> upto_outcome(50, SettlementResponse(True, "0x01", "eip155:84532")).counted
    50
    """
    amount = receipt.amount
    if amount is None:
        return UptoOutcome(ceiling, None)
    if amount > ceiling:
        return UptoOutcome(
            ceiling,
            None,
            f"settled amount {amount} is over the signed ceiling {ceiling}: counted the ceiling",
        )
    return UptoOutcome(amount, amount)


def of_up_to(counted: int, ceiling: int, decimals: int, symbol: str) -> str:
    """``of_up_to(12, 50, 3, "TMAI") == "0.012 TMAI (of up to 0.050)"``: what moved, and the most that could.

    The ceiling shows its own digits, padded to the amount's up to three decimals so the two
    read side by side (``0.013581 USDC (of up to 0.068)``).
    """
    text = format_amount(counted, decimals, symbol)
    places = min(len(text.split()[0].partition(".")[2]), 3)
    own = len(format_amount(ceiling, decimals).partition(".")[2])
    return f"{text} (of up to {format_amount(ceiling, decimals, places=max(places, own))})"
