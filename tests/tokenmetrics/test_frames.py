"""tm402_nb.tokenmetrics.frames: API rows → typed DataFrames.

Rows are built from the reference's field lists and literal examples
(../shared/reference/tokenmetrics-api.md §4): §4.3 ETH daily OHLCV (newest
first), §4.4 trading-signals, §4.8 trader-grades ("2023-10-10" dates), §4.12
resistance levels, §4.17 old ai-reports shape.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.frames import bench_to_frame
from tm402_nb.tokenmetrics.catalogue import ENDPOINTS, Endpoint, get_endpoint
from tm402_nb.tokenmetrics.frames import (
    frame_columns,
    lower_name,
    normalize_rows,
    to_frame,
)

UTC = "UTC"


# ---------------------------------------------------------------------------------------------------
# Representative rows per endpoint (reference §4)

ETH = {"TOKEN_ID": 3306, "TOKEN_NAME": "Ethereum", "TOKEN_SYMBOL": "ETH"}
BTC = {"TOKEN_ID": 3375, "TOKEN_NAME": "Bitcoin", "TOKEN_SYMBOL": "BTC"}

# §4.3, newest first, as the official notebook shows them.
OHLCV_ETH = [
    {
        **ETH,
        "DATE": "2021-05-02T00:00:00.000Z",
        "OPEN": 2944.827239,
        "HIGH": 2989.00,
        "LOW": 2854.180000,
        "CLOSE": 2950.337798,
        "VOLUME": 1.388496e08,
    },
    {
        **ETH,
        "DATE": "2021-05-01T00:00:00.000Z",
        "OPEN": 2772.968933,
        "HIGH": 2958.00,
        "LOW": 2743.410000,
        "CLOSE": 2945.032767,
        "VOLUME": 1.751097e08,
    },
]

# §4.4 literal (plus an older second row).
SIGNALS = [
    {
        "TOKEN_ID": 3375,
        "TOKEN_NAME": "Bitcoin",
        "TOKEN_SYMBOL": "BTC",
        "DATE": "2025-04-10T00:00:00.000Z",
        "TRADING_SIGNAL": 0,
        "TOKEN_TREND": -1,
        "TRADING_SIGNALS_RETURNS": 45098.7035,
        "HOLDING_RETURNS": 7559.6422,
        "tm_link": "bitcoin",
        "TM_TRADER_GRADE": 26.48,
        "TM_INVESTOR_GRADE": 58.23,
        "TM_LINK": "https://app.tokenmetrics.com/undefined",
    },
    {
        "TOKEN_ID": 3375,
        "TOKEN_NAME": "Bitcoin",
        "TOKEN_SYMBOL": "BTC",
        "DATE": "2025-04-09T00:00:00.000Z",
        "TRADING_SIGNAL": -1,
        "TOKEN_TREND": -1,
        "TRADING_SIGNALS_RETURNS": 45001.5,
        "HOLDING_RETURNS": 7401.25,
        "tm_link": "bitcoin",
        "TM_TRADER_GRADE": 24.1,
        "TM_INVESTOR_GRADE": 58.0,
        "TM_LINK": "https://app.tokenmetrics.com/undefined",
    },
]

# §4.8 literal (trader-grades, removed from the catalogue; used with an ad-hoc Endpoint and as grade history).
TRADER_GRADES = [
    {
        "TOKEN_ID": 17528,
        "TOKEN_NAME": "BTC",
        "DATE": "2023-10-10",
        "TA_GRADE": 14.09,
        "QUANT_GRADE": 35.7,
        "TM_TRADER_GRADE": 18.41,
        "TM_TRADER_GRADE_24H_PCT_CHANGE": 22.41,
    },
    {
        "TOKEN_ID": 22600,
        "TOKEN_NAME": "ETH",
        "DATE": "2023-10-10",
        "TA_GRADE": 17.79,
        "QUANT_GRADE": 35.82,
        "TM_TRADER_GRADE": 21.39,
        "TM_TRADER_GRADE_24H_PCT_CHANGE": 0.97,
    },
]

# §4.17 older ai-reports shape (SYMBOL, three report kinds).
AI_REPORTS_OLD = [
    {
        "TOKEN_ID": 3306,
        "TOKEN_NAME": "Ethereum",
        "SYMBOL": "ETH",
        "TRADER_REPORT": "## Introduction\n\nIn this report, we will analyze the quantitative metrics of Ethereum, ...",
        "FUNDAMENTAL_REPORT": "## Introduction\n\nEthereum, known for its smart contract functionality, ...",
        "TECHNOLOGY_REPORT": "## Development Activity\n- **Total Commits for Github Repo:** 341,023 (Percentile: 10) ...",
    },
    {
        "TOKEN_ID": 3375,
        "TOKEN_NAME": "Bitcoin",
        "SYMBOL": "BTC",
        "TRADER_REPORT": "...",
        "FUNDAMENTAL_REPORT": "...",
        "TECHNOLOGY_REPORT": "...",
    },
]
AI_REPORTS_NEW = [
    {
        **ETH,
        "INVESTMENT_ANALYSIS_POINTER": "ETH in one line",
        "INVESTMENT_ANALYSIS": "## Analysis\n...",
        "DEEP_DIVE": "## Deep dive\n...",
        "CODE_REVIEW": "## Code\n...",
    },
    {
        **BTC,
        "INVESTMENT_ANALYSIS_POINTER": "BTC in one line",
        "INVESTMENT_ANALYSIS": "## Analysis\n...",
        "DEEP_DIVE": "## Deep dive\n...",
        "CODE_REVIEW": "## Code\n...",
    },
]

# §4.12: the level array shape from the Snowflake schema prompt.
LEVELS = [
    {"date": "2020-06-05", "level": 6.9e-01},
    {"date": "2021-02-12", "level": 9.9e00},
    {"date": "2021-02-24", "level": 1.81},
]
RESISTANCE = [
    {**ETH, "DATE": "2025-04-10T00:00:00.000Z", "HISTORICAL_RESISTANCE_SUPPORT_LEVELS": LEVELS},
    {
        **BTC,
        "DATE": "2025-04-10T00:00:00.000Z",
        "HISTORICAL_RESISTANCE_SUPPORT_LEVELS": [
            {"date": "2021-11-10", "level": 68000.0},
            {"date": "2024-03-14", "level": 73000.0},
        ],
    },
]

CORRELATION = [
    {
        **BTC,
        "DATE": "2025-04-10T00:00:00.000Z",
        "TOP_CORRELATION": [
            {"token": "ETH", "correlation": 0.91},
            {"token": "SOL", "correlation": 0.84},
            {"token": "USDT", "correlation": -0.12},
        ],
    },
    {
        **ETH,
        "DATE": "2025-04-10T00:00:00.000Z",
        "TOP_CORRELATION": [{"token": "BTC", "correlation": 0.91}, {"token": "ARB", "correlation": 0.88}],
    },
]


def _scenarios(price: float) -> list[dict]:
    out = []
    for mult in (0.5, 2, 4):
        entry = {"scenario": mult, "total_mcap_scenario": 2.6e12 * mult}
        for name, k in (("bear", 0.6), ("base", 1.0), ("moon", 1.8)):
            entry[f"predicted_price_{name}"] = price * mult * k
            entry[f"predicted_roi_{name}"] = mult * k - 1
            entry[f"predicted_mcap_{name}"] = 1e11 * mult * k
            entry[f"predicted_fdv_{name}"] = 1.2e11 * mult * k
        out.append(entry)
    return out


def _prediction(price: float, scenarios_key: str = "price_prediction") -> dict:
    return {
        "token_mcap": 1e11,
        "total_mcap": 2.6e12,
        "category_name": "layer-1",
        "current_price": price,
        "predicted_date": "2026-04-10T00:00:00.000Z",
        "similar_tokens_info": [{"symbol": "SOL"}],
        "avg_past_performance": 0.12,
        "self_past_performance": 0.34,
        scenarios_key: _scenarios(price),
    }


PREDICTION_NEW = [
    {
        "DATE": "2025-04-10T00:00:00.000Z",
        "TOKEN_ID": 3306,
        "TOKEN_SYMBOL": "ETH",
        "TOKEN_NAME": "Ethereum",
        "PRICE_PREDICTION": _prediction(1500.0),
    },
    {
        "DATE": "2025-04-09T00:00:00.000Z",
        "TOKEN_ID": 3375,
        "TOKEN_SYMBOL": "BTC",
        "TOKEN_NAME": "Bitcoin",
        "PRICE_PREDICTION": _prediction(80000.0),
    },
]
PREDICTION_OLD = [
    {
        "DATE": r["DATE"],
        "TOKEN_ID": r["TOKEN_ID"],
        "TOKEN_SYMBOL": r["TOKEN_SYMBOL"],
        "TOKEN_NAME": r["TOKEN_NAME"],
        "SCENARIO_PREDICTION": _prediction(r["PRICE_PREDICTION"]["current_price"], "scenario_prediction"),
    }
    for r in PREDICTION_NEW
]

TM_GRADE = [
    {
        **BTC,
        "FUNDAMENTAL_GRADE": 81.2,
        "TM_GRADE": 84.5,
        "TM_GRADE_24h_PCT_CHANGE": 1.2,
        "TM_TRADER_GRADE_24H_CHANGE": -0.4,
        "QUANT_GRADE": 70.1,
        "FUNDAMENTAL_GRADE_CLASS": "storeOfValue",
        "TM_GRADE_SIGNAL": "Strong Buy",
        "MOMENTUM": "Momentum Surging",
    },
    {
        **ETH,
        "FUNDAMENTAL_GRADE": 77.0,
        "TM_GRADE": 55.0,
        "TM_GRADE_24h_PCT_CHANGE": -3.5,
        "TM_TRADER_GRADE_24H_CHANGE": 2.0,
        "QUANT_GRADE": 60.0,
        "FUNDAMENTAL_GRADE_CLASS": "blueChip",
        "TM_GRADE_SIGNAL": "Neutral",
        "MOMENTUM": "Losing Momentum",
    },
]


def _dated(rows: list[dict], dates: list[str], col: str = "DATE") -> list[dict]:
    return [{**r, col: d} for r in rows for d in dates]


TECH = {
    "TECHNOLOGY_GRADE": 61.0,
    "ACTIVITY_SCORE": 55.5,
    "SECURITY_SCORE": 70.0,
    "REPOSITORY_SCORE": 64.0,
    "COLLABORATION_SCORE": 48.0,
    "DEFI_SCANNER_SCORE": None,
}
FUND = {
    "FUNDAMENTAL_GRADE": 71.0,
    "FUNDAMENTAL_GRADE_CLASS": "blueChip",
    "COMMUNITY_SCORE": 80.0,
    "EXCHANGE_SCORE": 90.0,
    "VC_SCORE": None,
    "TOKENOMICS_SCORE": 66.0,
    "DEFI_SCANNER_SCORE": 40.5,
}
QUANT = {
    "VOLATILITY": 0.62,
    "ALL_TIME_RETURN": 45.2,
    "CAGR": 0.71,
    "SHARPE": 1.2,
    "SORTINO": 1.9,
    "MAX_DRAWDOWN": -0.83,
    "SKEW": 0.1,
    "TAIL_RATIO": 1.05,
    "RISK_REWARD_RATIO": 0.9,
    "PROFIT_FACTOR": 1.1,
    "KURTOSIS": 6.2,
    "DAILY_VALUE_AT_RISK": 0.055,
    "DAILY_RETURN_AVG": 0.0021,
    "DAILY_RETURN_STD": 0.033,
}

SAMPLES: dict[str, list[dict]] = {
    "tokens": [
        {
            **BTC,
            "EXCHANGE_LIST": ["binance", "gate"],
            "CATEGORY_LIST": ["layer-1"],
            "CONTRACT_ADDRESS": {},
            "TM_LINK": "https://app.tokenmetrics.com/bitcoin",
        },
        {
            **ETH,
            "EXCHANGE_LIST": ["binance"],
            "CATEGORY_LIST": ["layer-1", "smart-contract-platform"],
            "CONTRACT_ADDRESS": {"ethereum": "0x0"},
            "TM_LINK": "https://app.tokenmetrics.com/ethereum",
        },
    ],
    "price": [{**BTC, "CURRENT_PRICE": 96849}, {**ETH, "CURRENT_PRICE": 3150.25}],
    "top-market-cap-tokens": [
        {**BTC, "EXCHANGE_LIST": ["binance"], "CATEGORY_LIST": ["layer-1"], "TM_LINK": "bitcoin"},
        {**ETH, "EXCHANGE_LIST": ["binance"], "CATEGORY_LIST": ["layer-1"], "TM_LINK": "ethereum"},
    ],
    "daily-ohlcv": OHLCV_ETH,
    "hourly-ohlcv": [
        {
            **ETH,
            "TIMESTAMP": f"2025-04-10T{h:02d}:00:00.000Z",
            "OPEN": 1500.0 + h,
            "HIGH": 1510.0 + h,
            "LOW": 1490.0 + h,
            "CLOSE": 1505.0 + h,
            "VOLUME": 1e6 * (h + 1),
        }
        for h in (3, 2, 1, 0)
    ],
    "trading-signals": SIGNALS,
    "hourly-trading-signals": [
        {"TIMESTAMP": f"2025-04-10T{h:02d}:00:00.000Z", **BTC, "CLOSE": 80000.0 + h, "SIGNAL": s, "POSITION": p}
        for h, s, p in ((2, "1", "1"), (1, "0", "-1"), (0, "-1", "-1"))
    ],
    "tm-grade": TM_GRADE,
    "tm-grade-history": _dated(TM_GRADE, ["2025-04-10T00:00:00.000Z", "2025-04-09T00:00:00.000Z"]),
    "technology-grade": [
        {**BTC, "DATE": "2025-04-10T00:00:00.000Z", **TECH},
        {**ETH, "DATE": "2025-04-10T00:00:00.000Z", **TECH},
    ],
    "technology-grade-history": _dated([{**ETH, **TECH}], ["2025-04-10", "2025-04-09", "2025-04-08"]),
    "fundamental-grade": [
        {**BTC, "DATE": "2025-04-10T00:00:00.000Z", **FUND},
        {**ETH, "DATE": "2025-04-10T00:00:00.000Z", **FUND},
    ],
    "fundamental-grade-history": _dated([{**BTC, **FUND}], ["2025-04-10T00:00:00.000Z", "2025-04-09T00:00:00.000Z"]),
    "market-metrics": [
        {
            "DATE": "2025-04-10T00:00:00.000Z",
            "TOTAL_CRYPTO_MCAP": 2.61e12,
            "TM_GRADE_PERC_HIGH_COINS": 31.5,
            "TM_GRADE_SIGNAL": -1,
            "LAST_TM_GRADE_SIGNAL": -1,
        },
        {
            "DATE": "2025-04-09T00:00:00.000Z",
            "TOTAL_CRYPTO_MCAP": 2.55e12,
            "TM_GRADE_PERC_HIGH_COINS": 28.0,
            "TM_GRADE_SIGNAL": 0,
            "LAST_TM_GRADE_SIGNAL": -1,
        },
    ],
    # TS types: strings except MOONSHOT_ROI (§4.11).
    "moonshot-tokens": [
        {
            "LAST_TRADING_SIGNAL_TIME": "2025-04-09T00:00:00.000Z",
            "TM_TRADER_GRADE": "71.20",
            "TM_TRADER_GRADE_24H_PCT_CHANGE": "3.10",
            "PRICE_CHANGE_PERCENTAGE_7D_IN_CURRENCY": "12.50",
            "MARKET_CAP": "123456789.00",
            "VOLUME_24H": "9876543.21",
            "MOONSHOT_END_AT": None,
            "MOONSHOT_AT": "2025-04-09T00:00:00.000Z",
            "MOONSHOT_ROI": 14.2,
            "TOKEN_NAME": "Alpha",
            "TOKEN_SYMBOL": "ALP",
        },
        {
            "LAST_TRADING_SIGNAL_TIME": "2025-03-01T00:00:00.000Z",
            "TM_TRADER_GRADE": "66.00",
            "TM_TRADER_GRADE_24H_PCT_CHANGE": "-1.00",
            "PRICE_CHANGE_PERCENTAGE_7D_IN_CURRENCY": "-2.00",
            "MARKET_CAP": "55555555.00",
            "VOLUME_24H": "123456.00",
            "MOONSHOT_END_AT": None,
            "MOONSHOT_AT": "2025-03-01T00:00:00.000Z",
            "MOONSHOT_ROI": -4.5,
            "TOKEN_NAME": "Beta",
            "TOKEN_SYMBOL": "BET",
        },
    ],
    "resistance-support": RESISTANCE,
    "indices": [
        {
            "ID": 1,
            "NAME": "Large Cap",
            "TICKER": "LCAP",
            "PRICE": 1234.5,
            "COINS": 10,
            "24H": 1.2,
            "7D": -3.4,
            "1M": 10.0,
            "24H_VOLUME": 1e9,
            "INDEX_GRADE": 66.6,
            "ALL_TIME": 23.4,
            "MARKET_CAP": 2e12,
            "TOP_GAINERS_ICONS": ["https://x/a.png"],
        },
        {
            "ID": 3,
            "NAME": "DeFi",
            "TICKER": "DEFI",
            "PRICE": 99.5,
            "COINS": 8,
            "24H": -0.2,
            "7D": 1.4,
            "1M": -5.0,
            "24H_VOLUME": 1e8,
            "INDEX_GRADE": 51.0,
            "ALL_TIME": -12.0,
            "MARKET_CAP": 5e10,
            "TOP_GAINERS_ICONS": [],
        },
    ],
    "indices-holdings": [
        {
            **BTC,
            "COIN": "Bitcoin",
            "CG_ID": "bitcoin",
            "WEIGHT": 60.0,
            "MARKET_CAP": 1.9e12,
            "PRICE": 96849.0,
            "CURRENT_ROI": 140.0,
            "TRADER_GRADE": 55.0,
            "TRADER_GRADE_CHANGE_24H": 1.5,
            "ICON": "https://x/btc.png",
            "DATE": "2025-04-10T00:00:00.000Z",
        },
        {
            **ETH,
            "COIN": "Ethereum",
            "CG_ID": "ethereum",
            "WEIGHT": 40.0,
            "MARKET_CAP": 4e11,
            "PRICE": 3150.0,
            "CURRENT_ROI": 80.0,
            "TRADER_GRADE": 45.0,
            "TRADER_GRADE_CHANGE_24H": -2.0,
            "ICON": "https://x/eth.png",
            "DATE": "2025-04-10T00:00:00.000Z",
        },
    ],
    "indices-performance": [
        {
            "ID": 1,
            "DATE": "2025-04-10T00:00:00.000Z",
            "INDEX_CUMULATIVE_ROI": 0.25,
            "MARKET_CAP": 2e12,
            "VOLUME": 1e9,
            "FDV": 2.5e12,
        },
        {
            "ID": 1,
            "DATE": "2025-04-09T00:00:00.000Z",
            "INDEX_CUMULATIVE_ROI": 0.22,
            "MARKET_CAP": 1.9e12,
            "VOLUME": 1.1e9,
            "FDV": 2.4e12,
        },
    ],
    "correlation": CORRELATION,
    "quantmetrics": [
        {**BTC, "DATE": "2025-04-10T00:00:00.000Z", **QUANT},
        {**ETH, "DATE": "2025-04-10T00:00:00.000Z", **QUANT},
    ],
    "ai-reports": AI_REPORTS_NEW,
    "crypto-investors": [
        {
            "INVESTOR_NAME": "a16z",
            "INVESTOR_WEBSITE": "https://a16z.example",
            "INVESTOR_TWITTER": "https://x.com/a",
            "ROUND_COUNT": 120,
            "ROI_AVERAGE": 3.2,
            "ROI_MEDIAN": 1.1,
        },
        {
            "INVESTOR_NAME": "Paradigm",
            "INVESTOR_WEBSITE": "https://p.example",
            "INVESTOR_TWITTER": "https://x.com/p",
            "ROUND_COUNT": 80,
            "ROI_AVERAGE": 2.5,
            "ROI_MEDIAN": 0.9,
        },
    ],
    "price-prediction": PREDICTION_NEW,
}


def _nested_count(ep: Endpoint, rows: list[dict]) -> int:
    total = 0
    for r in rows:
        v = r[ep.nested]
        items = v["price_prediction"] if isinstance(v, dict) else v
        total += max(1, len(items))
    return total


def assert_utc(series_or_dtype) -> None:
    dtype = getattr(series_or_dtype, "dtype", series_or_dtype)
    assert isinstance(dtype, pd.DatetimeTZDtype), dtype
    assert str(dtype.tz) == UTC


def assert_oldest_first(df: pd.DataFrame, col: str) -> None:
    values = df[col] if col in df.columns else df.index.to_series()
    assert values.dropna().is_monotonic_increasing


# ---------------------------------------------------------------------------------------------------
# Every endpoint


#: The endpoints that answer rows (the agent, a POST of a question, answers text: test_agent.py).
ROWS = [e.name for e in ENDPOINTS if e.method == "GET"]


def test_every_catalogue_endpoint_has_a_sample() -> None:
    assert set(SAMPLES) == set(ROWS)


@pytest.mark.parametrize("name", ROWS)
def test_endpoint_frame_is_typed(name: str) -> None:
    ep = get_endpoint(name)
    rows = SAMPLES[name]
    before = copy.deepcopy(rows)
    df = to_frame(ep, rows)
    assert rows == before, "input rows were mutated"

    expected_rows = _nested_count(ep, rows) if ep.nested else len(rows)
    assert len(df) == expected_rows
    cols = set(df.columns) | ({df.index.name} if df.index.name else set())
    # Every column the reference lists is there (tm-grade's latest rows carry no DATE).
    missing = set(frame_columns(ep)) - cols - ({ep.date_column} if name == "tm-grade" else set())
    assert not missing, missing

    if ep.date_column and ep.date_column in cols:
        assert_utc(df[ep.date_column] if ep.date_column in df.columns else df.index)
        assert_oldest_first(df, ep.date_column)
    for c in ("TOKEN_ID", "ID"):
        if c in df.columns:
            assert isinstance(df[c].dtype, pd.Int64Dtype)
        elif df.index.name == c:
            assert isinstance(df.index.dtype, pd.Int64Dtype)
    for c in ep.numeric:
        if c in df.columns:
            assert pd.api.types.is_numeric_dtype(df[c].dtype), (c, df[c].dtype)
    if ep.index:
        assert df.index.name == ep.index
    else:
        assert isinstance(df.index, pd.RangeIndex) and df.index.start == 0
    for c in ("TOKEN_NAME", "TOKEN_SYMBOL"):
        if c in df.columns:
            assert not df[c].isna().any()


@pytest.mark.parametrize("name", ROWS)
def test_empty_rows_give_typed_empty_frame(name: str) -> None:
    ep = get_endpoint(name)
    df = to_frame(ep, [])
    cols = list(df.columns)
    assert len(df) == 0 and isinstance(df.index, pd.RangeIndex)
    assert tuple(cols) == frame_columns(ep)
    if ep.token_keyed:
        assert "TOKEN_ID" in cols
        assert isinstance(df["TOKEN_ID"].dtype, pd.Int64Dtype)
    if ep.date_column:
        assert ep.date_column in cols
        assert_utc(df[ep.date_column])
    for c in ep.numeric:
        if c in df.columns and c not in ("TM_GRADE_SIGNAL",):
            assert df[c].dtype == "float64", c
    low = to_frame(ep, [], lowercase=True)
    assert all(c == lower_name(c) for c in low.columns)
    if ep.nested:
        raw = to_frame(ep, [], tidy=False)
        assert ep.nested in raw.columns and raw[ep.nested].dtype == object


def test_frame_columns_tidy_and_raw() -> None:
    assert frame_columns("resistance-support") == (
        "TOKEN_ID",
        "TOKEN_NAME",
        "TOKEN_SYMBOL",
        "DATE",
        "LEVEL_DATE",
        "LEVEL",
    )
    assert frame_columns("resistance-support", tidy=False)[-1] == "HISTORICAL_RESISTANCE_SUPPORT_LEVELS"
    assert frame_columns("correlation") == (
        "TOKEN_ID",
        "TOKEN_NAME",
        "TOKEN_SYMBOL",
        "DATE",
        "CORRELATED_TOKEN",
        "CORRELATION",
    )
    pp = frame_columns("price-prediction")
    assert pp[:4] == ("TOKEN_ID", "TOKEN_NAME", "TOKEN_SYMBOL", "DATE")
    for c in (
        "CURRENT_PRICE",
        "PREDICTED_DATE",
        "SCENARIO",
        "PRICE_BEAR",
        "PRICE_BASE",
        "PRICE_MOON",
        "ROI_MOON",
        "MCAP_BASE",
        "FDV_BEAR",
    ):
        assert c in pp
    assert frame_columns("daily-ohlcv") == (
        "TOKEN_ID",
        "TOKEN_NAME",
        "TOKEN_SYMBOL",
        "DATE",
        "OPEN",
        "HIGH",
        "LOW",
        "CLOSE",
        "VOLUME",
    )
    assert "TIMESTAMP" in frame_columns("hourly-ohlcv") and "DATE" not in frame_columns("hourly-ohlcv")
    assert frame_columns("moonshot-tokens")[2] == "MOONSHOT_AT"
    # An endpoint unknown to the field table still gets its key, date and numeric columns.
    ep = Endpoint("future-thing", "?", (), 2, numeric=("SCORE",))
    assert frame_columns(ep)[:4] == ("TOKEN_ID", "TOKEN_NAME", "TOKEN_SYMBOL", "DATE") and "SCORE" in frame_columns(ep)


# ---------------------------------------------------------------------------------------------------
# Literal examples


def test_daily_ohlcv_literal_sorted_oldest_first() -> None:
    df = to_frame("daily-ohlcv", OHLCV_ETH)
    assert list(df.columns) == [
        "TOKEN_ID",
        "TOKEN_NAME",
        "TOKEN_SYMBOL",
        "DATE",
        "OPEN",
        "HIGH",
        "LOW",
        "CLOSE",
        "VOLUME",
    ]
    assert df["DATE"].tolist() == [pd.Timestamp("2021-05-01", tz="UTC"), pd.Timestamp("2021-05-02", tz="UTC")]
    assert df["CLOSE"].tolist() == [2945.032767, 2950.337798]
    assert df["TOKEN_ID"].tolist() == [3306, 3306]
    for c in ("OPEN", "HIGH", "LOW", "CLOSE", "VOLUME"):
        assert df[c].dtype == "float64"
    assert df["TOKEN_SYMBOL"].tolist() == ["ETH", "ETH"]


def test_sort_is_stable_then_by_key() -> None:
    rows = [
        {**ETH, "DATE": "2021-05-02T00:00:00.000Z", "CLOSE": 2.0},
        {**BTC, "DATE": "2021-05-02T00:00:00.000Z", "CLOSE": 20.0},
        {**BTC, "DATE": "2021-05-01T00:00:00.000Z", "CLOSE": 10.0},
        {**ETH, "DATE": "2021-05-01T00:00:00.000Z", "CLOSE": 1.0},
        {**ETH, "DATE": None, "CLOSE": 0.0},
    ]
    df = to_frame("daily-ohlcv", rows)
    assert df["CLOSE"].tolist() == [1.0, 10.0, 2.0, 20.0, 0.0]  # by date, then TOKEN_ID; NaT last
    assert df["DATE"].isna().tolist() == [False] * 4 + [True]
    assert isinstance(df.index, pd.RangeIndex) and list(df.index) == [0, 1, 2, 3, 4]


def test_trading_signals_literal() -> None:
    df = to_frame("trading-signals", SIGNALS)
    assert df["DATE"].iloc[0] == pd.Timestamp("2025-04-09", tz="UTC")
    assert df["TRADING_SIGNALS_RETURNS"].tolist() == [45001.5, 45098.7035]
    assert pd.api.types.is_integer_dtype(df["TRADING_SIGNAL"].dtype)
    # Both the slug (lower-case key) and the URL survive; neither is coerced.
    assert df["tm_link"].tolist() == ["bitcoin", "bitcoin"]
    assert df["TM_LINK"].iloc[0] == "https://app.tokenmetrics.com/undefined"
    low = to_frame("trading-signals", SIGNALS, lowercase=True)
    assert "tm_link" in low.columns and "tm_link_2" in low.columns
    assert set(low["tm_link"]) | set(low["tm_link_2"]) == {"bitcoin", "https://app.tokenmetrics.com/undefined"}


def test_trader_grades_literal_plain_dates() -> None:
    ep = Endpoint(
        "trader-grades",
        "removed Aug 2025",
        (),
        1,
        dated=True,
        numeric=("TA_GRADE", "QUANT_GRADE", "TM_TRADER_GRADE", "TM_TRADER_GRADE_24H_PCT_CHANGE"),
    )
    for endpoint in (ep, get_endpoint("tm-grade-history")):
        df = to_frame(endpoint, TRADER_GRADES)
        assert_utc(df["DATE"])
        assert (df["DATE"] == pd.Timestamp("2023-10-10", tz="UTC")).all()
        assert df["TA_GRADE"].tolist() == [14.09, 17.79]
        assert df["TM_TRADER_GRADE_24H_PCT_CHANGE"].dtype == "float64"
        assert df["TOKEN_NAME"].tolist() == ["BTC", "ETH"]  # the docs' placeholder: names hold symbols
        assert df["TOKEN_ID"].tolist() == [17528, 22600]


def test_mixed_date_formats_in_one_column() -> None:
    rows = [
        {**ETH, "DATE": "2023-10-10", "CLOSE": 1.0},
        {**ETH, "DATE": "2025-04-10T00:00:00.000Z", "CLOSE": 2.0},
        {**ETH, "DATE": "2024-01-01T12:30:00Z", "CLOSE": 3.0},
        {**ETH, "DATE": "2024-06-01 08:00:00", "CLOSE": 4.0},
    ]
    df = to_frame("daily-ohlcv", rows)
    assert_utc(df["DATE"])
    assert df["CLOSE"].tolist() == [1.0, 3.0, 4.0, 2.0]
    assert df["DATE"].iloc[1] == pd.Timestamp("2024-01-01 12:30", tz="UTC")


def test_epoch_and_garbage_dates() -> None:
    ms = int(pd.Timestamp("2025-04-10", tz="UTC").timestamp() * 1000)
    df = to_frame("daily-ohlcv", [{**ETH, "DATE": ms, "CLOSE": 1.0}, {**ETH, "DATE": ms - 86_400_000, "CLOSE": 0.5}])
    assert df["DATE"].tolist() == [pd.Timestamp("2025-04-09", tz="UTC"), pd.Timestamp("2025-04-10", tz="UTC")]
    df = to_frame("daily-ohlcv", [{**ETH, "DATE": "soon", "CLOSE": 1.0}, {**ETH, "DATE": "2025-04-10", "CLOSE": 2.0}])
    assert_utc(df["DATE"])
    assert df["DATE"].isna().sum() == 1 and df["CLOSE"].tolist() == [2.0, 1.0]


def test_secondary_date_like_columns() -> None:
    df = to_frame("moonshot-tokens", SAMPLES["moonshot-tokens"])
    for c in ("MOONSHOT_AT", "LAST_TRADING_SIGNAL_TIME", "MOONSHOT_END_AT"):
        assert_utc(df[c])
    assert df["MOONSHOT_END_AT"].isna().all()
    assert df["TOKEN_SYMBOL"].tolist() == ["BET", "ALP"]  # oldest MOONSHOT_AT first
    # numeric strings (the TS types say strings) become numbers
    assert df["TM_TRADER_GRADE"].tolist() == [66.0, 71.2]
    assert df["MARKET_CAP"].dtype == "float64"
    # A *_AT column holding text is left alone, not turned into NaT.
    rows = [{**r, "MOONSHOT_END_AT": "ongoing"} for r in SAMPLES["moonshot-tokens"]]
    assert to_frame("moonshot-tokens", rows)["MOONSHOT_END_AT"].tolist() == ["ongoing", "ongoing"]


# ---------------------------------------------------------------------------------------------------
# Text never becomes NaN; numeric strings become numbers


def test_text_columns_never_coerced() -> None:
    df = to_frame("tm-grade", TM_GRADE)
    assert df["TM_GRADE_SIGNAL"].tolist() == ["Strong Buy", "Neutral"]
    assert df["MOMENTUM"].tolist() == ["Momentum Surging", "Losing Momentum"]
    assert df["FUNDAMENTAL_GRADE_CLASS"].tolist() == ["storeOfValue", "blueChip"]
    assert df["TM_GRADE_24h_PCT_CHANGE"].dtype == "float64"
    # Declared numeric by the catalogue (market-metrics TM_GRADE_SIGNAL), but served as text: kept.
    rows = [
        {"DATE": "2025-04-10", "TOTAL_CRYPTO_MCAP": "2.6e12", "TM_GRADE_SIGNAL": "Strong Sell"},
        {"DATE": "2025-04-09", "TOTAL_CRYPTO_MCAP": "2.5e12", "TM_GRADE_SIGNAL": "-1"},
    ]
    df = to_frame("market-metrics", rows)
    assert df["TM_GRADE_SIGNAL"].tolist() == ["-1", "Strong Sell"]
    assert df["TOTAL_CRYPTO_MCAP"].tolist() == [2.5e12, 2.6e12]


def test_numeric_strings_and_missing_markers() -> None:
    rows = [
        {**ETH, "DATE": "2021-05-01", "OPEN": "2772.97", "CLOSE": " 2945.03 ", "VOLUME": "N/A", "NOTE": "7"},
        {**ETH, "DATE": "2021-05-02", "OPEN": 2944.83, "CLOSE": None, "VOLUME": "", "NOTE": "eight"},
    ]
    df = to_frame("daily-ohlcv", rows)
    assert df["OPEN"].tolist() == [2772.97, 2944.83]
    assert df["CLOSE"].iloc[0] == 2945.03 and math.isnan(df["CLOSE"].iloc[1])
    assert df["VOLUME"].dtype == "float64" and df["VOLUME"].isna().all()
    assert df["NOTE"].tolist() == ["7", "eight"]  # mixed text column left as served
    # A numeric-looking symbol or name is never turned into a number.
    df = to_frame("price", [{"TOKEN_ID": "42", "TOKEN_NAME": "42", "TOKEN_SYMBOL": "42", "CURRENT_PRICE": "0.5"}])
    assert df.index.tolist() == [42] and isinstance(df.index.dtype, pd.Int64Dtype)
    assert df["TOKEN_SYMBOL"].tolist() == ["42"] and df["CURRENT_PRICE"].tolist() == [0.5]
    # Booleans stay booleans; lists stay lists.
    df = to_frame("tokens", SAMPLES["tokens"] + [{"TOKEN_ID": 1, "EXCHANGE_LIST": [], "FLAG": True}])
    assert df.loc[3306, "CATEGORY_LIST"] == ["layer-1", "smart-contract-platform"]
    assert df["EXCHANGE_LIST"].dtype == object


def test_token_id_nullable_int() -> None:
    rows = [
        {**ETH, "DATE": "2021-05-01"},
        {"TOKEN_ID": None, "DATE": "2021-05-02"},
        {"TOKEN_ID": "3375", "DATE": "2021-05-03"},
    ]
    df = to_frame("daily-ohlcv", rows)
    assert isinstance(df["TOKEN_ID"].dtype, pd.Int64Dtype)
    assert df["TOKEN_ID"].isna().tolist() == [False, True, False]
    assert df["TOKEN_ID"].iloc[2] == 3375


def test_index_only_when_unique() -> None:
    df = to_frame("tm-grade", TM_GRADE)
    assert df.index.name == "TOKEN_ID" and df.index.tolist() == [3375, 3306]  # API order kept (no date)
    dup = to_frame("tm-grade", TM_GRADE + [TM_GRADE[0]])
    assert isinstance(dup.index, pd.RangeIndex) and "TOKEN_ID" in dup.columns
    low = to_frame("tm-grade", TM_GRADE, lowercase=True)
    assert low.index.name == "token_id" and "tm_grade_24h_pct_change" in low.columns


def test_no_date_column_keeps_api_order() -> None:
    rows = SAMPLES["top-market-cap-tokens"][::-1]
    df = to_frame("top-market-cap-tokens", rows)
    assert df["TOKEN_ID"].tolist() == [3306, 3375]


# ---------------------------------------------------------------------------------------------------
# Tidy nested frames


def test_resistance_support_tidy() -> None:
    df = to_frame("resistance-support", RESISTANCE)
    assert list(df.columns) == ["TOKEN_ID", "TOKEN_NAME", "TOKEN_SYMBOL", "DATE", "LEVEL_DATE", "LEVEL"]
    assert len(df) == 5
    assert_utc(df["DATE"])
    assert_utc(df["LEVEL_DATE"])
    assert df["LEVEL"].dtype == "float64"
    eth = df[df["TOKEN_SYMBOL"] == "ETH"]
    assert eth["LEVEL"].tolist() == [0.69, 9.9, 1.81]
    assert eth["LEVEL_DATE"].iloc[0] == pd.Timestamp("2020-06-05", tz="UTC")
    raw = to_frame("resistance-support", RESISTANCE, tidy=False)
    assert len(raw) == 2 and raw["HISTORICAL_RESISTANCE_SUPPORT_LEVELS"].iloc[0] == LEVELS


def test_resistance_support_empty_and_odd_items() -> None:
    rows = [
        {**ETH, "DATE": "2025-04-10", "HISTORICAL_RESISTANCE_SUPPORT_LEVELS": []},
        {
            **BTC,
            "DATE": "2025-04-10",
            "HISTORICAL_RESISTANCE_SUPPORT_LEVELS": [{"date": "2021-01-01", "level": "5.5", "type": "support"}],
        },
    ]
    df = to_frame("resistance-support", rows)
    assert len(df) == 2  # the empty list keeps its parent, like DataFrame.explode
    assert df["LEVEL"].tolist()[1] == 5.5 and math.isnan(df["LEVEL"].iloc[0])
    assert df["LEVEL_TYPE"].tolist()[1] == "support"


def test_correlation_tidy() -> None:
    df = to_frame("correlation", CORRELATION)
    assert list(df.columns) == ["TOKEN_ID", "TOKEN_NAME", "TOKEN_SYMBOL", "DATE", "CORRELATED_TOKEN", "CORRELATION"]
    assert len(df) == 5
    assert df["CORRELATION"].dtype == "float64"
    assert df["TOKEN_SYMBOL"].tolist() == ["ETH", "ETH", "BTC", "BTC", "BTC"]  # same date: by TOKEN_ID, stable
    assert df["CORRELATED_TOKEN"].tolist() == ["BTC", "ARB", "ETH", "SOL", "USDT"]
    low = to_frame("correlation", CORRELATION, lowercase=True)
    assert list(low.columns) == ["token_id", "token_name", "token_symbol", "date", "correlated_token", "correlation"]


def test_price_prediction_tidy_new_and_old_shapes() -> None:
    new = to_frame("price-prediction", PREDICTION_NEW)
    assert len(new) == 6
    assert list(new.columns) == list(frame_columns("price-prediction"))
    assert new["TOKEN_SYMBOL"].tolist() == ["BTC"] * 3 + ["ETH"] * 3  # BTC's row is older
    assert new["SCENARIO"].tolist() == [0.5, 2.0, 4.0] * 2
    btc = new.iloc[0]
    assert btc["CURRENT_PRICE"] == 80000.0
    assert btc["PRICE_BEAR"] == pytest.approx(80000.0 * 0.5 * 0.6)
    assert btc["PRICE_MOON"] == pytest.approx(80000.0 * 0.5 * 1.8)
    assert btc["ROI_BASE"] == pytest.approx(-0.5)
    assert btc["SIMILAR_TOKENS_INFO"] == [{"symbol": "SOL"}]
    assert_utc(new["PREDICTED_DATE"])
    for c in ("PRICE_BASE", "MCAP_MOON", "FDV_BEAR", "TOTAL_MCAP_SCENARIO", "TOKEN_MCAP"):
        assert new[c].dtype == "float64"
    old = to_frame("price-prediction", PREDICTION_OLD)
    pd.testing.assert_frame_equal(old, new)
    raw = to_frame("price-prediction", PREDICTION_NEW, tidy=False)
    assert len(raw) == 2 and isinstance(raw["PRICE_PREDICTION"].iloc[0], dict)


def test_price_prediction_list_shape_and_lowercase() -> None:
    rows = [{**ETH, "DATE": "2025-04-10", "SCENARIO_ANALYSIS": _scenarios(10.0)}]
    df = to_frame("price-prediction", rows)
    assert len(df) == 3 and df["PRICE_BASE"].tolist() == pytest.approx([5.0, 20.0, 40.0])
    low = to_frame("price-prediction", PREDICTION_NEW, lowercase=True)
    for c in ("price_bear", "roi_moon", "mcap_base", "fdv_moon", "predicted_date", "current_price"):
        assert c in low.columns


# ---------------------------------------------------------------------------------------------------
# Variants (normalize_rows)


def test_ai_reports_old_and_new_shapes() -> None:
    old = to_frame("ai-reports", AI_REPORTS_OLD)
    assert old.index.name == "TOKEN_ID"
    assert old["TOKEN_SYMBOL"].tolist() == ["ETH", "BTC"]
    assert {"TRADER_REPORT", "FUNDAMENTAL_REPORT", "TECHNOLOGY_REPORT"} <= set(old.columns)
    assert not {"INVESTMENT_ANALYSIS", "DEEP_DIVE", "CODE_REVIEW", "SYMBOL"} & set(old.columns)
    assert old.loc[3306, "TECHNOLOGY_REPORT"].startswith("## Development Activity")
    new = to_frame("ai-reports", AI_REPORTS_NEW)
    assert new["TOKEN_SYMBOL"].tolist() == ["ETH", "BTC"]
    assert not {"TRADER_REPORT", "FUNDAMENTAL_REPORT", "TECHNOLOGY_REPORT"} & set(new.columns)
    norm = normalize_rows(get_endpoint("ai-reports"), AI_REPORTS_OLD)
    assert list(norm[0]) == [
        "TOKEN_ID",
        "TOKEN_NAME",
        "TOKEN_SYMBOL",
        "TRADER_REPORT",
        "FUNDAMENTAL_REPORT",
        "TECHNOLOGY_REPORT",
    ]


def test_symbol_variant() -> None:
    rows = [{("SYMBOL" if k == "TOKEN_SYMBOL" else k): v for k, v in r.items()} for r in OHLCV_ETH]
    pd.testing.assert_frame_equal(to_frame("daily-ohlcv", rows), to_frame("daily-ohlcv", OHLCV_ETH))


def test_timestamp_vs_date_variants() -> None:
    daily_ts = [{("TIMESTAMP" if k == "DATE" else k): v for k, v in r.items()} for r in OHLCV_ETH]
    pd.testing.assert_frame_equal(to_frame("daily-ohlcv", daily_ts), to_frame("daily-ohlcv", OHLCV_ETH))
    hourly = SAMPLES["hourly-ohlcv"]
    hourly_date = [{("DATE" if k == "TIMESTAMP" else k): v for k, v in r.items()} for r in hourly]
    pd.testing.assert_frame_equal(to_frame("hourly-ohlcv", hourly_date), to_frame("hourly-ohlcv", hourly))
    dt = [{("DATETIME" if k == "DATE" else k): v for k, v in r.items()} for r in OHLCV_ETH]
    assert "DATE" in normalize_rows(get_endpoint("daily-ohlcv"), dt)[0]
    # A row that has both keeps both; the endpoint's own column is used.
    both = [{**r, "TIMESTAMP": "1999-01-01"} for r in OHLCV_ETH]
    df = to_frame("daily-ohlcv", both)
    assert df["DATE"].iloc[0] == pd.Timestamp("2021-05-01", tz="UTC") and "TIMESTAMP" in df.columns
    # An endpoint without a date column does not rename.
    assert "TIMESTAMP" in normalize_rows(get_endpoint("price"), [{"token_id": 3375, "timestamp": "2025-11-14"}])[0]


def test_lowercase_v3_keys_give_the_same_frame() -> None:
    for name in ("daily-ohlcv", "trading-signals", "tm-grade-history", "resistance-support", "quantmetrics"):
        rows = SAMPLES[name]
        lower = [{k.lower(): v for k, v in r.items() if k != "tm_link"} for r in rows]
        upper = [{k: v for k, v in r.items() if k != "tm_link"} for r in rows]
        pd.testing.assert_frame_equal(to_frame(name, lower), to_frame(name, upper), check_like=False)


def test_tm_grade_pct_change_spellings() -> None:
    ep = get_endpoint("tm-grade")
    for key in ("TM_GRADE_24H_PCT_CHANGE", "tm_grade_24h_pct_change", "TM_GRADE_24h_PCT_CHANGE"):
        out = normalize_rows(ep, [{"TOKEN_ID": 1, key: 1.5}])
        assert out == [{"TOKEN_ID": 1, "TM_GRADE_24h_PCT_CHANGE": 1.5}]
    out = normalize_rows(ep, [{"token_id": 1, "tm_trader_grade_24_h_change": 2.0, "token_symbol": "BTC"}])
    assert out == [{"TOKEN_ID": 1, "TM_TRADER_GRADE_24H_CHANGE": 2.0, "TOKEN_SYMBOL": "BTC"}]


def test_normalize_does_not_mutate_and_returns_new_dicts() -> None:
    rows = copy.deepcopy(PREDICTION_OLD + PREDICTION_NEW)
    before = copy.deepcopy(rows)
    out = normalize_rows(get_endpoint("price-prediction"), rows)
    assert rows == before
    assert all(o is not r for o, r in zip(out, rows, strict=False))
    assert all("PRICE_PREDICTION" in o and "price_prediction" in o["PRICE_PREDICTION"] for o in out)
    assert "scenario_prediction" in rows[0]["SCENARIO_PREDICTION"]
    same = normalize_rows(get_endpoint("daily-ohlcv"), OHLCV_ETH)
    assert same == OHLCV_ETH and all(o is not r for o, r in zip(same, OHLCV_ETH, strict=False))
    assert normalize_rows(get_endpoint("daily-ohlcv"), []) == []


def test_collisions_keep_both_keys() -> None:
    ep = get_endpoint("daily-ohlcv")
    out = normalize_rows(ep, [{"SYMBOL": "X", "TOKEN_SYMBOL": "ETH", "symbol": "y"}])[0]
    assert out == {"SYMBOL": "X", "TOKEN_SYMBOL": "ETH", "symbol": "y"}
    out = normalize_rows(ep, [{"symbol": "eth", "SYMBOL": "ETH"}])[0]
    assert out == {"symbol": "eth", "TOKEN_SYMBOL": "ETH"}


def test_mixed_key_sets_across_rows() -> None:
    rows = [OHLCV_ETH[0], {k.lower(): v for k, v in OHLCV_ETH[1].items()}]
    df = to_frame("daily-ohlcv", rows)
    assert list(df.columns) == list(frame_columns("daily-ohlcv"))
    assert df["CLOSE"].tolist() == [2945.032767, 2950.337798]


def test_rows_must_be_dicts() -> None:
    with pytest.raises(TypeError):
        to_frame("daily-ohlcv", [["not", "a", "dict"]])  # type: ignore[list-item]


# ---------------------------------------------------------------------------------------------------
# lowercase


@pytest.mark.parametrize(
    "name, alias",
    [
        ("TOKEN_ID", "token_id"),
        ("24H", "change_24h"),
        ("7D", "change_7d"),
        ("1M", "change_1m"),
        ("24H_VOLUME", "volume_24h"),
        ("TM_GRADE_24h_PCT_CHANGE", "tm_grade_24h_pct_change"),
        ("PRICE_CHANGE_PERCENTAGE_7D_IN_CURRENCY", "price_change_percentage_7d_in_currency"),
        ("Weird Name-x", "weird_name_x"),
        ("", "column"),
    ],
)
def test_lower_name(name: str, alias: str) -> None:
    assert lower_name(name) == alias


def test_lowercase_frames() -> None:
    df = to_frame("indices", SAMPLES["indices"], lowercase=True)
    assert df.index.name == "id"
    assert list(df.columns) == [
        "name",
        "ticker",
        "price",
        "coins",
        "change_24h",
        "change_7d",
        "change_1m",
        "volume_24h",
        "index_grade",
        "all_time",
        "market_cap",
        "top_gainers_icons",
    ]
    assert df["change_24h"].tolist() == [1.2, -0.2]
    df = to_frame("daily-ohlcv", OHLCV_ETH, lowercase=True)
    assert list(df.columns) == [
        "token_id",
        "token_name",
        "token_symbol",
        "date",
        "open",
        "high",
        "low",
        "close",
        "volume",
    ]
    assert_utc(df["date"])


# ---------------------------------------------------------------------------------------------------
# Property: never raises, keeps the row count, never loses text


_KEYS = [
    "TOKEN_ID",
    "TOKEN_NAME",
    "TOKEN_SYMBOL",
    "SYMBOL",
    "DATE",
    "TIMESTAMP",
    "date",
    "OPEN",
    "HIGH",
    "LOW",
    "CLOSE",
    "VOLUME",
    "close",
    "EXTRA",
]
_dates_st = st.datetimes(
    min_value=pd.Timestamp("2000-01-01").to_pydatetime(), max_value=pd.Timestamp("2030-12-31").to_pydatetime()
)
_values = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=False, allow_infinity=False, width=32).map(str),
    st.integers(-(10**6), 10**6).map(str),
    st.sampled_from(["", "N/A", "null", "Strong Buy", "ETH", "soon", "1e5", " 42 "]),
    _dates_st.map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.000Z")),
    _dates_st.map(lambda d: d.strftime("%Y-%m-%d")),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
)
_rows_st = st.lists(st.dictionaries(st.sampled_from(_KEYS), _values, max_size=len(_KEYS)), max_size=25)


def _numeric_like(v) -> bool:
    if v is None or isinstance(v, bool):
        return v is None
    if isinstance(v, (int, float)):
        return True
    if isinstance(v, str):
        if v.strip().lower() in {"", "null", "none", "nan", "n/a", "na", "-", "--"}:
            return True
        try:
            float(v)
            return True
        except ValueError:
            return False
    return False


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=_rows_st,
    name=st.sampled_from(["daily-ohlcv", "hourly-ohlcv", "trading-signals", "tm-grade", "market-metrics", "tokens"]),
    lowercase=st.booleans(),
)
def test_property_never_raises_and_keeps_rows(rows, name, lowercase) -> None:
    before = repr(rows)
    df = to_frame(name, rows, lowercase=lowercase)
    assert repr(rows) == before
    assert len(df) == len(rows)
    assert df.columns.is_unique
    for key in ("OPEN", "HIGH", "LOW", "VOLUME", "EXTRA"):
        col = key.lower() if lowercase else key
        if (
            col in df.columns
            and pd.api.types.is_numeric_dtype(df[col].dtype)
            and not pd.api.types.is_bool_dtype(df[col].dtype)
        ):
            assert all(_numeric_like(r[key]) for r in rows if key in r), key
    if len(df) and not lowercase and "DATE" in df.columns and name != "hourly-ohlcv":
        assert_utc(df["DATE"])


# ---------------------------------------------------------------------------------------------------
# Speed


def test_speed_10k_daily_rows() -> None:
    result = bench_to_frame(10_000, repeat=5)
    assert set(result) >= {"ms", "peak_mb"}
    assert result["peak_mb"] > 0  # the figure itself is a benchmark, reported by `make bench`


# ---------------------------------------------------------------------------------------------------
# Against the sandbox's own data service


def _sandbox_service():
    try:
        from tm402_nb.sandbox.catalogue import ENDPOINTS as SB_ENDPOINTS
        from tm402_nb.sandbox.datasets import DataService
        from tm402_nb.sandbox.market import Market
    except Exception as exc:  # pragma: no cover - only while the sandbox is being written
        pytest.skip(f"tm402_nb.sandbox data service not importable: {exc!r}")
    try:
        return SB_ENDPOINTS, DataService(Market(seed=402))
    except Exception as exc:  # pragma: no cover
        pytest.skip(f"tm402_nb.sandbox data service API unclear: {exc!r}")


@pytest.fixture(scope="module")
def sandbox():
    return _sandbox_service()


def _sandbox_rows(sandbox, name: str) -> list[dict]:
    specs, svc = sandbox
    spec = next((s for s in specs if s.name == name), None)
    if spec is None:
        pytest.skip(f"sandbox does not serve {name}")
    fields = spec.query.model_fields
    kw: dict = {}
    if "token_id" in fields:
        kw["token_id"] = "3375,3306,3377"
    if "id" in fields:
        kw["id"] = 1
    if "limit" in fields:
        kw["limit"] = 30
    if "startDate" in fields:
        kw["startDate"] = "2025-01-01"
    try:
        query = spec.query(**kw)
        return getattr(svc, spec.builder)(query)
    except (AttributeError, TypeError) as exc:  # pragma: no cover
        pytest.skip(f"sandbox builder API unclear for {name}: {exc!r}")


def test_sandbox_serves_the_catalogue(sandbox) -> None:
    specs, _ = sandbox
    assert {s.name for s in specs} == set(ROWS)


@pytest.mark.parametrize("name", ROWS)
def test_sandbox_rows_are_typed(sandbox, name: str) -> None:
    ep = get_endpoint(name)
    rows = _sandbox_rows(sandbox, name)
    assert rows, f"sandbox gave no rows for {name}"
    before = copy.deepcopy(rows)
    df = to_frame(ep, rows)
    assert rows == before
    assert len(df) == (_nested_count(ep, rows) if ep.nested else len(rows))
    cols = set(df.columns) | ({df.index.name} if df.index.name else set())
    if ep.date_column and ep.date_column in cols:
        assert_utc(df[ep.date_column] if ep.date_column in df.columns else df.index)
        assert_oldest_first(df, ep.date_column)
    if "TOKEN_ID" in cols:
        tid = df.index if df.index.name == "TOKEN_ID" else df["TOKEN_ID"]
        assert isinstance(tid.dtype, pd.Int64Dtype)
    for c in ep.numeric:
        if c in df.columns:
            assert pd.api.types.is_numeric_dtype(df[c].dtype), (name, c, df[c].dtype)
    for c in df.columns:
        if c.endswith(("_DATE", "_AT")) or c in ("DATE", "TIMESTAMP"):
            assert_utc(df[c])
    # Text stays text.
    for c in (
        "TOKEN_SYMBOL",
        "TOKEN_NAME",
        "TM_GRADE_SIGNAL",
        "MOMENTUM",
        "FUNDAMENTAL_GRADE_CLASS",
        "CORRELATED_TOKEN",
        "CODE_REVIEW",
    ):
        if c in df.columns and all(isinstance(r.get(c), str) for r in rows):
            assert df[c].notna().all() and all(isinstance(v, str) for v in df[c]), c
    tidy_cols = frame_columns(ep)
    assert not (set(tidy_cols) - cols - ({ep.date_column} if name == "tm-grade" else set()))
    low = to_frame(ep, rows, lowercase=True)
    assert low.shape == df.shape


def test_sandbox_ohlcv_pages_become_one_ordered_typed_frame(sandbox) -> None:
    """Three full pages of three tokens become one frame: every row, oldest first, numeric prices.
    (How fast ``to_frame`` is lives in ``python -m bench.frames``, not here.)"""
    rows = []
    for page in range(1, 4):
        specs, svc = sandbox
        spec = next(s for s in specs if s.name == "daily-ohlcv")
        rows += svc.daily_ohlcv(spec.query(token_id="3375,3306,3377", limit=100, page=page))
    df = to_frame("daily-ohlcv", rows)
    assert len(df) == len(rows) == 300
    assert df["DATE"].is_monotonic_increasing
    assert np.isfinite(df["CLOSE"]).all()
