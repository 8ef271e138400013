"""Exact money: integer atomic units in, decimal strings out. Never floats.

A bottom module like :mod:`tm402_nb.errors`: the x402 layer prices and caps
payments with it, the ledger shows amounts with it, and neither imports the
other.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from .errors import ConfigurationError

__all__ = ["AmountLike", "format_amount", "to_atomic", "to_display"]

AmountLike = str | int | Decimal


def to_atomic(amount: AmountLike | float, decimals: int, *, what: str = "amount") -> int:
    """Convert a display amount ("0.10", Decimal("0.1"), 1) to atomic units.

    Floats are accepted only when they convert exactly to the decimal a user
    typed (``0.1`` → ``"0.1"``); a ``$`` sign or more decimals than the asset
    has is an error, so nothing is silently rounded.
    """
    if isinstance(amount, bool):
        raise ConfigurationError(f"{what} must be a number, got {amount!r}")
    if isinstance(amount, float):
        amount = repr(amount)
    if isinstance(amount, str):
        text = amount.strip().replace("_", "")
        if text.startswith("$"):
            raise ConfigurationError(
                f"{what} {amount!r} has a '$' sign", hint=f"write the number alone, e.g. {text[1:] or '0.10'!s}"
            )
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise ConfigurationError(f"{what} {amount!r} is not a number", hint="use a decimal like 0.05") from None
    elif isinstance(amount, (int, Decimal)):
        value = Decimal(amount)
    else:
        raise ConfigurationError(f"{what} must be a number, got {type(amount).__name__}")
    if not value.is_finite():
        raise ConfigurationError(f"{what} must be finite, got {amount!r}")
    if value < 0:
        raise ConfigurationError(f"{what} must not be negative, got {amount!r}")
    atomic = value.scaleb(decimals)
    if atomic != atomic.to_integral_value():
        raise ConfigurationError(f"{what} {amount!r} has more than {decimals} decimal places")
    return int(atomic)


def to_display(atomic: int, decimals: int) -> Decimal:
    """Atomic units to an exact Decimal in display units."""
    return Decimal(int(atomic)).scaleb(-decimals)


def format_amount(atomic: int, decimals: int, symbol: str = "", *, places: int | None = None) -> str:
    """Human form: ``format_amount(17000, 6, "USDC") == "0.017 USDC"``."""
    value = to_display(atomic, decimals)
    if places is not None:
        text = f"{value:.{places}f}"
    else:
        text = format(value.normalize(), "f")
        if "." not in text:
            text += ".00"
        elif len(text.split(".")[1]) < 2:
            text += "0"
    return f"{text} {symbol}".strip()
