"""The Token Metrics response envelope, for answers and errors alike.

Success: ``{"success": true, "message": "Data fetched successfully", "length": n, "data": [...]}``.
Errors keep the same shape (``success: false``, ``length: 0``, ``data: []``) and
add a machine-readable ``error`` code. An empty result is the real API's
``Data not found`` with HTTP 404 (reference §4.23).
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


def ok(rows: list[dict[str, Any]], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"success": True, "message": OK_MESSAGE, "length": len(rows), "data": rows}, headers=headers)


def error(status: int, message: str, code: str, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"success": False, "message": message, "length": 0, "data": [], "error": code, **extra}
    return JSONResponse(body, status_code=status, headers=headers)


def not_found() -> JSONResponse:
    return JSONResponse({"success": False, "message": NOT_FOUND_MESSAGE, "length": 0, "data": []}, status_code=404)
