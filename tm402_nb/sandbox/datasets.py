"""Rows for every endpoint, built from the one synthetic market.

Field names, their order, date formats and row order follow the reference
catalogue (§4): upper-case keys, daily ``DATE`` as ``2025-04-10T00:00:00.000Z``,
hourly ``TIMESTAMP``, newest first. A builder returns the rows of the requested
page; an empty list becomes the real API's ``Data not found`` answer upstream.

Under a profile that answers trading-signals in lowercase (``field_case``), its
rows have the fields the current trading-signals guide lists (``slug``,
``token_signal_str``, ``token_trend_str``, ``app_link``, ``tm_grade``,
``fundamental_grade``; no trader or investor grade): the lowercase fields come
with the guide's field set, not only with another case.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

import numpy as np

from . import params as P
from .market import DailySeries, Market
from .paging import page_points, page_series
from .universe import Token

Row = dict[str, Any]
_Builder = TypeVar("_Builder", bound=Callable[..., list[Row]])

#: Names of the DataService methods that build an endpoint's rows. The catalogue names each
#: endpoint's builder as a string and routes_v2 calls it by that name, so no code refers to these
#: methods directly; the marker says so to readers and to vulture (``ignore_decorators``), and a
#: test checks that this set and the catalogue's builders are the same.
BUILDERS: set[str] = set()


def builder(method: _Builder) -> _Builder:
    """Mark a DataService method as the builder the catalogue names for an endpoint."""
    BUILDERS.add(method.__name__)
    return method


class InvalidQuery(ValueError):
    """The sandbox refuses a request's parameters (answered as a 400 ``invalid_parameter``).

    For combinations the query models cannot check alone (e.g. a required filter). Not the
    client's ``ParamError``, which stops a bad call before it is sent.
    """

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param
        self.message = message


def num(x: float, sig: int = 10) -> float:
    """A float rounded to ``sig`` significant digits (keeps JSON short and stable)."""
    x = float(x)
    if x == 0.0 or not math.isfinite(x):
        return 0.0 if not math.isfinite(x) else x
    return float(f"{x:.{sig}g}")


def g2(x: float) -> float:
    return round(float(x), 2)


def pct(a: float, b: float) -> float:
    return round((float(a) / float(b) - 1.0) * 100.0, 4) if b else 0.0


def grade_signal(grade: float) -> str:
    if grade >= 80:
        return "Strong Buy"
    if grade >= 60:
        return "Buy"
    if grade > 40:
        return "Neutral"
    if grade > 20:
        return "Sell"
    return "Strong Sell"


def momentum_label(change_pct: float) -> str:
    if abs(change_pct) < 0.05:
        return "No Momentum"
    if change_pct >= 5:
        return "Momentum Surging"
    if change_pct > 0.5:
        return "Gaining Momentum"
    if change_pct >= -0.5:
        return "Holding Steady"
    if change_pct > -5:
        return "Losing Momentum"
    return "Momentum Crashing"


def grade_class(t: Token) -> str:
    if t.slug in ("bitcoin", "litecoin", "bitcoin-cash", "monero"):
        return "storeOfValue"
    if t.rank <= 25:
        return "blueChip"
    if t.rank <= 100:
        return "emerging"
    if t.rank <= 200:
        return "speculative"
    return "highRisk"


class DataService:
    """Builds endpoint rows from a :class:`Market`; ``docs_signals``: trading-signals rows as the
    current guide documents them (lowercase, its field set)."""

    def __init__(self, market: Market, *, docs_signals: bool = False) -> None:
        self.market = market
        self.docs_signals = docs_signals
        self.cal = market.calendar
        self.universe = market.universe
        self._lock = threading.Lock()
        self._cache: dict[str, Any] = {}

    # -- helpers ------------------------------------------------------------------------
    def _memo(self, key: str, build: Callable[[], Any]) -> Any:
        hit = self._cache.get(key)
        if hit is None:
            hit = build()
            with self._lock:
                self._cache.setdefault(key, hit)
        return hit

    def select(self, q: Any, *, required: bool = False) -> list[Token]:
        """Tokens for a query's token filters (and market filters when the model has them)."""
        if required and not q.has_token_filter:
            raise InvalidQuery("token_id", "token_id is required (or symbol / token_name) for this endpoint")
        kw: dict[str, Any] = {}
        if isinstance(q, P.TokenParams):
            kw.update(token_ids=q.ids, symbols=q.symbols, names=q.names)
        if isinstance(q, (P.MarketFilterParams, P.TokensQuery)):
            kw.update(categories=q.categories, exchanges=q.exchanges)
        if isinstance(q, P.MarketFilterParams):
            kw.update(min_market_cap=q.marketcap, min_volume=q.volume, min_fdv=q.fdv)
        if isinstance(q, P.TokensQuery):
            kw.update(blockchain_addresses=q.addresses)
        return self.universe.select(**kw)

    def day_window(self, q: P.DateParams) -> tuple[int, int]:
        lo = self.cal.index(q.start) if q.start else 0
        hi = self.cal.index(q.end) if q.end else self.cal.last
        return max(lo, 0), min(hi, self.cal.last)

    @staticmethod
    def _ident(t: Token) -> Row:
        return {"TOKEN_ID": t.token_id, "TOKEN_NAME": t.name, "TOKEN_SYMBOL": t.symbol}

    def _daily_page(self, q: Any, tokens: list[Token]) -> list[tuple[int, DailySeries]]:
        lo, hi = self.day_window(q)
        spans = [self.market.span(t) for t in tokens]
        ranges = [(max(lo, a), min(hi, b)) for a, b in spans]
        return [(t, self.market.series(tokens[k])) for t, k in page_series(ranges, q.offset, q.limit)]

    # -- catalogue: tokens -----------------------------------------------------------------
    @builder
    def tokens(self, q: P.TokensQuery) -> list[Row]:
        rows = []
        for t in self.select(q)[q.offset : q.offset + q.limit]:
            rows.append(
                {
                    **self._ident(t),
                    "EXCHANGE_LIST": list(t.exchanges),
                    "CATEGORY_LIST": list(t.categories),
                    "CONTRACT_ADDRESS": {t.chain: t.contract_address} if t.chain else {},
                    "TM_LINK": t.tm_link,
                }
            )
        return rows

    @builder
    def price(self, q: P.PriceQuery) -> list[Row]:
        out = []
        for t in self.select(q, required=True):
            s = self.market.series(t)
            out.append({**self._ident(t), "CURRENT_PRICE": num(s.close[-1])})
        return out

    @builder
    def top_market_cap(self, q: P.TopMarketCapQuery) -> list[Row]:
        return [
            {
                **self._ident(t),
                "EXCHANGE_LIST": list(t.exchanges),
                "CATEGORY_LIST": list(t.categories),
                "TM_LINK": t.tm_link,
            }
            for t in self.universe.tokens[q.offset : q.offset + q.top_k]
        ]

    # -- OHLCV ------------------------------------------------------------------------------
    @builder
    def daily_ohlcv(self, q: P.SeriesQuery) -> list[Row]:
        rows = []
        for day, s in self._daily_page(q, self.select(q)):
            i = s.pos(day)
            rows.append(
                {
                    **self._ident(s.token),
                    "DATE": self.cal.iso(day),
                    "OPEN": num(s.open[i]),
                    "HIGH": num(s.high[i]),
                    "LOW": num(s.low[i]),
                    "CLOSE": num(s.close[i]),
                    "VOLUME": num(s.volume[i]),
                }
            )
        return rows

    def _hourly_page(
        self, q: Any, tokens: list[Token], window: tuple[int, int] | None
    ) -> list[tuple[int, DailySeries]]:
        lo, hi = window if window is not None else (0, self.cal.last)
        spans = [self.market.span(t) for t in tokens]
        ranges = [(max(lo, a) * 24, min(hi, b) * 24 + 23) for a, b in spans]
        return [(h, self.market.series(tokens[k])) for h, k in page_series(ranges, q.offset, q.limit)]

    @builder
    def hourly_ohlcv(self, q: P.SeriesQuery) -> list[Row]:
        rows = []
        for hour, s in self._hourly_page(q, self.select(q), self.day_window(q)):
            day, h = divmod(hour, 24)
            o, hi, lo, c, v = self.market.hourly_day(s.token, day)
            rows.append(
                {
                    **self._ident(s.token),
                    "TIMESTAMP": self.cal.iso_hour(hour),
                    "OPEN": num(o[h]),
                    "HIGH": num(hi[h]),
                    "LOW": num(lo[h]),
                    "CLOSE": num(c[h]),
                    "VOLUME": num(v[h]),
                }
            )
        return rows

    # -- signals -------------------------------------------------------------------------------
    def _signal_row(self, s: DailySeries, day: int) -> Row:
        if self.docs_signals:
            return self._docs_signal_row(s, day)
        i = s.pos(day)
        t = s.token
        return {
            **self._ident(t),
            "DATE": self.cal.iso(day),
            "TRADING_SIGNAL": int(s.signal[i]),
            "TOKEN_TREND": int(s.trend[i]),
            "TRADING_SIGNALS_RETURNS": num(s.strategy_roi[i], 8),
            "HOLDING_RETURNS": num(s.holding_roi[i], 8),
            "tm_link": t.slug,
            "TM_TRADER_GRADE": g2(s.trader_grade[i]),
            "TM_INVESTOR_GRADE": g2(s.investor_grade[i]),
            "TM_LINK": t.tm_link,
        }

    def _docs_signal_row(self, s: DailySeries, day: int) -> Row:
        """The row of the current trading-signals guide: its fields, in its order, in lowercase.

        ``tm_grade`` is the short-term (trader) grade, as the guide describes it; the strings are
        the guide's examples (bullish/bearish/neutral, up/down).
        """
        i = s.pos(day)
        t = s.token
        signal, trend = int(s.signal[i]), int(s.trend[i])
        return {
            "token_id": t.token_id,
            "token_name": t.name,
            "token_symbol": t.symbol,
            "slug": t.slug,
            "date": self.cal.iso(day),
            "trading_signal": signal,
            "token_signal_str": {1: "bullish", -1: "bearish"}.get(signal, "neutral"),
            "token_trend": trend,
            "token_trend_str": "up" if trend > 0 else "down",
            "trading_signals_returns": num(s.strategy_roi[i], 8),
            "holding_returns": num(s.holding_roi[i], 8),
            "app_link": t.tm_link,
            "tm_grade": g2(s.trader_grade[i]),
            "fundamental_grade": g2(s.fundamental_grade[i]),
        }

    @builder
    def trading_signals(self, q: P.TradingSignalsQuery) -> list[Row]:
        tokens = self.select(q)
        if q.signal is None:
            return [self._signal_row(s, day) for day, s in self._daily_page(q, tokens)]
        lo, hi = self.day_window(q)
        series = [self.market.series(t) for t in tokens]
        points: list[tuple[int, int]] = []
        for k, s in enumerate(series):
            a, b = max(lo, s.start), min(hi, s.end)
            if a > b:
                continue
            hits = np.nonzero(s.signal[a - s.start : b - s.start + 1] == q.signal)[0] + a
            points.extend((int(d), k) for d in hits)
        return [self._signal_row(series[k], day) for day, k in page_points(points, q.offset, q.limit)]

    @builder
    def hourly_trading_signals(self, q: P.HourlySignalsQuery) -> list[Row]:
        rows = []
        for hour, s in self._hourly_page(q, self.select(q, required=True), None):
            day, h = divmod(hour, 24)
            closes, sig, pos = self.market.hourly_signals_day(s.token, day)
            rows.append(
                {
                    "TIMESTAMP": self.cal.iso_hour(hour),
                    **self._ident(s.token),
                    "CLOSE": num(closes[h]),
                    "SIGNAL": str(int(sig[h])),
                    "POSITION": str(int(pos[h])),
                }
            )
        return rows

    # -- grades -------------------------------------------------------------------------------
    def _tm_grade_row(self, s: DailySeries, day: int, with_date: bool) -> Row:
        i = s.pos(day)
        j = max(i - 1, 0)
        tm_change = pct(s.tm_grade[i], s.tm_grade[j])
        row = self._ident(s.token)
        if with_date:
            row["DATE"] = self.cal.iso(day)
        row.update(
            {
                "FUNDAMENTAL_GRADE": g2(s.fundamental_grade[i]),
                "TM_GRADE": g2(s.tm_grade[i]),
                "TM_GRADE_24h_PCT_CHANGE": round(tm_change, 2),
                "TM_TRADER_GRADE_24H_CHANGE": round(pct(s.trader_grade[i], s.trader_grade[j]), 2),
                "QUANT_GRADE": g2(s.quant_grade[i]),
                "FUNDAMENTAL_GRADE_CLASS": grade_class(s.token),
                "TM_GRADE_SIGNAL": grade_signal(float(s.tm_grade[i])),
                "MOMENTUM": momentum_label(tm_change),
            }
        )
        return row

    def _sub_scores(self, t: Token) -> np.ndarray:
        rng = np.random.default_rng([self.market.seed, t.token_id, 3])
        return rng.normal(0.0, 8.0, 8)

    def _technology_row(self, s: DailySeries, day: int) -> Row:
        i = s.pos(day)
        g = float(s.technology_grade[i])
        o = self._sub_scores(s.token)

        def score(k: int) -> float:
            return g2(min(100.0, max(0.0, g + float(o[k]))))

        defi = "defi" in s.token.categories
        return {
            **self._ident(s.token),
            "DATE": self.cal.iso(day),
            "TECHNOLOGY_GRADE": g2(g),
            "ACTIVITY_SCORE": score(0),
            "SECURITY_SCORE": score(1),
            "REPOSITORY_SCORE": score(2),
            "COLLABORATION_SCORE": score(3),
            "DEFI_SCANNER_SCORE": score(4) if defi else None,
        }

    def _fundamental_row(self, s: DailySeries, day: int) -> Row:
        i = s.pos(day)
        g = float(s.fundamental_grade[i])
        o = self._sub_scores(s.token)
        score = lambda k, base=g: g2(min(100.0, max(0.0, base + o[k])))  # noqa: E731
        defi = "defi" in s.token.categories
        return {
            **self._ident(s.token),
            "DATE": self.cal.iso(day),
            "FUNDAMENTAL_GRADE": g2(g),
            "FUNDAMENTAL_GRADE_CLASS": grade_class(s.token),
            "COMMUNITY_SCORE": score(5),
            "EXCHANGE_SCORE": g2(min(100.0, 20.0 + 8.0 * len(s.token.exchanges) + o[6])),
            "VC_SCORE": score(7) if s.token.rank <= 150 else None,
            "TOKENOMICS_SCORE": score(4, g - 5.0),
            "DEFI_SCANNER_SCORE": score(3) if defi else None,
        }

    def _latest(self, q: Any, make: Callable[[DailySeries, int], Row], key: str | None = None) -> list[Row]:
        """One row per selected token, for the anchor day; rows of costly builders are cached by ``key``."""
        tokens = self.select(q)[q.offset : q.offset + q.limit]
        if key is None:
            return [make(self.market.series(t), self.cal.last) for t in tokens]
        rows = []
        for t in tokens:
            ck = f"{key}:{t.token_id}"
            row = self._cache.get(ck)
            if row is None:
                row = make(self.market.series(t), self.cal.last)
                with self._lock:
                    self._cache.setdefault(ck, row)
            rows.append(row)
        return rows

    @builder
    def tm_grade(self, q: P.LatestQuery) -> list[Row]:
        return self._latest(q, lambda s, d: self._tm_grade_row(s, d, False))

    @builder
    def tm_grade_history(self, q: P.SeriesQuery) -> list[Row]:
        return [self._tm_grade_row(s, d, True) for d, s in self._daily_page(q, self.select(q))]

    @builder
    def technology_grade(self, q: P.LatestQuery) -> list[Row]:
        return self._latest(q, self._technology_row)

    @builder
    def technology_grade_history(self, q: P.SeriesQuery) -> list[Row]:
        return [self._technology_row(s, d) for d, s in self._daily_page(q, self.select(q))]

    @builder
    def fundamental_grade(self, q: P.LatestQuery) -> list[Row]:
        return self._latest(q, self._fundamental_row)

    @builder
    def fundamental_grade_history(self, q: P.SeriesQuery) -> list[Row]:
        return [self._fundamental_row(s, d) for d, s in self._daily_page(q, self.select(q))]

    # -- market-wide -----------------------------------------------------------------------------
    def _market_metrics(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        def build() -> tuple[np.ndarray, ...]:
            mcap = self.market.total_market_cap()
            logm = np.log(mcap)
            mom = logm - np.concatenate([np.full(14, logm[0]), logm[:-14]])
            perc = np.clip(50 + 40 * np.tanh(mom / 0.08), 2, 98)
            from .market import _ema_trend

            trend = _ema_trend(logm, fast=10, slow=30, band=0.004)
            signal = np.zeros_like(trend)
            signal[1:] = np.where(trend[1:] != trend[:-1], trend[1:], 0)
            return mcap, perc, signal, trend

        return self._memo("market-metrics", build)

    @builder
    def market_metrics(self, q: P.MarketMetricsQuery) -> list[Row]:
        mcap, perc, signal, trend = self._market_metrics()
        lo, hi = self.day_window(q)
        return [
            {
                "DATE": self.cal.iso(d),
                "TOTAL_CRYPTO_MCAP": num(mcap[d], 12),
                "TM_GRADE_PERC_HIGH_COINS": g2(perc[d]),
                "TM_GRADE_SIGNAL": int(signal[d]),
                "LAST_TM_GRADE_SIGNAL": int(trend[d]),
            }
            for d, _ in page_series([(lo, hi)], q.offset, q.limit)
        ]

    # -- moonshots ---------------------------------------------------------------------------------
    def _moonshots(self) -> dict[str, list[Row]]:
        def build() -> dict[str, list[Row]]:
            last = self.cal.last
            active: list[tuple[int, Row]] = []
            past: list[tuple[int, Row]] = []
            for t in self.universe.tokens:
                if t.rank <= 30 or t.peg is not None:
                    continue
                s = self.market.series(t)
                flips = np.nonzero(s.signal != 0)[0]
                i_last = len(s.close) - 1
                for n_flip, i in enumerate(flips):
                    day = s.start + int(i)
                    if s.signal[i] != 1 or day < last - 365:
                        continue
                    if s.trader_grade[i] < 55:
                        continue
                    later = flips[n_flip + 1 :]
                    end_i = int(later[0]) if len(later) else None
                    j = end_i if end_i is not None else i_last
                    row = {
                        "LAST_TRADING_SIGNAL_TIME": self.cal.iso(s.start + (end_i if end_i is not None else int(i))),
                        "TM_TRADER_GRADE": f"{s.trader_grade[j]:.2f}",
                        "TM_TRADER_GRADE_24H_PCT_CHANGE": f"{pct(s.trader_grade[j], s.trader_grade[max(j - 1, 0)]):.2f}",
                        "PRICE_CHANGE_PERCENTAGE_7D_IN_CURRENCY": f"{pct(s.close[j], s.close[max(j - 7, 0)]):.2f}",
                        "MARKET_CAP": f"{t.market_cap * s.close[j] / s.close[-1]:.2f}",
                        "VOLUME_24H": f"{s.volume[j]:.2f}",
                        "MOONSHOT_END_AT": self.cal.iso(s.start + end_i) if end_i is not None else None,
                        "MOONSHOT_AT": self.cal.iso(day),
                        "MOONSHOT_ROI": round(pct(s.close[j], s.close[i]), 2),
                        "TOKEN_NAME": t.name,
                        "TOKEN_SYMBOL": t.symbol,
                    }
                    if end_i is None:
                        if day >= last - 45:
                            active.append((day, row))
                    else:
                        past.append((day, row))
            active.sort(key=lambda x: (-x[0], x[1]["TOKEN_NAME"]))
            past.sort(key=lambda x: (-x[0], x[1]["TOKEN_NAME"]))
            return {"active": [r for _, r in active], "past": [r for _, r in past]}

        return self._memo("moonshots", build)

    @builder
    def moonshot_tokens(self, q: P.MoonshotQuery) -> list[Row]:
        return self._moonshots()[q.type][q.offset : q.offset + q.limit]

    # -- per-token analytics -----------------------------------------------------------------------
    @builder
    def resistance_support(self, q: P.LatestQuery) -> list[Row]:
        return self._latest(q, self._levels_row, "_levels_row")

    def _levels_row(self, s: DailySeries, day: int) -> Row:
        close = s.close
        w = 15
        levels: list[tuple[int, float]] = []
        if len(close) > 2 * w + 1:
            win = np.lib.stride_tricks.sliding_window_view(close, 2 * w + 1)
            centre = close[w:-w]
            pivots = np.nonzero((centre == win.max(axis=1)) | (centre == win.min(axis=1)))[0] + w
            for i in pivots[::-1]:
                level = float(close[i])
                if all(abs(level / lv - 1) > 0.03 for _, lv in levels):
                    levels.append((int(i), level))
                if len(levels) >= 12:
                    break
        levels.sort()
        return {
            **self._ident(s.token),
            "DATE": self.cal.iso(day),
            "HISTORICAL_RESISTANCE_SUPPORT_LEVELS": [
                {"date": self.cal.day_str(s.start + i), "level": num(lv, 8)} for i, lv in levels
            ],
        }

    @builder
    def price_prediction(self, q: P.LatestQuery) -> list[Row]:
        return self._latest(q, self._prediction_row, "_prediction_row")

    def _prediction_row(self, s: DailySeries, day: int) -> Row:
        t = s.token
        total = float(self.market.total_market_cap()[-1])
        price = float(s.close[-1])
        mcap = t.market_cap
        tilt = (float(s.tm_grade[-1]) - 50.0) / 100.0
        scenarios = []
        for mult in (0.5, 1.0, 2.0, 4.0):
            base = mcap * mult * (1.0 + tilt)
            entry: dict[str, Any] = {"scenario": mult, "total_mcap_scenario": num(total * mult, 12)}
            for name, k in (("bear", 0.6), ("base", 1.0), ("moon", 1.8)):
                m = base * k
                entry[f"predicted_mcap_{name}"] = num(m, 12)
                entry[f"predicted_fdv_{name}"] = num(m * 1.25, 12)
                entry[f"predicted_price_{name}"] = num(price * m / mcap, 10)
                entry[f"predicted_roi_{name}"] = round(m / mcap - 1.0, 6)
            scenarios.append(entry)
        peers = [p.symbol for p in self.universe.tokens if p.categories[:1] == t.categories[:1] and p is not t][:3]
        return {
            "DATE": self.cal.iso(day),
            **self._ident(t),
            "PRICE_PREDICTION": {
                "token_mcap": num(mcap, 12),
                "total_mcap": num(total, 12),
                "category_name": t.categories[0],
                "current_price": num(price),
                "predicted_date": (self.cal.date(day) + timedelta(days=365)).strftime("%Y-%m-%dT00:00:00.000Z"),
                "similar_tokens_info": [{"symbol": p} for p in peers],
                "avg_past_performance": round(float(np.mean(s.holding_roi[-365:])), 6),
                "self_past_performance": round(float(s.close[-1] / s.close[max(0, len(s.close) - 366)] - 1.0), 6),
                "price_prediction": scenarios,
            },
        }

    def _top100_returns(self) -> tuple[list[Token], np.ndarray]:
        def build() -> tuple[list[Token], np.ndarray]:
            peers = [t for t in self.universe.tokens if t.peg is None][:100]
            mat = np.vstack([np.diff(np.log(self.market.series(t).close[-91:])) for t in peers])
            return peers, mat

        return self._memo("top100", build)

    @builder
    def correlation(self, q: P.LatestFilteredQuery) -> list[Row]:
        return self._latest(q, self._correlation_row, "_correlation_row")

    def _correlation_row(self, s: DailySeries, day: int) -> Row:
        peers, mat = self._top100_returns()
        mine = np.diff(np.log(s.close[-91:]))
        x = mine - mine.mean()
        y = mat - mat.mean(axis=1, keepdims=True)
        denom = np.sqrt((x * x).sum() * (y * y).sum(axis=1))
        corr = np.where(denom > 0, (y @ x) / np.where(denom > 0, denom, 1), 0.0)
        pairs = [(p.symbol, float(c)) for p, c in zip(peers, corr, strict=False) if p.token_id != s.token.token_id]
        pairs.sort(key=lambda pc: -pc[1])
        chosen = pairs[:10] + pairs[-10:]
        return {
            **self._ident(s.token),
            "DATE": self.cal.iso(day),
            "TOP_CORRELATION": [{"token": sym, "correlation": round(c, 4)} for sym, c in chosen],
        }

    @builder
    def quantmetrics(self, q: P.LatestFilteredQuery) -> list[Row]:
        return self._latest(q, self._quant_row, "_quant_row")

    def _quant_row(self, s: DailySeries, day: int) -> Row:
        r = np.expm1(np.diff(np.log(s.close)))
        years = max(len(r) / 365.0, 1e-9)
        mean, std = float(r.mean()), float(r.std())
        downside = float(np.sqrt(np.mean(np.minimum(r, 0.0) ** 2)))
        equity = s.close / np.maximum.accumulate(s.close)
        mdd = float(equity.min() - 1.0)
        total = float(s.close[-1] / s.close[0] - 1.0)
        cagr = (1.0 + total) ** (1.0 / years) - 1.0 if total > -1 else -1.0
        p5, p95 = np.percentile(r, [5, 95])
        gains, losses = float(r[r > 0].sum()), float(-r[r < 0].sum())
        z = (r - mean) / std if std > 0 else np.zeros_like(r)
        return {
            **self._ident(s.token),
            "DATE": self.cal.iso(day),
            "VOLATILITY": round(std * math.sqrt(365), 6),
            "ALL_TIME_RETURN": round(total, 6),
            "CAGR": round(cagr, 6),
            "SHARPE": round(mean / std * math.sqrt(365), 4) if std > 0 else 0.0,
            "SORTINO": round(mean / downside * math.sqrt(365), 4) if downside > 0 else 0.0,
            "MAX_DRAWDOWN": round(mdd, 6),
            "SKEW": round(float(np.mean(z**3)), 4),
            "TAIL_RATIO": round(abs(float(p95) / float(p5)), 4) if p5 else 0.0,
            "RISK_REWARD_RATIO": round(cagr / abs(mdd), 4) if mdd else 0.0,
            "PROFIT_FACTOR": round(gains / losses, 4) if losses else 0.0,
            "KURTOSIS": round(float(np.mean(z**4)) - 3.0, 4),
            "DAILY_VALUE_AT_RISK": round(float(-p5), 6),
            "DAILY_RETURN_AVG": round(mean, 8),
            "DAILY_RETURN_STD": round(std, 8),
        }

    # -- text-heavy and index endpoints live in their own modules ---------------------------------------
    @builder
    def ai_reports(self, q: P.LatestQuery) -> list[Row]:
        from .texts import ai_report

        return self._latest(q, lambda s, d: ai_report(self, s, d), "ai_report")

    @builder
    def crypto_investors(self, q: P.CryptoInvestorsQuery) -> list[Row]:
        from .texts import investors

        return investors()[q.offset : q.offset + q.limit]

    @builder
    def indices(self, q: P.IndicesQuery) -> list[Row]:
        from .indices import index_rows

        return index_rows(self, q)

    @builder
    def indices_holdings(self, q: P.IndexHoldingsQuery) -> list[Row]:
        from .indices import holdings_rows

        return holdings_rows(self, q)

    @builder
    def indices_performance(self, q: P.IndexPerformanceQuery) -> list[Row]:
        from .indices import performance_rows

        return performance_rows(self, q)

    # -- the AI agent ---------------------------------------------------------------------
    def tmai_answer(self, body: P.TmaiBody) -> dict[str, Any]:
        """A deterministic agent answer to the last user turn: the same question, the same answer.

        It names a few tokens picked by the question's hash, with their TM Grade and trading
        signal on the anchor day, so the answer reads like the real agent's and tests can check it.
        """
        question = body.question
        if question is None:
            raise InvalidQuery("messages", "messages needs at least one {'user': '...'} turn")
        digest = hashlib.sha256(question.strip().lower().encode()).digest()
        top = [t for t in self.universe.tokens if t.rank <= 50]
        picks = [top[digest[i] % len(top)] for i in range(3)]
        lines = []
        for t in dict.fromkeys(picks):
            row = self._tm_grade_row(self.market.series(t), self.cal.last, True)
            lines.append(
                f"- **{t.name} ({t.symbol})**: TM Grade {row['TM_GRADE']:.1f}, signal {row['TM_GRADE_SIGNAL']}"
            )
        answer = (
            f"Here is what Token Metrics data says as of {self.cal.iso(self.cal.last)} (sandbox, synthetic):\n\n"
            + "\n".join(lines)
            + "\n\nGrades combine technology, fundamentals and market momentum; this is not financial advice."
        )
        thread = [m.model_dump(exclude_none=True) for m in body.messages] + [{"chatbot": answer}]
        return {"success": True, "message": "AI Chatbot response successful", "answer": answer, "thread": thread}
