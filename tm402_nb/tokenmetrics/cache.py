"""Answers kept in the ledger's cache, private to a mode, a server and a payer (or key).

A cached answer is keyed by endpoint and wire parameters (order-free) and
belongs to its *owner*: another wallet, another API key or another server never
sees it, so one user's paid answer is never served to someone who did not pay.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from ..ledger import Ledger
from ..x402.auth import X402Auth
from .catalogue import Endpoint
from .modes import Mode

__all__ = ["ResponseCache", "cache_key", "cache_owner"]


def cache_key(base_url: str, endpoint: Endpoint, wire: Mapping[str, str]) -> str:
    """Canonical key: same endpoint and parameters (order-free) → same key."""
    canon = json.dumps(
        {"u": base_url.rstrip("/"), "e": endpoint.name, "p": sorted(wire.items())}, separators=(",", ":")
    )
    return hashlib.sha256(canon.encode()).hexdigest()


def cache_owner(mode: Mode, base_url: str, auth: X402Auth | None, api_key: str | None) -> str:
    """Whose cached answers these are: the mode, the server and the wallet (or a hash of the key)."""
    who = auth.wallet.address if auth is not None else hashlib.sha256((api_key or "").encode()).hexdigest()[:16]
    return f"{mode}|{base_url}|{who}"


class ResponseCache:
    """The cache as the client uses it: look up an envelope, store an answer's body."""

    def __init__(self, ledger: Ledger | None, base_url: str, owner: str) -> None:
        self.ledger = ledger
        self.base_url = base_url
        self.owner = owner

    def get(self, endpoint: Endpoint, wire: Mapping[str, str]) -> dict[str, Any] | None:
        """The fresh cached envelope for this request, or None."""
        if self.ledger is None:
            return None
        hit = self.ledger.cache_get(cache_key(self.base_url, endpoint, wire), self.owner)
        return None if hit is None else json.loads(hit[1])

    def put(self, endpoint: Endpoint, wire: Mapping[str, str], body: bytes, ttl: float | None) -> None:
        """Keep ``body`` for ``ttl`` seconds (None: the endpoint's own freshness)."""
        if self.ledger is not None:
            self.ledger.cache_put(
                cache_key(self.base_url, endpoint, wire),
                self.owner,
                body,
                ttl=endpoint.ttl if ttl is None else ttl,
                endpoint=endpoint.name,
            )
