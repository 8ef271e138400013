"""``connect()``: mode, wallet, policy, client and ledger in one object; the current session.

Mode comes from the arguments, else the environment::

    TM402_MODE          sandbox | x402 | api-key   (explicit choice, e.g. on Binder)
    TM402_NETWORK       base | base-sepolia        (x402 mode's network: never a default)
    TM402_PRIVATE_KEY   (or TM402_KEY_FILE) → x402: pay per call from this wallet
    TM_API_KEY          → api-key: your Token Metrics plan, no payments
    (nothing)           → sandbox: the embedded local API with a funded throwaway wallet

This module is the layer's light face: it imports nothing heavier than the
standard library, so ``tm402_nb`` imports it at once. That is what keeps
``tm.session`` the *function*: Python binds a subpackage to its name on the
parent package when the subpackage is first imported, and ``tm402_nb``'s own
``from .session import session`` runs after that binding and wins it, whichever
import order the user's code follows. The session itself (:mod:`.core`), the
constructor for each mode (:mod:`.modes`) and everything they pull in (the
client, wallet, ledger, sandbox) load on the first :func:`connect`. (No module
of this package may be called ``session``: importing it would bind that name
here over the function.)
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from ..tokenmetrics.modes import Mode
    from .core import Session

__all__ = [
    "ENV_API_KEY",
    "ENV_BASE_URL",
    "ENV_MODE",
    "ENV_NETWORK",
    "ENV_RPC_URL",
    "Session",
    "SessionOptions",
    "connect",
    "current_session",
    "session",
]

# name -> submodule that defines it; resolved on first use by __getattr__.
_LAZY = {
    "Session": "core",
    "SessionOptions": "modes",
    "ENV_API_KEY": "modes",
    "ENV_BASE_URL": "modes",
    "ENV_MODE": "modes",
    "ENV_NETWORK": "modes",
    "ENV_RPC_URL": "modes",
}

_current: Session | None = None
_lock = threading.Lock()

#: Settings the notebook layer was configured with (``%config TMMagics.max_per_cell``): every
#: session ``connect()`` opens starts with them unless its own arguments say otherwise, so a
#: cap holds from the cell that opens the session on.
CONFIGURED: dict[str, Any] = {}


def connect(mode: Mode | str | None = None, **options: Any) -> Session:
    """Open a session and make it the current one (closing the previous one).

    ``options`` are the fields of :class:`~tm402_nb.session.modes.SessionOptions`
    (``budget=``, ``pay_with=``, ``max_per_call=``, ...).

    >>> import tm402_nb as tm
    >>> s = tm.connect(mode="sandbox", budget="1.00")       # doctest: +SKIP
    >>> s.client.frame("tm-grade", symbol=["BTC", "ETH"])    # doctest: +SKIP
    """
    from .core import Session

    global _current
    new = Session(mode, **{**CONFIGURED, **options})
    with _lock:
        old, _current = _current, new
    if old is not None and old is not new:
        old.close()
    return new


def session() -> Session:
    """The current session; connects with the defaults (mode from the environment) on first use."""
    with _lock:
        cur = _current
    if cur is not None and not cur.closed:
        return cur
    return connect()


def current_session() -> Session | None:
    """The current session, or None (never connects)."""
    with _lock:
        return _current if _current is not None and not _current.closed else None


def _forget(closed: Session) -> None:
    """``closed`` is no longer the current session (called by ``Session.close``)."""
    global _current
    with _lock:
        if _current is closed:
            _current = None


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
