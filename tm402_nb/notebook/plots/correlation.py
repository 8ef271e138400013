"""Correlation: a horizontal bar per correlated token, positive green, negative red."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .common import DOWN, UP, Chart, as_floats, need_columns, nothing_to_plot, per_token


def fits(d: pd.DataFrame) -> bool:
    return "CORRELATION" in d.columns and "CORRELATED_TOKEN" in d.columns


def figsize(d: pd.DataFrame) -> tuple[float, float]:
    return 8.0, max(4.0, 0.26 * len(d) + 1.2)  # a readable bar per correlated token


def draw(ax: Any, d: pd.DataFrame, opts: dict[str, Any]) -> tuple[str, str]:
    need_columns(d, "correlation", "CORRELATED_TOKEN", "CORRELATION")
    corr = pd.to_numeric(d["CORRELATION"], errors="coerce")
    rows = d[corr.notna().to_numpy()]
    if rows.empty:
        raise nothing_to_plot()
    groups = per_token(rows)
    labels: list[str] = []
    values: list[float] = []
    for sym, g in groups:
        v = as_floats(g["CORRELATION"])
        order = np.argsort(v, kind="stable")
        toks = [str(t) for t in g["CORRELATED_TOKEN"]]
        labels += [f"{sym} · {toks[i]}" if len(groups) > 1 and sym else toks[i] for i in order]
        values += [float(v[i]) for i in order]
    arr = np.array(values)
    colours = np.where(arr >= 0, UP, DOWN)
    ax.barh(np.arange(len(arr)), arr, color=list(colours), edgecolor="#333333", linewidth=0.3)
    ax.set_yticks(np.arange(len(arr)), labels, fontsize="small")
    ax.axvline(0, color="#555555", linewidth=0.8)
    lim = max(1.0, float(np.nanmax(np.abs(arr))))
    ax.set_xlim(-lim * 1.05, lim * 1.05)
    ax.set_ylim(-0.6, len(arr) - 0.4)
    return "correlation", "correlated token"


CHART = Chart(
    "correlation",
    "horizontal bars of correlation per correlated token, positive/negative coloured",
    fits,
    draw,
    figsize=figsize,
    needs="CORRELATION and CORRELATED_TOKEN",
)
