"""The payer's own evidence: what the chain says about each payment in the ledger, by its nonce.

An EIP-3009 token records every authorization nonce it executed (``authorizationState``),
Permit2 every nonce it consumed (its nonce bitmap). So a payment whose answer was lost
(``unknown``) or whose settlement was still being confirmed (``settlement_pending``) is
decided without trusting anyone: used means it settled; unused once its ``validBefore`` has
passed means it never can. :func:`check_payments` reads ledger rows, asks a
:class:`NonceReader` and says what it found; ``Ledger.reconcile_chain`` and
``Ledger.resolve_open`` are built on it.

The ledger does not import x402: :class:`NonceReader` names the two methods it needs, which
``tm402_nb.x402.chain.ChainReader`` has; the session wires one in.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ..status import EXPIRY_MARGIN_SECONDS, PaymentStatus

__all__ = [
    "CHECKED_STATUSES",
    "OPEN_STATUSES",
    "ChainCheck",
    "NonceReader",
    "check_payments",
    "resolution_summary",
]

#: Statuses ``--resolve`` decides from the chain: the outcome is still open.
OPEN_STATUSES = (PaymentStatus.UNKNOWN, PaymentStatus.SETTLEMENT_PENDING)
#: Statuses ``reconcile_chain`` checks: the money moved or may have.
CHECKED_STATUSES = (PaymentStatus.SETTLED, *OPEN_STATUSES)

SETTLED = "settled"
NEVER_SETTLED = "never settled"
NOT_DELIVERED = "settled but not delivered"
NOT_YET = "not settled yet"
UNCHECKED = "unchecked"


class NonceReader(Protocol):
    """Whether a payment's nonce was used on chain (``tm402_nb.x402.chain.ChainReader`` is one)."""

    def authorization_used(self, asset: str, authorizer: str, nonce: str) -> bool: ...

    def permit2_nonce_used(self, owner: str, nonce: int) -> bool: ...


@dataclass(frozen=True)
class ChainCheck:
    """What the chain said about one payment row."""

    row: Mapping[str, Any]
    #: True: the nonce was used (the transfer executed); False: unused; None: not checked.
    used: bool | None
    #: ``settled``, ``never settled``, ``settled but not delivered``, ``not settled yet``, ``unchecked``.
    verdict: str
    #: Whether the call that paid got data: True, False, or None when no call row says.
    delivered: bool | None
    detail: str
    #: The status the row should have now (None: leave it as it is).
    new_status: PaymentStatus | None = None

    @property
    def id(self) -> str:
        return str(self.row["id"])


def _nonce_used(reader: NonceReader, row: Mapping[str, Any]) -> bool:
    if (row.get("transfer") or "eip3009") == "permit2":
        return bool(reader.permit2_nonce_used(str(row["payer"]), int(str(row["nonce"]), 16)))
    return bool(reader.authorization_used(str(row["asset"]), str(row["payer"]), str(row["nonce"])))


#: What a row decided from the chain says when its answer never came (X402Auth.resolve and
#: Ledger.resolve_open both write it): settled, but the data was not received.
RECEIPT_LOST = "the receipt was lost"


def _delivered(row: Mapping[str, Any], calls: Iterable[Mapping[str, Any]]) -> bool | None:
    codes = [c.get("status_code") for c in calls]
    if any(isinstance(code, int) and 200 <= code < 300 for code in codes):
        return True
    if codes or row.get("status") in OPEN_STATUSES or RECEIPT_LOST in str(row.get("error") or ""):
        return False  # the call that paid got no data (its answer was lost or withheld)
    return None


def _chain_id_of(network: Any) -> int | None:
    """The chain id a CAIP-2 network (``eip155:84532``) names; None for anything else."""
    prefix, _, ref = str(network or "").partition(":")
    return int(ref) if prefix == "eip155" and ref.isdigit() else None


def check_payments(
    rows: Iterable[Mapping[str, Any]],
    reader: NonceReader | None,
    *,
    calls_by_payment: Mapping[str, list[Mapping[str, Any]]] | None = None,
    now: float | None = None,
    skip: Mapping[str, str] | None = None,
) -> list[ChainCheck]:
    """Check each row's nonce on chain. Read-only: the verdicts say what a row *should* become.

    ``skip`` maps a row id to why it is not checked (e.g. another network than the reader's).
    """
    now = time.time() if now is None else now
    calls_by_payment = calls_by_payment or {}
    out: list[ChainCheck] = []
    served: list[int] = []  # the chain id the reader's node serves, asked once when it can say
    for row in rows:
        delivered = _delivered(row, calls_by_payment.get(str(row["id"]), []))
        why_not = (skip or {}).get(str(row["id"]))
        if reader is None or why_not:
            out.append(ChainCheck(row, None, UNCHECKED, delivered, why_not or "no chain to ask (no RPC configured)"))
            continue
        try:
            # A node of another chain reads every nonce unused (Permit2 is at the same address on every
            # chain): its "unused" would call a payment that settled elsewhere never settled.
            expected, ask = _chain_id_of(row.get("network")), getattr(reader, "chain_id", None)
            if expected is not None and ask is not None:
                if not served:
                    served.append(int(ask()))
                if served[0] != expected:
                    out.append(
                        ChainCheck(
                            row,
                            None,
                            UNCHECKED,
                            delivered,
                            f"the RPC serves chain id {served[0]}; this payment was on chain id {expected}",
                        )
                    )
                    continue
            used = _nonce_used(reader, row)
        except Exception as exc:  # a reader talks to a node: any failure leaves the row as it is
            message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            out.append(ChainCheck(row, None, UNCHECKED, delivered, f"could not ask the chain: {message}"))
            continue
        status = row.get("status")
        valid_before = int(row.get("valid_before") or 0)
        if used:
            verdict = NOT_DELIVERED if delivered is False else SETTLED
            out.append(
                ChainCheck(
                    row,
                    True,
                    verdict,
                    delivered,
                    "nonce used on chain: the transfer executed",
                    PaymentStatus.SETTLED if status != PaymentStatus.SETTLED else None,
                )
            )
        elif now > valid_before + EXPIRY_MARGIN_SECONDS:
            out.append(
                ChainCheck(
                    row,
                    False,
                    NEVER_SETTLED,
                    delivered,
                    "nonce unused and the authorization expired: it can never settle",
                    PaymentStatus.FAILED if status in OPEN_STATUSES else None,
                )
            )
        else:
            until = time.strftime("%H:%M:%S UTC", time.gmtime(valid_before))
            out.append(
                ChainCheck(row, False, NOT_YET, delivered, f"nonce unused so far; it can still settle until {until}")
            )
    return out


def resolution_summary(checks: list[ChainCheck]) -> str:
    """``3 checked: 1 settled on chain, 1 expired unexecuted (never settled), 1 still pending``."""
    if not checks:
        return "nothing to resolve: no unknown or settlement_pending payments"
    asked = [c for c in checks if c.used is not None]
    parts = [
        f"{n} {what}"
        for n, what in (
            (sum(c.used is True for c in asked), "settled on chain"),
            (sum(c.verdict == NEVER_SETTLED for c in asked), "expired unexecuted (never settled)"),
            (sum(c.verdict == NOT_YET for c in asked), "still pending"),
        )
        if n
    ]
    text = f"{len(asked)} checked" + (": " + ", ".join(parts) if parts else "")
    unchecked = len(checks) - len(asked)
    return text + (f"; {unchecked} not checked" if unchecked else "")
