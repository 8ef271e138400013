"""From what the user asked to the requests that answer it, without any I/O.

``validate_params`` checks names, types, ranges and dates against the
catalogue (nothing is sent for a bad request); ``validate_and_split_symbols``
also sets the symbols apart, to be resolved to token ids. ``plan_requests`` turns one
logical request into the fewest API calls: token ids in comma lists of at most
the page size, long date ranges in non-overlapping windows. Pagination happens
later, per planned request, until a short page.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
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
    """One API request of a plan: fixed parameters, paged until a short page unless ``single_page``."""

    endpoint: Endpoint
    params: dict[str, Any]
    single_page: bool
    latest_only: bool = False

    @property
    def wire(self) -> dict[str, str]:
        return to_wire(self.params)


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


def plan_requests(
    endpoint: Endpoint, params: dict[str, Any], *, window_days: int | None = None
) -> list[PlannedRequest]:
    """The calls that answer ``params`` (already validated, symbols already resolved to ids)."""
    single_page = "page" in params or endpoint.limit_param in params
    # History without a start date: the latest page only (a date range or max_pages asks for more).
    latest_only = endpoint.history and not params.get("startDate")
    id_batches: list[dict[str, Any]] = [{}]
    for key in ("token_id", "token_name", "symbol"):
        if key in params and len(params[key]) > endpoint.page_size:
            id_batches = [{key: chunk} for chunk in _chunks(params[key], endpoint.page_size)]
    windows: list[dict[str, Any]] = [{}]
    start, end = params.get("startDate"), params.get("endDate")
    if endpoint.dated and start and end and not single_page:
        days = window_days or endpoint.window_days
        windows = [{"startDate": a, "endDate": b} for a, b in date_windows(start, end, days)]
    plans = []
    for batch in id_batches:
        for window in windows:
            plans.append(PlannedRequest(endpoint, {**params, **batch, **window}, single_page, latest_only))
    return plans
