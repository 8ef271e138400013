"""Quant metrics: a bar per token of one metric (Sharpe by default)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ...tokenmetrics.catalogue import chart_metrics
from .common import (
    DOWN,
    UP,
    Chart,
    as_floats,
    is_numeric_column,
    nothing_to_plot,
    pick_metric,
    pretty,
    row_labels,
    tokens_subject,
)

#: Quant-metric columns, in the order one is chosen when ``metric=`` is not given (from the catalogue).
QUANT_METRICS = chart_metrics("quant")


def fits(d: pd.DataFrame) -> bool:
    return any(is_numeric_column(d, c) for c in QUANT_METRICS)


def subject(d: pd.DataFrame, opts: dict[str, Any]) -> str:
    """The metric, then the tokens: ``Sharpe · BTC, ETH``."""
    metric = pretty(pick_metric(d, "quant", opts.get("metric"), QUANT_METRICS))
    tokens = tokens_subject(d, opts)
    return f"{metric} · {tokens}" if tokens else metric


def draw(ax: Any, d: pd.DataFrame, opts: dict[str, Any]) -> tuple[str, str]:
    metric = pick_metric(d, "quant", opts.get("metric"), QUANT_METRICS)
    rows = d[pd.to_numeric(d[metric], errors="coerce").notna().to_numpy()]
    if rows.empty:
        raise nothing_to_plot()
    values = as_floats(rows[metric])
    colours = np.where(values >= 0, UP, DOWN)
    bars = ax.bar(row_labels(rows), values, color=list(colours), edgecolor="#333333", linewidth=0.4)
    ax.bar_label(bars, fmt="%.3g", padding=2, fontsize="small")
    ax.axhline(0, color="#555555", linewidth=0.8)
    ax.margins(y=0.12)
    return "token", pretty(metric)


CHART = Chart(
    "quant",
    "bars of one quant metric per token (metric=, default SHARPE)",
    fits,
    draw,
    options=("metric",),
    subject=subject,
    needs="a numeric quant metric (" + ", ".join(QUANT_METRICS[:4]) + ", ...)",
)
