"""The /v2 surface: auth modes, parameters, envelope, field names, docs."""

from __future__ import annotations

import re

import httpx
import pytest
from sandbox_helpers import X402, key_headers

from tm402_nb.sandbox import ENDPOINTS, SandboxServer

DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T00:00:00\.000Z$")
HOUR_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:00:00\.000Z$")

IDENT = ["TOKEN_ID", "TOKEN_NAME", "TOKEN_SYMBOL"]
OHLCV = ["OPEN", "HIGH", "LOW", "CLOSE", "VOLUME"]
#: Row keys per endpoint, in order (reference §4).
FIELDS: dict[str, list[str]] = {
    "tokens": IDENT + ["EXCHANGE_LIST", "CATEGORY_LIST", "CONTRACT_ADDRESS", "TM_LINK"],
    "price": IDENT + ["CURRENT_PRICE"],
    "top-market-cap-tokens": IDENT + ["EXCHANGE_LIST", "CATEGORY_LIST", "TM_LINK"],
    "daily-ohlcv": IDENT + ["DATE"] + OHLCV,
    "hourly-ohlcv": IDENT + ["TIMESTAMP"] + OHLCV,
    "trading-signals": IDENT
    + [
        "DATE",
        "TRADING_SIGNAL",
        "TOKEN_TREND",
        "TRADING_SIGNALS_RETURNS",
        "HOLDING_RETURNS",
        "tm_link",
        "TM_TRADER_GRADE",
        "TM_INVESTOR_GRADE",
        "TM_LINK",
    ],
    "hourly-trading-signals": ["TIMESTAMP"] + IDENT + ["CLOSE", "SIGNAL", "POSITION"],
    "tm-grade": IDENT
    + [
        "FUNDAMENTAL_GRADE",
        "TM_GRADE",
        "TM_GRADE_24h_PCT_CHANGE",
        "TM_TRADER_GRADE_24H_CHANGE",
        "QUANT_GRADE",
        "FUNDAMENTAL_GRADE_CLASS",
        "TM_GRADE_SIGNAL",
        "MOMENTUM",
    ],
    "tm-grade-history": IDENT
    + [
        "DATE",
        "FUNDAMENTAL_GRADE",
        "TM_GRADE",
        "TM_GRADE_24h_PCT_CHANGE",
        "TM_TRADER_GRADE_24H_CHANGE",
        "QUANT_GRADE",
        "FUNDAMENTAL_GRADE_CLASS",
        "TM_GRADE_SIGNAL",
        "MOMENTUM",
    ],
    "technology-grade": IDENT
    + [
        "DATE",
        "TECHNOLOGY_GRADE",
        "ACTIVITY_SCORE",
        "SECURITY_SCORE",
        "REPOSITORY_SCORE",
        "COLLABORATION_SCORE",
        "DEFI_SCANNER_SCORE",
    ],
    "fundamental-grade": IDENT
    + [
        "DATE",
        "FUNDAMENTAL_GRADE",
        "FUNDAMENTAL_GRADE_CLASS",
        "COMMUNITY_SCORE",
        "EXCHANGE_SCORE",
        "VC_SCORE",
        "TOKENOMICS_SCORE",
        "DEFI_SCANNER_SCORE",
    ],
    "market-metrics": [
        "DATE",
        "TOTAL_CRYPTO_MCAP",
        "TM_GRADE_PERC_HIGH_COINS",
        "TM_GRADE_SIGNAL",
        "LAST_TM_GRADE_SIGNAL",
    ],
    "moonshot-tokens": [
        "LAST_TRADING_SIGNAL_TIME",
        "TM_TRADER_GRADE",
        "TM_TRADER_GRADE_24H_PCT_CHANGE",
        "PRICE_CHANGE_PERCENTAGE_7D_IN_CURRENCY",
        "MARKET_CAP",
        "VOLUME_24H",
        "MOONSHOT_END_AT",
        "MOONSHOT_AT",
        "MOONSHOT_ROI",
        "TOKEN_NAME",
        "TOKEN_SYMBOL",
    ],
    "resistance-support": IDENT + ["DATE", "HISTORICAL_RESISTANCE_SUPPORT_LEVELS"],
    "price-prediction": ["DATE"] + IDENT + ["PRICE_PREDICTION"],
    "correlation": IDENT + ["DATE", "TOP_CORRELATION"],
    "quantmetrics": IDENT
    + [
        "DATE",
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
    ],
    "ai-reports": [
        "TOKEN_ID",
        "TOKEN_SYMBOL",
        "TOKEN_NAME",
        "INVESTMENT_ANALYSIS_POINTER",
        "INVESTMENT_ANALYSIS",
        "DEEP_DIVE",
        "CODE_REVIEW",
    ],
    "crypto-investors": [
        "INVESTOR_NAME",
        "INVESTOR_WEBSITE",
        "INVESTOR_TWITTER",
        "ROUND_COUNT",
        "ROI_AVERAGE",
        "ROI_MEDIAN",
    ],
    "indices": [
        "ID",
        "NAME",
        "TICKER",
        "PRICE",
        "COINS",
        "24H",
        "7D",
        "1M",
        "24H_VOLUME",
        "INDEX_GRADE",
        "ALL_TIME",
        "MARKET_CAP",
        "TOP_GAINERS_ICONS",
    ],
    "indices-holdings": IDENT
    + [
        "COIN",
        "CG_ID",
        "WEIGHT",
        "MARKET_CAP",
        "PRICE",
        "CURRENT_ROI",
        "TRADER_GRADE",
        "TRADER_GRADE_CHANGE_24H",
        "ICON",
        "DATE",
    ],
    "indices-performance": ["ID", "DATE", "INDEX_CUMULATIVE_ROI", "MARKET_CAP", "VOLUME", "FDV"],
}
FIELDS["technology-grade-history"] = FIELDS["technology-grade"]
FIELDS["fundamental-grade-history"] = FIELDS["fundamental-grade"]

