"""Prices: candlesticks for one token, else a close line per token; volume on a twin axis."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

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
    money_axis,
    need_columns,
    nothing_to_plot,
    per_token,
    pretty,
    require_date_column,
    sorted_by,
)

#: Most candlesticks drawn before OHLCV falls back to a close line.
MAX_CANDLES = 200


def fits(d: pd.DataFrame) -> bool:
    return date_column(d) is not None and is_numeric_column(d, "CLOSE")


def draw(ax: Any, d: pd.DataFrame, opts: dict[str, Any]) -> tuple[str, str]:
    dc = require_date_column(d, "ohlcv")
    need_columns(d, "ohlcv", "CLOSE")
    groups = per_token(d)
    has_ohlc = all(is_numeric_column(d, c) for c in ("OPEN", "HIGH", "LOW"))
    candles = opts.get("candles")
    volume = bool(opts.get("volume", False))
    if candles and (len(groups) > 1 or not has_ohlc):
        raise ConfigurationError(
            "candles need one token and OPEN/HIGH/LOW/CLOSE columns",
            hint="filter the frame to one token, or pass candles=False",
        )
    if volume and (len(groups) > 1 or "VOLUME" not in d.columns):
        raise ConfigurationError(
            "volume bars need one token and a VOLUME column", hint="filter the frame to one token, or leave volume off"
        )
    if candles is None:
        candles = len(groups) == 1 and has_ohlc and len(d) <= MAX_CANDLES
    xlabel = f"{pretty(dc)} (UTC)"
    if candles:
        g = sorted_by(d, dc)
        cols = ["OPEN", "HIGH", "LOW", "CLOSE"]
        vals = np.column_stack([as_floats(g[c]) for c in cols])
        ok = ~np.isnan(vals).any(axis=1) & g[dc].notna().to_numpy()
        g, vals = g[ok], vals[ok]
        if g.empty:
            raise nothing_to_plot()
        _candles(ax, as_dates(g[dc]), vals, as_floats(g["VOLUME"]) if volume else None)
        return xlabel, "price (USD)"
    closes: list[np.ndarray] = []
    for sym, g in groups:
        g = sorted_by(g, dc)
        y = as_floats(g["CLOSE"])
        if np.isnan(y).all():
            continue
        ax.plot(as_dates(g[dc]), y, linewidth=1.4, label=f"{sym} close" if sym else "close")
        closes.append(y)
        if volume:
            _volume(ax, as_dates(g[dc]), as_floats(g["VOLUME"]), _bar_width(as_dates(g[dc])))
    if not closes:
        raise nothing_to_plot()
    date_axis(ax)
    return xlabel, log_if_apart(ax, closes, "close (USD)")


def _bar_width(x: np.ndarray) -> float:
    """0.7 of the typical spacing between dates, in matplotlib date units (days)."""
    import matplotlib.dates as mdates

    nums = mdates.date2num(x)
    steps = np.diff(np.sort(nums[np.isfinite(nums)]))
    steps = steps[steps > 0]
    return 0.7 * (float(np.median(steps)) if steps.size else 1.0)


def _candles(ax: Any, x: np.ndarray, ohlc: np.ndarray, volume: np.ndarray | None) -> None:
    import matplotlib.dates as mdates
    from matplotlib.collections import LineCollection

    nums = mdates.date2num(x)
    width = _bar_width(x)
    o, h, lo, c = ohlc.T
    up = c >= o
    colours = np.where(up, UP, DOWN)
    span = float(np.nanmax(h) - np.nanmin(lo)) or float(np.nanmax(np.abs(c))) or 1.0
    body = np.maximum(np.abs(c - o), span * 1e-3)  # a doji stays visible
    ax.xaxis_date()
    wicks = LineCollection(
        [[(xi, li), (xi, hi)] for xi, li, hi in zip(nums, lo, h, strict=False)],
        colors=list(colours),
        linewidths=0.8,
        zorder=1,
    )
    ax.add_collection(wicks, autolim=True)
    ax.bar(
        nums,
        body,
        width=width,
        bottom=np.minimum(o, c),
        color=list(colours),
        edgecolor=list(colours),
        linewidth=0.5,
        zorder=2,
    )
    ax.autoscale_view()
    if volume is not None:
        _volume(ax, nums, volume, width)
    date_axis(ax)


def _volume(ax: Any, x: np.ndarray, volume: np.ndarray, width: float) -> None:
    import matplotlib.dates as mdates

    nums = x if np.issubdtype(np.asarray(x).dtype, np.floating) else mdates.date2num(x)
    vax = ax.twinx()
    vax.bar(nums, np.nan_to_num(volume), width=width, color="#9e9e9e", alpha=0.35, zorder=0, label="volume")
    top = float(np.nanmax(volume)) if np.isfinite(volume).any() else 1.0
    vax.set_ylim(0, (top or 1.0) * 4)  # volume in the bottom quarter
    vax.set_ylabel("volume (USD)")
    money_axis(vax.yaxis)
    ax.set_zorder(vax.get_zorder() + 1)
    ax.patch.set_visible(False)


CHART = Chart(
    "ohlcv",
    "candlesticks (one token, ≤ 200 bars) or a close line per token; optional volume on a twin axis",
    fits,
    draw,
    options=("volume", "candles"),
    needs="a date column and a numeric CLOSE",
)
