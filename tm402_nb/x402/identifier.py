"""The ``payment-identifier`` extension: an idempotency key inside the payment payload.

A v2 server that advertises ``extensions["payment-identifier"]`` in its 402 challenge caches
the answer to a paid request under the payload's id: the *identical* payload sent again gets
the cached answer (no second charge), the same id with another payload gets 409 Conflict
(``specs/extensions/payment_identifier.md`` in x402-foundation/x402). So an id is attached to
every payment such a server asks for, and a lost answer is recovered by re-sending the very
same header (see :class:`~tm402_nb.x402.auth.X402Auth`), never by signing anew.

The client echoes the server's declaration (its ``info`` and ``schema``, which servers check
for changes) and adds ``info.id``: 16–128 characters of ``[A-Za-z0-9_-]``. x402 v1 messages
have no ``extensions`` field (neither the challenge nor the payload), so a v1 challenge never
gets an id. A declaration we cannot read is ignored, as the reference client's helper does;
a server that *requires* an id but whose schema allows none the spec permits is refused
before anything is signed. A schema ``pattern`` is only evaluated when it is a single
character class with one quantifier (what the spec's own ``^[a-zA-Z0-9_-]+$`` is); any other
pattern is never run (a hostile regex could hang the kernel) and counts as one no id meets.
"""

from __future__ import annotations

import copy
import re
import secrets
from typing import Any

from ..errors import X402ProtocolError
from .messages import PaymentRequired

__all__ = [
    "PAYMENT_IDENTIFIER",
    "PAYMENT_ID_MAX_LENGTH",
    "PAYMENT_ID_MIN_LENGTH",
    "identifier_of",
    "is_valid_payment_id",
    "payment_extensions",
]

PAYMENT_IDENTIFIER = "payment-identifier"
PAYMENT_ID_MIN_LENGTH = 16
PAYMENT_ID_MAX_LENGTH = 128
_ID_RE = re.compile(r"^[A-Za-z0-9_-]+$")
_PREFIX = "pay_"
#: The only server ``pattern`` shapes ever evaluated: an optionally anchored single character
#: class of letters, digits, ``_``, ``-``, ranges, ``\w`` or ``\d``, with one quantifier. Such a
#: pattern cannot backtrack catastrophically; any other (a hostile regex is not ours to run: it
#: would run under the policy lock and could hang every payment) is treated as one no id meets.
#: Its grammar is unambiguous (a ``-`` is a range's, or the class's first or last character),
#: so checking a pattern against it is linear; a longer pattern is not even checked.
_SAFE_PATTERN = re.compile(
    r"\^?\[-?(?:[A-Za-z0-9](?:-[A-Za-z0-9])?|_|\\[wd-])+-?\](?:[+*]|\{[0-9]{1,3}(?:,[0-9]{0,3})?\})\$?"
)
_MAX_PATTERN = 64


def is_valid_payment_id(value: Any) -> bool:
    """16–128 characters of letters, digits, ``-`` and ``_`` (what the spec and the SDKs accept)."""
    return (
        isinstance(value, str)
        and PAYMENT_ID_MIN_LENGTH <= len(value) <= PAYMENT_ID_MAX_LENGTH
        and bool(_ID_RE.match(value))
    )


def identifier_of(payload_json: Any) -> str | None:
    """The valid id a payment payload (decoded JSON) carries, or None."""
    if not isinstance(payload_json, dict):
        return None
    ext = payload_json.get("extensions")
    block = ext.get(PAYMENT_IDENTIFIER) if isinstance(ext, dict) else None
    info = block.get("info") if isinstance(block, dict) else None
    found = info.get("id") if isinstance(info, dict) else None
    return found if is_valid_payment_id(found) else None


def _bound(schema: dict[str, Any], key: str) -> int | None:
    value = schema.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"schema id.{key} is not an integer ({str(value)[:20]!r})")
    return value


def _new_id(schema: dict[str, Any]) -> str:
    """A fresh id that fits the spec's 16–128 and the server's id schema; ValueError when none can."""
    lo = max(PAYMENT_ID_MIN_LENGTH, _bound(schema, "minLength") or 0)
    hi_schema = _bound(schema, "maxLength")
    hi = min(PAYMENT_ID_MAX_LENGTH, hi_schema if hi_schema is not None else PAYMENT_ID_MAX_LENGTH)
    if lo > hi:
        raise ValueError(
            f"its schema asks for ids of {schema.get('minLength', PAYMENT_ID_MIN_LENGTH)}"
            f"–{schema.get('maxLength', PAYMENT_ID_MAX_LENGTH)} characters; the spec allows "
            f"{PAYMENT_ID_MIN_LENGTH}–{PAYMENT_ID_MAX_LENGTH}"
        )
    # "pay_" + 32 random hex digits (128 bits), as the reference clients do, cut or padded to fit.
    length = min(max(lo, len(_PREFIX) + 32), hi)
    body = secrets.token_hex(64)[: length - len(_PREFIX)]
    candidate = _PREFIX + body
    pattern = schema.get("pattern")
    if pattern is not None:
        if not isinstance(pattern, str) or len(pattern) > _MAX_PATTERN or not _SAFE_PATTERN.fullmatch(pattern):
            raise ValueError(
                f"its schema's id pattern {str(pattern)[:40]!r} is not a simple character class "
                "(only such a pattern is checked: a server's regex is never run as given)"
            )
        try:
            matches = re.search(pattern, candidate) is not None
        except re.error:
            raise ValueError(f"its schema's id pattern {pattern[:40]!r} is not a valid expression") from None
        if not matches:
            raise ValueError(f"its schema's id pattern {pattern[:40]!r} refuses ids of the spec's alphabet")
    assert is_valid_payment_id(candidate)
    return candidate


def payment_extensions(required: PaymentRequired) -> tuple[dict[str, Any] | None, str | None]:
    """The ``extensions`` to send with a payment for ``required``, and the id attached (or None).

    The server's extensions are echoed; when it advertises ``payment-identifier`` the echo of
    that declaration gains a fresh ``info.id``. Raises :class:`X402ProtocolError` (before
    anything is signed) when the server requires an id that no valid id could satisfy.
    """
    extensions = required.extensions
    if required.x402_version < 2 or not extensions or PAYMENT_IDENTIFIER not in extensions:
        return extensions, None
    declared = extensions[PAYMENT_IDENTIFIER]
    info = declared.get("info") if isinstance(declared, dict) else None
    if not isinstance(info, dict) or not isinstance(info.get("required"), bool):
        # Not a declaration (no info.required boolean): ignored, as the reference helper does.
        return extensions, None
    schema = declared.get("schema")
    id_schema: Any = {}
    if isinstance(schema, dict):
        props = schema.get("properties")
        id_schema = props.get("id", {}) if isinstance(props, dict) else {}
    elif schema is not None:
        id_schema = None
    try:
        if not isinstance(id_schema, dict):
            raise ValueError("its schema is not an object")
        new_id = _new_id(id_schema)
    except ValueError as exc:
        if info["required"]:
            raise X402ProtocolError(
                f"the server requires a payment-identifier, but {exc}",
                hint="nothing was signed: the server's payment-identifier declaration cannot be met",
            ) from None
        return extensions, None  # optional, and no id of ours fits: pay without one
    echoed = copy.deepcopy(extensions)
    block = echoed[PAYMENT_IDENTIFIER]
    block["info"] = {**block["info"], "id": new_id}
    return echoed, new_id
