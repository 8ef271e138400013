"""Price predictions: bear / base / moon per market-cap scenario, as bars or a fan."""

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
    money,
    money_axis,
    need_columns,
    nothing_to_plot,
    per_token,
    row_labels,
)

#: The predicted cases, each a ``PRICE_<case>`` and ``ROI_<case>`` column.
SCENARIO_CASES = ("BEAR", "BASE", "MOON")
CASE_COLOURS = {"BEAR": DOWN, "BASE": "#4a6fa5", "MOON": UP}


def fits(d: pd.DataFrame) -> bool:
    return any(f"PRICE_{c}" in d.columns for c in SCENARIO_CASES)


def draw(ax: Any, d: pd.DataFrame, opts: dict[str, Any]) -> tuple[str, str]:
    style = str(opts.get("style") or "bars").lower()
    if style not in ("bars", "fan"):
        raise ConfigurationError(f"scenario style must be 'bars' or 'fan', got {opts.get('style')!r}")
    price_cols = [f"PRICE_{c}" for c in SCENARIO_CASES if f"PRICE_{c}" in d.columns]
    rows = d[pd.DataFrame({c: pd.to_numeric(d[c], errors="coerce") for c in price_cols}).notna().any(axis=1)]
    if rows.empty:
        raise nothing_to_plot()
    if "SCENARIO" in rows.columns and pdt.is_numeric_dtype(rows["SCENARIO"].dtype):
        rows = rows.sort_values([c for c in ("TOKEN_SYMBOL", "SCENARIO") if c in rows.columns], kind="stable")
    groups = per_token(rows)
    if style == "fan":
        return _scenario_fan(ax, rows, groups)
    value = str(opts.get("value") or ("roi" if len(groups) > 1 else "price")).lower()
    if value not in ("price", "roi"):
        raise ConfigurationError(f"scenario value must be 'price' or 'roi', got {opts.get('value')!r}")
    prefix = "PRICE_" if value == "price" else "ROI_"
    cases = [c for c in SCENARIO_CASES if prefix + c in rows.columns]
    if not cases:
        raise ConfigurationError(f"no {prefix}BEAR/BASE/MOON columns for value={value!r}")
    n = len(rows)
    centres = np.arange(n, dtype=float)
    width = 0.8 / len(cases)
    for k, case in enumerate(cases):
        ax.bar(
            centres + (k - (len(cases) - 1) / 2) * width,
            np.nan_to_num(as_floats(rows[prefix + case])),
            width=width,
            color=CASE_COLOURS[case],
            edgecolor="#333333",
            linewidth=0.3,
            label=case.lower(),
        )
    labels = []
    syms = row_labels(rows)
    for i in range(n):
        scen = rows["SCENARIO"].iloc[i] if "SCENARIO" in rows.columns else None
        lab = _multiple(scen) or (str(scen) if scen is not None and pd.notna(scen) else f"#{i + 1}")
        labels.append(f"{syms[i]} {lab}" if len(groups) > 1 else lab)
    ax.set_xticks(centres, labels, fontsize="small", rotation=30 if len(groups) > 1 else 0)
    if value == "price":
        if "CURRENT_PRICE" in rows.columns:
            current = as_floats(rows["CURRENT_PRICE"])
            current = current[np.isfinite(current)]
            if current.size:
                ax.axhline(
                    float(current[-1]),
                    color="#333333",
                    linestyle="--",
                    linewidth=1,
                    label=f"current {money(float(current[-1]))}",
                )
        money_axis(ax.yaxis)
        ylabel = "predicted price (USD)"
    else:
        from matplotlib.ticker import PercentFormatter

        ax.axhline(0, color="#333333", linewidth=0.8)
        ax.yaxis.set_major_formatter(PercentFormatter(xmax=1))
        ylabel = "predicted ROI"
    return _scenario_xlabel(rows), ylabel


def _multiple(scenario: Any) -> str | None:
    """``×2`` for a scenario given as a market-cap multiple (a number); None for anything else."""
    if isinstance(scenario, (int, float, np.number)) and pd.notna(float(scenario)):
        return f"×{scenario:g}"
    return None


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
    need_columns(rows, "scenarios", "CURRENT_PRICE", "DATE", "PREDICTED_DATE", "PRICE_BEAR", "PRICE_BASE", "PRICE_MOON")
    import matplotlib as mpl

    cmap = mpl.colormaps["viridis"]
    n = len(rows)
    for i in range(n):
        r = rows.iloc[[i]]
        x = np.concatenate([as_dates(r["DATE"]), as_dates(r["PREDICTED_DATE"])])
        cur = float(as_floats(r["CURRENT_PRICE"])[0])
        bear, base, moon = (float(as_floats(r[f"PRICE_{c}"])[0]) for c in SCENARIO_CASES)
        colour = cmap(i / max(1, n - 1) * 0.85)
        scen = r["SCENARIO"].iloc[0] if "SCENARIO" in r.columns else None
        multiple = _multiple(scen)
        name = f"{multiple} mcap" if multiple else f"#{i + 1}"
        ax.fill_between(x, [cur, bear], [cur, moon], color=colour, alpha=0.15, linewidth=0)
        ax.plot(x, [cur, base], color=colour, linewidth=1.6, marker="o", markersize=3, label=f"{name} base")
    money_axis(ax.yaxis)
    date_axis(ax)
    return "date (UTC)", "price (USD)"


CHART = Chart(
    "scenarios",
    "bear/base/moon predicted price per market-cap scenario against the current price",
    fits,
    draw,
    options=("style", "value"),
    needs="PRICE_BEAR, PRICE_BASE or PRICE_MOON",
)
