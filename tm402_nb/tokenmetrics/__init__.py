"""Token Metrics v2: the endpoint catalogue, Client/AsyncClient, typed DataFrames, cost accounting."""

from .catalogue import CATALOGUE, ENDPOINTS, Endpoint, Param, catalogue_frame, get_endpoint
from .client import DEFAULT_BASE_URL, AsyncClient, Client, Quote, RetryPolicy
from .cost import CallCost, Cost, CostTracker

__all__ = [
    "CATALOGUE",
    "DEFAULT_BASE_URL",
    "ENDPOINTS",
    "AsyncClient",
    "CallCost",
    "Client",
    "Cost",
    "CostTracker",
    "Endpoint",
    "Param",
    "Quote",
    "RetryPolicy",
    "catalogue_frame",
    "get_endpoint",
]
