"""Paging over merged time series without materialising them.

A multi-token series endpoint returns rows newest first, and within one
timestamp in market-cap order. With 300 tokens and 2,800 days that is 840,000
rows; a page only needs ``limit`` of them, so the page is located by counting
(a difference array over the time axis) and only its rows are produced.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def page_series(ranges: Sequence[tuple[int, int]], offset: int, count: int) -> list[tuple[int, int]]:
    """Rows ``offset .. offset+count`` of the merged series, as ``(time, item)`` pairs.

    ``ranges[k]`` is the inclusive ``(first, last)`` time index of item ``k``
    (an empty range has ``first > last``). Order: time descending, then item
    ascending.
    """
    valid = [(k, lo, hi) for k, (lo, hi) in enumerate(ranges) if lo <= hi]
    if not valid or count <= 0 or offset < 0:
        return []
    tmin = min(lo for _, lo, _ in valid)
    tmax = max(hi for _, _, hi in valid)
    span = tmax - tmin + 1
    diff = np.zeros(span + 1, dtype=np.int64)
    for _, lo, hi in valid:
        diff[lo - tmin] += 1
        diff[hi - tmin + 1] -= 1
    per_time = np.cumsum(diff[:span])[::-1]  # rows at tmax, tmax-1, ...
    cum = np.cumsum(per_time)
    if offset >= int(cum[-1]):
        return []
    j = int(np.searchsorted(cum, offset, side="right"))
    skip = offset - (int(cum[j - 1]) if j > 0 else 0)
    out: list[tuple[int, int]] = []
    t = tmax - j
    while len(out) < count and t >= tmin:
        alive = [k for k, lo, hi in valid if lo <= t <= hi]
        for k in alive[skip:]:
            out.append((t, k))
            if len(out) == count:
                break
        skip = 0
        t -= 1
    return out


def page_points(points: Sequence[tuple[int, int]], offset: int, count: int) -> list[tuple[int, int]]:
    """Same order as :func:`page_series` for an explicit set of ``(time, item)`` points."""
    if not points:
        return []
    arr = np.asarray(points, dtype=np.int64)
    order = np.lexsort((arr[:, 1], -arr[:, 0]))
    chosen = arr[order[offset : offset + count]]
    return [(int(t), int(k)) for t, k in chosen]
