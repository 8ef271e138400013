"""What a final answer of the Token Metrics API means: its envelope, or a typed error.

``{success, message, length, data}`` with a data list is an answer; everything
else becomes the error a user can act on: :class:`DataNotFound` (no data for
that request), :class:`ParamError` (the API refused the parameters),
:class:`RateLimited` (429 after the client's retries) or :class:`APIError`.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx

from .catalogue import WINDOW_DAYS, Endpoint
from .errors import APIError, ParamError, RateLimited, data_not_found
from .modes import Mode

__all__ = ["interpret"]


def interpret(endpoint: Endpoint, response: httpx.Response, *, mode: Mode, retries: int) -> dict[str, Any]:
    """The envelope of ``response``, the final answer after ``retries`` retries, or a typed error."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    message = body.get("message") if isinstance(body, dict) and isinstance(body.get("message"), str) else None
    if status == 200 and isinstance(body, dict):
        if body.get("success") is False:
            if message and "not found" in message.lower():
                raise data_not_found(endpoint.name, message, status=status, body=body)
            raise APIError(f"{endpoint.name}: {message or 'the API reported failure'}", status=status, body=body)
        data = body.get("data")
        if not isinstance(data, list):
            raise APIError(f"{endpoint.name}: the answer has no data list", status=status, body=body)
        odd = next((row for row in data if not isinstance(row, dict)), None)
        if odd is not None:
            raise APIError(
                f"{endpoint.name}: the answer's data holds {type(odd).__name__} values, not rows",
                status=status,
                body=body,
            )
        return body
    if status == 404 and message and "not found" in message.lower() and "endpoint" not in message.lower():
        raise data_not_found(endpoint.name, message, status=status, body=body)
    if status == 400:
        days = _range_days(response)
        hint = (
            f"the range asked for is {days} days and the API's documented limit is {WINDOW_DAYS}: keep "
            f"window_days ≤ {WINDOW_DAYS} (the default), the client then splits long ranges for you"
            if days is not None and days > WINDOW_DAYS
            else None
        )
        raise ParamError(f"{endpoint.name}: the API refused the request: {message or response.text[:200]}", hint=hint)
    if status == 401:
        hint = (
            "x402 calls must send x-coinbase-402: true (the client does)"
            if mode.pays
            else "check $TM_API_KEY and your plan"
        )
        raise APIError(
            f"{endpoint.name}: not authorized: {message or ''}".rstrip(": "), status=status, body=body, hint=hint
        )
    if status == 402:
        raise APIError(
            f"{endpoint.name}: payment required",
            status=status,
            body=body,
            hint=None if mode.pays else "API-key mode does not pay; use x402 or sandbox mode",
        )
    if status == 429:
        raise RateLimited(
            f"{endpoint.name}: rate limited (429) after {retries} retries",
            status=status,
            body=body,
            hint="wait a minute, or lower max_concurrency",
        )
    raise APIError(f"{endpoint.name}: HTTP {status}: {message or response.reason_phrase}", status=status, body=body)


def _range_days(response: httpx.Response) -> int | None:
    """Days between the request's startDate and endDate (both included), when it had both."""
    try:
        params = response.request.url.params
        start, end = params.get("startDate"), params.get("endDate")
        if not start or not end:
            return None
        return (date.fromisoformat(end[:10]) - date.fromisoformat(start[:10])).days + 1
    except (RuntimeError, ValueError):  # no request attached, or not dates
        return None
