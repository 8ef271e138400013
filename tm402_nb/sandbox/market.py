"""Deterministic synthetic market: one price path per token, and everything derived from it.

Each token's daily path is a seeded random walk driven by a shared market factor
(so tokens correlate as real ones do), pinned so that the last close equals the
token's anchor price. Grades, trends and signals are computed from that one path:
the trader grade follows 7-day momentum, the TM grade blends it with quant and
fundamental grades, and the trend is an EMA crossover whose flips are the
trading signals. Hourly bars are generated per (token, day) so that they
aggregate exactly to the daily bar: first open, last close, max high, min low,
summed volume.

Paths are built lazily on first use (about a millisecond per token) and cached.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np

from .universe import GENESIS, Token, Universe

#: The day ``data_dates="fixed"`` pins the data to when no other anchor is given (the sandbox's
#: only anchor before it moved to yesterday).
FIXED_ANCHOR = date(2026, 10, 31)
#: The earliest anchor: four months of data after GENESIS.
MIN_ANCHOR = GENESIS + timedelta(days=121)


def default_anchor(today: date | None = None) -> date:
    """The newest day of data by default: yesterday (UTC), so "the last week" always has data.

    Everything is a pure function of (seed, anchor): two sandboxes started on the same UTC day
    with the same seed serve the same rows. A server keeps the anchor it started with.
    """
    return (today or datetime.now(UTC).date()) - timedelta(days=1)


_HOURS = np.arange(1, 25, dtype=float) / 24.0


class Calendar:
    """Day indices: 0 is GENESIS (2019-01-01), ``last`` is the anchor day."""

    def __init__(self, anchor: date | None = None) -> None:
        anchor = anchor or default_anchor()
        if anchor < MIN_ANCHOR:
            raise ValueError(
                f"anchor {anchor} is too early (data starts {GENESIS}; the earliest anchor is {MIN_ANCHOR})"
            )
        self.anchor = anchor
        self.last = (anchor - GENESIS).days
        self._iso = [(GENESIS + timedelta(days=i)).strftime("%Y-%m-%dT00:00:00.000Z") for i in range(self.last + 1)]

    def index(self, d: date) -> int:
        return (d - GENESIS).days

    def date(self, idx: int) -> date:
        return GENESIS + timedelta(days=int(idx))

    def iso(self, idx: int) -> str:
        return self._iso[idx]

    def iso_hour(self, hour_idx: int) -> str:
        day, hour = divmod(int(hour_idx), 24)
        return self._iso[day][:11] + f"{hour:02d}:00:00.000Z"

    def day_str(self, idx: int) -> str:
        return self._iso[idx][:10]


@dataclass
class DailySeries:
    """Daily OHLCV and derived indicators of one token; arrays start at day ``start``."""

    token: Token
    start: int
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    trader_grade: np.ndarray
    quant_grade: np.ndarray
    fundamental_grade: np.ndarray
    technology_grade: np.ndarray
    tm_grade: np.ndarray
    investor_grade: np.ndarray
    trend: np.ndarray  # +1 bullish / -1 bearish, the last signal's direction
    signal: np.ndarray  # +1 / -1 on the day the trend flips, else 0
    strategy_roi: np.ndarray  # cumulative ROI of following the signals (long/short)
    holding_roi: np.ndarray  # cumulative ROI of holding

    @property
    def end(self) -> int:
        return self.start + len(self.close) - 1

    def pos(self, day: int) -> int:
        return day - self.start


def _ema_trend(logc: np.ndarray, fast: int = 12, slow: int = 26, band: float = 0.004) -> np.ndarray:
    """+1/-1 trend from an EMA crossover with a small hysteresis band (no flip-flopping)."""
    af, aslow = 2.0 / (fast + 1), 2.0 / (slow + 1)
    ef = es = float(logc[0])
    state = 1
    out = [0] * len(logc)
    for i, v in enumerate(logc.tolist()):
        ef += af * (v - ef)
        es += aslow * (v - es)
        d = ef - es
        if state < 0 and d > band:
            state = 1
        elif state > 0 and d < -band:
            state = -1
        out[i] = state
    return np.asarray(out, dtype=np.int8)


def _momentum(logc: np.ndarray, k: int) -> np.ndarray:
    shifted = (
        np.concatenate([np.full(min(k, len(logc)), logc[0]), logc[:-k]])
        if len(logc) > k
        else np.full_like(logc, logc[0])
    )
    return logc - shifted


def _smooth(x: np.ndarray, span: int) -> np.ndarray:
    a = 2.0 / (span + 1)
    acc = float(x[0])
    out = [0.0] * len(x)
    for i, v in enumerate(x.tolist()):
        acc += a * (v - acc)
        out[i] = acc
    return np.asarray(out)


def _rolling_mean(x: np.ndarray, k: int) -> np.ndarray:
    c = np.cumsum(np.concatenate([[0.0], x]))
    idx = np.arange(1, len(x) + 1)
    lo = np.maximum(0, idx - k)
    return (c[idx] - c[lo]) / (idx - lo)


class Market:
    """All synthetic market data of one sandbox, for one seed."""

    def __init__(self, seed: int = 402, anchor: date | None = None, universe: Universe | None = None) -> None:
        """``anchor``: the newest day of data (default: yesterday, UTC)."""
        self.seed = int(seed)
        self.calendar = Calendar(anchor)
        self.universe = universe or Universe()
        self._lock = threading.RLock()
        self._series: dict[int, DailySeries] = {}
        self._hourly: OrderedDict[tuple[int, int], tuple[np.ndarray, ...]] = OrderedDict()
        self._factor = self._market_factor()

    # -- market factor ----------------------------------------------------------------
    def _market_factor(self) -> np.ndarray:
        """Daily log returns of the whole market: regimes of drift and volatility."""
        n = self.calendar.last + 1
        rng = np.random.default_rng([self.seed, 0x4D4B54])
        out = np.empty(n)
        i = 0
        while i < n:
            length = int(rng.integers(25, 120))
            drift = rng.normal(0.0012, 0.002)
            vol = rng.uniform(0.018, 0.04)
            seg = min(length, n - i)
            out[i : i + seg] = drift + vol * rng.standard_normal(seg)
            i += seg
        # Pin the total: the whole market grows ~25x from 2019 to the anchor (as the real one did).
        target = 3.2 + rng.normal(0.0, 0.2)
        return out + (target - out.sum()) / n

    # -- daily series -------------------------------------------------------------------
    def series(self, token: Token | int) -> DailySeries:
        tid = token if isinstance(token, int) else token.token_id
        s = self._series.get(tid)
        if s is not None:
            return s
        with self._lock:
            s = self._series.get(tid)
            if s is None:
                s = self._build(self.universe.by_id[tid])
                self._series[tid] = s
            return s

    def span(self, token: Token) -> tuple[int, int]:
        """First and last day index of a token's data, without building its path."""
        cal = self.calendar
        return min(max(0, cal.index(token.start)), cal.last - 60), cal.last

    def _build(self, t: Token) -> DailySeries:
        cal = self.calendar
        start = self.span(t)[0]
        n = cal.last - start + 1
        rng = np.random.default_rng([self.seed, t.token_id, 1])
        z = rng.standard_normal(n)
        if t.peg == "usd":
            close = 1.0 + np.clip(_smooth(rng.standard_normal(n) * 0.0012, 3), -0.004, 0.004)
            close[-1] = t.price
            r = np.diff(np.log(close), prepend=math.log(close[0]))
            wick = 0.0008
        elif t.peg is not None:
            base = self.series(self.universe.by_slug[t.peg])
            bclose = (
                base.close[start - base.start :]
                if start >= base.start
                else np.concatenate([np.full(base.start - start, base.close[0]), base.close])
            )
            close = bclose * np.exp(np.clip(rng.standard_normal(n) * 0.0015, -0.006, 0.006))
            close[-1] = bclose[-1] * (1 + 0.0004 * (rng.random() - 0.5))
            r = np.diff(np.log(close), prepend=math.log(close[0]))
            wick = 0.25 * float(np.std(r))
        else:
            # Occasional jumps give the fat tails that make drawdown and kurtosis meaningful.
            jumps = (rng.random(n) < 0.01) * rng.normal(0.0, 4.0 * max(t.vol, 0.01), n)
            idio = np.cumsum(t.vol * z + jumps)
            # Bridge the idiosyncratic part to a moderate total so no token drifts absurdly.
            frac = np.arange(1, n + 1) / n
            idio = idio - frac * idio[-1] + frac * rng.normal(0.0, 0.8)
            r = t.beta * self._factor[start:] + np.diff(idio, prepend=0.0)
            logc = np.cumsum(r)
            logc = logc - logc[-1] + math.log(t.price)
            close = np.exp(logc)
            wick = 0.35 * math.sqrt((t.beta * 0.028) ** 2 + t.vol**2)
        logc = np.log(close)
        open_ = np.empty(n)
        open_[0] = close[0] * math.exp(-float(r[0]))
        open_[1:] = close[:-1]
        hi_noise = np.abs(rng.standard_normal(n)) * wick
        lo_noise = np.abs(rng.standard_normal(n)) * wick
        high = np.maximum(open_, close) * np.exp(hi_noise)
        low = np.minimum(open_, close) * np.exp(-lo_noise)
        turnover = 0.02 + 0.06 * rng.random()
        volume = t.market_cap * turnover * (close / close[-1]) ** 0.8 * np.exp(0.3 * rng.standard_normal(n))
        volume *= 1.0 + 8.0 * np.abs(r)

        sigma = max(float(np.std(r)), 1e-4)
        trader_raw = np.tanh(_momentum(logc, 7) / (sigma * math.sqrt(7)) * 0.7)
        trader = np.clip(_smooth(50 + 45 * trader_raw, 3), 1, 99)
        mean90 = _rolling_mean(r, 90)
        sq90 = _rolling_mean(r * r, 90)
        sd90 = np.sqrt(np.maximum(sq90 - mean90**2, 1e-12))
        quant = np.clip(50 + 40 * np.tanh(mean90 / sd90 * math.sqrt(365) / 2.5), 1, 99)
        fundamental = np.clip(t.fundamental + 6 * np.tanh(_momentum(logc, 90) / (sigma * math.sqrt(90))), 1, 99)
        phase = rng.uniform(0, 2 * math.pi)
        technology = np.clip(t.technology + 3 * np.sin(2 * math.pi * np.arange(n) / 365.0 + phase), 1, 99)
        tm = np.clip(0.45 * trader + 0.25 * quant + 0.30 * fundamental, 1, 99)
        investor = np.clip(
            0.5 * fundamental + 0.3 * technology + 0.2 * (50 + 40 * np.tanh(_momentum(logc, 90) / (sigma * 10))), 1, 99
        )
        trend = _ema_trend(logc, band=0.25 * sigma)
        signal = np.zeros(n, dtype=np.int8)
        signal[1:] = np.where(trend[1:] != trend[:-1], trend[1:], 0)
        simple = np.expm1(np.diff(logc, prepend=logc[0]))
        position = np.concatenate([[trend[0]], trend[:-1]]).astype(float)
        strategy = np.cumprod(1.0 + position * simple) - 1.0
        holding = close / close[0] - 1.0
        return DailySeries(
            t,
            start,
            open_,
            high,
            low,
            close,
            volume,
            trader,
            quant,
            fundamental,
            technology,
            tm,
            investor,
            trend,
            signal,
            strategy,
            holding,
        )

    # -- hourly ---------------------------------------------------------------------------
    def hourly_day(
        self, token: Token | int, day: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """24 hourly bars (open, high, low, close, volume) of ``day`` that aggregate to its daily bar."""
        s = self.series(token)
        key = (s.token.token_id, day)
        with self._lock:
            hit = self._hourly.get(key)
            if hit is not None:
                self._hourly.move_to_end(key)
                return hit  # type: ignore[return-value]
        i = s.pos(day)
        o, h, lo, c, v = (float(s.open[i]), float(s.high[i]), float(s.low[i]), float(s.close[i]), float(s.volume[i]))
        rng = np.random.default_rng([self.seed, s.token.token_id, day, 2])
        spread = max(math.log(h / lo), 1e-6)
        steps = rng.standard_normal(24) * spread / 5.0
        walk = np.cumsum(steps)
        path = math.log(o) + _HOURS * (math.log(c) - math.log(o)) + (walk - _HOURS * walk[-1])
        closes = np.clip(np.exp(path), lo, h)
        closes[-1] = c
        opens = np.concatenate([[o], closes[:-1]])
        highs = np.minimum(np.maximum(opens, closes) * np.exp(np.abs(rng.standard_normal(24)) * spread / 8), h)
        lows = np.maximum(np.minimum(opens, closes) * np.exp(-np.abs(rng.standard_normal(24)) * spread / 8), lo)
        highs[int(rng.integers(0, 24))] = h
        lows[int(rng.integers(0, 24))] = lo
        weights = np.exp(0.4 * rng.standard_normal(24))
        vols = v * weights / weights.sum()
        out = (opens, highs, lows, closes, vols)
        with self._lock:
            self._hourly[key] = out
            if len(self._hourly) > 8192:
                self._hourly.popitem(last=False)
        return out

    def hourly_signals_day(self, token: Token | int, day: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Hourly (close, signal, position) of ``day``.

        Position is +1/-1 from a crossover of two exponentially weighted averages
        taken over a fixed 72-hour trailing window, so an hour's value never
        depends on which window a request asked for.
        """
        s = self.series(token)
        days = list(range(day - 4, day + 1))
        closes = np.concatenate([self.hourly_day(s.token, max(d, s.start))[3] for d in days])
        logc = np.log(closes)
        # positions of the 25 hours: the previous day's last hour and the 24 hours of `day`
        k = 72
        window = np.lib.stride_tricks.sliding_window_view(logc, k)[-25:]
        ages = np.arange(k - 1, -1, -1, dtype=float)
        fast_w = (1 - 2 / 7) ** ages
        slow_w = (1 - 2 / 25) ** ages
        fast = window @ (fast_w / fast_w.sum())
        slow = window @ (slow_w / slow_w.sum())
        pos = np.where(fast >= slow, 1, -1).astype(np.int8)
        sig = np.where(pos[1:] != pos[:-1], pos[1:], 0).astype(np.int8)
        return closes[-24:], sig, pos[1:]

    # -- market-wide -------------------------------------------------------------------------
    def total_market_cap(self) -> np.ndarray:
        """Total crypto market cap per calendar day, ending near $3.3T on the anchor day."""
        logm = np.cumsum(self._factor)
        return 3.3e12 * np.exp(logm - logm[-1])
