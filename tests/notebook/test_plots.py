"""plot_frame / kind_for on real sandbox frames, checked artist by artist (Agg backend)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # before pyplot: no display in tests

import base64
import copy
import io
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from matplotlib import colors as mcolors
from matplotlib import pyplot as plt
from matplotlib.collections import LineCollection, PathCollection, PolyCollection
from matplotlib.image import imread
from matplotlib.patches import Rectangle
from matplotlib.text import Text

from tests.ui.lab import contrast
from tm402_nb.errors import ConfigurationError
from tm402_nb.notebook import plots
from tm402_nb.notebook.plots import MAX_CANDLES, PLOT_KINDS, kind_for, plot_frame
from tm402_nb.notebook.plots.common import DOWN, UP
from tm402_nb.notebook.plots.figure import DARK_CLASS, LIGHT_CLASS, ThemedFigure
from tm402_nb.notebook.plots.theme import dark_colours, dark_neutral
from tm402_nb.sandbox import serve
from tm402_nb.tokenmetrics.client import Client
from tm402_nb.x402 import SpendPolicy, X402Auth

# One worker runs the whole module under `--dist loadgroup`: one sandbox, each frame paid for once.
pytestmark = pytest.mark.xdist_group("notebook-plots")

KINDS = ("signals", "grades", "ohlcv", "correlation", "scenarios", "levels", "quant", "market", "index")
RANGE = {"start": "2026-06-01", "end": "2026-07-31"}

# name -> (endpoint, params, expected kind). Every test that needs a frame names one of these.
FRAMES: dict[str, tuple[str, dict, str]] = {
    "signals": ("trading-signals", {"symbol": "BTC", "start": "2026-06-01", "end": "2026-10-31"}, "signals"),
    "signals2": ("trading-signals", {"symbol": ["BTC", "ETH"], "start": "2026-06-01", "end": "2026-10-31"}, "signals"),
    "hourly-signals": ("hourly-trading-signals", {"symbol": ["BTC", "ETH"]}, "signals"),
    "grade-history": ("tm-grade-history", {"symbol": ["BTC", "ETH"], **RANGE}, "grades"),
    "tech-history": ("technology-grade-history", {"symbol": "BTC", **RANGE}, "grades"),
    "fund-history": ("fundamental-grade-history", {"symbol": ["BTC", "SOL"], **RANGE}, "grades"),
    "grade": ("tm-grade", {"symbol": ["BTC", "ETH", "SOL"]}, "grades"),
    "tech": ("technology-grade", {"symbol": ["BTC", "ETH", "SOL"]}, "grades"),
    "fund": ("fundamental-grade", {"symbol": ["BTC", "ETH", "SOL"]}, "grades"),
    "ohlcv": ("daily-ohlcv", {"symbol": "BTC", **RANGE}, "ohlcv"),
    "hourly-ohlcv": ("hourly-ohlcv", {"symbol": "BTC", "start": "2026-06-01", "end": "2026-06-03"}, "ohlcv"),
    "ohlcv-long": ("daily-ohlcv", {"symbol": "BTC", "start": "2026-01-01", "end": "2026-10-31"}, "ohlcv"),
    "ohlcv2": ("daily-ohlcv", {"symbol": ["BTC", "ETH"], **RANGE}, "ohlcv"),
    "correlation": ("correlation", {"symbol": "BTC"}, "correlation"),
    "correlation2": ("correlation", {"symbol": ["BTC", "ETH"]}, "correlation"),
    "scenarios": ("price-prediction", {"symbol": "BTC"}, "scenarios"),
    "scenarios2": ("price-prediction", {"symbol": ["BTC", "ETH"]}, "scenarios"),
    "levels": ("resistance-support", {"symbol": "BTC"}, "levels"),
    "levels2": ("resistance-support", {"symbol": ["BTC", "ETH"]}, "levels"),
    "quant": ("quantmetrics", {"symbol": ["BTC", "ETH", "SOL"]}, "quant"),
    "market": ("market-metrics", RANGE, "market"),
    "index": ("indices-performance", {"id": 1, **RANGE}, "index"),
}


@pytest.fixture(scope="module")
def sandbox():
    with serve(rate_limit=10_000, rate_burst=10_000) as sb:
        yield sb


@pytest.fixture(scope="module")
def client(sandbox):
    c = Client(
        mode="sandbox", base_url=sandbox.api_url, auth=X402Auth(sandbox.wallet, SpendPolicy(budget="5")), progress=False
    )
    yield c
    c.close()


@pytest.fixture(scope="module")
def frames(client):
    """frames(name) -> the sandbox frame, fetched (and paid) once per module."""
    cache: dict[str, pd.DataFrame] = {}

    def get(name: str) -> pd.DataFrame:
        if name not in cache:
            endpoint, params, _ = FRAMES[name]
            cache[name] = client.frame(endpoint, **params)
        return cache[name]

    return get


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# ---- helpers ---------------------------------------------------------------------------------


def rects(ax) -> list[Rectangle]:
    return [p for p in ax.patches if isinstance(p, Rectangle)]


def data_lines(ax) -> list:
    """Labelled Line2Ds (axhline/axvline references are unlabelled)."""
    return [ln for ln in ax.get_lines() if not ln.get_label().startswith("_")]


def markers(ax, label: str) -> int:
    return sum(len(c.get_offsets()) for c in ax.collections if isinstance(c, PathCollection) and c.get_label() == label)


def sandbox_texts(ax) -> list:
    return [t for t in ax.texts if "SANDBOX" in t.get_text()]


def legend_labels(ax) -> list[str]:
    leg = ax.get_legend()
    return [t.get_text() for t in leg.get_texts()] if leg is not None else []


def hexes(colors) -> list[str]:
    return [mcolors.to_hex(c) for c in colors]


def assert_labelled(ax) -> None:
    assert ax.get_title()
    assert ax.get_xlabel()
    assert ax.get_ylabel()


def stripped(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    out.attrs = {}
    return out


# ---- the table of kinds ------------------------------------------------------------------------


def test_plot_kinds_are_documented():
    assert tuple(PLOT_KINDS) == KINDS
    assert all(isinstance(v, str) and v for v in PLOT_KINDS.values())
    for kind in KINDS:
        assert f'``"{kind}"``' in plots.__doc__
    assert set(plots.ENDPOINT_KINDS.values()) == set(KINDS)


@pytest.mark.parametrize("name", list(FRAMES))
def test_kind_for_every_endpoint_and_by_columns(frames, name):
    df = frames(name)
    expected = FRAMES[name][2]
    assert kind_for(df) == expected
    assert kind_for(stripped(df)) == expected  # the same decision from the columns alone


@pytest.mark.parametrize("name", list(FRAMES))
def test_every_frame_plots_labelled_with_sandbox_label_and_unmutated(frames, name):
    df = frames(name)
    before = df.copy(deep=True)
    attrs_before = copy.deepcopy(df.attrs)
    ax = plot_frame(df)
    pd.testing.assert_frame_equal(df, before)
    assert df.attrs == attrs_before
    assert_labelled(ax)
    assert FRAMES[name][0] in ax.get_title()
    assert len(sandbox_texts(ax)) == 1
    assert sandbox_texts(ax)[0].get_visible()


# ---- signals --------------------------------------------------------------------------------


def test_daily_signals_returns_lines_and_markers(frames):
    df = frames("signals")
    ax = plot_frame(df)
    assert [ln.get_label() for ln in data_lines(ax)] == ["strategy", "holding"]
    # Both rebased to 1 at the window's start, so they compare on one axis (issue 15).
    strategy, holding = 1 + df["TRADING_SIGNALS_RETURNS"], 1 + df["HOLDING_RETURNS"]  # growth of 1
    assert np.allclose(data_lines(ax)[0].get_ydata(), strategy / strategy.iloc[0])
    assert np.allclose(data_lines(ax)[1].get_ydata(), holding / holding.iloc[0])
    assert data_lines(ax)[0].get_ydata()[0] == data_lines(ax)[1].get_ydata()[0] == 1
    assert ax.xaxis.get_offset_text().get_text() == ""  # no stray "2026-Nov" under the ticks
    n_buy, n_sell = int((df["TRADING_SIGNAL"] == 1).sum()), int((df["TRADING_SIGNAL"] == -1).sum())
    assert n_buy and n_sell  # the sandbox range has both
    assert markers(ax, "buy") == n_buy
    assert markers(ax, "sell") == n_sell
    buy = next(c for c in ax.collections if c.get_label() == "buy")
    assert sorted(buy.get_offsets()[:, 1]) == pytest.approx(
        sorted((1 + df.loc[df["TRADING_SIGNAL"] == 1, "TRADING_SIGNALS_RETURNS"]) / strategy.iloc[0])
    )
    assert set(legend_labels(ax)) == {"strategy", "holding", "buy", "sell"}
    assert ax.get_title() == "trading-signals · BTC"


def test_signals_for_two_tokens(frames):
    df = frames("signals2")
    ax = plot_frame(df)
    labels = [ln.get_label() for ln in data_lines(ax)]
    assert len(labels) == 4
    assert {"BTC strategy", "BTC holding", "ETH strategy", "ETH holding"} == set(labels)
    assert markers(ax, "buy") == int((df["TRADING_SIGNAL"] == 1).sum())
    assert markers(ax, "sell") == int((df["TRADING_SIGNAL"] == -1).sum())
    assert "BTC strategy" in legend_labels(ax)


def test_hourly_signals_close_lines_and_markers(frames):
    df = frames("hourly-signals")
    ax = plot_frame(df)
    assert sorted(ln.get_label() for ln in data_lines(ax)) == ["BTC close", "ETH close"]
    sig = pd.to_numeric(df["SIGNAL"])
    assert markers(ax, "buy") == int((sig == 1).sum())
    assert markers(ax, "sell") == int((sig == -1).sum())
    assert ax.get_yscale() == "log"  # BTC and ETH prices are decades apart
    assert len(legend_labels(ax)) == 4


def test_hourly_signals_as_strings(frames):
    # The real API serves SIGNAL as a string.
    df = frames("hourly-signals")
    words = df.assign(SIGNAL=df["SIGNAL"].map({1: "BUY", -1: "SELL", 0: "HOLD"}).astype(str))
    ax = plot_frame(words)
    assert markers(ax, "buy") == int((df["SIGNAL"] == 1).sum())
    assert markers(ax, "sell") == int((df["SIGNAL"] == -1).sum())


# ---- grades ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,metric",
    [("grade-history", "TM_GRADE"), ("tech-history", "TECHNOLOGY_GRADE"), ("fund-history", "FUNDAMENTAL_GRADE")],
)
def test_grade_history_line_per_token(frames, name, metric):
    df = frames(name)
    ax = plot_frame(df)
    symbols = sorted(df["TOKEN_SYMBOL"].unique())
    lines = data_lines(ax)
    assert sorted(ln.get_label() for ln in lines) == symbols
    for ln in lines:
        rows = df[df["TOKEN_SYMBOL"] == ln.get_label()]
        assert np.allclose(ln.get_ydata(), rows[metric])
    assert not rects(ax)
    assert (ax.get_legend() is not None) == (len(symbols) > 1)


@pytest.mark.parametrize(
    "name,metric", [("grade", "TM_GRADE"), ("tech", "TECHNOLOGY_GRADE"), ("fund", "FUNDAMENTAL_GRADE")]
)
def test_latest_grades_bar_per_token(frames, name, metric):
    df = frames(name)
    ax = plot_frame(df)
    bars = rects(ax)
    assert len(bars) == len(df)
    assert sorted(b.get_width() for b in bars) == pytest.approx(sorted(df[metric]))
    assert sorted(t.get_text() for t in ax.get_yticklabels()) == sorted(df["TOKEN_SYMBOL"])
    assert not data_lines(ax)


def test_grades_metric_option(frames):
    df = frames("grade")
    ax = plot_frame(df, metric="fundamental_grade")
    assert sorted(b.get_width() for b in rects(ax)) == pytest.approx(sorted(df["FUNDAMENTAL_GRADE"]))
    with pytest.raises(ConfigurationError, match="TM_GRADE"):
        plot_frame(df, metric="NOPE")


# ---- ohlcv ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ohlcv", "hourly-ohlcv"])
def test_candles_rectangle_per_bar(frames, name):
    df = frames(name)
    assert len(df) <= MAX_CANDLES
    ax = plot_frame(df)
    bodies = rects(ax)
    assert len(bodies) == len(df)
    up = int((df["CLOSE"] >= df["OPEN"]).sum())
    colours = hexes(b.get_facecolor() for b in bodies)
    assert colours.count(UP) == up
    assert colours.count(DOWN) == len(df) - up
    wicks = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert len(wicks) == 1 and len(wicks[0].get_segments()) == len(df)
    lows = sorted(seg[0][1] for seg in wicks[0].get_segments())
    assert lows == pytest.approx(sorted(df["LOW"]))
    assert not data_lines(ax)
    assert len(ax.figure.axes) == 1  # no volume unless asked


def test_candles_with_volume_on_twin_axis(frames):
    df = frames("ohlcv")
    ax = plot_frame(df, volume=True)
    assert len(rects(ax)) == len(df)
    twins = [a for a in ax.figure.axes if a is not ax]
    assert len(twins) == 1
    assert len(rects(twins[0])) == len(df)
    assert twins[0].get_ylabel()


def test_many_bars_become_a_close_line(frames):
    df = frames("ohlcv-long")
    assert len(df) > MAX_CANDLES
    ax = plot_frame(df)
    assert not rects(ax)
    assert len(data_lines(ax)) == 1
    assert np.allclose(data_lines(ax)[0].get_ydata(), df["CLOSE"])
    # candles=False/True force the choice
    assert not rects(plot_frame(frames("ohlcv"), candles=False))
    assert len(rects(plot_frame(df, candles=True))) == len(df)


def test_ohlcv_several_tokens_one_close_line_each(frames):
    df = frames("ohlcv2")
    ax = plot_frame(df)
    assert sorted(ln.get_label() for ln in data_lines(ax)) == ["BTC close", "ETH close"]
    assert not rects(ax)
    assert len(legend_labels(ax)) == 2
    with pytest.raises(ConfigurationError, match="one token"):
        plot_frame(df, candles=True)


# ---- correlation ------------------------------------------------------------------------------


def test_correlation_bars(frames):
    df = frames("correlation")
    ax = plot_frame(df)
    bars = rects(ax)
    assert len(bars) == len(df)
    assert sorted(b.get_width() for b in bars) == pytest.approx(sorted(df["CORRELATION"]))
    assert sorted(t.get_text() for t in ax.get_yticklabels()) == sorted(df["CORRELATED_TOKEN"])
    assert ax.get_xlim()[0] <= -1 and ax.get_xlim()[1] >= 1


def test_correlation_colours_by_sign(frames):
    df = frames("correlation")
    flipped = df.assign(CORRELATION=np.where(np.arange(len(df)) % 3 == 0, -df["CORRELATION"], df["CORRELATION"]))
    ax = plot_frame(flipped)
    colours = hexes(b.get_facecolor() for b in rects(ax))
    widths = [b.get_width() for b in rects(ax)]
    assert colours.count(DOWN) == int((flipped["CORRELATION"] < 0).sum()) > 0
    assert all((c == DOWN) == (w < 0) for c, w in zip(colours, widths, strict=False))


def test_correlation_two_tokens(frames):
    df = frames("correlation2")
    ax = plot_frame(df)
    assert len(rects(ax)) == len(df)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert any(lab.startswith("BTC · ") for lab in labels) and any(lab.startswith("ETH · ") for lab in labels)


# ---- scenarios --------------------------------------------------------------------------------


def test_scenarios_grouped_bars_and_current_price(frames):
    df = frames("scenarios")
    ax = plot_frame(df)
    bars = rects(ax)
    assert len(bars) == 3 * len(df)
    heights = sorted(b.get_height() for b in bars)
    assert heights == pytest.approx(sorted(np.concatenate([df["PRICE_BEAR"], df["PRICE_BASE"], df["PRICE_MOON"]])))
    current = [ln for ln in data_lines(ax) if ln.get_label().startswith("current")]
    assert len(current) == 1 and current[0].get_ydata()[0] == pytest.approx(df["CURRENT_PRICE"].iloc[0])
    labels = legend_labels(ax)
    assert len(labels) == 4 and {"bear", "base", "moon"} < set(labels)
    assert any(lab.startswith("current $") for lab in labels)
    assert len(ax.get_xticks()) == len(df)
    assert "price" in ax.get_ylabel()


def test_scenarios_two_tokens_use_roi(frames):
    df = frames("scenarios2")
    ax = plot_frame(df)
    assert len(rects(ax)) == 3 * len(df)
    assert "ROI" in ax.get_ylabel()
    assert sorted(b.get_height() for b in rects(ax)) == pytest.approx(
        sorted(np.concatenate([df["ROI_BEAR"], df["ROI_BASE"], df["ROI_MOON"]]))
    )


def test_scenario_fan(frames):
    df = frames("scenarios")
    ax = plot_frame(df, style="fan")
    lines = data_lines(ax)
    assert len(lines) == len(df)
    assert all(ln.get_ydata()[0] == pytest.approx(df["CURRENT_PRICE"].iloc[0]) for ln in lines)
    assert sorted(ln.get_ydata()[1] for ln in lines) == pytest.approx(sorted(df["PRICE_BASE"]))
    assert len([c for c in ax.collections if isinstance(c, PolyCollection)]) == len(df)
    with pytest.raises(ConfigurationError, match="one token"):
        plot_frame(frames("scenarios2"), style="fan")


# ---- levels ---------------------------------------------------------------------------------


def _segments(ax) -> list:
    return [s for c in ax.collections if isinstance(c, LineCollection) for s in c.get_segments()]


def test_levels_horizontal_line_per_level(frames):
    df = frames("levels")
    ax = plot_frame(df)
    segs = _segments(ax)
    assert len(segs) == len(df)
    assert all(s[0][1] == s[1][1] for s in segs)  # horizontal
    assert sorted(s[0][1] for s in segs) == pytest.approx(sorted(df["LEVEL"]))


def test_levels_over_close_split_resistance_support(frames):
    df = frames("levels")
    ohlcv = frames("ohlcv-long")
    ax = plot_frame(df, close=ohlcv)
    assert [ln.get_label() for ln in data_lines(ax)] == ["close"]
    last = ohlcv["CLOSE"].iloc[-1]
    by_label = {c.get_label(): len(c.get_segments()) for c in ax.collections if isinstance(c, LineCollection)}
    assert by_label.get("resistance", 0) == int((df["LEVEL"] > last).sum())
    assert by_label.get("support", 0) == int((df["LEVEL"] <= last).sum())
    assert "close" in legend_labels(ax)


def test_levels_two_tokens(frames):
    df = frames("levels2")
    ax = plot_frame(df)
    assert len(_segments(ax)) == len(df)
    assert sorted(legend_labels(ax)) == ["BTC", "ETH"]


# ---- quant, market, index ---------------------------------------------------------------------


def test_quant_bars_default_sharpe(frames):
    df = frames("quant")
    ax = plot_frame(df)
    bars = rects(ax)
    assert len(bars) == len(df)
    assert sorted(b.get_height() for b in bars) == pytest.approx(sorted(df["SHARPE"]))
    assert sorted(t.get_text() for t in ax.get_xticklabels()) == sorted(df["TOKEN_SYMBOL"])
    assert "sharpe" in ax.get_ylabel().lower()


def test_quant_metric_option(frames):
    df = frames("quant")
    ax = plot_frame(df, metric="max_drawdown")
    assert sorted(b.get_height() for b in rects(ax)) == pytest.approx(sorted(df["MAX_DRAWDOWN"]))
    assert all(hexes([b.get_facecolor()])[0] == DOWN for b in rects(ax))  # drawdowns are negative
    with pytest.raises(ConfigurationError, match="SHARPE"):
        plot_frame(df, metric="alpha")


def test_market_mcap_with_twin_axis(frames):
    df = frames("market")
    ax = plot_frame(df)
    assert [ln.get_label() for ln in data_lines(ax)] == ["total crypto market cap"]
    assert np.allclose(data_lines(ax)[0].get_ydata(), df["TOTAL_CRYPTO_MCAP"])
    twins = [a for a in ax.figure.axes if a is not ax]
    assert len(twins) == 1 and len(data_lines(twins[0])) == 1
    assert np.allclose(data_lines(twins[0])[0].get_ydata(), df["TM_GRADE_PERC_HIGH_COINS"])
    assert twins[0].get_ylabel()
    assert len(legend_labels(ax)) == 2


def test_index_cumulative_roi(frames):
    df = frames("index")
    ax = plot_frame(df)
    lines = data_lines(ax)
    assert len(lines) == 1 and lines[0].get_label() == "index 1"
    assert np.allclose(lines[0].get_ydata(), df["INDEX_CUMULATIVE_ROI"])
    assert ax.get_title() == "indices-performance · index 1"


# ---- dispatch, overrides, labels ----------------------------------------------------------------


def test_stripped_attrs_dispatch_by_columns_without_sandbox_label(frames):
    df = stripped(frames("correlation"))
    ax = plot_frame(df)
    assert len(rects(ax)) == len(df)
    assert not sandbox_texts(ax)
    assert ax.get_title().startswith("correlation")


def test_real_api_frames_have_no_sandbox_label(frames):
    df = frames("quant").copy()
    df.attrs = {"tm402": {**df.attrs["tm402"], "mode": "x402"}}
    assert not sandbox_texts(plot_frame(df))


def test_lowercase_frame_with_named_index(frames):
    df = frames("grade")
    lower = df.rename(columns=str.lower).rename_axis("token_id")
    assert kind_for(lower) == "grades"
    assert len(rects(plot_frame(lower))) == len(df)


def test_transformed_frame_falls_back_to_columns(frames):
    # attrs survive many pandas operations; the columns decide when they no longer fit the endpoint.
    df = frames("hourly-signals")
    prices = df[["TIMESTAMP", "TOKEN_SYMBOL", "CLOSE"]]
    assert prices.attrs["tm402"]["endpoint"] == "hourly-trading-signals"
    assert kind_for(prices) == "ohlcv"
    assert len(data_lines(plot_frame(prices))) == 2


def test_explicit_kind_overrides(frames):
    df = frames("hourly-signals")
    ax = plot_frame(df, kind="ohlcv")
    assert len(data_lines(ax)) == 2
    assert markers(ax, "buy") == 0 and markers(ax, "sell") == 0
    # an endpoint name or alias works as a kind
    assert markers(plot_frame(df, kind="hourly-trading-signals"), "buy") == int((df["SIGNAL"] == 1).sum())
    assert len(rects(plot_frame(frames("grade"), kind="GRADE"))) == 3
    with pytest.raises(ConfigurationError, match="'levels' chart"):
        plot_frame(df, kind="levels")


def test_explicit_title_and_given_ax(frames):
    _fig, (left, right) = plt.subplots(1, 2)
    opened = plt.get_fignums()
    out = plot_frame(frames("index"), ax=right, title="my index")
    assert out is right
    assert right.get_title() == "my index"
    assert not left.get_lines()
    assert plt.get_fignums() == opened  # no new figure
    plot_frame(frames("index"), ax=right)  # drawing twice on one Axes: still one sandbox label
    assert len(sandbox_texts(right)) == 1


def test_never_shows(frames, monkeypatch):
    monkeypatch.setattr(plt, "show", lambda *a, **k: pytest.fail("plt.show() called"))
    plot_frame(frames("signals"))


# ---- errors ----------------------------------------------------------------------------------


def test_unknown_kind_names_the_kinds(frames):
    with pytest.raises(ConfigurationError) as err:
        plot_frame(frames("ohlcv"), kind="pie")
    for kind in KINDS:
        assert kind in str(err.value)


def test_unplottable_frames_raise_naming_kinds(client):
    price = client.frame("price", symbol="BTC")
    with pytest.raises(ConfigurationError) as err:
        kind_for(price)
    assert "price" in str(err.value) and all(k in str(err.value) for k in KINDS)
    with pytest.raises(ConfigurationError, match="signals, grades"):
        plot_frame(price)
    with pytest.raises(ConfigurationError, match="no chart fits"):
        plot_frame(pd.DataFrame({"a": [1, 2], "b": [3, 4]}))
    with pytest.raises(ConfigurationError):
        plot_frame([1, 2, 3])  # type: ignore[arg-type]
    assert plt.get_fignums() == []  # nothing left open by a refusal


def test_empty_frame_nothing_to_plot(frames):
    empty = frames("ohlcv").iloc[0:0]
    with pytest.raises(ConfigurationError, match="nothing to plot"):
        plot_frame(empty)
    with pytest.raises(ConfigurationError, match="nothing to plot"):
        plot_frame(pd.DataFrame())
    all_missing = frames("quant").assign(SHARPE=np.nan)
    with pytest.raises(ConfigurationError, match="nothing to plot"):
        plot_frame(all_missing)
    assert plt.get_fignums() == []  # the half-made figure was closed


def test_unknown_option_raises(frames):
    with pytest.raises(ConfigurationError, match="metric"):
        plot_frame(frames("quant"), colour="red")
    with pytest.raises(ConfigurationError, match="bars"):
        plot_frame(frames("scenarios"), style="pie")


def test_module_imports_without_pyplot():
    code = (
        "import sys, tm402_nb.notebook.plots as p; "
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'; print(sorted(p.PLOT_KINDS))"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("DISPLAY", "MPLBACKEND")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "signals" in out.stdout


def test_levels_without_dates_and_close_as_series(frames):
    df = frames("levels")
    ohlcv = frames("ohlcv")
    close = ohlcv.set_index("DATE")["CLOSE"]
    bare = df[["LEVEL"]]  # no dates at all: lines across the axes
    ax = plot_frame(bare, close=close)
    last = close.iloc[-1]
    assert [ln.get_label() for ln in ax.get_lines()].count("close") == 1
    levels = [ln for ln in ax.get_lines() if ln.get_label() != "close"]
    assert len(levels) == len(df)
    assert sorted(ln.get_ydata()[0] for ln in levels) == pytest.approx(sorted(df["LEVEL"]))
    red = [ln for ln in levels if mcolors.to_hex(ln.get_color()) == DOWN]
    assert len(red) == int((df["LEVEL"] > last).sum())
    assert sorted(legend_labels(ax)) == sorted(
        {"close", *(["resistance"] if red else []), *(["support"] if len(red) < len(df) else [])}
    )
    with pytest.raises(ConfigurationError, match="one token"):
        plot_frame(frames("levels2"), close=close)


# ---- light and dark renderings (issue 15) ----------------------------------------------------------
AA_TEXT, AA_GRAPHICS = 4.5, 3.0  # WCAG 2.x: text (1.4.3), axes lines (1.4.11)
IMG = re.compile(r'<img class="([^"]+)" alt="([^"]*)" src="data:image/png;base64,([^"]+)"( hidden)?>')
#: One frame of each kind, plus the shapes with a twin axis, candles or a fan.
THEMED = ("signals", "grade", "grade-history", "ohlcv", "correlation", "scenarios", "levels", "quant", "market",
          "index")  # fmt: skip


def renderings(html: str) -> dict[str, tuple[bytes, bool, str]]:
    """class -> (PNG bytes, hidden, alt) of each image in a chart's HTML."""
    return {cls: (base64.b64decode(data), bool(hidden), alt) for cls, alt, data, hidden in IMG.findall(html)}


