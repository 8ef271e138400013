"""Sandbox crypto indices: fixed baskets over the synthetic tokens.

Each index holds up to ten tokens chosen by a rule (largest caps, a category),
weighted by market cap or equally, from an inception date of 2023-01-01. Its
level is the weighted sum of the holdings' normalised closes, so index
performance moves exactly with the token paths.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np

from . import params as P
from .paging import page_series
from .universe import Token

if TYPE_CHECKING:
    from .datasets import DataService

INCEPTION = date(2023, 1, 1)
BASE_LEVEL = 1000.0
ICON_BASE = "https://sandbox.invalid/icons"


@dataclass(frozen=True)
class IndexDef:
    id: int
    name: str
    ticker: str
    kind: str  # "active" | "passive"
    category: str | None  # None: any non-stable token
    rank_from: int
    cap_weighted: bool


INDEX_DEFS: tuple[IndexDef, ...] = (
    IndexDef(1, "Sandbox Large Cap Index", "SLCAP", "passive", None, 1, True),
    IndexDef(2, "Sandbox Layer 1 Index", "SL1", "passive", "layer-1", 1, True),
    IndexDef(3, "Sandbox DeFi Index", "SDEFI", "active", "defi", 1, False),
    IndexDef(4, "Sandbox AI Index", "SAI", "active", "ai", 1, False),
    IndexDef(5, "Sandbox Memecoin Index", "SMEME", "active", "meme", 1, False),
    IndexDef(6, "Sandbox Mid Cap Index", "SMID", "passive", None, 41, True),
    IndexDef(7, "Sandbox Infrastructure Index", "SINFRA", "active", "infrastructure", 1, False),
    IndexDef(8, "Sandbox Gaming & NFT Index", "SGAME", "active", "gaming", 1, False),
)


@dataclass
class IndexData:
    definition: IndexDef
    holdings: list[Token]
    weights: np.ndarray  # fractions summing to 1
    start: int  # inception day index
    level: np.ndarray  # per day from start
    market_cap: np.ndarray
    volume: np.ndarray


def _build(svc: DataService, d: IndexDef) -> IndexData:
    m = svc.market
    start = svc.cal.index(INCEPTION)
    pool = [
        t
        for t in svc.universe.tokens
        if t.rank >= d.rank_from
        and t.peg is None
        and (d.category is None or d.category in t.categories)
        and m.series(t).start <= start
    ]
    holdings = pool[:10]
    caps = np.array([t.market_cap for t in holdings], dtype=float)
    weights = caps / caps.sum() if d.cap_weighted else np.full(len(holdings), 1.0 / len(holdings))
    closes = np.vstack([m.series(t).close[start - m.series(t).start :] for t in holdings])
    rel = closes / closes[:, :1]
    level = BASE_LEVEL * (weights[:, None] * rel).sum(axis=0)
    mcaps = np.vstack([t.market_cap * closes[k] / closes[k, -1] for k, t in enumerate(holdings)]).sum(axis=0)
    vols = np.vstack([m.series(t).volume[start - m.series(t).start :] for t in holdings]).sum(axis=0)
    return IndexData(d, holdings, weights, start, level, mcaps, vols)


def _all(svc: DataService) -> dict[int, IndexData]:
    return svc._memo("indices", lambda: {d.id: _build(svc, d) for d in INDEX_DEFS})


def _chg(x: np.ndarray, k: int) -> float:
    return round((float(x[-1]) / float(x[-1 - k]) - 1.0) * 100.0, 4)


def index_rows(svc: DataService, q: P.IndicesQuery) -> list[dict[str, Any]]:
    rows = []
    for idx in _all(svc).values():
        d = idx.definition
        if q.indicesType and d.kind != q.indicesType:
            continue
        grades = np.array([float(svc.market.series(t).tm_grade[-1]) for t in idx.holdings])
        gainers = sorted(
            idx.holdings, key=lambda t: -float(svc.market.series(t).close[-1] / svc.market.series(t).close[-2])
        )[:3]
        rows.append(
            {
                "ID": d.id,
                "NAME": d.name,
                "TICKER": d.ticker,
                "PRICE": round(float(idx.level[-1]), 4),
                "COINS": len(idx.holdings),
                "24H": _chg(idx.level, 1),
                "7D": _chg(idx.level, 7),
                "1M": _chg(idx.level, 30),
                "24H_VOLUME": round(float(idx.volume[-1]), 2),
                "INDEX_GRADE": round(float((grades * idx.weights).sum()), 2),
                "ALL_TIME": round((float(idx.level[-1]) / BASE_LEVEL - 1.0) * 100.0, 4),
                "MARKET_CAP": round(float(idx.market_cap[-1]), 2),
                "TOP_GAINERS_ICONS": [f"{ICON_BASE}/{t.slug}.png" for t in gainers],
            }
        )
    return rows[q.offset : q.offset + q.limit]


def holdings_rows(svc: DataService, q: P.IndexHoldingsQuery) -> list[dict[str, Any]]:
    idx = _all(svc).get(q.id)
    if idx is None:
        return []
    out: list[dict[str, Any]] = []
    for t, w in zip(idx.holdings, idx.weights, strict=False):
        s = svc.market.series(t)
        i0 = idx.start - s.start
        out.append(
            {
                "TOKEN_ID": t.token_id,
                "TOKEN_NAME": t.name,
                "TOKEN_SYMBOL": t.symbol,
                "COIN": t.name,
                "CG_ID": t.slug,
                "WEIGHT": round(float(w) * 100.0, 4),
                "MARKET_CAP": round(t.market_cap, 2),
                "PRICE": float(f"{float(s.close[-1]):.10g}"),
                "CURRENT_ROI": round((float(s.close[-1]) / float(s.close[i0]) - 1.0) * 100.0, 4),
                "TRADER_GRADE": round(float(s.trader_grade[-1]), 2),
                "TRADER_GRADE_CHANGE_24H": round(
                    (float(s.trader_grade[-1]) / float(s.trader_grade[-2]) - 1.0) * 100.0, 2
                ),
                "ICON": f"{ICON_BASE}/{t.slug}.png",
                "DATE": svc.cal.iso(svc.cal.last),
            }
        )
    out.sort(key=lambda r: -r["WEIGHT"])
    return out


def performance_rows(svc: DataService, q: P.IndexPerformanceQuery) -> list[dict[str, Any]]:
    idx = _all(svc).get(q.id)
    if idx is None:
        return []
    lo, hi = svc.day_window(q)
    lo = max(lo, idx.start)
    rows = []
    for day, _ in page_series([(lo, hi)], q.offset, q.limit):
        i = day - idx.start
        rows.append(
            {
                "ID": idx.definition.id,
                "DATE": svc.cal.iso(day),
                "INDEX_CUMULATIVE_ROI": round(float(idx.level[i]) / BASE_LEVEL - 1.0, 6),
                "MARKET_CAP": round(float(idx.market_cap[i]), 2),
                "VOLUME": round(float(idx.volume[i]), 2),
                "FDV": round(float(idx.market_cap[i]) * 1.25, 2),
            }
        )
    return rows
