"""tm402-nb: pay for Token Metrics analytics per call with x402, from Jupyter, into pandas.

    import tm402_nb as tm
    auth = tm.X402Auth(tm.Wallet.from_env(), policy=tm.SpendPolicy(max_per_call="0.05"))
    r = httpx.get(url, auth=auth)
    tm.receipt(r)

Heavy modules (the client, the wallet, FastAPI, the sandbox) load on first use,
so importing the package stays cheap. ``tm.session`` is the function
:func:`tm402_nb.session.session` whatever was imported before: the session
layer's light public face is imported here, after which Python never rebinds
that name to the subpackage (see :mod:`tm402_nb.session`).
"""

from __future__ import annotations

from typing import Any

from ._lazy import lazy_exports
from .errors import (
    BudgetExceeded,
    ConfigurationError,
    LedgerError,
    PaymentFailed,
    PaymentOutcomeUnknown,
    PaymentRefused,
    Permit2AllowanceRequired,
    ReceiptError,
    SettlementPending,
    TM402Error,
    WalletError,
    X402ProtocolError,
)

# Importing tm402_nb registers ``df.tm``: the accessor module imports pandas and
# nothing heavier; the client, the session's parts and the sandbox load on first use.
from .notebook import accessor as _accessor  # noqa: F401
from .session import connect, current_session, session

__version__ = "0.1.0"

# name -> module that defines it; resolved lazily by __getattr__.
_LAZY = {
    "X402Auth": "x402.auth",
    "receipt": "x402.auth",
    "payment_of": "x402.auth",
    "Wallet": "x402.wallet",
    "SpendPolicy": "x402.policy",
    "AssetLimit": "x402.policy",
    "paying_client": "x402.client",
    "async_paying_client": "x402.client",
    "Ledger": "ledger",
    "Session": "session.core",
    "Client": "tokenmetrics.client",
    "AsyncClient": "tokenmetrics.client",
    "Quote": "tokenmetrics.client",
    "RetryPolicy": "tokenmetrics.client",
    "catalogue_frame": "tokenmetrics.catalogue",
    "APIError": "tokenmetrics.errors",
    "DataNotFound": "tokenmetrics.errors",
    "GapWarning": "tokenmetrics.gaps",
    "ParamError": "tokenmetrics.errors",
    "RateLimited": "tokenmetrics.errors",
    "UnknownSymbol": "tokenmetrics.errors",
}

__all__ = [
    "BudgetExceeded",
    "ConfigurationError",
    "LedgerError",
    "PaymentFailed",
    "PaymentOutcomeUnknown",
    "SettlementPending",
    "PaymentRefused",
    "Permit2AllowanceRequired",
    "ReceiptError",
    "TM402Error",
    "WalletError",
    "X402ProtocolError",
    "connect",
    "current_session",
    "session",
    *_LAZY,
]


def load_ipython_extension(ip: Any) -> None:
    """``%load_ext tm402_nb``: the %tm / %%tm magics, %config TMMagics, the cost footer."""
    from .notebook import load_ipython_extension as load

    load(ip)


def unload_ipython_extension(ip: Any) -> None:
    from .notebook import unload_ipython_extension as unload

    unload(ip)


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