def rgb255(colour) -> tuple[float, float, float]:
    r, g, b, _ = mcolors.to_rgba(colour)
    return (r * 255, g * 255, b * 255)


def over(top, below: tuple[float, float, float]) -> tuple[float, float, float]:
    """``top`` (any matplotlib colour, its alpha honoured) composited over the opaque ``below``."""
    r, g, b, a = mcolors.to_rgba(top)
    return tuple(c * 255 * a + d * (1 - a) for c, d in zip((r, g, b), below, strict=True))  # type: ignore[return-value]


def dominant(png: bytes) -> tuple[float, float, float]:
    """The most frequent colour of a PNG (0-255): a chart's background."""
    pixels = (imread(io.BytesIO(png))[..., :3] * 255).round().astype(np.uint8).reshape(-1, 3)
    colours, counts = np.unique(pixels, axis=0, return_counts=True)
    return tuple(float(c) for c in colours[counts.argmax()])  # type: ignore[return-value]


def backdrop(fig, text: Text, renderer) -> tuple[float, float, float]:
    """What ``text`` sits on, from the figure's own colours: its box, else its legend's frame, else the
    Axes it lies in, over the figure's face."""
    behind = rgb255(fig.get_facecolor())
    bbox = text.get_window_extent(renderer)
    x, y = (bbox.x0 + bbox.x1) / 2, (bbox.y0 + bbox.y1) / 2
    for ax in fig.axes:
        if ax.patch.get_visible() and ax.bbox.contains(x, y):
            behind = over(ax.patch.get_facecolor(), behind)
    for ax in fig.axes:
        leg = ax.get_legend()
        if leg is not None and (text in leg.get_texts() or text is leg.get_title()):
            behind = over(leg.get_frame().get_facecolor(), behind)
    box = text.get_bbox_patch()
    if box is not None:
        behind = over(box.get_facecolor(), behind)
    return behind


