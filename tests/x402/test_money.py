"""Exact money: an amount becomes exactly its atomic units, or it is refused. Nothing is rounded.

The default ``decimal`` context keeps 28 significant digits, so a cap or price past that
(an 18-decimals token amount of a few billion, say) used to be rounded without a word.
"""

from __future__ import annotations

import decimal
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tm402_nb.errors import ConfigurationError
from tm402_nb.money import format_amount, to_atomic, to_display

UINT256_MAX = 2**256 - 1


def exact_atomic(text: str, decimals: int) -> int | None:
    """The atomic units of decimal ``text`` by integer arithmetic on the string; None if not a whole number."""
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("+-").lower()
    mantissa, _, exp = body.partition("e")
    whole, _, frac = mantissa.partition(".")
    coefficient = int((whole + frac) or "0")
    shift = int(exp or "0") - len(frac) + decimals
    if shift >= 0:
        return sign * coefficient * 10**shift
    q, r = divmod(coefficient, 10**-shift)
    return sign * q if r == 0 else None


def payable(expected: int | None) -> bool:
    return expected is not None and 0 <= expected <= UINT256_MAX


digits = st.text(alphabet="0123456789", min_size=0, max_size=40)


@st.composite
def decimal_text(draw: st.DrawFn) -> str:
    whole = draw(digits)
    frac = draw(digits)
    if not whole and not frac:
        whole = "0"
    text = whole + ("." + frac if frac or draw(st.booleans()) else "")
    if draw(st.booleans()):
        text += "e" + str(draw(st.integers(-60, 60)))
    return draw(st.sampled_from(["", "", "-", "+"])) + text


@settings(max_examples=600, deadline=None)
@given(text=decimal_text(), decimals=st.integers(0, 36))
def test_to_atomic_is_exact_or_refuses(text, decimals):
    expected = exact_atomic(text, decimals)
    try:
        got = to_atomic(text, decimals)
    except ConfigurationError:
        # Refused only what no token amount can be: fractional atomic units, negative, past uint256.
        assert not payable(expected), f"{text!r} at {decimals} decimals is exactly {expected}, yet refused"
        return
    assert got == expected, f"{text!r} at {decimals} decimals: got {got}, exactly {expected}"
    assert to_atomic(Decimal(text), decimals) == got  # a Decimal is the same amount as its text
    # What we show is what we charge: the display form converts back to the same units, and equals the input.
    shown = format_amount(got, decimals)
    assert to_atomic(shown, decimals) == got
    assert Decimal(shown) == Decimal(text)
    assert to_display(got, decimals) == Decimal(text)


@settings(max_examples=300, deadline=None)
@given(atomic=st.integers(0, UINT256_MAX), decimals=st.integers(0, 36), symbol=st.sampled_from(["", "USDC", "TMAI"]))
def test_every_atomic_amount_round_trips_through_its_display_form(atomic, decimals, symbol):
    shown = format_amount(atomic, decimals, symbol)
    assert to_atomic(shown.removesuffix(symbol).strip(), decimals) == atomic


def test_thirty_significant_digits_are_kept():
    # The review's example: 34 significant digits were rounded to 28 (…678901234 became …679000000).
    assert to_atomic("1234567890.123456789012345678901234", 24) == 1234567890_123456789012345678901234
    assert to_atomic("1234567890.123456789012345678901234", 30) == 1234567890_123456789012345678901234_000000
    assert to_atomic("0.1000000000000000000000000000001", 31) == 10**30 + 1
    # One more digit than the asset has is refused, however deep it sits.
    with pytest.raises(ConfigurationError, match="30 decimal places"):
        to_atomic("0.1000000000000000000000000000001", 30)
    big = 10**40 + 1
    assert to_atomic(big, 0) == big and to_atomic(Decimal(big), 18) == big * 10**18
    assert format_amount(big, 18) == "10000000000000000000000.000000000000000001"
    assert to_display(big, 18) == Decimal("10000000000000000000000.000000000000000001")


def test_the_callers_decimal_context_does_not_matter():
    with decimal.localcontext() as ctx:
        ctx.prec = 3
        assert to_atomic("123.456789", 6) == 123_456_789
        assert format_amount(123_456_789, 6, "USDC") == "123.456789 USDC"
        assert format_amount(10**40 + 1, 18, places=18) == "10000000000000000000000.000000000000000001"


@pytest.mark.parametrize(
    "value",
    ["1e78", 2**256, "1" + "0" * 80, "115792089237316195423570985008687907853269984665640564039457.584007913129639936"],
)
def test_amounts_no_token_can_hold_are_refused(value):
    with pytest.raises(ConfigurationError, match="too large"):
        to_atomic(value, 18 if isinstance(value, str) and "." in value else 0)


@pytest.mark.parametrize("value", ["1e999999999", "1e-999999999", "9" * 5000, "0." + "0" * 5000 + "1"])
def test_absurd_exponents_and_lengths_are_refused_cheaply(value):
    with pytest.raises(ConfigurationError):
        to_atomic(value, 6)


def test_zero_in_any_spelling_is_zero():
    for zero in ("0", "-0", "0e999999999", "0.000e-999999999", "0e-5"):
        assert to_atomic(zero, 6) == 0
