"""Date windows that came back shorter than asked: noticed and said, never a silent gap.

Both official SDKs cut dated requests into windows of at most 29 days, citing "the API's
29-day limit"; whether the server refuses a longer range or silently returns only part of
it is not documented (``live-api-2026.md`` fact 3). The client asks for windows of 29 days
by default, so neither happens; a user who asks for longer windows (``window_days=``) is
protected by this check, run on every dated answer once its pages are in.

What it compares: for each token (each series) and each window ``[start, end]`` asked for,
the days its rows cover. Missing days at a window's edge are a gap when

* the series has rows in an earlier window (for missing days at the window's start) or a
  later one (at its end): the data exists on both sides, so the server left these out; or
* the window is longer than the API's limit and its rows span about that limit, flush with
  one edge of the window (the shape of a server that cut the range: ``start`` to
  ``start + 28``, or ``end - 28`` to ``end``); or
* a window between two windows with rows brought none at all.

Days a series has no data for at the outer edges of the whole range (before a token
existed, after the data's last day, today) are not gaps, and neither are holes inside a
window (no server truncates in the middle). Windows whose pages the caller chose, or that a
page limit cut short, are not judged.

What the client does with a gap: it **warns** (:class:`GapWarning`, naming the endpoint, the
token and the missing dates) and lists the gaps in ``df.attrs["tm402"]["gaps"]``. It never
refetches on its own: a refetch is a payment the quote did not count, and a run never pays
past its quote. The fix it names is the default: windows of at most 29 days.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from .catalogue import WINDOW_DAYS, Endpoint
from .paging import Fetched
from .plan import PlannedRequest

__all__ = ["RANGE_LIMIT_DAYS", "Gap", "GapWarning", "find_gaps", "gap_message"]

#: The longest date range the API is documented to serve in one request.
RANGE_LIMIT_DAYS = WINDOW_DAYS


class GapWarning(UserWarning):
    """Rows are missing inside the date range asked for: the server may have cut a long range."""


@dataclass(frozen=True)
class Gap:
    """Days of one series missing from one window's answer."""

    endpoint: str
    #: The series: a token id (None for endpoints that are not per token).
    token_id: Any
    #: How the series is named to people (its symbol when the rows have one).
    label: str
    window: tuple[date, date]
    #: First and last missing day.
    missing: tuple[date, date]

    @property
    def days(self) -> int:
        return (self.missing[1] - self.missing[0]).days + 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "token_id": self.token_id,
            "window": [d.isoformat() for d in self.window],
            "missing": [d.isoformat() for d in self.missing],
        }

    def __str__(self) -> str:
        a, b = self.missing
        span = a.isoformat() if a == b else f"{a.isoformat()}..{b.isoformat()}"
        who = f"{self.label}: " if self.label else ""
        return f"{who}{span} ({self.days} day{'s' if self.days != 1 else ''})"


def _day(value: Any) -> date | None:
    """The UTC day of a row's date value (ISO text, a datetime, or epoch seconds/milliseconds)."""
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value).date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip()[:10])
        except ValueError:
            return None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value:
        seconds = value / 1000 if abs(value) >= 1e11 else value
        try:
            return datetime.fromtimestamp(seconds, UTC).date()
        except (OverflowError, OSError, ValueError):
            return None
    return None


def _series_key(row: dict[str, Any]) -> Any:
    tid: Any = row.get("TOKEN_ID")
    try:
        return int(tid)
    except (TypeError, ValueError):
        return tid


@dataclass
class _Window:
    start: date
    end: date
    days: set[date]

    @property
    def first(self) -> date:
        return min(self.days)

    @property
    def last(self) -> date:
        return max(self.days)


def _judged(planned: PlannedRequest, fetched: Fetched) -> bool:
    ep = planned.endpoint
    chosen = "page" in planned.params or ep.limit_param in planned.params
    return not (chosen or fetched.more or fetched.exceeded)


def find_gaps(
    requests: Sequence[PlannedRequest], fetched: Sequence[Fetched], *, today: date | None = None
) -> list[Gap]:
    """The gaps in the answers ``fetched`` to the planned ``requests`` (in the same order)."""
    if not requests or not requests[0].endpoint.dated:
        return []
    endpoint: Endpoint = requests[0].endpoint
    col = endpoint.date_column or "DATE"
    newest = (today or datetime.now(UTC).date()) - timedelta(days=1)  # today's rows may not exist yet
    series: dict[Any, list[_Window]] = {}
    labels: dict[Any, str] = {}
    for planned, got in zip(requests, fetched, strict=True):
        start, end = planned.params.get("startDate"), planned.params.get("endDate")
        if start is None or end is None or not _judged(planned, got):
            continue
        days: dict[Any, set[date]] = {}
        if endpoint.token_keyed:
            for tid in planned.params.get("token_id", ()):
                days.setdefault(_series_key({"TOKEN_ID": tid}), set())
        else:
            days[None] = set()
        for row in got.rows:
            day = _day(row.get(col))
            if day is None:
                continue
            key = _series_key(row) if endpoint.token_keyed else None
            days.setdefault(key, set()).add(day)
            symbol = row.get("TOKEN_SYMBOL")
            if key is not None and isinstance(symbol, str) and key not in labels:
                labels[key] = f"{symbol} ({key})"
        for key, covered in days.items():
            series.setdefault(key, []).append(_Window(start, end, covered))
    gaps: list[Gap] = []
    for key, windows in series.items():
        windows.sort(key=lambda w: w.start)
        label = labels.get(key, "" if key is None else str(key))
        for i, w in enumerate(windows):
            before = any(o.days for o in windows[:i])
            after = any(o.days for o in windows[i + 1 :])
            for a, b in _missing(w, before=before, after=after, newest=newest):
                gaps.append(Gap(endpoint.name, key, label, (w.start, w.end), (a, b)))
    return gaps


def _missing(w: _Window, *, before: bool, after: bool, newest: date) -> list[tuple[date, date]]:
    """The missing day ranges of one window of one series (see the module doc)."""
    one = timedelta(days=1)
    if not w.days:
        return [(w.start, w.end)] if before and after else []
    out = []
    long = (w.end - w.start).days + 1 > RANGE_LIMIT_DAYS
    span = (w.last - w.first).days + 1
    cut = long and RANGE_LIMIT_DAYS - 1 <= span <= RANGE_LIMIT_DAYS + 1
    if w.first > w.start and (before or (cut and w.last == w.end)):
        out.append((w.start, w.first - one))
    tail_end = min(w.end, newest) if not after else w.end
    if w.last < tail_end and (after or (cut and w.first == w.start)):
        out.append((w.last + one, tail_end))
    return out


def gap_message(endpoint: str, gaps: Sequence[Gap], *, window_days: int) -> str:
    """The warning for ``gaps`` (the first few named, the rest counted)."""
    shown = "; ".join(str(g) for g in gaps[:4])
    more = f"; and {len(gaps) - 4} more" if len(gaps) > 4 else ""
    total = sum(g.days for g in gaps)
    return (
        f"{endpoint}: {total} day(s) of rows are missing inside the range asked for: {shown}{more}. "
        f"The server may cut long date ranges (the API's documented limit is {RANGE_LIMIT_DAYS} days; "
        f"these windows were {window_days} days): ask again with window_days={RANGE_LIMIT_DAYS} (the default). "
        "Nothing was refetched, so nothing was paid beyond the quote; the gaps are in df.attrs['tm402']['gaps']"
    )
