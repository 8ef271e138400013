"""Typed query-parameter models, one per endpoint family.

Every model forbids extra fields, so an unknown parameter is a 400 naming it,
and every value is checked the way the real API documents it: comma lists for
``token_id``/``symbol``/``token_name``, ``YYYY-MM-DD`` dates, ``limit`` 1..100
(default 50), ``page`` from 1. An empty value (``?symbol=``) counts as absent,
as the reference says to "leave these fields blank to get the latest data".

That is the ``strict`` paging of a profile. Under ``lenient`` paging each model
is read through :func:`lenient`: page 0 is the first page, ``limit``/``top_k``
are clamped to 1..100 and unknown parameters are ignored (as the official Python
SDK's ``page=0&limit=1000`` suggests the real API does). :func:`limit_range`
plays the profile's ``date_range`` switch.
"""

from __future__ import annotations

import functools
import re
from datetime import date, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_INT_LIST_RE = re.compile(r"^\d{1,12}$")
_SLUG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._\-]{0,63}$")
MAX_LIST_ITEMS = 100
#: The largest page (``limit``, ``top_k``) the API serves.
MAX_PAGE_SIZE = 100


def _split(value: str, param: str, *, max_items: int = MAX_LIST_ITEMS) -> list[str]:
    items = [v.strip() for v in value.split(",")]
    if any(not v for v in items):
        raise ValueError(f"{param} has an empty item in the comma-separated list {value[:60]!r}")
    if len(items) > max_items:
        raise ValueError(f"{param} lists {len(items)} values; at most {max_items} are allowed per request")
    return items


