"""What every chart shares: column access, one group per token, axes, colours, :class:`Chart`.

Charts read a *normalized* frame (:func:`normalize_columns`): upper-case column
names, a named index as a column. Internal to :mod:`tm402_nb.notebook.plots`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as pdt

from ...errors import ConfigurationError
from ...tokenmetrics.catalogue import DATE_COLUMNS

#: Columns that name a row's token, in the order they are looked for.
LABEL_COLUMNS = ("TOKEN_SYMBOL", "TOKEN_NAME", "TOKEN_ID")

# Colours (colour-blind friendlier than pure red/green, still read as down/up).
UP, DOWN = "#1a9850", "#d73027"

#: Draws a chart into ``ax`` from a normalized frame and the chart's options; returns (x label, y label).
Draw = Callable[[Any, pd.DataFrame, dict[str, Any]], tuple[str, str]]


def default_figsize(d: pd.DataFrame) -> tuple[float, float]:
    return 9.0, 4.5


def tokens_subject(d: pd.DataFrame, opts: dict[str, Any]) -> str:
    """The title's subject: the frame's symbols (the first five)."""
    syms = symbols_in(d)
    return ", ".join(syms[:5]) + (f" +{len(syms) - 5} more" if len(syms) > 5 else "")


@dataclass(frozen=True)
class Chart:
    """One kind of chart: what it draws, which frames it fits, and how."""

    kind: str
    #: One line for ``PLOT_KINDS``.
    summary: str
    #: Whether a normalized frame has the columns this chart needs.
    fits: Callable[[pd.DataFrame], bool]
    draw: Draw
    #: The ``plot_frame(...)`` keyword options this chart takes (``figsize`` is common to all).
    options: tuple[str, ...] = ()
    figsize: Callable[[pd.DataFrame], tuple[float, float]] = default_figsize
    #: The default title after the endpoint (or kind) and " · ".
    subject: Callable[[pd.DataFrame, dict[str, Any]], str] = tokens_subject
    #: False when the chart builds its own legend (across twin axes).
    legend: bool = True
    #: The columns it needs, for the message when a frame does not have them.
    needs: str = ""


# ------------------------------------------------------------------------------------------------
# Column access


def normalize_columns(df: pd.DataFrame) -> pd.DataFrame:
    """A view of ``df`` with upper-case column names and a named index as a column (``df`` untouched)."""
    d = df
    upper_cols = {str(c).upper() for c in d.columns}
    names = [n for n in d.index.names if n is not None]
    if names and not any(str(n).upper() in upper_cols for n in names):
        d = d.reset_index()
    elif (
        isinstance(d.index, pd.DatetimeIndex)
        and d.index.name is None
        and not any(c in upper_cols for c in DATE_COLUMNS)
    ):
        d = d.rename_axis("DATE").reset_index()
    mapping: dict[Any, str] = {}
    taken: set[str] = set()
    keep: list[int] = []
    for i, c in enumerate(d.columns):
        u = str(c).upper()
        if u in taken:  # "close" next to "CLOSE": the first one wins
            continue
        taken.add(u)
        keep.append(i)
        if u != c:
            mapping[c] = u
    if len(keep) != d.shape[1]:
        d = d.iloc[:, keep]
    if mapping:
        d = d.rename(columns=mapping)
    return d


def date_column(d: pd.DataFrame) -> str | None:
    return next((c for c in DATE_COLUMNS if c in d.columns), None)


def require_date_column(d: pd.DataFrame, kind: str) -> str:
    """The date column of a chart that plots over time (its ``fits`` has checked there is one)."""
    dc = date_column(d)
    if dc is None:
        raise ConfigurationError(f"a {kind!r} chart needs a date column ({', '.join(DATE_COLUMNS)})")
    return dc


def is_numeric_column(d: pd.DataFrame, name: str) -> bool:
    if name not in d.columns:
        return False
    s = d[name]
    if pdt.is_bool_dtype(s.dtype):
        return False
    if pdt.is_numeric_dtype(s.dtype):
        return True
    return bool(pd.to_numeric(s, errors="coerce").notna().any()) or bool(s.isna().all())


def as_dates(s: pd.Series) -> np.ndarray:
    """Dates as naive-UTC datetime64 values matplotlib plots natively."""
    if not pdt.is_datetime64_any_dtype(s.dtype):
        s = pd.to_datetime(s, utc=True, errors="coerce")
    if getattr(s.dt, "tz", None) is not None:
        s = s.dt.tz_convert("UTC").dt.tz_localize(None)
    return s.to_numpy()


def as_floats(s: pd.Series) -> np.ndarray:
    return pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def label_column(d: pd.DataFrame) -> str | None:
    return next((c for c in LABEL_COLUMNS if c in d.columns), None)


def per_token(d: pd.DataFrame, col: str | None = None) -> list[tuple[str | None, pd.DataFrame]]:
    """(label, rows) per token in first-seen order; one unlabelled group when there is no token column."""
    col = col or label_column(d)
    if col is None or d[col].nunique(dropna=False) <= 1:
        label = None
        if col is not None and len(d) and pd.notna(d[col].iloc[0]):
            label = str(d[col].iloc[0])
        return [(label, d)]
    return [(str(k) if pd.notna(k) else "?", g) for k, g in d.groupby(col, sort=False, dropna=False)]


def sorted_by(d: pd.DataFrame, col: str) -> pd.DataFrame:
    return d.sort_values(col, kind="stable", na_position="last")


def row_labels(d: pd.DataFrame) -> list[str]:
    col = label_column(d)
    if col is None:
        return [str(i) for i in d.index]
    return [str(v) if pd.notna(v) else "?" for v in d[col]]


def symbols_in(d: pd.DataFrame) -> list[str]:
    col = label_column(d)
    if col is None:
        return []
    return [str(v) for v in pd.unique(d[col].dropna())]


# ------------------------------------------------------------------------------------------------
# Axes and labels


def pretty(name: str) -> str:
    out = name.replace("_", " ").lower()
    for word in ("tm", "roi", "cagr", "defi", "vc", "mcap", "fdv", "usd"):
        out = " ".join(w.upper() if w == word else w for w in out.split(" "))
    return out


def money(v: float) -> str:
    a = abs(v)
    for unit, div in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if a >= div:
            return f"${v / div:,.2f}{unit}"
    return f"${v:,.2f}" if a >= 1 else f"${v:.4g}"


def date_axis(ax: Any) -> None:
    import matplotlib.dates as mdates

    loc = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(loc)
    # The concise ticks already name the year and month where they change; the offset text
    # ("2026-Nov" under the axis) repeated one of them and read as a stray label.
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc, offset_formats=["", "", "", "", "", ""]))


def money_axis(axis: Any) -> None:
    from matplotlib.ticker import FuncFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _pos: money(v) if v else "0"))


def legend(ax: Any, extra: Iterable[Any] = ()) -> None:
    handles, labels = ax.get_legend_handles_labels()
    for other in extra:
        h, lab = other.get_legend_handles_labels()
        handles += h
        labels += lab
    if len(handles) >= 2:
        ax.legend(handles, labels, loc="best", fontsize="small", framealpha=0.85)


def log_if_apart(ax: Any, series: list[np.ndarray], ylabel: str) -> str:
    """Log y-scale when positive series sit an order of magnitude or more apart (BTC next to ETH)."""
    levels = [float(np.nanmedian(y)) for y in series if np.isfinite(y).any()]
    if len(levels) < 2 or min(levels) <= 0 or any((np.asarray(y)[np.isfinite(y)] <= 0).any() for y in series):
        return ylabel
    if max(levels) / min(levels) < 10:
        return ylabel
    ax.set_yscale("log")
    return f"{ylabel}, log scale"


# ------------------------------------------------------------------------------------------------
# Checks


def nothing_to_plot() -> ConfigurationError:
    return ConfigurationError("nothing to plot", hint="the frame has no rows with values to draw")


def need_columns(d: pd.DataFrame, kind: str, *cols: str) -> None:
    missing = [c for c in cols if c not in d.columns]
    if missing:
        raise ConfigurationError(
            f"a {kind!r} chart needs column(s) {', '.join(missing)}; "
            f"this frame has {', '.join(map(str, d.columns[:12]))}"
            f"{', ...' if d.shape[1] > 12 else ''}"
        )


def pick_metric(d: pd.DataFrame, kind: str, metric: Any, candidates: tuple[str, ...]) -> str:
    if metric is not None:
        name = str(metric).strip().upper()
        if not is_numeric_column(d, name):
            choices = [c for c in candidates if is_numeric_column(d, c)] or [
                str(c) for c in d.columns if pdt.is_numeric_dtype(d[c].dtype)
            ]
            raise ConfigurationError(
                f"metric {metric!r} is not a numeric column of this frame; choose one of {', '.join(choices)}"
            )
        return name
    found = next((c for c in candidates if is_numeric_column(d, c)), None)
    if found is None:
        raise ConfigurationError(f"no {kind} metric in this frame (looked for {', '.join(candidates)})")
    return found
