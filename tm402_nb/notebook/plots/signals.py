"""Trading signals: returns (or the close) per token with buy ▲ / sell ▼ markers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as pdt

from ...errors import ConfigurationError
from .common import (
    DOWN,
    UP,
    Chart,
    as_dates,
    as_floats,
    date_axis,
    date_column,
    is_numeric_column,
    log_if_apart,
    need_columns,
    nothing_to_plot,
    per_token,
    pretty,
    require_date_column,
    sorted_by,
)

#: Signal values read as buy / sell (numbers or words; hourly signals may be text).
BUY_WORDS = frozenset({"1", "+1", "1.0", "buy", "strong buy", "long", "bullish", "bull", "up"})
SELL_WORDS = frozenset({"-1", "-1.0", "sell", "strong sell", "short", "bearish", "bear", "down"})


def fits(d: pd.DataFrame) -> bool:
    cols = set(d.columns)
    has_signal = "TRADING_SIGNAL" in cols or "SIGNAL" in cols
    has_y = bool(cols & {"CLOSE", "TRADING_SIGNALS_RETURNS", "HOLDING_RETURNS"})
    return date_column(d) is not None and has_signal and has_y


def draw(ax: Any, d: pd.DataFrame, opts: dict[str, Any]) -> tuple[str, str]:
    dc = require_date_column(d, "signals")
    sig_col = "TRADING_SIGNAL" if "TRADING_SIGNAL" in d.columns else "SIGNAL"
    need_columns(d, "signals", sig_col)
    price = is_numeric_column(d, "CLOSE")
    series = (
        [("CLOSE", "close", "-")]
        if price
        else [
            (c, lab, ls)
            for c, lab, ls in (("TRADING_SIGNALS_RETURNS", "strategy", "-"), ("HOLDING_RETURNS", "holding", "--"))
            if c in d.columns
        ]
    )
    if not series:
        raise ConfigurationError("a 'signals' chart needs CLOSE or TRADING_SIGNALS_RETURNS/HOLDING_RETURNS")
    groups = per_token(d)
    several = len(groups) > 1
    buys: list[tuple[Any, float]] = []
    sells: list[tuple[Any, float]] = []
    drawn = 0
    prices: list[np.ndarray] = []
    for i, (sym, g) in enumerate(groups):
        g = sorted_by(g, dc)
        x = as_dates(g[dc])
        colour = f"C{i}"
        marker_y = None
        for col, lab, ls in series:
            y = as_floats(g[col])
            if np.isnan(y).all():
                continue
            if not price:
                y = rebased(y)
            label = f"{sym} {lab}" if several and sym else lab
            ax.plot(x, y, ls, color=colour if several else None, linewidth=1.4, label=label)
            drawn += 1
            if price:
                prices.append(y)
            if marker_y is None:
                marker_y = y
        if marker_y is None:
            continue
        sig = _signal_values(g[sig_col])
        for target, value in ((buys, 1), (sells, -1)):
            idx = np.flatnonzero(sig == value)
            target.extend((x[j], marker_y[j]) for j in idx)
    if not drawn:
        raise nothing_to_plot()
    for points, marker, colour, label in ((buys, "^", UP, "buy"), (sells, "v", DOWN, "sell")):
        if points:
            xs, ys = zip(*points, strict=False)
            ax.scatter(
                np.array(xs),
                np.array(ys, dtype=float),
                marker=marker,
                s=70,
                color=colour,
                edgecolors="white",
                linewidths=0.6,
                zorder=3,
                label=label,
            )
    date_axis(ax)
    ylabel = log_if_apart(ax, prices, "close (USD)") if price else "growth of 1 from the window's start"
    return f"{pretty(dc)} (UTC)", ylabel


def rebased(roi: np.ndarray) -> np.ndarray:
    """Cumulative ROI as the growth of 1 from the window's first day, ``(1 + r) / (1 + r0)``, so a
    strategy and a holding whose ROIs started years apart (0.3 and 55) compare on one axis. The ROI
    is read as a fraction, as the sandbox serves it (the live API's units are not documented);
    an ROI at or below -1 at the start leaves the series as served.

    >>> rebased(np.array([0.0, 0.5, -0.25])).tolist()
    [1.0, 1.5, 0.75]
    >>> rebased(np.array([1.0, 3.0])).tolist()          # 2x since inception, then 4x: doubled
    [1.0, 2.0]
    """
    finite = roi[np.isfinite(roi)]
    if not finite.size or 1.0 + finite[0] <= 0:
        return roi
    return (1.0 + roi) / (1.0 + finite[0])


def _signal_values(s: pd.Series) -> np.ndarray:
    """+1 buy, -1 sell, 0 otherwise, from numbers or words."""
    if pdt.is_numeric_dtype(s.dtype) and not pdt.is_bool_dtype(s.dtype):
        v = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        return np.where(v == 1, 1, np.where(v == -1, -1, 0))
    words = s.astype("string").str.strip().str.lower()
    buy = words.isin(BUY_WORDS).fillna(False).to_numpy(dtype=bool)
    sell = words.isin(SELL_WORDS).fillna(False).to_numpy(dtype=bool)
    return np.where(buy, 1, np.where(sell, -1, 0))


CHART = Chart(
    "signals",
    "cumulative strategy vs holding returns (or close) with buy ▲ / sell ▼ markers",
    fits,
    draw,
    needs="a date column, TRADING_SIGNAL (or SIGNAL) and CLOSE or TRADING_SIGNALS_RETURNS/HOLDING_RETURNS",
)
