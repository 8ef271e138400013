"""Resistance and support: a segment per level, over the close when there is one."""

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
    normalize_columns,
    nothing_to_plot,
    per_token,
    sorted_by,
)


def fits(d: pd.DataFrame) -> bool:
    return is_numeric_column(d, "LEVEL")


def draw(ax: Any, d: pd.DataFrame, opts: dict[str, Any]) -> tuple[str, str]:
    level = pd.to_numeric(d["LEVEL"], errors="coerce")
    rows = d[level.notna().to_numpy()]
    if rows.empty:
        raise nothing_to_plot()
    dc = date_column(rows)
    close = _close_from(opts.get("close"))
    groups = per_token(rows)
    if close is not None and len(groups) > 1:
        raise ConfigurationError("close= goes with the levels of one token", hint="filter the levels frame first")
    if close is None and "CLOSE" in rows.columns and dc is not None:
        c = rows.drop_duplicates(dc).pipe(sorted_by, dc)
        if len(groups) == 1 and c[dc].nunique() > 1:
            close = (as_dates(c[dc]), as_floats(c["CLOSE"]))
    last_close = None
    if close is not None:
        ok = np.isfinite(close[1])
        if ok.any():
            ax.plot(close[0], close[1], color="#333333", linewidth=1.2, label="close")
            last_close = float(close[1][ok][-1])
    # x-extent of each level: from the day it formed to the as-of date (or the last close).
    end = None
    if close is not None and len(close[0]):
        end = pd.Series(close[0]).max()
    elif dc is not None and rows[dc].notna().any():
        end = pd.Series(as_dates(rows[dc])).max()
    end = None if end is None or pd.isna(end) else pd.Timestamp(end).to_datetime64()
    start_col = "LEVEL_DATE" if "LEVEL_DATE" in rows.columns else None
    drawn = False
    ylabel = "price (USD)"
    if close is None:
        ylabel = log_if_apart(ax, [as_floats(g["LEVEL"]) for _, g in groups], ylabel)
    for i, (sym, g) in enumerate(groups):
        y = as_floats(g["LEVEL"])
        starts = as_dates(g[start_col]) if start_col else np.full(len(g), np.datetime64("NaT"))
        if end is None or np.isnat(starts).all():
            seen: set[str] = set()
            for v in y:  # no dates: lines across the axes, one legend entry per colour
                label = _level_label(v, last_close, sym if len(groups) > 1 else None)
                ax.axhline(
                    v, color=_level_colour(v, last_close, i), linewidth=1.2, label=None if label in seen else label
                )
                seen.add(label)
            drawn = True
            continue
        starts = np.where(np.isnat(starts), pd.Series(starts).min().to_datetime64(), starts)
        if last_close is None:
            ax.hlines(y, starts, np.full(len(g), end), colors=f"C{i}", linewidth=1.4, label=sym or "level")
        else:
            for name, mask, colour in (("resistance", y > last_close, DOWN), ("support", y <= last_close, UP)):
                if mask.any():
                    label = f"{sym} {name}" if len(groups) > 1 and sym else name
                    ax.hlines(
                        y[mask], starts[mask], np.full(int(mask.sum()), end), colors=colour, linewidth=1.4, label=label
                    )
        drawn = True
    if not drawn:
        raise nothing_to_plot()
    if end is not None:
        date_axis(ax)
    money_axis(ax.yaxis)
    return ("date (UTC)" if end is not None else "level"), ylabel


def _close_from(obj: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """(dates, closes) from ``close=``: an OHLCV-like frame or a date-indexed Series."""
    if obj is None:
        return None
    if isinstance(obj, pd.Series):
        idx = obj.index
        x = as_dates(pd.Series(idx)) if not isinstance(idx, pd.RangeIndex) else None
        if x is None:
            raise ConfigurationError("close= as a Series needs a date index")
        return x, as_floats(obj.reset_index(drop=True))
    if isinstance(obj, pd.DataFrame):
        c = normalize_columns(obj)
        dc = date_column(c)
        if dc is None or "CLOSE" not in c.columns:
            raise ConfigurationError("close= needs a frame with a date column and CLOSE (e.g. a daily-ohlcv frame)")
        c = sorted_by(c, dc)
        return as_dates(c[dc]), as_floats(c["CLOSE"])
    raise ConfigurationError(f"close= must be a DataFrame or Series, got {type(obj).__name__}")


def _level_colour(v: float, last_close: float | None, i: int) -> str:
    if last_close is None:
        return f"C{i}"
    return DOWN if v > last_close else UP


def _level_label(v: float, last_close: float | None, sym: str | None) -> str:
    if last_close is None:
        return sym or "level"
    name = "resistance" if v > last_close else "support"
    return f"{sym} {name}" if sym else name


CHART = Chart(
    "levels",
    "resistance/support levels as horizontal lines, over the close when given",
    fits,
    draw,
    options=("close",),
    needs="a numeric LEVEL column",
)
