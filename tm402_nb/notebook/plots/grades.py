"""Grades (TM, technology, fundamental): lines over time, or the latest as a bar per token."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ...tokenmetrics.catalogue import chart_metrics
from .common import (
    Chart,
    as_dates,
    as_floats,
    date_axis,
    date_column,
    default_figsize,
    is_numeric_column,
    label_column,
    nothing_to_plot,
    per_token,
    pick_metric,
    pretty,
    row_labels,
    sorted_by,
)

#: Grade columns, in the order one is chosen when ``metric=`` is not given.
GRADE_METRICS = chart_metrics("grades")


def fits(d: pd.DataFrame) -> bool:
    return any(is_numeric_column(d, c) for c in GRADE_METRICS)


def figsize(d: pd.DataFrame) -> tuple[float, float]:
    dc = date_column(d)
    if dc is None or d[dc].nunique() <= 1:  # latest grades: a bar per token
        return 8.0, max(3.0, 0.4 * len(d) + 1.5)
    return default_figsize(d)


def draw(ax: Any, d: pd.DataFrame, opts: dict[str, Any]) -> tuple[str, str]:
    metric = pick_metric(d, "grade", opts.get("metric"), GRADE_METRICS)
    dc = date_column(d)
    groups = per_token(d)
    if dc is not None and any(g[dc].nunique() > 1 for _, g in groups):  # histories: a line per token
        drawn = 0
        for sym, g in groups:
            g = sorted_by(g, dc)
            y = as_floats(g[metric])
            if np.isnan(y).all():
                continue
            ax.plot(as_dates(g[dc]), y, linewidth=1.5, label=sym or pretty(metric))
            drawn += 1
        if not drawn:
            raise nothing_to_plot()
        date_axis(ax)
        return f"{pretty(dc)} (UTC)", pretty(metric)
    # Latest grades: one bar per token (the newest row when a token repeats).
    rows = d if dc is None else sorted_by(d, dc)
    lab_col = label_column(rows)
    if lab_col is not None:
        rows = rows.drop_duplicates(lab_col, keep="last")
    rows = rows[pd.to_numeric(rows[metric], errors="coerce").notna()]
    if rows.empty:
        raise nothing_to_plot()
    values = as_floats(rows[metric])
    order = np.argsort(values, kind="stable")
    labels = [row_labels(rows)[i] for i in order]
    values = values[order]
    import matplotlib as mpl

    colours = mpl.colormaps["RdYlGn"](np.clip(values / 100.0, 0, 1) * 0.8 + 0.1)
    bars = ax.barh(labels, values, color=colours, edgecolor="#333333", linewidth=0.4)
    ax.bar_label(bars, fmt="%.1f", padding=3, fontsize="small")
    top = max(100.0, float(np.nanmax(values)) * 1.1) if np.isfinite(values).any() else 100.0
    ax.set_xlim(min(0.0, float(np.nanmin(values)) * 1.1), top)
    return pretty(metric), "token"


CHART = Chart(
    "grades",
    "grade lines per token over time; latest grades as a bar per token",
    fits,
    draw,
    options=("metric",),
    figsize=figsize,
    needs="a numeric grade column (" + ", ".join(GRADE_METRICS) + ")",
)
