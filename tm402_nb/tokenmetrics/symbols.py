"""Symbols → token ids, deterministically, remembered for the client's lifetime and, in the
ledger, across sessions (:class:`LedgerSymbols`, a week by default).

A symbol is resolved by the user's override when there is one, else by what the
tokens endpoint said (its rows reach the resolver with the catalogue's field names,
``TOKEN_ID``/``TOKEN_SYMBOL``/``MARKET_CAP``, whatever case the server used:
paging makes them so). Several tokens may share a symbol: the highest market cap
wins, then the better rank among the top tokens by market cap (fetched once,
only when the lookup gave no market cap), then the lowest id. The resolver holds
no connection: the client fetches the pages it asks for and hands them back.

Looking symbols up may cost money (the official blog says every public endpoint is priced, so
``/tokens`` may answer 402), so a resolved symbol is kept in the ledger database with the time
it was learned, per server, and used again until it is ``max_age`` old: a notebook re-run on
another day looks nothing up. The user's overrides always win.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from .catalogue import DAY, SYMBOL_LOOKUP, SYMBOL_RANKING
from .errors import ParamError, UnknownSymbol
from .plan import PlannedRequest, plan_call

if TYPE_CHECKING:
    from ..ledger import Ledger

__all__ = ["RANKING_PAGES", "SYMBOL_MAX_AGE", "LedgerSymbols", "SymbolResolver", "SymbolStore"]

#: How long a symbol learned from a server is used again without asking (seconds).
SYMBOL_MAX_AGE = 7 * DAY

#: Pages of the market-cap ranking read to break ties between tokens sharing a symbol.
RANKING_PAGES = 2
#: The most pages a symbol lookup reads (a symbol may name several tokens; 100 rows a page).
LOOKUP_PAGES = 5


class SymbolStore(Protocol):
    """Where resolved symbols outlive the session."""

    def get(self, symbols: list[str]) -> dict[str, int]: ...

    def put(self, ids: Mapping[str, int]) -> None: ...


class LedgerSymbols:
    """Symbols kept in the ledger database for one server (``scope``), for ``max_age`` seconds."""

    def __init__(self, ledger: Ledger, scope: str, max_age: float = SYMBOL_MAX_AGE) -> None:
        self.ledger = ledger
        self.scope = scope
        self.max_age = max_age

    def get(self, symbols: list[str]) -> dict[str, int]:
        return self.ledger.symbols_get(self.scope, symbols, max_age=self.max_age)

    def put(self, ids: Mapping[str, int]) -> None:
        self.ledger.symbols_put(self.scope, ids)


class SymbolResolver:
    """Thread-safe memory of symbol → token id, with the user's overrides first, then what this
    client learned, then what ``store`` kept from earlier sessions."""

    def __init__(self, overrides: Mapping[str, int] | None = None, *, store: SymbolStore | None = None) -> None:
        #: Upper-case symbol → token id, used before anything learnt (the user may edit it).
        self.overrides: dict[str, int] = {k.upper(): int(v) for k, v in (overrides or {}).items()}
        self.store = store
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
        """Those of ``wanted`` not resolved yet (by an override, this client, or the store), once each."""
        resolved = self._resolved(wanted)
        missing = list(dict.fromkeys(s for s in wanted if s not in resolved))
        if missing and self.store is not None:
            kept = self.store.get(missing)
            if kept:
                with self._lock:
                    self._known.update(kept)
                missing = [s for s in missing if s not in kept]
        return missing

    def placeholders(self, wanted: list[str]) -> dict[str, int]:
        """Symbol → token id for every one of ``wanted``: the known id, or a stand-in (a negative
        number, one per unresolved symbol) where a lookup has not been made. A plan made with
        them has as many ids as the real one at most: what a quote needs, never sent."""
        resolved = self._resolved(wanted)
        stand_ins = iter(range(-1, -len(wanted) - 1, -1))
        return {s: resolved[s] if s in resolved else next(stand_ins) for s in dict.fromkeys(wanted)}

    @property
    def ranked(self) -> bool:
        """Whether the market-cap ranking is known (no tie will need it fetched)."""
        with self._lock:
            return self._rank is not None

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
            symbol = str(row.get("TOKEN_SYMBOL") or "").upper()
            counts[symbol] = counts.get(symbol, 0) + 1
        return any(counts.get(s, 0) > 1 for s in missing) and not any("MARKET_CAP" in r for r in rows)

    def learn_ranking(self, rows: list[dict[str, Any]]) -> None:
        rank: dict[int, int] = {}
        for i, r in enumerate(rows):
            tid = _token_id(r)
            if tid is not None:
                rank.setdefault(tid, i)
        with self._lock:
            self._rank = rank

    def learn(self, missing: list[str], rows: list[dict[str, Any]]) -> None:
        """Remember the token each of ``missing`` names, from the lookup's ``rows``."""
        by_symbol: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            symbol = row.get("TOKEN_SYMBOL")
            if isinstance(symbol, str) and _token_id(row) is not None:
                by_symbol.setdefault(symbol.upper(), []).append(row)
        learned: dict[str, int] = {}
        with self._lock:
            for symbol in missing:
                if by_symbol.get(symbol):
                    learned[symbol] = self._known[symbol] = self._pick(by_symbol[symbol])
        if learned and self.store is not None:
            self.store.put(learned)

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
        ranked = [(-_market_cap(r), rank.get(t, 10**9), t) for r in candidates if (t := _token_id(r)) is not None]
        return min(ranked)[2]


def _token_id(row: dict[str, Any]) -> int | None:
    """The row's token id as an int (the API may send it as a number or a numeric string)."""
    try:
        return int(row["TOKEN_ID"])
    except (KeyError, TypeError, ValueError):
        return None


def _market_cap(row: dict[str, Any]) -> float:
    try:
        return float(row["MARKET_CAP"])
    except (KeyError, TypeError, ValueError):
        return -1.0