def assert_readable(fig, variant: str) -> int:
    """Every visible text at 4.5:1 or more against what it sits on, spines and ticks at 3:1; returns
    how many texts were checked."""
    renderer = fig.canvas.get_renderer()
    texts = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    for t in texts:
        behind = backdrop(fig, t, renderer)
        ratio = contrast(over(mcolors.to_rgba(t.get_color(), t.get_alpha()), behind), behind)
        assert ratio >= AA_TEXT, f"{variant}: {t.get_text()!r} is {ratio:.2f}:1 ({t.get_color()} on {behind})"
    face = rgb255(fig.get_facecolor())
    for ax in fig.axes:
        inside = over(ax.patch.get_facecolor(), face) if ax.patch.get_visible() else face
        lines = [s for s in ax.spines.values() if s.get_visible()]
        ticks = [t for t in ax.xaxis.get_ticklines() + ax.yaxis.get_ticklines() if t.get_visible()]
        for art, colour in [(s, s.get_edgecolor()) for s in lines] + [(t, t.get_color()) for t in ticks]:
            for behind in (face, inside):
                ratio = contrast(over(colour, behind), behind)
                assert ratio >= AA_GRAPHICS, f"{variant}: {art} is {ratio:.2f}:1 on {behind}"
    return len(texts)


