"""The Token Metrics response envelope, for answers and errors alike.

Success: ``{"success": true, "message": "Data fetched successfully", "length": n, "data": [...]}``.
Errors keep the same shape (``success: false``, ``length: 0``, ``data: []``) and
add a machine-readable ``error`` code. An empty result is the real API's
``Data not found`` with HTTP 404 (reference §4.23).

Row keys are UPPER_SNAKE_CASE as built; an endpoint the profile's ``field_case``
names answers them in lowercase (the top-level keys of each row: nested objects
keep their own keys, which are lowercase already).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from starlette.responses import JSONResponse

OK_MESSAGE = "Data fetched successfully"
NOT_FOUND_MESSAGE = "Data not found"


class Envelope(BaseModel):
    success: bool = Field(description="true when data was fetched")
    message: str = Field(description="'Data fetched successfully', or what went wrong")
    length: int = Field(description="number of rows in data")
    data: list[dict[str, Any]] = Field(description="rows with UPPER_SNAKE_CASE keys")


class ErrorEnvelope(Envelope):
    error: str | None = Field(None, description="machine-readable error code")


def ok(rows: list[dict[str, Any]], *, lowercase: bool = False) -> JSONResponse:
    if lowercase:
        rows = [lowercase_keys(r) for r in rows]
    return JSONResponse({"success": True, "message": OK_MESSAGE, "length": len(rows), "data": rows})


def lowercase_keys(row: dict[str, Any]) -> dict[str, Any]:
    """A new row with the same values under lowercase keys (the row itself may be cached: not changed)."""
    out = {k.lower(): v for k, v in row.items()}
    if len(out) != len(row):
        raise ValueError(f"row keys collide in lowercase: {sorted(row)}")
    return out


def error(status: int, message: str, code: str, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"success": False, "message": message, "length": 0, "data": [], "error": code, **extra}
    return JSONResponse(body, status_code=status, headers=headers)


def not_found() -> JSONResponse:
    return JSONResponse({"success": False, "message": NOT_FOUND_MESSAGE, "length": 0, "data": []}, status_code=404)
