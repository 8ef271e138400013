"""One exception hierarchy for the whole toolkit.

Every runtime failure a user can meet is a :class:`TM402Error`. Each carries a
short ``hint`` (what to do about it) and renders as one line in a notebook via
``_render_traceback_``, while staying a real exception for automation: nbmake
and papermill see the cell fail.

Nothing in this module may ever format a private key; messages are built only
from amounts, addresses, URLs and server-provided reasons.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BudgetExceeded",
    "ConfigurationError",
    "LedgerError",
    "NotConfirmed",
    "PaymentFailed",
    "PaymentOutcomeUnknown",
    "PaymentRefused",
    "Permit2AllowanceRequired",
    "ReceiptError",
    "SettlementPending",
    "TM402Error",
    "WalletError",
    "X402ProtocolError",
]


#: One-line notebook errors (True) or full tracebacks (False); set by %config TMMagics.short_errors.
SHORT_ERRORS = [True]


class TM402Error(Exception):
    """Root of every error raised by tm402_nb."""

    #: One-line advice shown after the message ("what to do").
    hint: str = ""

    def __init__(self, message: str, *, hint: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if hint is not None:
            self.hint = hint
        self.details = details

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} — {self.hint}"
        return self.message

    def _render_traceback_(self) -> list[str]:
        # IPython calls this instead of printing the full traceback: one line,
        # in red, with the class name so the user can catch it by name.
        # `%config TMMagics.short_errors = False` asks for the whole traceback.
        if not SHORT_ERRORS[0]:
            import traceback

            return [line.rstrip("\n") for line in traceback.format_exception(type(self), self, self.__traceback__)]
        return [f"\x1b[31m{type(self).__name__}\x1b[0m: {self}"]


class ConfigurationError(TM402Error, ValueError):
    """A setting or argument is invalid (bad amount, unknown network, ...)."""


class WalletError(TM402Error):
    """The wallet could not be loaded (missing or malformed key, unreadable file)."""


class X402ProtocolError(TM402Error, ValueError):
    """A server sent something that is not valid x402 (challenge, receipt, header)."""


class ReceiptError(X402ProtocolError):
    """The settlement receipt header was missing, malformed or inconsistent.

    ``response`` holds the HTTP response so the data it carried is not lost.
    """

    def __init__(self, message: str, *, response: Any = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.response = response


class PaymentRefused(TM402Error):
    """The spend policy refused a challenge. Nothing was signed."""

    def __init__(self, message: str, *, hint: str | None = None, offers: Any = None, **kw: Any) -> None:
        super().__init__(message, hint=hint, **kw)
        self.offers = offers


class BudgetExceeded(PaymentRefused):
    """A cap (per call, per cell, session budget or daily cap) would be exceeded."""


class Permit2AllowanceRequired(PaymentRefused):
    """A Permit2 payment needs the payer's ERC-20 allowance to the Permit2 contract, and it is too small.

    x402 pays a token without EIP-3009 (TMAI) through Uniswap's Permit2: the payer approves the
    Permit2 contract once (an on-chain ``approve``), then signs each payment. Servers refuse a
    payment without that allowance with ``permit2_allowance_required`` (HTTP 412 in x402 v2).
    Raised before signing when the wallet's allowance can be read from the chain, and after the
    server's refusal otherwise (that payment is then ``failed``: it never settled).
    """

    #: The x402 reason string this error stands for.
    reason = "permit2_allowance_required"


class NotConfirmed(PaymentRefused):
    """A plan above ``confirm_above`` was declined, or could not be asked about (no stdin)."""


class PaymentFailed(TM402Error):
    """The server did not accept a payment we sent (a 402 after the paid retry).

    ``reason`` is the server's reason string (e.g. ``insufficient_funds``),
    ``receipt`` the decoded failed settlement if one came back.
    """

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        receipt: Any = None,
        response: Any = None,
        hint: str | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(message, hint=hint, **kw)
        self.reason = reason
        self.receipt = receipt
        self.response = response


class PaymentOutcomeUnknown(TM402Error):
    """A signed payment went out and no answer came back.

    The payment may or may not have settled. It is recorded as ``unknown`` in
    the ledger and counts against the budget; re-sending the same request
    replays the same signed header (same nonce), so it can never be paid twice.
    """


class SettlementPending(PaymentOutcomeUnknown):
    """The server broadcast the payment's settlement but it is not confirmed yet (x402's
    ``settlement_pending``), and withheld the data.

    Not a failure: the transfer will most likely land. The payment is recorded as
    ``settlement_pending`` and counts against the budget; re-sending the same request replays
    the same payment (it cannot settle twice), and ``%tm ledger --resolve`` checks the chain.
    """


class LedgerError(TM402Error):
    """The ledger database could not be opened or written."""


# Hints for the reason strings facilitators send back. Facilitators disagree
# on exact spellings, so match on fragments rather than a closed enum.
_REASON_HINTS: list[tuple[str, str]] = [
    (
        "allowance",
        "the wallet has not approved the Permit2 contract for this token: approve it once "
        '(s.approve_permit2("tmai", N) or %tm approve tmai N; in the sandbox the faucet\'s approve_permit2) and retry',
    ),
    (
        "insufficient",
        "the wallet does not hold enough of the asset: fund it (testnet faucet, or `POST /sandbox/faucet` in the sandbox) and retry",
    ),
    (
        "valid_before",
        "the authorization expired before settlement: check the machine clock and retry; the server may be slow",
    ),
    ("valid_after", "the authorization is not valid yet: the machine clock is probably ahead; sync it and retry"),
    ("nonce", "this payment was already used: it will not be charged twice; retry the request for a fresh payment"),
    ("signature", "the signature did not verify: usually a wrong EIP-712 domain (token name/version) or network"),
    ("recipient", "the payment went to a different payee than the server expects"),
    ("network", "wrong network: check that your session network matches the server's (base vs base-sepolia)"),
    ("value", "the amount signed differs from the price: the price may have changed, retry"),
    ("amount", "the amount signed differs from the price: the price may have changed, retry"),
    ("scheme", "the server does not support this payment scheme"),
]


def hint_for_reason(reason: str | None) -> str:
    """Return the advice for a facilitator reason string ("" when unknown)."""
    if not reason:
        return ""
    low = reason.lower()
    for fragment, hint in _REASON_HINTS:
        if fragment in low:
            return hint
    return ""
