"""Exact money: integer atomic units in, decimal strings out. Never floats.

A bottom module like :mod:`tm402_nb.errors`: the x402 layer prices and caps
payments with it, the ledger shows amounts with it, and neither imports the
other.
"""

from __future__ import annotations

from decimal import (
    MAX_EMAX,
    MIN_EMIN,
    ROUND_HALF_EVEN,
    Clamped,
    Context,
    Decimal,
    DecimalException,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
    Rounded,
    Subnormal,
    Underflow,
    localcontext,
)

from .errors import ConfigurationError

__all__ = ["AmountLike", "format_amount", "plain", "to_atomic", "to_display"]

AmountLike = str | int | Decimal

#: The largest amount a token can move: EIP-3009 and ERC-20 values are uint256.
MAX_ATOMIC = 2**256 - 1
#: 10**77 < MAX_ATOMIC < 10**78: a value whose leading digit sits at 10**78 or above is too large,
#: and can be refused before any arithmetic (so "1e999999999" costs nothing).
_MAX_ATOMIC_ADJUSTED = len(str(MAX_ATOMIC)) - 1


def _exact(digits: int) -> Context:
    """A decimal context in which arithmetic on ``digits``-digit numbers is exact or raises.

    The default context keeps 28 significant digits and rounds past them without a word;
    here the precision covers every digit, the exponent range is the widest there is, and
    rounding of any kind (Rounded, Inexact, …) is a trapped error, never a result. It is
    passed explicitly, so the caller's own context (whatever its precision) plays no part.
    """
    return Context(
        prec=max(digits, 1),
        rounding=ROUND_HALF_EVEN,
        Emin=MIN_EMIN,
        Emax=MAX_EMAX,
        traps=[InvalidOperation, DivisionByZero, Overflow, Underflow, Subnormal, Clamped, Inexact, Rounded],
    )


def to_atomic(amount: AmountLike | float, decimals: int, *, what: str = "amount") -> int:
    """Convert a display amount ("0.10", Decimal("0.1"), 1) to atomic units, exactly.

    Floats are accepted only when they convert exactly to the decimal a user
    typed (``0.1`` → ``"0.1"``); a ``$`` sign, more decimals than the asset
    has, or more than a token can hold (uint256) is an error: nothing is rounded,
    however many digits the amount has.
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
        value = _parse(text)
        if value is None:
            raise ConfigurationError(f"{what} {amount!r} is not a number", hint="use a decimal like 0.05")
    elif isinstance(amount, (int, Decimal)):
        value = Decimal(amount)  # the constructor is exact whatever the context
    else:
        raise ConfigurationError(f"{what} must be a number, got {type(amount).__name__}")
    if not value.is_finite():
        raise ConfigurationError(f"{what} must be finite, got {amount!r}")
    if value < 0:
        raise ConfigurationError(f"{what} must not be negative, got {amount!r}")
    shown = _short(amount)
    if value and value.adjusted() + decimals > _MAX_ATOMIC_ADJUSTED:
        raise ConfigurationError(f"{what} {shown} is too large: no token amount exceeds 2**256 - 1 atomic units")
    atomic = _scaled(value, decimals)
    if atomic is None:
        raise ConfigurationError(f"{what} {shown} has more than {decimals} decimal places")
    if atomic > MAX_ATOMIC:
        raise ConfigurationError(f"{what} {shown} is too large: no token amount exceeds 2**256 - 1 atomic units")
    return atomic


def _parse(text: str) -> Decimal | None:
    try:
        return Decimal(text)  # exact: the constructor never rounds
    except InvalidOperation:
        return None


def _scaled(value: Decimal, decimals: int) -> int | None:
    """``value × 10**decimals`` as an int if it is a whole number, else None (never rounded)."""
    with localcontext(_exact(len(value.as_tuple().digits))):
        try:
            atomic = value.scaleb(decimals)  # exact: the precision holds every digit, rounding traps
        except DecimalException:
            return None  # an exponent past every limit: far below one atomic unit
        if atomic != atomic.to_integral_value():
            return None
        return int(atomic)


def _short(amount: object) -> str:
    """The amount for an error message, cut if a pasted number is very long."""
    text = repr(amount)
    return text if len(text) <= 60 else f"{text[:28]}…{text[-28:]} ({len(text)} characters)"


def to_display(atomic: int, decimals: int) -> Decimal:
    """Atomic units to an exact Decimal in display units (every digit kept, whatever its length)."""
    value = Decimal(int(atomic))
    return value.scaleb(-decimals, context=_exact(len(value.as_tuple().digits)))


def plain(value: Decimal) -> str:
    """``value`` in plain notation without trailing zeros, every digit kept: ``plain(Decimal("0.0170")) == "0.017"``."""
    return format(value.normalize(context=_exact(len(value.as_tuple().digits))), "f")


def format_amount(atomic: int, decimals: int, symbol: str = "", *, places: int | None = None) -> str:
    """Human form: ``format_amount(17000, 6, "USDC") == "0.017 USDC"``.

    Every digit is shown unless ``places`` asks for a fixed number of decimals (a
    display choice, e.g. a footer column), in which case the last one is rounded.
    """
    value = to_display(atomic, decimals)
    if places is not None:
        text = f"{value:.{places}f}"
    else:
        text = plain(value)
        if "." not in text:
            text += ".00"
        elif len(text.split(".")[1]) < 2:
            text += "0"
    return f"{text} {symbol}".strip()