def test_chart_html_has_a_light_and_a_hidden_dark_rendering(frames):
    ax = plot_frame(frames("signals"))
    fig = ax.figure
    assert isinstance(fig, ThemedFigure) and plt.get_fignums() == [fig.number]  # pyplot's: shown once, by it
    html = fig._repr_html_()
    shown = renderings(html)
    assert set(shown) == {LIGHT_CLASS, DARK_CLASS}
    (light, light_hidden, alt), (dark, dark_hidden, _) = shown[LIGHT_CLASS], shown[DARK_CLASS]
    # Without the <style> (an untrusted notebook, another front end) only the light one shows.
    assert not light_hidden and dark_hidden
    assert f'body[data-jp-theme-light="false"] img.{LIGHT_CLASS}{{display:none' in html
    assert f'body[data-jp-theme-light="false"] img.{DARK_CLASS}{{display:inline' in html
    assert alt == "chart: " + ax.get_title()
    assert contrast(dominant(light), (255, 255, 255)) < 1.1  # white
    assert contrast(dominant(dark), (0, 0, 0)) < 1.5  # near black (#111, JupyterLab Dark's background)
    # Palette PNGs: a 900 x 450 chart was 60 KB as a 24-bit PNG.
    assert len(light) < 35_000 and len(dark) < 35_000, (len(light), len(dark))


