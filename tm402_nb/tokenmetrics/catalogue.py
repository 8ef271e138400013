"""The Token Metrics v2 endpoint catalogue, as data.

One :class:`Endpoint` per path: its short aliases, parameters (types, comma
lists, required), paging, the date column, its row fields (numeric, list-valued,
nested and how they explode), the chart that fits it, the expected price tier,
and how long an answer stays fresh in the cache. The client, the frames, the
magics, the accessor, the plots, ``%tm endpoints`` and the docs table all read
this one table, so adding an endpoint is one entry here.

Prices here are what the catalogue *expects* (reference §5.3, nearest-kin tier
for endpoints it does not list); the amount actually paid always comes from the
server's 402 challenge.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "AGENT",
    "CATALOGUE",
    "DATE_COLUMNS",
    "ENDPOINTS",
    "SYMBOL_LOOKUP",
    "SYMBOL_RANKING",
    "TIER_USD",
    "TOKEN_IDENTIFIERS",
    "TOKEN_PARAMS",
    "Endpoint",
    "NestedShape",
    "Param",
    "UnknownEndpoint",
    "catalogue_frame",
    "chart_kinds",
    "chart_metrics",
    "endpoint_names",
    "get_endpoint",
]

TIER_USD = {0: Decimal("0"), 1: Decimal("0.017"), 2: Decimal("0.034"), 3: Decimal("0.068")}

MINUTE, HOUR, DAY = 60, 3600, 86400

#: Dated endpoints (daily and hourly) are fetched in windows of at most this many days. Both
#: official SDKs cut every dated request at 29 days ("the API's 29-day limit"); whether the
#: server refuses or silently truncates a longer range is not documented, so the client never
#: asks for one unless told to (``window_days=`` on ``connect()``/``Client``), and a window
#: that comes back shorter than asked is reported (:class:`~tm402_nb.tokenmetrics.gaps.GapWarning`).
WINDOW_DAYS = 29


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
    # The API serves page 0 as its first page (the official Python SDK sends 0, the TS SDK 1).
    Param("page", int, minimum=0, doc="page number, from 1 (0 is also the first page)"),
)
MARKET = (
    Param("category", str, list=True, doc="category slugs, e.g. layer-1,defi"),
    Param("exchange", str, list=True, doc="exchange slugs, e.g. binance,gate"),
    Param("marketcap", float, minimum=0, doc="minimum market cap, USD"),
    Param("volume", float, minimum=0, doc="minimum 24h volume, USD"),
    Param("fdv", float, minimum=0, doc="minimum fully diluted valuation, USD"),
)


@dataclass(frozen=True)
class NestedShape:
    """How a nested column's value explodes into tidy rows, one per item.

    A value is a list of items, or a dict holding its own fields (the *head*) and the
    item list under one of ``list_keys``. Item keys become columns: ``items`` names
    the known ones, any other key ``k`` becomes ``item_prefix + K`` (after dropping
    ``strip``); a plain (non-dict) item goes to ``scalar_name``. A name that clashes
    with a parent column gets ``conflict_prefix``.
    """

    #: Known item keys (lower case) → column names.
    items: tuple[tuple[str, str], ...]
    item_prefix: str
    conflict_prefix: str
    scalar_name: str
    #: The head's columns, in frame order (a dict value's fields besides the item list).
    head_columns: tuple[str, ...] = ()
    #: The items' columns, in frame order.
    item_columns: tuple[str, ...] = ()
    #: Keys of the item list in a dict value: the current spelling first, then older ones.
    list_keys: tuple[str, ...] = ()
    #: Prefix dropped from item keys (``predicted_price_bear`` → ``PRICE_BEAR``).
    strip: str = ""
    #: A head field that clashes with a parent column gets this prefix.
    head_conflict_prefix: str = ""
    #: Older names of the nested column itself, renamed to the current one.
    old_names: tuple[str, ...] = ()
    #: Head and item columns that hold numbers.
    numeric: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.list_keys and not self.head_conflict_prefix:
            raise ValueError("a nested value with a head (list_keys) needs a head_conflict_prefix")


@dataclass(frozen=True)
class Endpoint:
    """Everything the toolkit knows about one endpoint: adding an endpoint is one of these."""

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
    #: A long date range is fetched in windows of at most this many days.
    window_days: int = WINDOW_DAYS
    #: Rows a token has per day of a dated range (24 for hourly series): how a plan counts pages.
    rows_per_day: int = 1
    #: Rows form a time series per token: without a startDate only the latest page is
    #: fetched (paging through years of history would be dozens of paid calls).
    history: bool = False
    #: Takes token_id/symbol/token_name lists: many tokens batch into one call.
    token_keyed: bool = True
    #: Row fields as the v2 API serves them, in frame order (nested columns not exploded).
    fields: tuple[str, ...] = ()
    #: Fields a documented variant of the API serves besides or instead of some of ``fields`` (the
    #: 2026 trading-signals docs: ``tm_grade``, ``token_signal_str``, ...): ordered after ``fields``
    #: when present, never expected (an empty frame has ``fields`` only).
    variant_fields: tuple[str, ...] = ()
    #: Nested column exploded into a tidy frame (resistance levels, correlations, scenarios).
    nested: str | None = None
    #: How ``nested`` explodes; None explodes it generically (``<NESTED>_<KEY>`` columns).
    nested_shape: NestedShape | None = None
    #: Columns identifying a row, for de-duplication across pages and windows.
    key: tuple[str, ...] = ("TOKEN_ID", "DATE")
    #: Columns coerced to numbers (others matching common numeric names are coerced too).
    numeric: tuple[str, ...] = ()
    #: Columns holding lists or dicts: kept as served, never coerced.
    list_fields: tuple[str, ...] = ()
    #: Seconds an answer stays fresh in the cache.
    ttl: int = HOUR
    #: Frames index on this column when it is present.
    index: str | None = None
    #: The chart that fits this endpoint's frames (a kind of ``tm402_nb.notebook.plots``).
    chart: str | None = None
    #: Other chart kinds its frames also fit (trading-signals carry trader and investor grades).
    also_charts: tuple[str, ...] = ()
    #: Columns a chart of it can show as its value, the default first (``metric=`` picks another).
    metrics: tuple[str, ...] = ()
    #: GET with query parameters, or POST with a JSON body (the AI agent: ``Client.ask``).
    method: str = "GET"

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


#: Columns naming the token in every token-keyed answer.
TOKEN_IDENTIFIERS = ("TOKEN_ID", "TOKEN_NAME", "TOKEN_SYMBOL")
#: Names of a row's own date column, in whichever spelling an endpoint uses.
DATE_COLUMNS = ("DATE", "TIMESTAMP", "DATETIME")

_OHLCV = ("OPEN", "HIGH", "LOW", "CLOSE", "VOLUME")
_SIGNAL_NUM = (
    "TRADING_SIGNAL",
    "TOKEN_TREND",
    "TRADING_SIGNALS_RETURNS",
    "HOLDING_RETURNS",
    "TM_TRADER_GRADE",
    "TM_INVESTOR_GRADE",
)
#: Trading-signals fields as the 2026 docs list them (lower case there): the grades they carry now
#: (investor grades were removed in August 2025) and the signal and trend as words.
_SIGNAL_NUM_2026 = ("TM_GRADE", "FUNDAMENTAL_GRADE")
_SIGNAL_TEXT_2026 = ("TOKEN_SIGNAL_STR", "TOKEN_TREND_STR", "SLUG", "APP_LINK")
_GRADE_NUM = ("TM_GRADE", "FUNDAMENTAL_GRADE", "TM_GRADE_24h_PCT_CHANGE", "TM_TRADER_GRADE_24H_CHANGE", "QUANT_GRADE")
_GRADE = (
    "FUNDAMENTAL_GRADE",
    "TM_GRADE",
    "TM_GRADE_24h_PCT_CHANGE",
    "TM_TRADER_GRADE_24H_CHANGE",
    "QUANT_GRADE",
    "FUNDAMENTAL_GRADE_CLASS",
    "TM_GRADE_SIGNAL",
    "MOMENTUM",
)
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
_FUND = (_FUND_NUM[0], "FUNDAMENTAL_GRADE_CLASS", *_FUND_NUM[1:])
_MARKET_NUM = ("TOTAL_CRYPTO_MCAP", "TM_GRADE_PERC_HIGH_COINS", "TM_GRADE_SIGNAL", "LAST_TM_GRADE_SIGNAL")
_INDEX_NUM = ("PRICE", "COINS", "24H", "7D", "1M", "24H_VOLUME", "INDEX_GRADE", "ALL_TIME", "MARKET_CAP")
_HOLDING_NUM = ("WEIGHT", "MARKET_CAP", "PRICE", "CURRENT_ROI", "TRADER_GRADE", "TRADER_GRADE_CHANGE_24H")
_INDEX_PERFORMANCE_NUM = ("INDEX_CUMULATIVE_ROI", "MARKET_CAP", "VOLUME", "FDV")
_INVESTOR_NUM = ("ROUND_COUNT", "ROI_AVERAGE", "ROI_MEDIAN")
_QUANT_NUM = (
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
)

_LEVELS = NestedShape(
    items=(("date", "LEVEL_DATE"), ("level", "LEVEL")),
    item_prefix="LEVEL_",
    conflict_prefix="LEVEL_",
    scalar_name="LEVEL",
    item_columns=("LEVEL_DATE", "LEVEL"),
    numeric=("LEVEL",),
)
_CORRELATIONS = NestedShape(
    items=(("token", "CORRELATED_TOKEN"), ("correlation", "CORRELATION")),
    item_prefix="CORRELATED_",
    conflict_prefix="CORRELATED_",
    scalar_name="CORRELATION",
    item_columns=("CORRELATED_TOKEN", "CORRELATION"),
    numeric=("CORRELATION",),
)
_SCENARIO_HEAD = (
    "TOKEN_MCAP",
    "TOTAL_MCAP",
    "CATEGORY_NAME",
    "CURRENT_PRICE",
    "PREDICTED_DATE",
    "SIMILAR_TOKENS_INFO",
    "AVG_PAST_PERFORMANCE",
    "SELF_PAST_PERFORMANCE",
)
_SCENARIO_ITEMS = (
    "SCENARIO",
    "TOTAL_MCAP_SCENARIO",
    "PRICE_BEAR",
    "PRICE_BASE",
    "PRICE_MOON",
    "ROI_BEAR",
    "ROI_BASE",
    "ROI_MOON",
    "MCAP_BEAR",
    "MCAP_BASE",
    "MCAP_MOON",
    "FDV_BEAR",
    "FDV_BASE",
    "FDV_MOON",
)
_SCENARIOS = NestedShape(
    items=(("scenario", "SCENARIO"),),
    item_prefix="",
    conflict_prefix="SCENARIO_",
    scalar_name="SCENARIO",
    head_columns=_SCENARIO_HEAD,
    item_columns=_SCENARIO_ITEMS,
    list_keys=("price_prediction", "scenario_prediction", "scenario_analysis", "scenarios"),
    strip="predicted_",
    head_conflict_prefix="PREDICTION_",
    old_names=("SCENARIO_PREDICTION", "SCENARIO_ANALYSIS"),
    numeric=(
        *(c for c in _SCENARIO_HEAD if c not in ("CATEGORY_NAME", "PREDICTED_DATE", "SIMILAR_TOKENS_INFO")),
        *_SCENARIO_ITEMS,
    ),
)

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
        fields=(*TOKEN_IDENTIFIERS, "EXCHANGE_LIST", "CATEGORY_LIST", "CONTRACT_ADDRESS", "TM_LINK"),
        list_fields=("EXCHANGE_LIST", "CATEGORY_LIST", "CONTRACT_ADDRESS"),
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
        fields=(*TOKEN_IDENTIFIERS, "CURRENT_PRICE"),
    ),
    _ep(
        "top-market-cap-tokens",
        "Top tokens by market cap",
        (Param("top_k", int, minimum=1, maximum=100), Param("page", int, minimum=0)),
        0,
        aliases=("top", "top-tokens", "top-market-cap"),
        limit_param="top_k",
        date_column=None,
        token_keyed=False,
        key=("TOKEN_ID",),
        ttl=HOUR,
        fields=(*TOKEN_IDENTIFIERS, "EXCHANGE_LIST", "CATEGORY_LIST", "TM_LINK"),
        list_fields=("EXCHANGE_LIST", "CATEGORY_LIST"),
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
        fields=(*TOKEN_IDENTIFIERS, "DATE", *_OHLCV),
        chart="ohlcv",
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
        fields=(*TOKEN_IDENTIFIERS, "TIMESTAMP", *_OHLCV),
        rows_per_day=24,
        chart="ohlcv",
    ),
    _ep(
        "trading-signals",
        "Daily AI long/short signals with strategy and holding returns",
        (*TOKEN, *DATES, *MARKET, Param("signal", int, choices=(-1, 0, 1)), *PAGING),
        1,
        history=True,
        aliases=("signals", "signal"),
        dated=True,
        numeric=(*_SIGNAL_NUM, *_SIGNAL_NUM_2026),
        ttl=6 * HOUR,
        fields=(*TOKEN_IDENTIFIERS, "DATE", *_SIGNAL_NUM, "TM_LINK"),
        variant_fields=(*_SIGNAL_NUM_2026, *_SIGNAL_TEXT_2026),
        chart="signals",
        also_charts=("grades",),
        metrics=("TM_TRADER_GRADE", "TM_INVESTOR_GRADE", "TM_GRADE", "FUNDAMENTAL_GRADE"),
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
        fields=(*TOKEN_IDENTIFIERS, "DATE", *_GRADE),
        chart="grades",
        metrics=("TM_GRADE",),
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
        fields=(*TOKEN_IDENTIFIERS, "DATE", *_TECH_NUM),
        chart="grades",
        metrics=("TECHNOLOGY_GRADE",),
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
        fields=(*TOKEN_IDENTIFIERS, "DATE", *_FUND),
        chart="grades",
        metrics=("FUNDAMENTAL_GRADE",),
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
        numeric=("CLOSE", "SIGNAL", "POSITION"),
        ttl=15 * MINUTE,
        fields=(*TOKEN_IDENTIFIERS, "TIMESTAMP", "CLOSE", "SIGNAL", "POSITION"),
        chart="signals",
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
        fields=(*TOKEN_IDENTIFIERS, "DATE", *_GRADE),
        chart="grades",
        metrics=("TM_GRADE",),
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
        fields=(*TOKEN_IDENTIFIERS, "DATE", *_TECH_NUM),
        chart="grades",
        metrics=("TECHNOLOGY_GRADE",),
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
        fields=(*TOKEN_IDENTIFIERS, "DATE", *_FUND),
        chart="grades",
        metrics=("FUNDAMENTAL_GRADE",),
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
        numeric=_MARKET_NUM,
        ttl=6 * HOUR,
        fields=("DATE", *_MARKET_NUM),
        chart="market",
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
        fields=(
            "TOKEN_NAME",
            "TOKEN_SYMBOL",
            "MOONSHOT_AT",
            "MOONSHOT_END_AT",
            "MOONSHOT_ROI",
            "LAST_TRADING_SIGNAL_TIME",
            "TM_TRADER_GRADE",
            "TM_TRADER_GRADE_24H_PCT_CHANGE",
            "PRICE_CHANGE_PERCENTAGE_7D_IN_CURRENCY",
            "MARKET_CAP",
            "VOLUME_24H",
        ),
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
        fields=(*TOKEN_IDENTIFIERS, "DATE", "HISTORICAL_RESISTANCE_SUPPORT_LEVELS"),
        nested_shape=_LEVELS,
        chart="levels",
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
        numeric=_INDEX_NUM,
        ttl=HOUR,
        index="ID",
        fields=("ID", "NAME", "TICKER", *_INDEX_NUM, "TOP_GAINERS_ICONS"),
        list_fields=("TOP_GAINERS_ICONS",),
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
        numeric=_HOLDING_NUM,
        ttl=HOUR,
        fields=(*TOKEN_IDENTIFIERS, "DATE", "COIN", "CG_ID", *_HOLDING_NUM, "ICON"),
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
        numeric=_INDEX_PERFORMANCE_NUM,
        ttl=6 * HOUR,
        fields=("ID", "DATE", *_INDEX_PERFORMANCE_NUM),
        chart="index",
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
        fields=(*TOKEN_IDENTIFIERS, "DATE", "TOP_CORRELATION"),
        nested_shape=_CORRELATIONS,
        chart="correlation",
    ),
    _ep(
        "quantmetrics",
        "Risk and return metrics: Sharpe, Sortino, drawdown, ...",
        (*TOKEN, *MARKET, *PAGING),
        3,
        aliases=("quant", "quant-metrics"),
        key=("TOKEN_ID",),
        numeric=_QUANT_NUM,
        ttl=DAY,
        index="TOKEN_ID",
        fields=(*TOKEN_IDENTIFIERS, "DATE", *_QUANT_NUM),
        chart="quant",
        metrics=("SHARPE", "SORTINO", *(m for m in _QUANT_NUM if m not in ("SHARPE", "SORTINO"))),
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
        fields=(*TOKEN_IDENTIFIERS, "INVESTMENT_ANALYSIS_POINTER", "INVESTMENT_ANALYSIS", "DEEP_DIVE", "CODE_REVIEW"),
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
        numeric=_INVESTOR_NUM,
        ttl=DAY,
        fields=("INVESTOR_NAME", "INVESTOR_WEBSITE", "INVESTOR_TWITTER", *_INVESTOR_NUM),
    ),
    _ep(
        "tmai",
        "TMAI, the AI agent: a question in, an answer out (Client.ask, %tm ask)",
        (Param("question", str, required=True, doc="what to ask, in plain words"),),
        3,  # no published price: the top tier, as live-api-2026.md advises
        aliases=("ask", "agent", "ai-agent"),
        method="POST",
        paged=False,
        token_keyed=False,
        date_column=None,
        key=(),
        ttl=0,
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
        fields=(*TOKEN_IDENTIFIERS, "DATE", "PRICE_PREDICTION"),
        nested_shape=_SCENARIOS,
        list_fields=("SIMILAR_TOKENS_INFO",),
        chart="scenarios",
    ),
)

CATALOGUE: dict[str, Endpoint] = {e.name: e for e in ENDPOINTS}

#: Where the client looks symbols up (TOKEN_SYMBOL → TOKEN_ID) ...
SYMBOL_LOOKUP = CATALOGUE["tokens"]
#: ... and how it ranks tokens that share a symbol when the lookup gives no market cap.
SYMBOL_RANKING = CATALOGUE["top-market-cap-tokens"]
#: TMAI, the AI agent: asked with ``Client.ask`` (a POST with a JSON body), never framed.
AGENT = CATALOGUE["tmai"]
#: The parameters that name tokens (``symbol`` is resolved to ``token_id`` before sending).
TOKEN_PARAMS = frozenset(p.name for p in TOKEN)
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


def chart_kinds() -> dict[str, str]:
    """Endpoint name → the chart kind that fits its frames, for the endpoints that have one."""
    return {e.name: e.chart for e in ENDPOINTS if e.chart}


def chart_metrics(kind: str) -> tuple[str, ...]:
    """The value columns a ``kind`` chart looks for, default first.

    Those of the endpoints whose chart ``kind`` is, in catalogue order, then those of the
    endpoints it also fits.

    >>> chart_metrics("quant")[:2]
    ('SHARPE', 'SORTINO')
    """
    own = [m for e in ENDPOINTS if e.chart == kind for m in e.metrics]
    also = [m for e in ENDPOINTS if kind in e.also_charts for m in e.metrics]
    return tuple(dict.fromkeys([*own, *also]))


def catalogue_frame() -> pd.DataFrame:
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
