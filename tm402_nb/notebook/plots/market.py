"""The market: total crypto market cap, with the share of high-grade coins on a twin axis."""

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
    legend,
    money_axis,
    nothing_to_plot,
    pretty,
    require_date_column,
    sorted_by,
)


def fits(d: pd.DataFrame) -> bool:
    return date_column(d) is not None and bool(set(d.columns) & {"TOTAL_CRYPTO_MCAP", "TM_GRADE_PERC_HIGH_COINS"})


def draw(ax: Any, d: pd.DataFrame, opts: dict[str, Any]) -> tuple[str, str]:
    dc = require_date_column(d, "market")
    g = sorted_by(d, dc)
    x = as_dates(g[dc])
    others = []
    ylabel = ""
    drawn = 0
    if "TOTAL_CRYPTO_MCAP" in g.columns and np.isfinite(as_floats(g["TOTAL_CRYPTO_MCAP"])).any():
        ax.plot(x, as_floats(g["TOTAL_CRYPTO_MCAP"]), color="C0", linewidth=1.5, label="total crypto market cap")
        money_axis(ax.yaxis)
        ylabel = "total crypto market cap (USD)"
        drawn += 1
    if "TM_GRADE_PERC_HIGH_COINS" in g.columns and np.isfinite(as_floats(g["TM_GRADE_PERC_HIGH_COINS"])).any():
        target = ax.twinx() if drawn else ax
        target.plot(
            x, as_floats(g["TM_GRADE_PERC_HIGH_COINS"]), color="C1", linewidth=1.2, label="% coins with a high TM grade"
        )
        if target is not ax:
            target.set_ylabel("% coins with a high TM grade")
            others.append(target)
        else:
            ylabel = "% coins with a high TM grade"
        drawn += 1
    if not drawn:
        raise nothing_to_plot()
    date_axis(ax)
    legend(ax, others)
    return f"{pretty(dc)} (UTC)", ylabel


CHART = Chart(
    "market",
    "total crypto market cap with % of high-grade coins on a twin axis",
    fits,
    draw,
    legend=False,  # its legend spans its twin axes
    needs="a date column and TOTAL_CRYPTO_MCAP or TM_GRADE_PERC_HIGH_COINS",
)