def test_fallback_is_the_light_figure_and_displaying_changes_nothing(frames):
    from IPython.core.pylabtools import print_figure

    ax = plot_frame(frames("ohlcv"))
    ax.set_title("my candles")  # the user's change after plotting is in what is displayed
    fig = ax.figure
    before = print_figure(fig, "png", bbox_inches="tight")  # what the inline backend sends as image/png
    html = fig._repr_html_()
    assert {alt for _, _, alt in renderings(html).values()} == {"chart: my candles"}
    after = print_figure(fig, "png", bbox_inches="tight")
    assert after == before  # every colour put back after the dark rendering
    assert contrast(dominant(after), (255, 255, 255)) < 1.1
    saved = io.BytesIO()
    fig.savefig(saved, format="png")
    assert contrast(dominant(saved.getvalue()), (255, 255, 255)) < 1.1


@pytest.mark.parametrize("name", THEMED)
def test_text_and_axes_meet_aa_in_both_renderings(frames, name):
    fig = plot_frame(frames(name)).figure
    fig.draw_without_rendering()
    checked = assert_readable(fig, "light")
    with dark_colours(fig):
        assert contrast(rgb255(fig.get_facecolor()), (0, 0, 0)) < 1.5  # the dark rendering is dark
        assert assert_readable(fig, "dark") == checked
    assert checked >= 6  # title, axis labels, tick labels at least


