"""From what the user asked to the requests that answer it, without any I/O.

``validate_params`` checks names, types, ranges and dates against the
catalogue (nothing is sent for a bad request); ``validate_and_split_symbols``
also sets the symbols apart, to be resolved to token ids. ``plan_call`` turns one
logical request into its :class:`Plan`: the fewest API calls (token ids in comma
lists of at most the page size, long date ranges in non-overlapping windows),
each with the most pages it may take. The plan is what a quote prices and what
a run may pay for, never more.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from .catalogue import Endpoint, Param, get_endpoint
from .errors import ParamError

#: Friendly spellings accepted from Python and magics → the API's names.
PARAM_ALIASES = {
    "start": "startDate",
    "start_date": "startDate",
    "startdate": "startDate",
    "end": "endDate",
    "end_date": "endDate",
    "enddate": "endDate",
    "symbols": "symbol",
    "ids": "token_id",
    "token_ids": "token_id",
    "tokens": "token_id",
    "names": "token_name",
    "token_names": "token_name",
    "indices_type": "indicesType",
    "indicestype": "indicesType",
}


def _as_list(value: Any, param: Param) -> list[Any]:
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",")]
    elif isinstance(value, (list, tuple, set, frozenset)) or hasattr(value, "tolist"):
        items = list(value.tolist() if hasattr(value, "tolist") else value)
    else:
        items = [value]
    items = [v for v in items if not (isinstance(v, str) and not v)]
    if not items:
        raise ParamError(f"{param.name} is empty", hint=f"give at least one value, e.g. {param.name}=BTC")
    return items


def _as_date(value: Any, name: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if hasattr(value, "to_pydatetime"):  # pandas Timestamp
        return value.to_pydatetime().date()
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip()[:10])
        except ValueError:
            pass
    raise ParamError(f"{name} must be a date (YYYY-MM-DD), got {value!r}")


def _scalar(value: Any, param: Param) -> Any:
    name = param.name
    if param.type is date:
        return _as_date(value, name)
    if param.type is int:
        if isinstance(value, bool):
            raise ParamError(f"{name} must be an integer, got {value!r}")
        try:
            number = int(value) if not isinstance(value, float) or value.is_integer() else None
        except (TypeError, ValueError):
            number = None
        if number is None:
            raise ParamError(f"{name} must be an integer, got {value!r}")
        value = number
    elif param.type is float:
        if isinstance(value, bool):
            raise ParamError(f"{name} must be a number, got {value!r}")
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ParamError(f"{name} must be a number, got {value!r}") from None
    else:
        if not isinstance(value, (str, int)):
            raise ParamError(f"{name} must be text, got {type(value).__name__}")
        value = str(value).strip()
        if not value:
            raise ParamError(f"{name} is empty")
    if param.choices is not None and value not in param.choices:
        raise ParamError(f"{name} must be one of {', '.join(map(str, param.choices))}, got {value!r}")
    if param.minimum is not None and value < param.minimum:
        raise ParamError(f"{name} must be ≥ {param.minimum:g}, got {value!r}")
    if param.maximum is not None and value > param.maximum:
        raise ParamError(
            f"{name} must be ≤ {param.maximum:g}, got {value!r}",
            hint="the API serves at most 100 rows a page; the client pages for you",
        )
    return value


def validate_params(endpoint: Endpoint, params: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``params`` against ``endpoint``; returns typed values (lists for list params).

    Raises ParamError naming the parameter, with the closest valid names on a typo.
    """
    out: dict[str, Any] = {}
    for raw_name, value in params.items():
        if value is None:
            continue
        name = PARAM_ALIASES.get(raw_name, PARAM_ALIASES.get(raw_name.lower(), raw_name))
        param = endpoint.param(name)
        if param is None:
            valid = list(endpoint.param_names)
            close = difflib.get_close_matches(raw_name, valid + list(PARAM_ALIASES), n=2, cutoff=0.6)
            hint = (
                f"did you mean {', '.join(close)}?"
                if close
                else f"{endpoint.name} takes: {', '.join(valid) or 'no parameters'}"
            )
            raise ParamError(f"unknown parameter {raw_name!r} for {endpoint.name}", hint=hint)
        if name in out:
            raise ParamError(f"{name} given twice (as {raw_name!r} and another spelling)")
        if param.list:
            out[name] = [_scalar(v, param) for v in _as_list(value, param)]
        else:
            out[name] = _scalar(value, param)
    for param in endpoint.params:
        if param.required and param.name not in out:
            raise ParamError(f"{endpoint.name} needs {param.name}", hint=f"e.g. {param.name}=1")
    start, end = out.get("startDate"), out.get("endDate")
    if start and end and end < start:
        raise ParamError(f"endDate {end} is before startDate {start}", hint="swap them")
    return out


@dataclass(frozen=True)
class ValidatedCall:
    """A call's endpoint and checked parameters, its symbols set apart to be resolved to token ids."""

    endpoint: Endpoint
    params: dict[str, Any]
    symbols: list[str]

    def with_token_ids(self, ids: Iterable[int]) -> dict[str, Any]:
        """The parameters with the resolved ``ids`` added to any ``token_id`` given, once each, in order."""
        if not self.symbols:
            return dict(self.params)
        return {**self.params, "token_id": list(dict.fromkeys([*self.params.get("token_id", []), *ids]))}


def validate_and_split_symbols(endpoint: str | Endpoint, params: Mapping[str, Any]) -> ValidatedCall:
    """Check ``params`` against ``endpoint`` (nothing is sent for a bad call) and set its symbols apart."""
    ep = get_endpoint(endpoint)
    if ep.method != "GET":
        raise ParamError(
            f"{ep.name} is the AI agent: it answers questions, not tables",
            hint="ask it with s.client.ask('your question') or %tm ask your question",
        )
    clean = validate_params(ep, params)
    symbols = clean.pop("symbol", None) if ep.token_keyed else None
    return ValidatedCall(ep, clean, symbols or [])