PARAMS: dict[str, dict] = {
    "price": {"token_id": "3375,3306"},
    "hourly-trading-signals": {"token_id": "3375"},
    "indices-holdings": {"id": 1},
    "indices-performance": {"id": 1},
    "moonshot-tokens": {"type": "past"},
}


@pytest.fixture
def kc(sb1: SandboxServer):
    with httpx.Client(base_url=sb1.url, headers=key_headers(sb1), timeout=10) as c:
        yield c


def test_catalogue_is_complete() -> None:
    assert {e.name for e in ENDPOINTS} == set(FIELDS)


@pytest.mark.parametrize("name", sorted(FIELDS))
def test_every_endpoint_answers_in_the_envelope(kc: httpx.Client, name: str) -> None:
    r = kc.get(f"/v2/{name}", params=PARAMS.get(name, {}))
    assert r.status_code == 200, r.text
    body = r.json()
    assert list(body) == ["success", "message", "length", "data"]
    assert body["success"] is True and body["message"] == "Data fetched successfully"
    assert body["length"] == len(body["data"]) > 0
    for row in body["data"]:
        assert list(row) == FIELDS[name]
    row = body["data"][0]
    for key in ("DATE", "MOONSHOT_AT", "LAST_TRADING_SIGNAL_TIME"):
        if key in row:
            assert DATE_RE.match(row[key]), row[key]
    if "TIMESTAMP" in row:
        assert HOUR_RE.match(row["TIMESTAMP"])
    assert r.headers["x-tm402-sandbox"] == "true"


def test_limit_page_defaults_and_bounds(kc: httpx.Client) -> None:
    assert kc.get("/v2/tokens").json()["length"] == 50
    assert kc.get("/v2/tokens", params={"limit": 100}).json()["length"] == 100
    a = kc.get("/v2/tokens", params={"limit": 10}).json()["data"]
    b = kc.get("/v2/tokens", params={"limit": 5, "page": 2}).json()["data"]
    assert a[5:] == b
    assert kc.get("/v2/top-market-cap-tokens", params={"top_k": 7}).json()["length"] == 7


@pytest.mark.parametrize(
    "path,params,param",
    [
        ("/v2/tokens", {"limit": 1000}, "limit"),
        ("/v2/tokens", {"limit": 0}, "limit"),
        ("/v2/tokens", {"limit": "ten"}, "limit"),
        ("/v2/tokens", {"page": 0}, "page"),
        ("/v2/tokens", {"page": -1}, "page"),
        ("/v2/daily-ohlcv", {"startDate": "2025-02-01", "endDate": "2025-01-01"}, "endDate"),
        ("/v2/daily-ohlcv", {"startDate": "01/02/2025"}, "startDate"),
        ("/v2/daily-ohlcv", {"endDate": "2025-02-30"}, "endDate"),
        ("/v2/daily-ohlcv", {"token_id": "3375,abc"}, "token_id"),
        ("/v2/daily-ohlcv", {"token_id": "3375,,3306"}, "token_id"),
        ("/v2/trading-signals", {"signal": 2}, "signal"),
        ("/v2/trading-signals", {"marketcap": "lots"}, "marketcap"),
        ("/v2/moonshot-tokens", {"type": "future"}, "type"),
        ("/v2/indices", {"indicesType": "lazy"}, "indicesType"),
        ("/v2/top-market-cap-tokens", {"top_k": 101}, "top_k"),
        ("/v2/indices-holdings", {}, "id"),
        ("/v2/indices-performance", {"id": "x"}, "id"),
        ("/v2/price", {}, "token_id"),
        ("/v2/hourly-trading-signals", {"limit": 5}, "token_id"),
        ("/v2/tokens", {"tokenid": "3375"}, "tokenid"),
        ("/v2/daily-ohlcv", {"start_date": "2025-01-01"}, "start_date"),
        ("/v2/top-market-cap-tokens", {"limit": 5}, "limit"),
    ],
)
def test_bad_parameters_get_400_naming_them(kc: httpx.Client, path: str, params: dict, param: str) -> None:
    r = kc.get(path, params=params)
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["success"] is False and body["length"] == 0 and body["data"] == []
    assert param in body["message"]
    assert body["param"] == param


