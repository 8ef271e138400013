"""Token Metrics v2: the endpoint catalogue, Client/AsyncClient, typed DataFrames, cost accounting.

Names load on first use: the notebook layer reads endpoint facts from the catalogue
at ``import tm402_nb`` time, which must not pull in httpx, the client or the ledger.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_LAZY = {
    "CATALOGUE": "catalogue",
    "ENDPOINTS": "catalogue",
    "Endpoint": "catalogue",
    "Param": "catalogue",
    "catalogue_frame": "catalogue",
    "get_endpoint": "catalogue",
    "DEFAULT_BASE_URL": "client",
    "AsyncClient": "client",
    "Client": "client",
    "GapWarning": "gaps",
    "Quote": "client",
    "RetryPolicy": "client",
    "CallCost": "cost",
    "Cost": "cost",
    "CostTracker": "cost",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