def test_dark_colours_changes_neutrals_only():
    white, black, grey = (1.0, 1.0, 1.0, 1.0), (0.0, 0.0, 0.0, 1.0), (0.2, 0.2, 0.2, 0.5)
    canvas, ink = dark_neutral(white), dark_neutral(black)
    assert contrast(rgb255(canvas), (0, 0, 0)) < 1.5 and contrast(rgb255(ink), rgb255(canvas)) >= 7
    was = contrast(rgb255(grey), (255, 255, 255))
    assert contrast(rgb255(dark_neutral(grey)), rgb255(canvas)) == pytest.approx(was, rel=0.01)
    assert dark_neutral(grey)[3] == 0.5  # alpha kept
    for hue in (mcolors.to_rgba(UP), mcolors.to_rgba(DOWN), mcolors.to_rgba("#fff7ed")):
        assert dark_neutral(hue) == hue


def test_a_figure_styled_dark_is_shown_as_made(frames):
    with plt.style.context("dark_background"):
        ax = plot_frame(frames("quant"))
    assert ax.figure._repr_html_() is None  # the backend's own image/png alone
    _fig, mine = plt.subplots()
    assert plot_frame(frames("quant"), ax=mine).figure._repr_html_() is None  # a figure passed in: as made


def test_notebook_shows_the_chart_once_as_html_and_png(tmp_path):
    """In a kernel with the inline backend: one output per chart, carrying both renderings (HTML)
    and the light PNG; the Axes the cell changed after plotting is what both show."""
    import nbformat
    from nbclient import NotebookClient

    cells = [
        "%matplotlib inline\nimport pandas as pd\nimport tm402_nb.notebook.accessor\n"
        "df = pd.DataFrame({'DATE': pd.date_range('2026-01-01', periods=30), 'INDEX_CUMULATIVE_ROI': range(30)})",
        "ax = df.tm.plot(kind='index')\nax.set_title('mine');",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = nb.cells[1].outputs
    assert [o.output_type for o in outputs] == ["display_data"], outputs
    data = outputs[0].data
    assert {"text/html", "image/png"} <= set(data)
    shown = renderings(data["text/html"])
    assert set(shown) == {LIGHT_CLASS, DARK_CLASS}
    assert {alt for _, _, alt in shown.values()} == {"chart: mine"}
    assert contrast(dominant(base64.b64decode(data["image/png"])), (255, 255, 255)) < 1.1
