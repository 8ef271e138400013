"""Base64-JSON header values, decoded defensively.

Every x402 header (``PAYMENT-REQUIRED``, ``X-PAYMENT``, ``PAYMENT-RESPONSE``, ...)
is base64 of a JSON object. Servers differ in padding and alphabet, so decoding
accepts standard and URL-safe base64 with or without padding. Anything that is
not a JSON object under the size limit becomes :class:`X402ProtocolError`;
no other exception escapes, whatever bytes come in.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from ..errors import X402ProtocolError

#: Largest header or challenge body we are willing to parse (DESIGN: 16 KB).
MAX_MESSAGE_BYTES = 16 * 1024


def b64json_encode(obj: Any) -> str:
    """Encode ``obj`` as compact JSON in standard base64 (the form the spec shows)."""
    raw = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.b64encode(raw).decode("ascii")


def b64json_decode(value: str | bytes, *, what: str = "header", max_bytes: int = MAX_MESSAGE_BYTES) -> dict[str, Any]:
    """Decode a base64-JSON header value into a dict, or raise X402ProtocolError."""
    if isinstance(value, str):
        try:
            data = value.strip().encode("ascii")
        except UnicodeEncodeError:
            raise X402ProtocolError(f"{what} is not base64 (non-ASCII characters)") from None
    elif isinstance(value, (bytes, bytearray)):
        data = bytes(value).strip()
    else:
        raise X402ProtocolError(f"{what} must be a string, got {type(value).__name__}")
    if not data:
        raise X402ProtocolError(f"{what} is empty")
    if len(data) > max_bytes * 4 // 3 + 4:
        raise X402ProtocolError(f"{what} is {len(data)} bytes, over the {max_bytes // 1024} KB limit")
    try:
        if b"-" in data or b"_" in data:
            data = data.replace(b"-", b"+").replace(b"_", b"/")
        data = data.rstrip(b"=")
        raw = base64.b64decode(data + b"=" * (-len(data) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise X402ProtocolError(f"{what} is not valid base64") from None
    return json_object(raw, what=what, max_bytes=max_bytes)


def json_object(raw: bytes | str, *, what: str = "body", max_bytes: int = MAX_MESSAGE_BYTES) -> dict[str, Any]:
    """Parse ``raw`` as a JSON object, or raise X402ProtocolError."""
    if len(raw) > max_bytes:
        raise X402ProtocolError(f"{what} is {len(raw)} bytes, over the {max_bytes // 1024} KB limit")
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise X402ProtocolError(f"{what} is not valid JSON") from None
    if not isinstance(obj, dict):
        raise X402ProtocolError(f"{what} must be a JSON object, got {type(obj).__name__}")
    return obj
