"""The x402 layer's public name for exact money (``tm402_nb.x402.money``).

The arithmetic lives in :mod:`tm402_nb.money`, below every layer, because the
ledger formats amounts too and must not import x402. This module keeps the
documented import path (tutorials write ``from tm402_nb.x402.money import
format_amount``) working.
"""

from __future__ import annotations

from ..money import AmountLike, format_amount, to_atomic, to_display

__all__ = ["AmountLike", "format_amount", "to_atomic", "to_display"]
