"""Token Metrics v2: the endpoint catalogue, Client/AsyncClient, typed DataFrames, cost accounting.

Names load on first use: the notebook layer reads endpoint facts from the catalogue
at ``import tm402_nb`` time, which must not pull in httpx, the client or the ledger.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

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
    "Quote": "client",
    "RetryPolicy": "client",
    "CallCost": "cost",
    "Cost": "cost",
    "CostTracker": "cost",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tm402_nb.tokenmetrics' has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
