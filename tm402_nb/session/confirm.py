"""Asking the person at the keyboard before a plan above ``confirm_above`` is paid.

A notebook asks through the kernel's stdin (JupyterLab shows an input box under
the cell), terminal IPython and a plain terminal through ``input()``. Where no one
can answer (nbclient, papermill, CI, a script with its stdin piped), it refuses at
once with :class:`~tm402_nb.errors.NotConfirmed`: it never waits for an answer
that cannot come, and nothing is paid.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import NotConfirmed

if TYPE_CHECKING:
    from ..tokenmetrics.quote import Quote

__all__ = ["ask", "ask_yes_no"]


def _in_kernel() -> bool:
    """True inside a Jupyter kernel, whose ``input()`` asks the frontend (or refuses at once)."""
    shell = sys.modules.get("IPython")
    get = getattr(shell, "get_ipython", None) if shell is not None else None
    ip = get() if get is not None else None
    return ip is not None and getattr(ip, "kernel", None) is not None


def _no_one(quote: Quote, why: str) -> NotConfirmed:
    return NotConfirmed(
        f"{quote.endpoint} would pay up to {quote.total_text} for {quote.calls} call(s), above confirm_above, "
        f"and {why}",
        hint="raise confirm_above (or set it to None) to let such plans run unasked; nothing was paid",
    )


def ask(quote: Quote) -> bool:
    """``Pay up to 0.119 USDC for 7 calls? [y/N]``: True only for an explicit yes."""
    prompt = f"Pay up to {quote.total_text} for {quote.calls} call(s) of {quote.endpoint}? [y/N] "
    return ask_yes_no(prompt, lambda why: _no_one(quote, why))


def ask_yes_no(prompt: str, no_one: Callable[[str], NotConfirmed]) -> bool:
    """Put ``prompt`` to the person at the keyboard: True only for an explicit yes.

    Where no one can answer, raises ``no_one(why)`` at once instead of waiting."""
    if not _in_kernel() and not (sys.stdin is not None and sys.stdin.isatty()):
        raise no_one("there is no terminal to ask on (stdin is not interactive)")
    try:
        answer = input(prompt)
    except EOFError:
        raise no_one("stdin is closed") from None
    except Exception as exc:  # a kernel whose frontend takes no input (nbclient, papermill): StdinNotImplementedError
        if type(exc).__name__ == "StdinNotImplementedError":
            raise no_one("this kernel's frontend does not accept input") from None
        raise
    return answer.strip().lower() in ("y", "yes")
