"""The Token Metrics v2 endpoint catalogue, as data.

One :class:`Endpoint` per path: its short aliases, parameters (types, comma
lists, required), paging, the date column, numeric and nested columns, the
expected price tier, and how long an answer stays fresh in the cache. The
client, the magics, the accessor, ``%tm endpoints`` and the docs table all read
this one table, so adding an endpoint is one entry here.

Prices here are what the catalogue *expects* (reference §5.3, nearest-kin tier
for endpoints it does not list); the amount actually paid always comes from the
server's 402 challenge.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from ..errors import ConfigurationError

__all__ = [
    "CATALOGUE",
    "ENDPOINTS",
    "TIER_USD",
    "Endpoint",
    "Param",
    "UnknownEndpoint",
    "endpoint_names",
    "get_endpoint",
]

TIER_USD = {0: Decimal("0"), 1: Decimal("0.017"), 2: Decimal("0.034"), 3: Decimal("0.068")}

MINUTE, HOUR, DAY = 60, 3600, 86400


class UnknownEndpoint(ConfigurationError):
    """No endpoint by that name; the message suggests the closest ones."""


@dataclass(frozen=True)
class Param:
    """A query parameter as the API spells it."""

    name: str
    type: type = str
    list: bool = False  # sent as a comma-separated list
    required: bool = False
    choices: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    doc: str = ""


# Shared parameter sets.
TOKEN = (
    Param("token_id", int, list=True, doc="token ids, e.g. 3375,3306"),
    Param("symbol", str, list=True, doc="symbols, e.g. BTC,ETH (resolved to ids)"),
    Param("token_name", str, list=True, doc="names, e.g. Bitcoin,Ethereum"),
)
DATES = (
    Param("startDate", date, doc="first day, YYYY-MM-DD"),
    Param("endDate", date, doc="last day, YYYY-MM-DD"),
)
PAGING = (
    Param("limit", int, minimum=1, maximum=100, doc="rows per page (≤ 100)"),
    Param("page", int, minimum=1, doc="page number, from 1"),
)
MARKET = (
    Param("category", str, list=True, doc="category slugs, e.g. layer-1,defi"),
    Param("exchange", str, list=True, doc="exchange slugs, e.g. binance,gate"),
    Param("marketcap", float, minimum=0, doc="minimum market cap, USD"),
    Param("volume", float, minimum=0, doc="minimum 24h volume, USD"),
    Param("fdv", float, minimum=0, doc="minimum fully diluted valuation, USD"),
)


@dataclass(frozen=True)
class Endpoint:
    name: str
    summary: str
    params: tuple[Param, ...]
    tier: int
    aliases: tuple[str, ...] = ()
    #: Supports limit/page (or top_k/page): the client pages until a short page.
    paged: bool = True
    page_size: int = 100
    limit_param: str = "limit"
    #: DATE / TIMESTAMP / DATETIME: parsed to UTC and used to sort and to split long ranges.
    date_column: str | None = "DATE"
    #: Accepts startDate/endDate.
    dated: bool = False
    #: Rows form a time series per token: without a startDate only the latest page is
    #: fetched (paging through years of history would be dozens of paid calls).
    history: bool = False
    #: Takes token_id/symbol/token_name lists: many tokens batch into one call.
    token_keyed: bool = True
    #: Nested column exploded into a tidy frame (resistance levels, correlations, scenarios).
    nested: str | None = None
    #: Columns identifying a row, for de-duplication across pages and windows.
    key: tuple[str, ...] = ("TOKEN_ID", "DATE")
    #: Columns coerced to numbers (others matching common numeric names are coerced too).
    numeric: tuple[str, ...] = ()
    #: Seconds an answer stays fresh in the cache.
    ttl: int = HOUR
    #: Frames index on this column when it is present.
    index: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> str:
        return f"/{self.name}"

    @property
    def free(self) -> bool:
        return self.tier == 0

    @property
    def expected_usd(self) -> Decimal:
        return TIER_USD[self.tier]

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)


def _ep(name: str, summary: str, params: tuple[Param, ...], tier: int, **kw: Any) -> Endpoint:
    return Endpoint(name, summary, params, tier, **kw)


_GRADE_NUM = ("TM_GRADE", "FUNDAMENTAL_GRADE", "TM_GRADE_24h_PCT_CHANGE", "TM_TRADER_GRADE_24H_CHANGE", "QUANT_GRADE")
_TECH_NUM = (
    "TECHNOLOGY_GRADE",
    "ACTIVITY_SCORE",
    "SECURITY_SCORE",
    "REPOSITORY_SCORE",
    "COLLABORATION_SCORE",
    "DEFI_SCANNER_SCORE",
)
_FUND_NUM = (
    "FUNDAMENTAL_GRADE",
    "COMMUNITY_SCORE",
    "EXCHANGE_SCORE",
    "VC_SCORE",
    "TOKENOMICS_SCORE",
    "DEFI_SCANNER_SCORE",
)
_OHLCV = ("OPEN", "HIGH", "LOW", "CLOSE", "VOLUME")

ENDPOINTS: tuple[Endpoint, ...] = (
    # -- free ------------------------------------------------------------------
    _ep(
        "tokens",
        "Token universe and TOKEN_ID lookup",
        (
            *TOKEN,
            Param("category", str, list=True),
            Param("exchange", str, list=True),
            Param("blockchain_address", str, list=True),
            *PAGING,
        ),
        0,
        aliases=("token", "universe"),
        date_column=None,
        key=("TOKEN_ID",),
        ttl=DAY,
        index="TOKEN_ID",
    ),
    _ep(
        "price",
        "Current price by token",
        TOKEN,
        0,
        aliases=("prices",),
        paged=False,
        date_column=None,
        key=("TOKEN_ID",),
        numeric=("CURRENT_PRICE",),
        ttl=MINUTE,
        index="TOKEN_ID",
    ),
    _ep(
        "top-market-cap-tokens",
        "Top tokens by market cap",
        (Param("top_k", int, minimum=1, maximum=100), Param("page", int, minimum=1)),
        0,
        aliases=("top", "top-tokens", "top-market-cap"),
        limit_param="top_k",
        date_column=None,
        token_keyed=False,
        key=("TOKEN_ID",),
        ttl=HOUR,
    ),
    # -- tier 1 ------------------------------------------------------------------
    _ep(
        "daily-ohlcv",
        "Daily open/high/low/close/volume",
        (*TOKEN, *DATES, *PAGING),
        1,
        history=True,
        aliases=("ohlcv", "daily", "candles"),
        dated=True,
        numeric=_OHLCV,
        ttl=6 * HOUR,
    ),
    _ep(
        "hourly-ohlcv",
        "Hourly open/high/low/close/volume",
        (*TOKEN, *DATES, *PAGING),
        1,
        history=True,
        aliases=("hourly",),
        dated=True,
        date_column="TIMESTAMP",
        key=("TOKEN_ID", "TIMESTAMP"),
        numeric=_OHLCV,
        ttl=15 * MINUTE,
    ),
    _ep(
        "trading-signals",
        "Daily AI long/short signals with strategy and holding returns",
        (*TOKEN, *DATES, *MARKET, Param("signal", int, choices=(-1, 0, 1)), *PAGING),
        1,
        history=True,
        aliases=("signals", "signal"),
        dated=True,
        numeric=(
            "TRADING_SIGNAL",
            "TOKEN_TREND",
            "TRADING_SIGNALS_RETURNS",
            "HOLDING_RETURNS",
            "TM_TRADER_GRADE",
            "TM_INVESTOR_GRADE",
        ),
        ttl=6 * HOUR,
    ),
    _ep(
        "tm-grade",
        "Latest TM Grade with signal and momentum",
        (*TOKEN, *PAGING),
        1,
        aliases=("grade", "grades", "tm-grades"),
        numeric=_GRADE_NUM,
        key=("TOKEN_ID",),
        ttl=6 * HOUR,
        index="TOKEN_ID",
    ),
    _ep(
        "technology-grade",
        "Latest technology grade and its scores",
        (*TOKEN, *PAGING),
        1,
        aliases=("tech-grade", "technology"),
        numeric=_TECH_NUM,
        key=("TOKEN_ID",),
        ttl=DAY,
        index="TOKEN_ID",
    ),
    _ep(
        "fundamental-grade",
        "Latest fundamental grade and its scores",
        (*TOKEN, *PAGING),
        1,
        aliases=("fundamental", "fundamentals"),
        numeric=_FUND_NUM,
        key=("TOKEN_ID",),
        ttl=DAY,
        index="TOKEN_ID",
    ),
    # -- tier 2 ------------------------------------------------------------------
    _ep(
        "hourly-trading-signals",
        "Hourly signals and positions",
        (*TOKEN, *PAGING),
        2,
        history=True,
        aliases=("hourly-signals",),
        date_column="TIMESTAMP",
        key=("TOKEN_ID", "TIMESTAMP"),
        numeric=("CLOSE",),
        ttl=15 * MINUTE,
    ),
    _ep(
        "tm-grade-history",
        "TM Grade history",
        (*TOKEN, *DATES, *PAGING),
        2,
        history=True,
        aliases=("grade-history", "grades-history"),
        dated=True,
        numeric=_GRADE_NUM,
        ttl=6 * HOUR,
    ),
    _ep(
        "technology-grade-history",
        "Technology grade history",
        (*TOKEN, *DATES, *PAGING),
        2,
        history=True,
        aliases=("tech-grade-history",),
        dated=True,
        numeric=_TECH_NUM,
        ttl=DAY,
    ),
    _ep(
        "fundamental-grade-history",
        "Fundamental grade history",
        (*TOKEN, *DATES, *PAGING),
        2,
        history=True,
        aliases=("fundamental-history",),
        dated=True,
        numeric=_FUND_NUM,
        ttl=DAY,
    ),
    _ep(
        "market-metrics",
        "Market-wide bull/bear indicator",
        (*DATES, *PAGING),
        2,
        history=True,
        aliases=("market", "metrics"),
        dated=True,
        token_keyed=False,
        key=("DATE",),
        numeric=("TOTAL_CRYPTO_MCAP", "TM_GRADE_PERC_HIGH_COINS", "TM_GRADE_SIGNAL", "LAST_TM_GRADE_SIGNAL"),
        ttl=6 * HOUR,
    ),
    _ep(
        "moonshot-tokens",
        "AI-curated breakout picks",
        (Param("type", str, choices=("active", "past")), *PAGING),
        2,
        aliases=("moonshots", "moonshot"),
        token_keyed=False,
        date_column="MOONSHOT_AT",
        key=("TOKEN_SYMBOL", "MOONSHOT_AT"),
        numeric=(
            "TM_TRADER_GRADE",
            "TM_TRADER_GRADE_24H_PCT_CHANGE",
            "PRICE_CHANGE_PERCENTAGE_7D_IN_CURRENCY",
            "MARKET_CAP",
            "VOLUME_24H",
            "MOONSHOT_ROI",
        ),
        ttl=HOUR,
    ),
    _ep(
        "resistance-support",
        "Historical resistance and support levels",
        (*TOKEN, *PAGING),
        2,
        aliases=("levels", "sr", "support-resistance"),
        nested="HISTORICAL_RESISTANCE_SUPPORT_LEVELS",
        key=("TOKEN_ID", "DATE"),
        ttl=DAY,
    ),
    _ep(
        "indices",
        "Token Metrics crypto indices",
        (Param("indicesType", str, choices=("active", "passive")), *PAGING),
        2,
        aliases=("index",),
        token_keyed=False,
        date_column=None,
        key=("ID",),
        numeric=("PRICE", "COINS", "24H", "7D", "1M", "24H_VOLUME", "INDEX_GRADE", "ALL_TIME", "MARKET_CAP"),
        ttl=HOUR,
        index="ID",
    ),
    _ep(
        "indices-holdings",
        "Holdings of one index",
        (Param("id", int, required=True, minimum=1),),
        2,
        aliases=("holdings", "index-holdings"),
        paged=False,
        token_keyed=False,
        key=("TOKEN_ID",),
        numeric=("WEIGHT", "MARKET_CAP", "PRICE", "CURRENT_ROI", "TRADER_GRADE", "TRADER_GRADE_CHANGE_24H"),
        ttl=HOUR,
    ),
    _ep(
        "indices-performance",
        "Daily performance of one index",
        (Param("id", int, required=True, minimum=1), *DATES, *PAGING),
        2,
        history=True,
        aliases=("performance", "index-performance"),
        dated=True,
        token_keyed=False,
        key=("ID", "DATE"),
        numeric=("INDEX_CUMULATIVE_ROI", "MARKET_CAP", "VOLUME", "FDV"),
        ttl=6 * HOUR,
    ),
    # -- tier 3 ------------------------------------------------------------------
    _ep(
        "correlation",
        "Top and bottom-10 correlations against the top 100",
        (*TOKEN, *MARKET, *PAGING),
        3,
        aliases=("corr", "correlations"),
        nested="TOP_CORRELATION",
        ttl=DAY,
    ),
    _ep(
        "quantmetrics",
        "Risk and return metrics: Sharpe, Sortino, drawdown, ...",
        (*TOKEN, *MARKET, *PAGING),
        3,
        aliases=("quant", "quant-metrics"),
        key=("TOKEN_ID",),
        numeric=(
            "VOLATILITY",
            "ALL_TIME_RETURN",
            "CAGR",
            "SHARPE",
            "SORTINO",
            "MAX_DRAWDOWN",
            "SKEW",
            "TAIL_RATIO",
            "RISK_REWARD_RATIO",
            "PROFIT_FACTOR",
            "KURTOSIS",
            "DAILY_VALUE_AT_RISK",
            "DAILY_RETURN_AVG",
            "DAILY_RETURN_STD",
        ),
        ttl=DAY,
        index="TOKEN_ID",
    ),
    _ep(
        "ai-reports",
        "AI-written research reports (Markdown)",
        (*TOKEN, *PAGING),
        3,
        aliases=("reports", "report", "ai-report"),
        date_column=None,
        key=("TOKEN_ID",),
        ttl=DAY,
        index="TOKEN_ID",
    ),
    _ep(
        "crypto-investors",
        "Crypto investors and their ROI",
        PAGING,
        3,
        aliases=("investors",),
        token_keyed=False,
        date_column=None,
        key=("INVESTOR_NAME",),
        numeric=("ROUND_COUNT", "ROI_AVERAGE", "ROI_MEDIAN"),
        ttl=DAY,
    ),
    _ep(
        "price-prediction",
        "Bear/base/moon price scenarios",
        (*TOKEN, *PAGING),
        3,
        aliases=("prediction", "predictions", "scenarios", "scenario-analysis"),
        nested="PRICE_PREDICTION",
        key=("TOKEN_ID", "DATE"),
        ttl=DAY,
    ),
)

CATALOGUE: dict[str, Endpoint] = {e.name: e for e in ENDPOINTS}
_ALIASES: dict[str, str] = {}
for _e in ENDPOINTS:
    for _name in (_e.name, *_e.aliases):
        assert _name not in _ALIASES, f"duplicate endpoint alias {_name}"
        _ALIASES[_name] = _e.name


def endpoint_names(*, aliases: bool = False) -> list[str]:
    return sorted(_ALIASES if aliases else CATALOGUE)


def get_endpoint(name: str | Endpoint) -> Endpoint:
    """The endpoint called ``name`` (path, alias, with or without ``/v2/``); suggests the closest on a miss."""
    if isinstance(name, Endpoint):
        return name
    if not isinstance(name, str):
        raise UnknownEndpoint(f"an endpoint name must be a string, got {type(name).__name__}")
    key = name.strip().lower().removeprefix("/").removeprefix("v2/").replace("_", "-")
    if key in _ALIASES:
        return CATALOGUE[_ALIASES[key]]
    close = difflib.get_close_matches(key, list(_ALIASES), n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}?" if close else "see %tm endpoints for the list"
    raise UnknownEndpoint(f"unknown endpoint {name!r}", hint=hint)


def catalogue_frame():
    """The catalogue as a DataFrame: name, aliases, expected price, parameters, summary."""
    import pandas as pd

    rows = [
        {
            "endpoint": e.name,
            "aliases": ", ".join(e.aliases),
            "usdc": float(e.expected_usd),
            "tier": e.tier,
            "params": ", ".join(p.name + ("*" if p.required else "") for p in e.params),
            "summary": e.summary,
        }
        for e in ENDPOINTS
    ]
    return pd.DataFrame(rows).set_index("endpoint")