def wire_value(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(wire_value(v) for v in value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def to_wire(params: Mapping[str, Any]) -> dict[str, str]:
    return {k: wire_value(v) for k, v in params.items()}


@dataclass(frozen=True)
class PlannedRequest:
    """One API request of a plan: fixed parameters, and the most pages it may take.

    ``pages`` is a bound paging never passes (every page may be a paid call). ``rows``
    is how many rows the catalogue expects at most (None: it cannot know); a server
    that fills the last allowed page with more rows than that stops the run.
    ``open_ended`` says the bound is a page limit, not the data's size: more rows may
    exist past it.
    """

    endpoint: Endpoint
    params: dict[str, Any]
    pages: int = 1
    rows: int | None = None
    open_ended: bool = False

    @property
    def wire(self) -> dict[str, str]:
        return to_wire(self.params)


@dataclass(frozen=True)
class Plan:
    """Every request one call makes, and so what it may cost: the plan is the quote.

    >>> from tm402_nb.tokenmetrics.catalogue import get_endpoint
    >>> p = plan_call(get_endpoint("daily-ohlcv"), {"token_id": [3375, 3306, 3988],
    ...     "startDate": date(2026, 1, 1), "endDate": date(2026, 10, 31)})
    >>> p.calls, p.exact
    (11, True)
    """

    endpoint: Endpoint
    requests: tuple[PlannedRequest, ...]

    @property
    def calls(self) -> int:
        """Requests it may send at most (one per page)."""
        return sum(r.pages for r in self.requests)

    @property
    def exact(self) -> bool:
        """True when it sends exactly ``calls`` requests (each planned request is one page)."""
        return all(r.pages == 1 for r in self.requests)

    @property
    def open_ended(self) -> bool:
        """True when a page limit, not the data, bounds it: more rows may exist."""
        return any(r.open_ended for r in self.requests)


#: Where nothing bounds the rows, a paid endpoint reads its first page unless asked for more;
#: one the catalogue lists as free reads up to this many (if it turns out to be paid, the
#: plan's reservation and quote count every one of them).
FREE_PAGES = 10


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def date_windows(start: date, end: date, days: int) -> list[tuple[date, date]]:
    """Split [start, end] into consecutive, non-overlapping windows of at most ``days`` days."""
    out = []
    cur = start
    while cur <= end:
        stop = min(end, cur + timedelta(days=days - 1))
        out.append((cur, stop))
        cur = stop + timedelta(days=1)
    return out


def _today() -> date:
    return datetime.now(UTC).date()


def plan_call(
    endpoint: Endpoint,
    params: dict[str, Any],
    *,
    window_days: int | None = None,
    max_pages: int | None = None,
    today: date | None = None,
) -> Plan:
    """The requests that answer ``params`` (validated, symbols resolved to ids), each with
    its page bound: windows × id batches × pages. Pure: nothing is sent.

    Pages come from what the catalogue knows: a row per token (per day, or per hour, for
    dated endpoints), ``page_size`` rows a page. Where nothing bounds the rows (no token
    filter on a paged endpoint, a history without dates) the first page is all a paid
    endpoint asks for (``FREE_PAGES`` for a free one), unless ``max_pages`` asks for
    more; the frame then says more rows may exist.
    A start date without an end date runs to ``today`` (UTC).
    """
    size = int(params.get(endpoint.limit_param, endpoint.page_size))
    id_key = next((k for k in ("token_id", "token_name", "symbol") if k in params), None)
    id_batches: list[dict[str, Any]] = [{}]
    if id_key is not None and len(params[id_key]) > endpoint.page_size:
        id_batches = [{id_key: chunk} for chunk in _chunks(params[id_key], endpoint.page_size)]
    if not endpoint.paged or "page" in params or endpoint.limit_param in params:
        # One page a batch: the endpoint has no pages, or the caller chose the page.
        return Plan(endpoint, tuple(PlannedRequest(endpoint, {**params, **batch}) for batch in id_batches))
    windows: list[dict[str, Any]] = [{}]
    start, end = params.get("startDate"), params.get("endDate")
    if endpoint.dated and start:
        end = end or max(start, today or _today())
        days = window_days or endpoint.window_days
        windows = [{"startDate": a, "endDate": b} for a, b in date_windows(start, end, days)]
    requests = []
    for batch in id_batches:
        for window in windows:
            request = {**params, **batch, **window}
            rows = _rows_expected(endpoint, request, id_key)
            if rows is None:
                pages, open_ended = max_pages or (FREE_PAGES if endpoint.free else 1), True
            else:
                pages = max(1, -(-rows // size))
                open_ended = max_pages is not None and max_pages < pages
                pages = min(pages, max_pages or pages)
            requests.append(PlannedRequest(endpoint, request, pages, rows, open_ended))
    return Plan(endpoint, tuple(requests))


def _rows_expected(endpoint: Endpoint, request: dict[str, Any], id_key: str | None) -> int | None:
    """The most rows ``request`` can bring, from the catalogue; None when nothing bounds them."""
    start, end = request.get("startDate"), request.get("endDate")
    if endpoint.dated and start and end:
        per_series = ((end - start).days + 1) * endpoint.rows_per_day
    elif endpoint.history:
        return None  # a history without dates: its length is the server's
    else:
        per_series = 1
    if not endpoint.token_keyed:
        return per_series if endpoint.dated and start and end else None
    if id_key != "token_id":
        return None  # every token, or symbols and names that may each match several: unbounded
    return len(request[id_key]) * per_series