class QueryModel(BaseModel):
    """Base: unknown parameters are refused; blank values are treated as absent."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @model_validator(mode="before")
    @classmethod
    def _blank_is_absent(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if not (isinstance(v, str) and v.strip() == "")}
        return data

    @classmethod
    def param_names(cls) -> list[str]:
        return list(cls.model_fields)


class Paging(QueryModel):
    limit: int = Field(50, ge=1, le=100, description="Rows per page, 1..100 (default 50).")
    page: int = Field(1, ge=1, le=1_000_000, description="Page number, starting at 1.")

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit


class TokenParams(QueryModel):
    token_id: str | None = Field(None, description="Comma-separated token ids, e.g. `3375,3306`.")
    symbol: str | None = Field(
        None, description="Comma-separated symbols, e.g. `BTC,ETH` (several tokens may share one)."
    )
    token_name: str | None = Field(None, description="Comma-separated token names, e.g. `Bitcoin,Ethereum`.")

    @field_validator("token_id")
    @classmethod
    def _ids(cls, v: str | None) -> str | None:
        if v is None:
            return v
        for item in _split(v, "token_id"):
            if not _INT_LIST_RE.match(item):
                raise ValueError(f"token_id must be comma-separated integer ids, got {item[:30]!r}")
        return v

    @field_validator("symbol", "token_name")
    @classmethod
    def _names(cls, v: str | None, info: Any) -> str | None:
        if v is None:
            return v
        for item in _split(v, info.field_name):
            if len(item) > 64:
                raise ValueError(f"{info.field_name} item is too long ({len(item)} characters)")
        return v

    @property
    def ids(self) -> list[int] | None:
        return [int(x) for x in _split(self.token_id, "token_id")] if self.token_id else None

    @property
    def symbols(self) -> list[str] | None:
        return _split(self.symbol, "symbol") if self.symbol else None

    @property
    def names(self) -> list[str] | None:
        return _split(self.token_name, "token_name") if self.token_name else None

    @property
    def has_token_filter(self) -> bool:
        return bool(self.token_id or self.symbol or self.token_name)


class DateParams(QueryModel):
    startDate: str | None = Field(None, description="First day, YYYY-MM-DD (inclusive).")
    endDate: str | None = Field(None, description="Last day, YYYY-MM-DD (inclusive).")

    @field_validator("startDate", "endDate")
    @classmethod
    def _date(cls, v: str | None, info: Any) -> str | None:
        if v is None:
            return v
        if not _DATE_RE.match(v):
            raise ValueError(f"{info.field_name} must be a date written YYYY-MM-DD, got {v[:30]!r}")
        try:
            date.fromisoformat(v)
        except ValueError:
            raise ValueError(f"{info.field_name} is not a real calendar date: {v!r}") from None
        return v

    @model_validator(mode="after")
    def _order(self) -> DateParams:
        if self.startDate and self.endDate and self.endDate < self.startDate:
            raise ValueError(f"endDate ({self.endDate}) is before startDate ({self.startDate})")
        return self

    @property
    def start(self) -> date | None:
        return date.fromisoformat(self.startDate) if self.startDate else None

    @property
    def end(self) -> date | None:
        return date.fromisoformat(self.endDate) if self.endDate else None


class MarketFilterParams(QueryModel):
    category: str | None = Field(None, description="Comma-separated category slugs, e.g. `layer-1,defi`.")
    exchange: str | None = Field(None, description="Comma-separated exchange slugs, e.g. `binance,gate`.")
    marketcap: float | None = Field(None, ge=0, description="Minimum market cap, USD.")
    volume: float | None = Field(None, ge=0, description="Minimum 24h volume, USD.")
    fdv: float | None = Field(None, ge=0, description="Minimum fully diluted valuation, USD.")

    @field_validator("category", "exchange")
    @classmethod
    def _slugs(cls, v: str | None, info: Any) -> str | None:
        return cls._check_slugs(v, info.field_name)

    @staticmethod
    def _check_slugs(v: str | None, name: str) -> str | None:
        if v is None:
            return v
        for item in _split(v, name):
            if not _SLUG_RE.match(item):
                raise ValueError(f"{name} must be comma-separated slugs, got {item[:30]!r}")
        return v

    @property
    def categories(self) -> list[str] | None:
        return _split(self.category, "category") if self.category else None

    @property
    def exchanges(self) -> list[str] | None:
        return _split(self.exchange, "exchange") if self.exchange else None


# -- per-endpoint models ---------------------------------------------------------------


class TokensQuery(TokenParams, Paging):
    category: str | None = Field(None, description="Comma-separated category slugs.")
    exchange: str | None = Field(None, description="Comma-separated exchange slugs.")
    blockchain_address: str | None = Field(
        None, description="Comma-separated `<chain>:<contract>` pairs, e.g. `base:0xabc…`."
    )

    @field_validator("category", "exchange")
    @classmethod
    def _slug_lists(cls, v: str | None, info: Any) -> str | None:
        return MarketFilterParams._check_slugs(v, info.field_name)

    @field_validator("blockchain_address")
    @classmethod
    def _addresses(cls, v: str | None) -> str | None:
        if v is None:
            return v
        for item in _split(v, "blockchain_address"):
            chain, sep, addr = item.partition(":")
            if not sep or not chain or not re.match(r"^0x[0-9a-fA-F]{40}$", addr):
                raise ValueError(f"blockchain_address must look like chain:0x<40 hex>, got {item[:60]!r}")
        return v

    @property
    def categories(self) -> list[str] | None:
        return _split(self.category, "category") if self.category else None

    @property
    def exchanges(self) -> list[str] | None:
        return _split(self.exchange, "exchange") if self.exchange else None

    @property
    def addresses(self) -> list[str] | None:
        return _split(self.blockchain_address, "blockchain_address") if self.blockchain_address else None


class PriceQuery(TokenParams):
    """Current price; at least one of token_id / symbol / token_name is required."""


class SeriesQuery(TokenParams, DateParams, Paging):
    """Token time series (OHLCV, grade histories)."""


class TradingSignalsQuery(TokenParams, DateParams, MarketFilterParams, Paging):
    signal: int | None = Field(None, ge=-1, le=1, description="1 bullish, -1 bearish, 0 no signal.")


class HourlySignalsQuery(TokenParams, Paging):
    """Hourly signals; a token filter is required."""


class LatestQuery(TokenParams, Paging):
    """Latest value per token (grades, reports, predictions)."""


class LatestFilteredQuery(TokenParams, MarketFilterParams, Paging):
    """Latest value per token with market filters (correlation, quantmetrics)."""


class MarketMetricsQuery(DateParams, Paging):
    pass


class MoonshotQuery(Paging):
    type: Literal["active", "past"] = Field("active", description="`active` (default) or `past` moonshots.")


class CryptoInvestorsQuery(Paging):
    pass


class TopMarketCapQuery(QueryModel):
    top_k: int = Field(50, ge=1, le=100, description="How many tokens, 1..100 (default 50).")
    page: int = Field(1, ge=1, le=1_000_000, description="Page number, starting at 1.")

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.top_k


class IndicesQuery(Paging):
    indicesType: Literal["active", "passive"] | None = Field(None, description="`active` or `passive`.")


class IndexHoldingsQuery(QueryModel):
    id: int = Field(..., ge=1, description="Index id (see /indices).")


class IndexPerformanceQuery(DateParams, Paging):
    id: int = Field(..., ge=1, description="Index id (see /indices).")


# -- profile switches ---------------------------------------------------------------------


def _int(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def _clamp_paging(cls: type[QueryModel], data: Any) -> Any:
    """Lenient paging: page 0 is page 1; limit and top_k clamped to 1..MAX_PAGE_SIZE (garbage stays a 400)."""
    if not isinstance(data, dict):
        return data
    out = dict(data)
    for name in ("limit", "top_k"):
        n = _int(out[name]) if name in out and name in cls.model_fields else None
        if n is not None:
            out[name] = min(max(n, 1), MAX_PAGE_SIZE)
    if "page" in out and _int(out["page"]) == 0:
        out["page"] = 1
    return out


@functools.cache
def lenient(model: type[QueryModel]) -> type[QueryModel]:
    """``model`` read leniently: page 0 = first page, limit clamped, unknown parameters ignored."""
    namespace: dict[str, Any] = {
        "__module__": __name__,
        "__doc__": model.__doc__,
        "model_config": ConfigDict(extra="ignore", str_strip_whitespace=True),
        "_lenient_paging": model_validator(mode="before")(_clamp_paging),
    }
    return type(f"Lenient{model.__name__}", (model,), namespace)


class RangeTooLong(ValueError):
    """A dated request spans more days than the profile's date-range limit allows."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def limit_range(q: QueryModel, mode: str, last_day: date, max_days: int) -> QueryModel:
    """``q`` under a date-range limit of ``max_days`` inclusive days (``mode``: none, error, truncate).

    The range is ``startDate`` .. ``endDate`` (or ``last_day``, the newest day of data, without one);
    a request without ``startDate`` asks for the latest rows, not a range, and is not limited.
    ``error`` raises :class:`RangeTooLong`; ``truncate`` keeps the range's last ``max_days`` days (a
    server capping a look-back keeps the newest data, and answers newest first): ``startDate``
    moves to ``end - (max_days - 1)`` and nothing in the answer says so.
    """
    if mode == "none" or not isinstance(q, DateParams) or q.start is None:
        return q
    end = q.end or last_day
    days = (end - q.start).days + 1
    if days <= max_days:
        return q
    if mode == "error":
        raise RangeTooLong(
            f"Date range too large: startDate {q.start.isoformat()} to endDate {end.isoformat()} is {days} days; "
            f"the maximum is {max_days} days per request"
        )
    return q.model_copy(update={"startDate": (end - timedelta(days=max_days - 1)).isoformat()})


class TmaiMessage(BaseModel):
    """One turn of a ``/tmai`` conversation: ``{"user": "..."}`` (earlier answers may ride along)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    user: str | None = Field(default=None, max_length=2000)
    chatbot: str | None = Field(default=None, max_length=20000)


class TmaiBody(BaseModel):
    """``POST /v2/tmai``: ``{"messages": [{"user": "What is the next 100x coin?"}]}``."""

    model_config = ConfigDict(extra="forbid")

    messages: list[TmaiMessage] = Field(min_length=1, max_length=50)

    @property
    def question(self) -> str | None:
        """The last user turn: what the agent answers (None when there is none)."""
        asked = [m.user for m in self.messages if m.user]
        return asked[-1] if asked else None
