"""Symbols → token ids, deterministically, remembered for the client's lifetime.

A symbol is resolved by the user's override when there is one, else by what the
tokens endpoint said. Several tokens may share a symbol: the highest market cap
wins, then the better rank among the top tokens by market cap (fetched once,
only when the lookup gave no market cap), then the lowest id. The resolver holds
no connection: the client fetches the pages it asks for and hands them back.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

from .catalogue import SYMBOL_LOOKUP, SYMBOL_RANKING
from .errors import ParamError, UnknownSymbol
from .plan import PlannedRequest, plan_call

__all__ = ["RANKING_PAGES", "SymbolResolver"]

#: Pages of the market-cap ranking read to break ties between tokens sharing a symbol.
RANKING_PAGES = 2
#: The most pages a symbol lookup reads (a symbol may name several tokens; 100 rows a page).
LOOKUP_PAGES = 5


class SymbolResolver:
    """Thread-safe memory of symbol → token id, with the user's overrides first."""

    def __init__(self, overrides: Mapping[str, int] | None = None) -> None:
        #: Upper-case symbol → token id, used before anything learnt (the user may edit it).
        self.overrides: dict[str, int] = {k.upper(): int(v) for k, v in (overrides or {}).items()}
        self._known: dict[str, int] = {}
        self._rank: dict[int, int] | None = None
        self._lock = threading.Lock()

    @staticmethod
    def wanted(symbols: Iterable[str] | str) -> list[str]:
        """The symbols asked for, upper-case, blanks dropped; ParamError when none is left."""
        wanted = [s.strip().upper() for s in ([symbols] if isinstance(symbols, str) else symbols) if s and s.strip()]
        if not wanted:
            raise ParamError("symbol is empty", hint="give at least one symbol, e.g. BTC")
        return wanted

    def missing(self, wanted: list[str]) -> list[str]:
        """Those of ``wanted`` not resolved yet, once each."""
        resolved = self._resolved(wanted)
        return list(dict.fromkeys(s for s in wanted if s not in resolved))

    @staticmethod
    def lookups(missing: list[str]) -> list[PlannedRequest]:
        """The requests that look ``missing`` up."""
        return list(plan_call(SYMBOL_LOOKUP, {"symbol": missing}, max_pages=LOOKUP_PAGES).requests)

    @staticmethod
    def ranking() -> PlannedRequest:
        """The request for the market-cap ranking (read ``RANKING_PAGES`` pages of it)."""
        return PlannedRequest(SYMBOL_RANKING, {}, pages=RANKING_PAGES, open_ended=True)

    def needs_ranking(self, rows: list[dict[str, Any]], missing: list[str]) -> bool:
        """Whether the lookup's ``rows`` leave a tie only the ranking breaks (and it is not known yet)."""
        with self._lock:
            if self._rank is not None:
                return False
        counts: dict[str, int] = {}
        for row in rows:
            symbol = str(row.get("TOKEN_SYMBOL") or row.get("SYMBOL") or "").upper()
            counts[symbol] = counts.get(symbol, 0) + 1
        return any(counts.get(s, 0) > 1 for s in missing) and not any("MARKET_CAP" in r for r in rows)

    def learn_ranking(self, rows: list[dict[str, Any]]) -> None:
        rank = {int(r["TOKEN_ID"]): i for i, r in enumerate(rows) if r.get("TOKEN_ID") is not None}
        with self._lock:
            self._rank = rank

    def learn(self, missing: list[str], rows: list[dict[str, Any]]) -> None:
        """Remember the token each of ``missing`` names, from the lookup's ``rows``."""
        by_symbol: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            symbol = row.get("TOKEN_SYMBOL") or row.get("SYMBOL") or row.get("token_symbol")
            if isinstance(symbol, str) and row.get("TOKEN_ID") is not None:
                by_symbol.setdefault(symbol.upper(), []).append(row)
        with self._lock:
            for symbol in missing:
                if by_symbol.get(symbol):
                    self._known[symbol] = self._pick(by_symbol[symbol])

    def ids(self, wanted: list[str]) -> dict[str, int]:
        """Symbol → token id for every one of ``wanted``; UnknownSymbol naming those that match no token."""
        resolved = self._resolved(wanted)
        unknown = list(dict.fromkeys(s for s in wanted if s not in resolved))
        if unknown:
            raise UnknownSymbol(
                f"unknown symbol{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}",
                hint="check the spelling, or look the token up: tm.session().client.frame('tokens', symbol=…) "
                "gives its TOKEN_ID to pass as token_id=…",
                symbols=unknown,
            )
        return {s: resolved[s] for s in wanted}

    def _resolved(self, wanted: list[str]) -> dict[str, int]:
        out = {}
        with self._lock:
            for s in wanted:
                if s in self.overrides:
                    out[s] = self.overrides[s]
                elif s in self._known:
                    out[s] = self._known[s]
        return out

    def _pick(self, candidates: list[dict[str, Any]]) -> int:
        """Among tokens sharing a symbol: highest market cap, then rank, then lowest id. Holds the lock."""
        rank = self._rank or {}
        best = min(candidates, key=lambda r: (-_market_cap(r), rank.get(int(r["TOKEN_ID"]), 10**9), int(r["TOKEN_ID"])))
        return int(best["TOKEN_ID"])


def _market_cap(row: dict[str, Any]) -> float:
    for k in ("MARKET_CAP", "market_cap", "MARKETCAP"):
        try:
            return float(row[k])
        except (KeyError, TypeError, ValueError):
            continue
    return -1.0