def test_unknown_parameter_lists_the_allowed_ones(kc: httpx.Client) -> None:
    msg = kc.get("/v2/daily-ohlcv", params={"foo": 1}).json()["message"]
    assert "Unknown parameter 'foo'" in msg and "startDate" in msg and "token_id" in msg


def test_blank_values_count_as_absent(kc: httpx.Client) -> None:
    a = kc.get("/v2/tokens", params={"symbol": "", "limit": 3}).json()
    assert a["length"] == 3


def test_unknown_endpoint_is_404_in_the_envelope(kc: httpx.Client) -> None:
    for path in ("/v2/no-such-endpoint", "/v2/trader-grades", "/v2/scenario-analysis", "/v3/tokens"):
        r = kc.get(path)
        assert r.status_code == 404
        body = r.json()
        assert body["success"] is False and body["data"] == [] and body["error"] == "not_found"
        assert r.headers["x-tm402-sandbox"] == "true"
    r = kc.post("/v2/tokens")
    assert r.status_code == 405 and r.json()["success"] is False


def test_no_match_is_data_not_found(kc: httpx.Client) -> None:
    for params in ({"symbol": "NOSUCHCOIN"}, {"token_id": "1"}, {"token_name": "Nothing"}):
        r = kc.get("/v2/daily-ohlcv", params=params)
        assert r.status_code == 404
        assert r.json() == {"success": False, "message": "Data not found", "length": 0, "data": []}
    r = kc.get("/v2/daily-ohlcv", params={"symbol": "BTC", "startDate": "2030-01-01"})
    assert r.status_code == 404 and r.json()["message"] == "Data not found"
    assert kc.get("/v2/indices-holdings", params={"id": 999}).status_code == 404


# -- auth ------------------------------------------------------------------------------------------------


def test_no_auth_gets_401_with_the_hint(c1: httpx.Client) -> None:
    r = c1.get("/v2/tokens")
    assert r.status_code == 401
    body = r.json()
    assert body["success"] is False and body["error"] == "missing_auth"
    assert "x-coinbase-402: true" in body["message"] and "x-api-key" in body["message"]


def test_wrong_api_key_gets_401(c1: httpx.Client) -> None:
    r = c1.get("/v2/tokens", headers={"x-api-key": "tm-wrong"})
    assert r.status_code == 401 and r.json()["error"] == "invalid_api_key"


def test_legacy_api_key_header(c1: httpx.Client, sb1: SandboxServer) -> None:
    assert c1.get("/v2/tokens", headers={"api_key": sb1.api_key}).status_code == 200


def test_both_auth_modes_at_once_are_refused(c1: httpx.Client, sb1: SandboxServer) -> None:
    r = c1.get("/v2/tm-grade", headers={**X402, **key_headers(sb1)})
    assert r.status_code == 400
    assert r.json()["error"] == "conflicting_auth" and "not both" in r.json()["message"]


def test_coinbase_header_must_be_true(c1: httpx.Client) -> None:
    r = c1.get("/v2/tokens", headers={"x-coinbase-402": "yes"})
    assert r.status_code == 400 and "x-coinbase-402" in r.json()["message"]
    assert c1.get("/v2/tokens", headers={"x-coinbase-402": "TRUE"}).status_code == 200


def test_api_key_is_shaped_like_token_metrics(sb1: SandboxServer) -> None:
    assert re.match(r"^tm-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", sb1.api_key)


# -- docs and info ------------------------------------------------------------------------------------------


def test_openapi_docs(c1: httpx.Client) -> None:
    r = c1.get("/docs")
    assert r.status_code == 200 and "swagger" in r.text.lower()
    spec = c1.get("/openapi.json").json()
    paths = spec["paths"]
    for e in ENDPOINTS:
        assert e.path in paths
    params = {p["name"] for p in paths["/v2/daily-ohlcv"]["get"]["parameters"]}
    assert {"limit", "page", "startDate", "endDate", "token_id", "symbol", "token_name", "x-coinbase-402"} <= params
    for p in ("/facilitator/verify", "/facilitator/settle", "/facilitator/supported", "/rpc", "/sandbox/faucet"):
        assert p in paths


def test_info_lists_every_endpoint_with_its_price(c1: httpx.Client, sb1: SandboxServer) -> None:
    info = c1.get("/sandbox").json()
    assert info["sandbox"] is True and info["pay_to"] == sb1.pay_to and info["x402_version"] == 1
    prices = {e["path"]: (e["tier"], e["usdc"], e["tmai"]) for e in info["endpoints"]}
    assert prices["/v2/tokens"] == (0, "0", "0")
    assert prices["/v2/daily-ohlcv"] == (1, "0.017", "1.53")
    assert prices["/v2/tm-grade-history"] == (2, "0.034", "3.06")
    assert prices["/v2/ai-reports"] == (3, "0.068", "6.12")
