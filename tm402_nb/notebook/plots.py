"""The chart that fits a frame: ``plot_frame(df)`` (and ``df.tm.plot()``).

The toolkit's frames say where they came from (``df.attrs["tm402"]["endpoint"]``);
:func:`plot_frame` draws the chart that suits that endpoint. When the attrs are
gone (a user's merge, ``pd.DataFrame(...)``, a CSV round trip) or the columns no
longer fit the endpoint, the kind is inferred from the columns. Column names are
matched case-insensitively, so ``lowercase=True`` frames plot too, and a named
index (``TOKEN_ID`` on latest grades and quantmetrics) is read as a column.

Kinds (``PLOT_KINDS``), with the endpoints that map to them and the options
each takes (every kind also takes ``figsize`` when no ``ax`` is given):

``"signals"`` — trading-signals, hourly-trading-signals
    Daily rows: strategy (``TRADING_SIGNALS_RETURNS``) and holding
    (``HOLDING_RETURNS``) cumulative returns per token, with a green ▲ where
    ``TRADING_SIGNAL`` is 1 (buy) and a red ▼ where it is -1 (sell), on the
    strategy line. Rows with a ``CLOSE`` (hourly signals, or daily signals merged
    with prices): the close per token with the markers on it; hourly ``SIGNAL``
    may be a number or a string (``buy``/``long``/``bullish`` → 1,
    ``sell``/``short``/``bearish`` → -1).
``"grades"`` — tm-grade(-history), technology-grade(-history), fundamental-grade(-history)
    Histories: one grade line per token over time. Latest frames (one row per
    token): a horizontal bar per token, coloured red → green by grade. The grade is
    the first of ``TM_GRADE``, ``TECHNOLOGY_GRADE``, ``FUNDAMENTAL_GRADE``,
    ``TM_TRADER_GRADE``, ``TM_INVESTOR_GRADE`` present; ``metric=`` picks another.
``"ohlcv"`` — daily-ohlcv, hourly-ohlcv
    One token and at most :data:`MAX_CANDLES` bars: candlesticks (a ``Rectangle``
    body per bar, wicks in one ``LineCollection``; no mplfinance). More bars, or
    several tokens: a close line per token. ``candles=True|False`` forces the
    choice (candles need one token); ``volume=True`` adds volume bars on a twin
    axis (one token).
``"correlation"`` — correlation
    One horizontal bar per correlated token (``CORRELATION`` per
    ``CORRELATED_TOKEN``), positive green, negative red, sorted.
``"scenarios"`` — price-prediction
    ``style="bars"`` (default): per scenario (total crypto market-cap multiple),
    three bars — bear, base and moon predicted price — and a dashed line at the
    current price. With several tokens the bars show predicted ROI instead, so
    tokens share a scale (``value="price"|"roi"`` chooses). ``style="fan"`` (one
    token): from the current price at ``DATE``, a shaded bear → moon wedge to
    ``PREDICTED_DATE`` per scenario with its base line.
``"levels"`` — resistance-support
    A horizontal segment per ``LEVEL`` from the day it formed (``LEVEL_DATE``) to
    the as-of date. With a close (a ``CLOSE`` column, or ``close=`` an OHLCV frame
    or a date-indexed Series) the close is drawn too and levels above the last
    close are red resistance, below green support.
``"quant"`` — quantmetrics
    A bar per token of one metric, default ``SHARPE``; ``metric=`` picks another
    (``SORTINO``, ``MAX_DRAWDOWN``, ``CAGR``, ...).
``"market"`` — market-metrics
    ``TOTAL_CRYPTO_MCAP`` line, ``TM_GRADE_PERC_HIGH_COINS`` on a twin axis.
``"index"`` — indices-performance
    ``INDEX_CUMULATIVE_ROI`` line per index id.

Price lines of several tokens an order of magnitude apart (BTC next to ETH) get a
log y-axis so each stays readable. Every chart gets axis labels, a title
(default: endpoint and symbols), a legend when it has several series, and a
small "SANDBOX data" label above the axes when the frame came from the sandbox. A frame no kind fits, an unknown kind or
option, and an empty frame raise :class:`~tm402_nb.errors.ConfigurationError`.
The input frame is never modified. Only the object-oriented matplotlib API is
used: a figure is created (``plt.subplots``) only when no ``ax`` is given, nothing
is shown, and the Axes is returned.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as pdt

from ..errors import ConfigurationError

__all__ = ["ENDPOINT_KINDS", "MAX_CANDLES", "PLOT_KINDS", "SANDBOX_LABEL", "kind_for", "plot_frame"]

#: kind → what it draws (one line each).
PLOT_KINDS: dict[str, str] = {
    "signals": "cumulative strategy vs holding returns (or close) with buy ▲ / sell ▼ markers",
    "grades": "grade lines per token over time; latest grades as a bar per token",
    "ohlcv": "candlesticks (one token, ≤ 200 bars) or a close line per token; optional volume on a twin axis",
    "correlation": "horizontal bars of correlation per correlated token, positive/negative coloured",
    "scenarios": "bear/base/moon predicted price per market-cap scenario against the current price",
    "levels": "resistance/support levels as horizontal lines, over the close when given",
    "quant": "bars of one quant metric per token (metric=, default SHARPE)",
    "market": "total crypto market cap with % of high-grade coins on a twin axis",
    "index": "index cumulative ROI over time",
}

#: endpoint → kind for the endpoints that have a chart.
ENDPOINT_KINDS: dict[str, str] = {
    "trading-signals": "signals",
    "hourly-trading-signals": "signals",
    "tm-grade": "grades",
    "tm-grade-history": "grades",
    "technology-grade": "grades",
    "technology-grade-history": "grades",
    "fundamental-grade": "grades",
    "fundamental-grade-history": "grades",
    "daily-ohlcv": "ohlcv",
    "hourly-ohlcv": "ohlcv",
    "correlation": "correlation",
    "price-prediction": "scenarios",
    "resistance-support": "levels",
    "quantmetrics": "quant",
    "market-metrics": "market",
    "indices-performance": "index",
}

#: Most candlesticks drawn before OHLCV falls back to a close line.
MAX_CANDLES = 200
SANDBOX_LABEL = "SANDBOX data"
_SANDBOX_GID = "tm402-sandbox-label"

_DATE_COLUMNS = ("DATE", "TIMESTAMP", "DATETIME")
_LABEL_COLUMNS = ("TOKEN_SYMBOL", "TOKEN_NAME", "TOKEN_ID")
_GRADE_METRICS = ("TM_GRADE", "TECHNOLOGY_GRADE", "FUNDAMENTAL_GRADE", "TM_TRADER_GRADE", "TM_INVESTOR_GRADE")
_QUANT_METRICS = (
    "SHARPE",
    "SORTINO",
    "VOLATILITY",
    "ALL_TIME_RETURN",
    "CAGR",
    "MAX_DRAWDOWN",
    "SKEW",
    "TAIL_RATIO",
    "RISK_REWARD_RATIO",
    "PROFIT_FACTOR",
    "KURTOSIS",
    "DAILY_VALUE_AT_RISK",
    "DAILY_RETURN_AVG",
    "DAILY_RETURN_STD",
)
_SCENARIO_CASES = ("BEAR", "BASE", "MOON")

# Colours (colour-blind friendlier than pure red/green, still read as down/up).
_UP, _DOWN, _NEUTRAL = "#1a9850", "#d73027", "#4a6fa5"
_CASE_COLOURS = {"BEAR": "#d73027", "BASE": "#4a6fa5", "MOON": "#1a9850"}
_BUY_WORDS = frozenset({"1", "+1", "1.0", "buy", "strong buy", "long", "bullish", "bull", "up"})
_SELL_WORDS = frozenset({"-1", "-1.0", "sell", "strong sell", "short", "bearish", "bear", "down"})

_COMMON_OPTIONS = ("figsize",)
_OPTIONS: dict[str, tuple[str, ...]] = {
    "signals": (),
    "grades": ("metric",),
    "ohlcv": ("volume", "candles"),
    "correlation": (),
    "scenarios": ("style", "value"),
    "levels": ("close",),
    "quant": ("metric",),
    "market": (),
    "index": (),
}


def _kinds_text() -> str:
    return ", ".join(PLOT_KINDS)


# ------------------------------------------------------------------------------------------------
# Column access and dispatch


def _prepare(df: pd.DataFrame) -> pd.DataFrame:
    """A view of ``df`` with upper-case column names and a named index as a column (``df`` untouched)."""
    d = df
    upper_cols = {str(c).upper() for c in d.columns}
    names = [n for n in d.index.names if n is not None]
    if names and not any(str(n).upper() in upper_cols for n in names):
        d = d.reset_index()
    elif (
        isinstance(d.index, pd.DatetimeIndex)
        and d.index.name is None
        and not any(c in upper_cols for c in _DATE_COLUMNS)
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


def _date_col(d: pd.DataFrame) -> str | None:
    return next((c for c in _DATE_COLUMNS if c in d.columns), None)


def _numeric_col(d: pd.DataFrame, name: str) -> bool:
    if name not in d.columns:
        return False
    s = d[name]
    if pdt.is_bool_dtype(s.dtype):
        return False
    if pdt.is_numeric_dtype(s.dtype):
        return True
    return bool(pd.to_numeric(s, errors="coerce").notna().any()) or bool(s.isna().all())


def _fits(kind: str, d: pd.DataFrame) -> bool:
    """Whether the (prepared) frame has the columns ``kind`` needs."""
    cols = set(d.columns)
    dated = _date_col(d) is not None
    if kind == "signals":
        has_signal = "TRADING_SIGNAL" in cols or "SIGNAL" in cols
        has_y = bool(cols & {"CLOSE", "TRADING_SIGNALS_RETURNS", "HOLDING_RETURNS"})
        return dated and has_signal and has_y
    if kind == "grades":
        return any(_numeric_col(d, c) for c in _GRADE_METRICS)
    if kind == "ohlcv":
        return dated and _numeric_col(d, "CLOSE")
    if kind == "correlation":
        return "CORRELATION" in cols and "CORRELATED_TOKEN" in cols
    if kind == "scenarios":
        return any(f"PRICE_{c}" in cols for c in _SCENARIO_CASES)
    if kind == "levels":
        return _numeric_col(d, "LEVEL")
    if kind == "quant":
        return any(_numeric_col(d, c) for c in _QUANT_METRICS)
    if kind == "market":
        return dated and bool(cols & {"TOTAL_CRYPTO_MCAP", "TM_GRADE_PERC_HIGH_COINS"})
    if kind == "index":
        return dated and "INDEX_CUMULATIVE_ROI" in cols
    return False


# Most specific first: a signals frame has a CLOSE (ohlcv would fit), trading-signals carry grades.
_INFER_ORDER = ("correlation", "scenarios", "levels", "signals", "market", "index", "ohlcv", "quant", "grades")


def _endpoint(df: pd.DataFrame) -> str | None:
    meta = df.attrs.get("tm402") if isinstance(df.attrs, dict) else None
    ep = meta.get("endpoint") if isinstance(meta, dict) else None
    return str(ep) if ep else None


def _is_sandbox(df: pd.DataFrame) -> bool:
    meta = df.attrs.get("tm402") if isinstance(df.attrs, dict) else None
    return isinstance(meta, dict) and meta.get("mode") == "sandbox"


def _resolve_kind(name: str) -> str:
    """A kind from a kind name or an endpoint name/alias (``"trading-signals"`` → ``"signals"``)."""
    if not isinstance(name, str):
        raise ConfigurationError(f"a plot kind must be a string, got {type(name).__name__}; kinds: {_kinds_text()}")
    key = name.strip().lower().replace("_", "-")
    if key in PLOT_KINDS:
        return key
    try:
        from ..tokenmetrics.catalogue import get_endpoint

        ep = get_endpoint(key).name
    except ConfigurationError:
        ep = None
    if ep in ENDPOINT_KINDS:
        return ENDPOINT_KINDS[ep]
    raise ConfigurationError(f"unknown plot kind {name!r}; kinds: {_kinds_text()}")


def _kind_for(d: pd.DataFrame, endpoint: str | None) -> str:
    if endpoint is not None:
        kind = ENDPOINT_KINDS.get(endpoint)
        if kind is not None and _fits(kind, d):
            return kind
    for kind in _INFER_ORDER:
        if _fits(kind, d):
            return kind
    if endpoint is not None and endpoint in ENDPOINT_KINDS:
        why = f"this {endpoint} frame no longer has the columns a {ENDPOINT_KINDS[endpoint]!r} chart needs"
    elif endpoint is not None:
        why = f"no chart for {endpoint} frames"
    else:
        why = "no chart fits these columns"
    raise ConfigurationError(
        f"{why}; kinds: {_kinds_text()}", hint="pass kind=... to choose one, or plot the columns with pandas"
    )


def kind_for(df: pd.DataFrame) -> str:
    """The plot kind :func:`plot_frame` would choose for ``df``.

    By ``df.attrs["tm402"]["endpoint"]`` when the frame still has that endpoint's
    columns, else by the columns; raises ConfigurationError when no kind fits.
    """
    if not isinstance(df, pd.DataFrame):
        raise ConfigurationError(f"plot needs a DataFrame, got {type(df).__name__}")
    return _kind_for(_prepare(df), _endpoint(df))


# ------------------------------------------------------------------------------------------------
# Small helpers


def _x(s: pd.Series) -> np.ndarray:
    """Dates as naive-UTC datetime64 values matplotlib plots natively."""
    if not pdt.is_datetime64_any_dtype(s.dtype):
        s = pd.to_datetime(s, utc=True, errors="coerce")
    if getattr(s.dt, "tz", None) is not None:
        s = s.dt.tz_convert("UTC").dt.tz_localize(None)
    return s.to_numpy()


def _y(s: pd.Series) -> np.ndarray:
    return pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _label_col(d: pd.DataFrame) -> str | None:
    return next((c for c in _LABEL_COLUMNS if c in d.columns), None)


def _groups(d: pd.DataFrame, col: str | None = None) -> list[tuple[str | None, pd.DataFrame]]:
    """(label, rows) per token in first-seen order; one unlabelled group when there is no token column."""
    col = col or _label_col(d)
    if col is None or d[col].nunique(dropna=False) <= 1:
        label = None
        if col is not None and len(d) and pd.notna(d[col].iloc[0]):
            label = str(d[col].iloc[0])
        return [(label, d)]
    return [(str(k) if pd.notna(k) else "?", g) for k, g in d.groupby(col, sort=False, dropna=False)]


def _sorted_by(d: pd.DataFrame, col: str) -> pd.DataFrame:
    return d.sort_values(col, kind="stable", na_position="last")


def _labels(d: pd.DataFrame) -> list[str]:
    col = _label_col(d)
    if col is None:
        return [str(i) for i in d.index]
    return [str(v) if pd.notna(v) else "?" for v in d[col]]


def _symbols(d: pd.DataFrame) -> list[str]:
    col = _label_col(d)
    if col is None:
        return []
    return [str(v) for v in pd.unique(d[col].dropna())]


def _pretty(name: str) -> str:
    out = name.replace("_", " ").lower()
    for word in ("tm", "roi", "cagr", "defi", "vc", "mcap", "fdv", "usd"):
        out = " ".join(w.upper() if w == word else w for w in out.split(" "))
    return out


def _money(v: float) -> str:
    a = abs(v)
    for unit, div in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if a >= div:
            return f"${v / div:,.2f}{unit}"
    return f"${v:,.2f}" if a >= 1 else f"${v:.4g}"


def _date_axis(ax: Any) -> None:
    import matplotlib.dates as mdates

    loc = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(loc)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc))


def _money_axis(axis: Any) -> None:
    from matplotlib.ticker import FuncFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _pos: _money(v) if v else "0"))


def _legend(ax: Any, extra: Iterable[Any] = ()) -> None:
    handles, labels = ax.get_legend_handles_labels()
    for other in extra:
        h, lab = other.get_legend_handles_labels()
        handles += h
        labels += lab
    if len(handles) >= 2:
        ax.legend(handles, labels, loc="best", fontsize="small", framealpha=0.85)


def _log_if_apart(ax: Any, series: list[np.ndarray], ylabel: str) -> str:
    """Log y-scale when positive series sit an order of magnitude or more apart (BTC next to ETH)."""
    levels = [float(np.nanmedian(y)) for y in series if np.isfinite(y).any()]
    if len(levels) < 2 or min(levels) <= 0 or any((np.asarray(y)[np.isfinite(y)] <= 0).any() for y in series):
        return ylabel
    if max(levels) / min(levels) < 10:
        return ylabel
    ax.set_yscale("log")
    return f"{ylabel}, log scale"


def _signal_values(s: pd.Series) -> np.ndarray:
    """+1 buy, -1 sell, 0 otherwise, from numbers or words."""
    if pdt.is_numeric_dtype(s.dtype) and not pdt.is_bool_dtype(s.dtype):
        v = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        return np.where(v == 1, 1, np.where(v == -1, -1, 0))
    words = s.astype("string").str.strip().str.lower()
    buy = words.isin(_BUY_WORDS).fillna(False).to_numpy(dtype=bool)
    sell = words.isin(_SELL_WORDS).fillna(False).to_numpy(dtype=bool)
    return np.where(buy, 1, np.where(sell, -1, 0))


def _nothing() -> ConfigurationError:
    return ConfigurationError("nothing to plot", hint="the frame has no rows with values to draw")


def _need(d: pd.DataFrame, kind: str, *cols: str) -> None:
    missing = [c for c in cols if c not in d.columns]
    if missing:
        raise ConfigurationError(
            f"a {kind!r} chart needs column(s) {', '.join(missing)}; "
            f"this frame has {', '.join(map(str, d.columns[:12]))}"
            f"{', ...' if d.shape[1] > 12 else ''}"
        )


def _pick_metric(d: pd.DataFrame, kind: str, metric: Any, candidates: tuple[str, ...]) -> str:
    if metric is not None:
        name = str(metric).strip().upper()
        if not _numeric_col(d, name):
            choices = [c for c in candidates if _numeric_col(d, c)] or [
                str(c) for c in d.columns if pdt.is_numeric_dtype(d[c].dtype)
            ]
            raise ConfigurationError(
                f"metric {metric!r} is not a numeric column of this frame; choose one of {', '.join(choices)}"
            )
        return name
    found = next((c for c in candidates if _numeric_col(d, c)), None)
    if found is None:
        raise ConfigurationError(f"no {kind} metric in this frame (looked for {', '.join(candidates)})")
    return found


# ------------------------------------------------------------------------------------------------
# The charts. Each takes (ax, prepared frame, options) and returns (x label, y label).


def _plot_signals(ax: Any, d: pd.DataFrame, opts: dict[str, Any]) -> tuple[str, str]:
    dc = _date_col(d)
    sig_col = "TRADING_SIGNAL" if "TRADING_SIGNAL" in d.columns else "SIGNAL"
    _need(d, "signals", *(c for c in (dc, sig_col) if c))
    price = _numeric_col(d, "CLOSE")
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
    groups = _groups(d)
    several = len(groups) > 1
    buys: list[tuple[Any, float]] = []
    sells: list[tuple[Any, float]] = []
    drawn = 0
    prices: list[np.ndarray] = []
    for i, (sym, g) in enumerate(groups):
        g = _sorted_by(g, dc)
        x = _x(g[dc])
        colour = f"C{i}"
        marker_y = None
        for col, lab, ls in series:
            y = _y(g[col])
            if np.isnan(y).all():
                continue
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
        raise _nothing()
    for points, marker, colour, label in ((buys, "^", _UP, "buy"), (sells, "v", _DOWN, "sell")):
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
    _date_axis(ax)
    ylabel = _log_if_apart(ax, prices, "close (USD)") if price else "cumulative return"
    return f"{_pretty(dc)} (UTC)", ylabel


def _plot_grades(ax: Any, d: pd.DataFrame, opts: dict[str, Any]) -> tuple[str, str]:
    metric = _pick_metric(d, "grade", opts.get("metric"), _GRADE_METRICS)
    dc = _date_col(d)
    groups = _groups(d)
    history = dc is not None and any(g[dc].nunique() > 1 for _, g in groups)
    if history:
        drawn = 0
        for sym, g in groups:
            g = _sorted_by(g, dc)
            y = _y(g[metric])
            if np.isnan(y).all():
                continue
            ax.plot(_x(g[dc]), y, linewidth=1.5, label=sym or _pretty(metric))
            drawn += 1
        if not drawn:
            raise _nothing()
        _date_axis(ax)
        return f"{_pretty(dc)} (UTC)", _pretty(metric)
    # Latest grades: one bar per token (the newest row when a token repeats).
    rows = d if dc is None else _sorted_by(d, dc)
    lab_col = _label_col(rows)
    if lab_col is not None:
        rows = rows.drop_duplicates(lab_col, keep="last")
    rows = rows[pd.to_numeric(rows[metric], errors="coerce").notna()]
    if rows.empty:
        raise _nothing()
    values = _y(rows[metric])
    order = np.argsort(values, kind="stable")
    labels = [_labels(rows)[i] for i in order]
    values = values[order]
    import matplotlib as mpl

    colours = mpl.colormaps["RdYlGn"](np.clip(values / 100.0, 0, 1) * 0.8 + 0.1)
    bars = ax.barh(labels, values, color=colours, edgecolor="#333333", linewidth=0.4)
    ax.bar_label(bars, fmt="%.1f", padding=3, fontsize="small")
    top = max(100.0, float(np.nanmax(values)) * 1.1) if np.isfinite(values).any() else 100.0
    ax.set_xlim(min(0.0, float(np.nanmin(values)) * 1.1), top)
    return _pretty(metric), "token"


def _plot_ohlcv(ax: Any, d: pd.DataFrame, opts: dict[str, Any]) -> tuple[str, str]:
    dc = _date_col(d)
    _need(d, "ohlcv", *(c for c in (dc, "CLOSE") if c))
    groups = _groups(d)
    has_ohlc = all(_numeric_col(d, c) for c in ("OPEN", "HIGH", "LOW"))
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
    xlabel = f"{_pretty(dc)} (UTC)"
    if candles:
        g = _sorted_by(d, dc)
        cols = ["OPEN", "HIGH", "LOW", "CLOSE"]
        vals = np.column_stack([_y(g[c]) for c in cols])
        ok = ~np.isnan(vals).any(axis=1) & g[dc].notna().to_numpy()
        g, vals = g[ok], vals[ok]
        if g.empty:
            raise _nothing()
        _candles(ax, _x(g[dc]), vals, _y(g["VOLUME"]) if volume else None)
        return xlabel, "price (USD)"
    closes: list[np.ndarray] = []
    for sym, g in groups:
        g = _sorted_by(g, dc)
        y = _y(g["CLOSE"])
        if np.isnan(y).all():
            continue
        ax.plot(_x(g[dc]), y, linewidth=1.4, label=f"{sym} close" if sym else "close")
        closes.append(y)
        if volume:
            _volume(ax, _x(g[dc]), _y(g["VOLUME"]), _bar_width(_x(g[dc])))
    if not closes:
        raise _nothing()
    _date_axis(ax)
    return xlabel, _log_if_apart(ax, closes, "close (USD)")


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
    colours = np.where(up, _UP, _DOWN)
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
    _date_axis(ax)


def _volume(ax: Any, x: np.ndarray, volume: np.ndarray, width: float) -> None:
    import matplotlib.dates as mdates

    nums = x if np.issubdtype(np.asarray(x).dtype, np.floating) else mdates.date2num(x)
    vax = ax.twinx()
    vax.bar(nums, np.nan_to_num(volume), width=width, color="#9e9e9e", alpha=0.35, zorder=0, label="volume")
    top = float(np.nanmax(volume)) if np.isfinite(volume).any() else 1.0
    vax.set_ylim(0, (top or 1.0) * 4)  # volume in the bottom quarter
    vax.set_ylabel("volume (USD)")
    _money_axis(vax.yaxis)
    ax.set_zorder(vax.get_zorder() + 1)
    ax.patch.set_visible(False)


def _plot_correlation(ax: Any, d: pd.DataFrame, opts: dict[str, Any]) -> tuple[str, str]:
    _need(d, "correlation", "CORRELATED_TOKEN", "CORRELATION")
    corr = pd.to_numeric(d["CORRELATION"], errors="coerce")
    rows = d[corr.notna().to_numpy()]
    if rows.empty:
        raise _nothing()
    groups = _groups(rows)
    labels: list[str] = []
    values: list[float] = []
    for sym, g in groups:
        v = _y(g["CORRELATION"])
        order = np.argsort(v, kind="stable")
        toks = [str(t) for t in g["CORRELATED_TOKEN"]]
        labels += [f"{sym} · {toks[i]}" if len(groups) > 1 and sym else toks[i] for i in order]
        values += [float(v[i]) for i in order]
    arr = np.array(values)
    colours = np.where(arr >= 0, _UP, _DOWN)
    ax.barh(np.arange(len(arr)), arr, color=list(colours), edgecolor="#333333", linewidth=0.3)
    ax.set_yticks(np.arange(len(arr)), labels, fontsize="small")
    ax.axvline(0, color="#555555", linewidth=0.8)
    lim = max(1.0, float(np.nanmax(np.abs(arr))))
    ax.set_xlim(-lim * 1.05, lim * 1.05)
    ax.set_ylim(-0.6, len(arr) - 0.4)
    return "correlation", "correlated token"


def _plot_scenarios(ax: Any, d: pd.DataFrame, opts: dict[str, Any]) -> tuple[str, str]:
    style = str(opts.get("style") or "bars").lower()
    if style not in ("bars", "fan"):
        raise ConfigurationError(f"scenario style must be 'bars' or 'fan', got {opts.get('style')!r}")
    price_cols = [f"PRICE_{c}" for c in _SCENARIO_CASES if f"PRICE_{c}" in d.columns]
    rows = d[pd.DataFrame({c: pd.to_numeric(d[c], errors="coerce") for c in price_cols}).notna().any(axis=1)]
    if rows.empty:
        raise _nothing()
    if "SCENARIO" in rows.columns and pdt.is_numeric_dtype(rows["SCENARIO"].dtype):
        rows = rows.sort_values([c for c in ("TOKEN_SYMBOL", "SCENARIO") if c in rows.columns], kind="stable")
    groups = _groups(rows)
    if style == "fan":
        return _scenario_fan(ax, rows, groups)
    value = str(opts.get("value") or ("roi" if len(groups) > 1 else "price")).lower()
    if value not in ("price", "roi"):
        raise ConfigurationError(f"scenario value must be 'price' or 'roi', got {opts.get('value')!r}")
    prefix = "PRICE_" if value == "price" else "ROI_"
    cases = [c for c in _SCENARIO_CASES if prefix + c in rows.columns]
    if not cases:
        raise ConfigurationError(f"no {prefix}BEAR/BASE/MOON columns for value={value!r}")
    n = len(rows)
    centres = np.arange(n, dtype=float)
    width = 0.8 / len(cases)
    for k, case in enumerate(cases):
        ax.bar(
            centres + (k - (len(cases) - 1) / 2) * width,
            np.nan_to_num(_y(rows[prefix + case])),
            width=width,
            color=_CASE_COLOURS[case],
            edgecolor="#333333",
            linewidth=0.3,
            label=case.lower(),
        )
    labels = []
    syms = _labels(rows)
    for i in range(n):
        scen = rows["SCENARIO"].iloc[i] if "SCENARIO" in rows.columns else None
        lab = (
            f"×{scen:g}"
            if isinstance(scen, (int, float, np.number)) and pd.notna(scen)
            else (str(scen) if scen is not None and pd.notna(scen) else f"#{i + 1}")
        )
        labels.append(f"{syms[i]} {lab}" if len(groups) > 1 else lab)
    ax.set_xticks(centres, labels, fontsize="small", rotation=30 if len(groups) > 1 else 0)
    if value == "price":
        if "CURRENT_PRICE" in rows.columns:
            current = _y(rows["CURRENT_PRICE"])
            current = current[np.isfinite(current)]
            if current.size:
                ax.axhline(
                    float(current[-1]),
                    color="#333333",
                    linestyle="--",
                    linewidth=1,
                    label=f"current {_money(float(current[-1]))}",
                )
        _money_axis(ax.yaxis)
        ylabel = "predicted price (USD)"
    else:
        from matplotlib.ticker import PercentFormatter

        ax.axhline(0, color="#333333", linewidth=0.8)
        ax.yaxis.set_major_formatter(PercentFormatter(xmax=1))
        ylabel = "predicted ROI"
    return _scenario_xlabel(rows), ylabel


def _scenario_xlabel(rows: pd.DataFrame) -> str:
    label = "scenario (total crypto market cap multiple)"
    if "PREDICTED_DATE" in rows.columns:
        when = pd.to_datetime(rows["PREDICTED_DATE"], utc=True, errors="coerce").dropna()
        if not when.empty:
            label += f", predicted for {when.max():%Y-%m-%d}"
    return label


def _scenario_fan(ax: Any, rows: pd.DataFrame, groups: list[tuple[str | None, pd.DataFrame]]) -> tuple[str, str]:
    if len(groups) > 1:
        raise ConfigurationError("a scenario fan needs one token", hint="filter the frame, or use style='bars'")
    _need(rows, "scenarios", "CURRENT_PRICE", "DATE", "PREDICTED_DATE", "PRICE_BEAR", "PRICE_BASE", "PRICE_MOON")
    import matplotlib as mpl

    cmap = mpl.colormaps["viridis"]
    n = len(rows)
    for i in range(n):
        r = rows.iloc[[i]]
        x = np.concatenate([_x(r["DATE"]), _x(r["PREDICTED_DATE"])])
        cur = float(_y(r["CURRENT_PRICE"])[0])
        bear, base, moon = (float(_y(r[f"PRICE_{c}"])[0]) for c in _SCENARIO_CASES)
        colour = cmap(i / max(1, n - 1) * 0.85)
        scen = r["SCENARIO"].iloc[0] if "SCENARIO" in r.columns else None
        name = f"×{scen:g} mcap" if isinstance(scen, (int, float, np.number)) and pd.notna(scen) else f"#{i + 1}"
        ax.fill_between(x, [cur, bear], [cur, moon], color=colour, alpha=0.15, linewidth=0)
        ax.plot(x, [cur, base], color=colour, linewidth=1.6, marker="o", markersize=3, label=f"{name} base")
    _money_axis(ax.yaxis)
    _date_axis(ax)
    return "date (UTC)", "price (USD)"


def _close_from(obj: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """(dates, closes) from ``close=``: an OHLCV-like frame or a date-indexed Series."""
    if obj is None:
        return None
    if isinstance(obj, pd.Series):
        idx = obj.index
        x = _x(pd.Series(idx)) if not isinstance(idx, pd.RangeIndex) else None
        if x is None:
            raise ConfigurationError("close= as a Series needs a date index")
        return x, _y(obj.reset_index(drop=True))
    if isinstance(obj, pd.DataFrame):
        c = _prepare(obj)
        dc = _date_col(c)
        if dc is None or "CLOSE" not in c.columns:
            raise ConfigurationError("close= needs a frame with a date column and CLOSE (e.g. a daily-ohlcv frame)")
        c = _sorted_by(c, dc)
        return _x(c[dc]), _y(c["CLOSE"])
    raise ConfigurationError(f"close= must be a DataFrame or Series, got {type(obj).__name__}")


def _plot_levels(ax: Any, d: pd.DataFrame, opts: dict[str, Any]) -> tuple[str, str]:
    level = pd.to_numeric(d["LEVEL"], errors="coerce")
    rows = d[level.notna().to_numpy()]
    if rows.empty:
        raise _nothing()
    dc = _date_col(rows)
    close = _close_from(opts.get("close"))
    groups = _groups(rows)
    if close is not None and len(groups) > 1:
        raise ConfigurationError("close= goes with the levels of one token", hint="filter the levels frame first")
    if close is None and "CLOSE" in rows.columns and dc is not None:
        c = rows.drop_duplicates(dc).pipe(_sorted_by, dc)
        if len(groups) == 1 and c[dc].nunique() > 1:
            close = (_x(c[dc]), _y(c["CLOSE"]))
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
        end = pd.Series(_x(rows[dc])).max()
    end = None if end is None or pd.isna(end) else pd.Timestamp(end).to_datetime64()
    start_col = "LEVEL_DATE" if "LEVEL_DATE" in rows.columns else None
    drawn = False
    ylabel = "price (USD)"
    if close is None:
        ylabel = _log_if_apart(ax, [_y(g["LEVEL"]) for _, g in groups], ylabel)
    for i, (sym, g) in enumerate(groups):
        y = _y(g["LEVEL"])
        starts = _x(g[start_col]) if start_col else np.full(len(g), np.datetime64("NaT"))
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
            for name, mask, colour in (("resistance", y > last_close, _DOWN), ("support", y <= last_close, _UP)):
                if mask.any():
                    label = f"{sym} {name}" if len(groups) > 1 and sym else name
                    ax.hlines(
                        y[mask], starts[mask], np.full(int(mask.sum()), end), colors=colour, linewidth=1.4, label=label
                    )
        drawn = True
    if not drawn:
        raise _nothing()
    if end is not None:
        _date_axis(ax)
    _money_axis(ax.yaxis)
    return ("date (UTC)" if end is not None else "level"), ylabel


def _level_colour(v: float, last_close: float | None, i: int) -> str:
    if last_close is None:
        return f"C{i}"
    return _DOWN if v > last_close else _UP


def _level_label(v: float, last_close: float | None, sym: str | None) -> str:
    if last_close is None:
        return sym or "level"
    name = "resistance" if v > last_close else "support"
    return f"{sym} {name}" if sym else name


def _plot_quant(ax: Any, d: pd.DataFrame, opts: dict[str, Any]) -> tuple[str, str]:
    metric = _pick_metric(d, "quant", opts.get("metric"), _QUANT_METRICS)
    rows = d[pd.to_numeric(d[metric], errors="coerce").notna().to_numpy()]
    if rows.empty:
        raise _nothing()
    values = _y(rows[metric])
    colours = np.where(values >= 0, _UP, _DOWN)
    bars = ax.bar(_labels(rows), values, color=list(colours), edgecolor="#333333", linewidth=0.4)
    ax.bar_label(bars, fmt="%.3g", padding=2, fontsize="small")
    ax.axhline(0, color="#555555", linewidth=0.8)
    ax.margins(y=0.12)
    return "token", _pretty(metric)


def _plot_market(ax: Any, d: pd.DataFrame, opts: dict[str, Any]) -> tuple[str, str]:
    dc = _date_col(d)
    g = _sorted_by(d, dc)
    x = _x(g[dc])
    others = []
    ylabel = ""
    drawn = 0
    if "TOTAL_CRYPTO_MCAP" in g.columns and np.isfinite(_y(g["TOTAL_CRYPTO_MCAP"])).any():
        ax.plot(x, _y(g["TOTAL_CRYPTO_MCAP"]), color="C0", linewidth=1.5, label="total crypto market cap")
        _money_axis(ax.yaxis)
        ylabel = "total crypto market cap (USD)"
        drawn += 1
    if "TM_GRADE_PERC_HIGH_COINS" in g.columns and np.isfinite(_y(g["TM_GRADE_PERC_HIGH_COINS"])).any():
        target = ax.twinx() if drawn else ax
        target.plot(
            x, _y(g["TM_GRADE_PERC_HIGH_COINS"]), color="C1", linewidth=1.2, label="% coins with a high TM grade"
        )
        if target is not ax:
            target.set_ylabel("% coins with a high TM grade")
            others.append(target)
        else:
            ylabel = "% coins with a high TM grade"
        drawn += 1
    if not drawn:
        raise _nothing()
    _date_axis(ax)
    _legend(ax, others)
    return f"{_pretty(dc)} (UTC)", ylabel


def _plot_index(ax: Any, d: pd.DataFrame, opts: dict[str, Any]) -> tuple[str, str]:
    dc = _date_col(d)
    col = "ID" if "ID" in d.columns else _label_col(d)
    drawn = 0
    for key, g in _groups(d, col) if col else [(None, d)]:
        g = _sorted_by(g, dc)
        y = _y(g["INDEX_CUMULATIVE_ROI"])
        if np.isnan(y).all():
            continue
        label = f"index {key}" if key is not None and col == "ID" else (key or "cumulative ROI")
        ax.plot(_x(g[dc]), y, linewidth=1.5, label=label)
        drawn += 1
    if not drawn:
        raise _nothing()
    _date_axis(ax)
    return f"{_pretty(dc)} (UTC)", "index cumulative ROI"


_PLOTTERS: dict[str, Callable[[Any, pd.DataFrame, dict[str, Any]], tuple[str, str]]] = {
    "signals": _plot_signals,
    "grades": _plot_grades,
    "ohlcv": _plot_ohlcv,
    "correlation": _plot_correlation,
    "scenarios": _plot_scenarios,
    "levels": _plot_levels,
    "quant": _plot_quant,
    "market": _plot_market,
    "index": _plot_index,
}
assert set(_PLOTTERS) == set(PLOT_KINDS) == set(_OPTIONS)


# ------------------------------------------------------------------------------------------------
# Entry point


def _default_title(d: pd.DataFrame, endpoint: str | None, kind: str, opts: dict[str, Any]) -> str:
    head = endpoint or kind
    if kind == "index" and "ID" in d.columns:
        ids = [str(v) for v in pd.unique(d["ID"].dropna())]
        tail = ("index " + ", ".join(ids[:4]) + (f" +{len(ids) - 4} more" if len(ids) > 4 else "")) if ids else ""
    else:
        syms = _symbols(d)
        tail = ", ".join(syms[:5]) + (f" +{len(syms) - 5} more" if len(syms) > 5 else "")
    if kind == "quant":
        head += f" · {_pretty(_pick_metric(d, 'quant', opts.get('metric'), _QUANT_METRICS))}"
    return f"{head} · {tail}" if tail else head


def _figsize(kind: str, d: pd.DataFrame) -> tuple[float, float]:
    if kind == "correlation":
        return 8.0, max(4.0, 0.26 * len(d) + 1.2)
    if kind == "grades":
        dc = _date_col(d)
        if dc is None or d[dc].nunique() <= 1:
            return 8.0, max(3.0, 0.4 * len(d) + 1.5)
    return 9.0, 4.5


def _sandbox_label(ax: Any) -> None:
    if any(t.get_gid() == _SANDBOX_GID for t in ax.texts):
        return
    ax.annotate(
        SANDBOX_LABEL,
        xy=(1.0, 1.0),
        xycoords="axes fraction",
        xytext=(0, 3),
        textcoords="offset points",
        ha="right",
        va="bottom",
        fontsize=8,
        fontweight="bold",
        color="#9a3412",
        gid=_SANDBOX_GID,
        bbox={"boxstyle": "round,pad=0.2", "facecolor": "#fff7ed", "edgecolor": "#fdba74"},
    )


def plot_frame(
    df: pd.DataFrame, *, kind: str | None = None, ax: Any = None, title: str | None = None, **kwargs: Any
) -> Any:
    """Draw the chart that fits ``df`` and return its matplotlib Axes.

    ``kind`` forces one of :data:`PLOT_KINDS` (an endpoint name or alias works too,
    ``"trading-signals"`` → ``"signals"``); by default it is :func:`kind_for`'s
    choice. ``ax`` draws into an existing Axes (else a new figure is made);
    ``title`` replaces the default (endpoint · symbols). Options per kind:
    ``metric=`` (grades, quant), ``candles=``/``volume=`` (ohlcv),
    ``style="bars"|"fan"``/``value="price"|"roi"`` (scenarios), ``close=`` (levels),
    and ``figsize=`` when no ``ax`` is given. ``df`` is never modified.

    Raises ConfigurationError for an unknown kind or option, an empty frame
    ("nothing to plot") or a frame no chart fits.
    """
    if not isinstance(df, pd.DataFrame):
        raise ConfigurationError(f"plot needs a DataFrame, got {type(df).__name__}")
    wanted = _resolve_kind(kind) if kind is not None else None
    if df.empty or df.shape[1] == 0:
        raise ConfigurationError("nothing to plot", hint="the frame has no rows")
    d = _prepare(df)
    endpoint = _endpoint(df)
    if wanted is None:
        wanted = _kind_for(d, endpoint)
    elif not _fits(wanted, d):
        raise ConfigurationError(
            f"this frame does not have the columns a {wanted!r} chart needs; kinds: {_kinds_text()}",
            hint=f"kind_for(df) would choose {_suggest(d, endpoint)}",
        )
    allowed = _OPTIONS[wanted] + _COMMON_OPTIONS
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise ConfigurationError(
            f"plot kind {wanted!r} takes no option {', '.join(map(repr, unknown))}; its options: {', '.join(allowed)}"
        )
    figsize = kwargs.pop("figsize", None)
    if ax is not None and figsize is not None:
        raise ConfigurationError("figsize applies only when no ax is given")

    own_fig = None
    if ax is None:
        import matplotlib.pyplot as plt

        own_fig, ax = plt.subplots(figsize=figsize or _figsize(wanted, d), layout="constrained")
    try:
        xlabel, ylabel = _PLOTTERS[wanted](ax, d, kwargs)
        ax.set_xlabel(xlabel or wanted)
        ax.set_ylabel(ylabel or wanted)
        ax.set_title(title if title is not None else _default_title(d, endpoint, wanted, kwargs))
        if wanted != "market":  # market builds its legend across its twin axes
            _legend(ax)
        ax.grid(True, alpha=0.25, linewidth=0.6)
        ax.set_axisbelow(True)
        if _is_sandbox(df):
            _sandbox_label(ax)
    except BaseException:
        if own_fig is not None:
            import matplotlib.pyplot as plt

            plt.close(own_fig)
        raise
    return ax


def _suggest(d: pd.DataFrame, endpoint: str | None) -> str:
    try:
        return repr(_kind_for(d, endpoint))
    except ConfigurationError:
        return "nothing (no kind fits)"
