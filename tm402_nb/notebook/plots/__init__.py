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
    Trading signals carry grades too: mid-2025 rows ``TM_TRADER_GRADE``/``TM_INVESTOR_GRADE``,
    rows as the 2026 docs list them ``TM_GRADE``/``FUNDAMENTAL_GRADE`` (any case): either set plots.
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
option, and an empty frame raise :class:`~tm402_nb.errors.ConfigurationError`; a frame without the
columns its chart needs says which columns those are.
The input frame is never modified. Only the object-oriented matplotlib API is
used: a figure is created (``plt.subplots``) only when no ``ax`` is given, nothing
is shown, and the Axes is returned.

A figure made here is a :class:`~tm402_nb.notebook.plots.figure.ThemedFigure`: in a notebook it
shows itself in JupyterLab's light or dark theme, whichever is set (a light and a dark rendering,
made when it is displayed; see that module). ``savefig``, a terminal and nbconvert's PDF get the
light one, the figure's own colours. A figure you pass in (``ax=``) is shown as you made it.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ...errors import ConfigurationError
from ...tokenmetrics.catalogue import chart_kinds
from ..accessor import FrameCost
from . import correlation, grades, indices, levels, market, ohlcv, quant, scenarios, signals
from .common import Chart, legend, normalize_columns
from .ohlcv import MAX_CANDLES

__all__ = ["ENDPOINT_KINDS", "MAX_CANDLES", "PLOT_KINDS", "SANDBOX_LABEL", "kind_for", "plot_frame"]

#: endpoint → kind for the endpoints that have a chart (the catalogue's ``Endpoint.chart``).
ENDPOINT_KINDS: dict[str, str] = chart_kinds()

#: kind → its chart, in the order the kinds are documented.
CHARTS: dict[str, Chart] = {
    chart.kind: chart
    for chart in (
        signals.CHART,
        grades.CHART,
        ohlcv.CHART,
        correlation.CHART,
        scenarios.CHART,
        levels.CHART,
        quant.CHART,
        market.CHART,
        indices.CHART,
    )
}
#: kind → what it draws (one line each).
PLOT_KINDS: dict[str, str] = {kind: chart.summary for kind, chart in CHARTS.items()}
# Most specific first: a signals frame has a CLOSE (ohlcv would fit), trading-signals carry grades.
_INFER_ORDER = ("correlation", "scenarios", "levels", "signals", "market", "index", "ohlcv", "quant", "grades")
assert set(_INFER_ORDER) == set(CHARTS) and set(ENDPOINT_KINDS.values()) <= set(CHARTS)

#: Options every kind takes.
COMMON_OPTIONS = ("figsize",)
SANDBOX_LABEL = "SANDBOX data"
_SANDBOX_GID = "tm402-sandbox-label"


def _kinds_text() -> str:
    return ", ".join(PLOT_KINDS)


# ------------------------------------------------------------------------------------------------
# Which chart


def _endpoint(df: pd.DataFrame) -> str | None:
    meta = df.attrs.get("tm402") if isinstance(df.attrs, dict) else None
    ep = meta.get("endpoint") if isinstance(meta, dict) else None
    return str(ep) if ep else None


def _is_sandbox(df: pd.DataFrame) -> bool:
    return FrameCost.from_attrs(df.attrs.get("tm402")).from_sandbox


def _resolve_kind(name: str) -> str:
    """A kind from a kind name or an endpoint name/alias (``"trading-signals"`` → ``"signals"``)."""
    if not isinstance(name, str):
        raise ConfigurationError(f"a plot kind must be a string, got {type(name).__name__}; kinds: {_kinds_text()}")
    key = name.strip().lower().replace("_", "-")
    if key in PLOT_KINDS:
        return key
    try:
        from ...tokenmetrics.catalogue import get_endpoint

        ep = get_endpoint(key).name
    except ConfigurationError:
        ep = None
    if ep in ENDPOINT_KINDS:
        return ENDPOINT_KINDS[ep]
    raise ConfigurationError(f"unknown plot kind {name!r}; kinds: {_kinds_text()}")


def _kind_for(d: pd.DataFrame, endpoint: str | None) -> str:
    if endpoint is not None:
        kind = ENDPOINT_KINDS.get(endpoint)
        if kind is not None and CHARTS[kind].fits(d):
            return kind
    for kind in _INFER_ORDER:
        if CHARTS[kind].fits(d):
            return kind
    if endpoint is not None and endpoint in ENDPOINT_KINDS:
        kind = ENDPOINT_KINDS[endpoint]
        why = f"this {endpoint} frame does not have the columns a {kind!r} chart needs ({CHARTS[kind].needs})"
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
    return _kind_for(normalize_columns(df), _endpoint(df))


def _suggest(d: pd.DataFrame, endpoint: str | None) -> str:
    try:
        return repr(_kind_for(d, endpoint))
    except ConfigurationError:
        return "nothing (no kind fits)"


# ------------------------------------------------------------------------------------------------
# Drawing it


def _default_title(d: pd.DataFrame, endpoint: str | None, chart: Chart, opts: dict[str, Any]) -> str:
    head = endpoint or chart.kind
    subject = chart.subject(d, opts)
    return f"{head} · {subject}" if subject else head


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
    d = normalize_columns(df)
    endpoint = _endpoint(df)
    if wanted is None:
        wanted = _kind_for(d, endpoint)
    chart = CHARTS[wanted]
    if kind is not None and not chart.fits(d):
        raise ConfigurationError(
            f"this frame does not have the columns a {wanted!r} chart needs ({chart.needs}); kinds: {_kinds_text()}",
            hint=f"kind_for(df) would choose {_suggest(d, endpoint)}",
        )
    allowed = chart.options + COMMON_OPTIONS
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

        from .figure import ThemedFigure

        own_fig, ax = plt.subplots(figsize=figsize or chart.figsize(d), layout="constrained", FigureClass=ThemedFigure)
    try:
        xlabel, ylabel = chart.draw(ax, d, kwargs)
        ax.set_xlabel(xlabel or wanted)
        ax.set_ylabel(ylabel or wanted)
        ax.set_title(title if title is not None else _default_title(d, endpoint, chart, kwargs))
        if chart.legend:
            legend(ax)
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
