"""Errors from talking to the Token Metrics API: bad parameters, unknown symbols, API answers.

They extend the toolkit's shared hierarchy (:mod:`tm402_nb.errors`), so one
``except TM402Error`` still catches everything, but they live with the client
because only the Token Metrics layer and the ones above it raise them.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigurationError, TM402Error

__all__ = [
    "APIError",
    "DataNotFound",
    "ParamError",
    "PlanExceeded",
    "RateLimited",
    "UnknownSymbol",
    "data_not_found",
]


class ParamError(ConfigurationError):
    """A request parameter is unknown, of the wrong type or out of range (nothing was sent)."""


class UnknownSymbol(ConfigurationError):
    """One or more symbols match no token; the message names them."""


class APIError(TM402Error):
    """The API answered with an error (HTTP status or ``success: false``)."""

    def __init__(
        self, message: str, *, status: int | None = None, body: Any = None, hint: str | None = None, **kw: Any
    ) -> None:
        super().__init__(message, hint=hint, **kw)
        self.status = status
        self.body = body


class DataNotFound(APIError):
    """The API found no data for the request ("Data not found").

    ``details["endpoint"]`` names the endpoint, ``details["reason"]`` is the server's own words;
    the hint is for Python (``on_empty='empty'``), ``details["magic_hint"]`` says the same in
    ``%tm`` terms (``--empty ok``). Build one with :func:`data_not_found`: its message names the
    endpoint once.
    """


#: What to do about no data, in Python and in a ``%tm`` line.
EMPTY_HINT = "no rows for those tokens or dates (the data may end before them): {how} to get an empty frame instead"


def data_not_found(endpoint: str, reason: str | None, **kw: Any) -> DataNotFound:
    """The DataNotFound for ``endpoint``: ``"<endpoint>: <reason>"``, the endpoint named once
    even when ``reason`` already starts with it."""
    reason = (reason or "Data not found").strip()
    prefix = f"{endpoint}:"
    while reason.startswith(prefix):
        reason = reason[len(prefix) :].strip()
    return DataNotFound(
        f"{endpoint}: {reason or 'Data not found'}",
        hint=EMPTY_HINT.format(how="pass on_empty='empty'"),
        endpoint=endpoint,
        reason=reason,
        magic_hint=EMPTY_HINT.format(how="add --empty ok"),
        **kw,
    )


class PlanExceeded(APIError):
    """The server holds more rows than the plan (and so the quote) allows for.

    Paging stopped at the plan's bound and nothing more was paid; ``partial`` is the
    frame of what was fetched (already paid for).
    """

    def __init__(self, message: str, *, partial: Any = None, hint: str | None = None, **kw: Any) -> None:
        super().__init__(message, hint=hint, **kw)
        self.partial = partial


class RateLimited(APIError):
    """429 Too Many Requests, still after the bounded retries."""
