"""Indices: cumulative ROI over time, a line per index."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .common import (
    Chart,
    as_dates,
    as_floats,
    date_axis,
    date_column,
    label_column,
    nothing_to_plot,
    per_token,
    pretty,
    require_date_column,
    sorted_by,
    tokens_subject,
)


def fits(d: pd.DataFrame) -> bool:
    return date_column(d) is not None and "INDEX_CUMULATIVE_ROI" in d.columns


def subject(d: pd.DataFrame, opts: dict[str, Any]) -> str:
    """The index ids (the first four) when the frame has them, else the tokens."""
    if "ID" not in d.columns:
        return tokens_subject(d, opts)
    ids = [str(v) for v in pd.unique(d["ID"].dropna())]
    return ("index " + ", ".join(ids[:4]) + (f" +{len(ids) - 4} more" if len(ids) > 4 else "")) if ids else ""


def draw(ax: Any, d: pd.DataFrame, opts: dict[str, Any]) -> tuple[str, str]:
    dc = require_date_column(d, "index")
    col = "ID" if "ID" in d.columns else label_column(d)
    drawn = 0
    for key, g in per_token(d, col) if col else [(None, d)]:
        g = sorted_by(g, dc)
        y = as_floats(g["INDEX_CUMULATIVE_ROI"])
        if np.isnan(y).all():
            continue
        label = f"index {key}" if key is not None and col == "ID" else (key or "cumulative ROI")
        ax.plot(as_dates(g[dc]), y, linewidth=1.5, label=label)
        drawn += 1
    if not drawn:
        raise nothing_to_plot()
    date_axis(ax)
    return f"{pretty(dc)} (UTC)", "index cumulative ROI"


CHART = Chart(
    "index",
    "index cumulative ROI over time",
    fits,
    draw,
    subject=subject,
    needs="a date column and INDEX_CUMULATIVE_ROI",
)
