"""Synthetic data: deterministic, coherent across endpoints, ordered as the real API, and cheap."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sandbox_helpers import key_headers

from tm402_nb.sandbox import ENDPOINTS, SandboxServer, create_app, default_anchor
from tm402_nb.sandbox import params as P
from tm402_nb.sandbox.datasets import BUILDERS, DataService
from tm402_nb.sandbox.market import Market
from tm402_nb.sandbox.paging import page_points, page_series
from tm402_nb.sandbox.universe import Universe


@pytest.fixture(scope="module")
def svc() -> DataService:
    return DataService(Market(seed=402))


@pytest.fixture
def kc(sb1: SandboxServer):
    with httpx.Client(base_url=sb1.url, headers=key_headers(sb1), timeout=10) as c:
        yield c


def _rows(c: httpx.Client, path: str, **params) -> list[dict]:
    r = c.get(path, params=params)
    assert r.status_code == 200, r.text
    return r.json()["data"]


# -- universe ------------------------------------------------------------------------------------------


def test_real_ids_of_the_best_known_tokens() -> None:
    u = Universe()
    assert 250 <= len(u) <= 400
    assert (u.by_id[3375].symbol, u.by_id[3375].name) == ("BTC", "Bitcoin")
    assert (u.by_id[3306].symbol, u.by_id[3306].name) == ("ETH", "Ethereum")
    assert (u.by_id[3377].symbol, u.by_id[3377].name) == ("LTC", "Litecoin")
    assert len({t.token_id for t in u.tokens}) == len(u)
    assert [t.rank for t in u.tokens] == list(range(1, len(u) + 1))


def test_symbol_collisions_like_the_real_api(kc: httpx.Client) -> None:
    eth = _rows(kc, "/v2/tokens", symbol="ETH")
    assert len(eth) >= 3
    assert eth[0]["TOKEN_ID"] == 3306 and eth[0]["TOKEN_NAME"] == "Ethereum"
    assert all(r["TOKEN_SYMBOL"] == "ETH" for r in eth)
    assert len({r["TOKEN_ID"] for r in eth}) == len(eth)
    assert len(_rows(kc, "/v2/tokens", symbol="btc")) >= 3  # case-insensitive, several BTCs


def test_token_filters(kc: httpx.Client) -> None:
    both = _rows(kc, "/v2/tokens", token_id="3306,3375")
    assert [r["TOKEN_ID"] for r in both] == [3375, 3306]  # market-cap order
    assert _rows(kc, "/v2/tokens", token_name="Bitcoin,Litecoin")[1]["TOKEN_ID"] == 3377
    # Different filters combine with AND.
    assert [r["TOKEN_ID"] for r in _rows(kc, "/v2/tokens", symbol="ETH", token_id="3306,3375")] == [3306]
    defi = _rows(kc, "/v2/tokens", category="defi", limit=100)
    assert defi and all("defi" in r["CATEGORY_LIST"] for r in defi)
    base = _rows(kc, "/v2/tokens", exchange="aerodrome-base", limit=100)
    assert base and all("aerodrome-base" in r["EXCHANGE_LIST"] for r in base)
    link = _rows(kc, "/v2/tokens", symbol="LINK")[0]
    chain, addr = next(iter(link["CONTRACT_ADDRESS"].items()))
    assert _rows(kc, "/v2/tokens", blockchain_address=f"{chain}:{addr}")[0]["TOKEN_SYMBOL"] == "LINK"


# -- determinism ------------------------------------------------------------------------------------------


def _fetch(seed: int) -> dict:
    app = create_app(seed=seed)
    try:
        with TestClient(app) as c:
            h = {"x-api-key": app.state.sandbox.config.api_key}
            return {
                p: c.get(p, params=q, headers=h).json()
                for p, q in [
                    ("/v2/daily-ohlcv", {"symbol": "BTC", "limit": 20}),
                    ("/v2/tm-grade", {"token_id": "3306"}),
                    ("/v2/hourly-ohlcv", {"token_id": "3377", "limit": 30}),
                    ("/v2/quantmetrics", {"limit": 5}),
                ]
            }
    finally:
        app.state.sandbox.close()


def test_same_seed_same_data_other_seed_other_prices() -> None:
    a, b, c = _fetch(402), _fetch(402), _fetch(403)
    assert a == b
    assert a["/v2/daily-ohlcv"]["data"][5]["CLOSE"] != c["/v2/daily-ohlcv"]["data"][5]["CLOSE"]
    # Ids, names and the anchor day's price do not depend on the seed.
    assert [r["TOKEN_ID"] for r in a["/v2/daily-ohlcv"]["data"]] == [
        r["TOKEN_ID"] for r in c["/v2/daily-ohlcv"]["data"]
    ]
    assert a["/v2/daily-ohlcv"]["data"][0]["CLOSE"] == c["/v2/daily-ohlcv"]["data"][0]["CLOSE"] == 96849.0


def test_latest_rows_are_on_the_anchor_day(kc: httpx.Client, sb1: SandboxServer) -> None:
    anchor = sb1.state.market.calendar.anchor  # yesterday (UTC) when the server started
    assert anchor in (default_anchor(), default_anchor() - timedelta(days=1))  # (the server may predate midnight)
    row = _rows(kc, "/v2/daily-ohlcv", token_id=3375, limit=1)[0]
    assert row["DATE"] == anchor.strftime("%Y-%m-%dT00:00:00.000Z")
    hour = _rows(kc, "/v2/hourly-ohlcv", token_id=3375, limit=1)[0]
    assert hour["TIMESTAMP"] == anchor.strftime("%Y-%m-%dT23:00:00.000Z")


# -- ordering and windows -------------------------------------------------------------------------------------


def test_newest_first_then_market_cap(kc: httpx.Client) -> None:
    rows = _rows(kc, "/v2/daily-ohlcv", token_id="3306,3375", limit=6)
    assert [r["TOKEN_ID"] for r in rows] == [3375, 3306] * 3
    dates = [r["DATE"] for r in rows]
    assert dates == sorted(dates, reverse=True) and dates[0] == dates[1] != dates[2]


def test_pages_tile_the_series(kc: httpx.Client) -> None:
    whole = _rows(kc, "/v2/daily-ohlcv", symbol="ETH", limit=30)
    parts = [_rows(kc, "/v2/daily-ohlcv", symbol="ETH", limit=10, page=p) for p in (1, 2, 3)]
    assert whole == parts[0] + parts[1] + parts[2]


def test_date_window_is_inclusive(kc: httpx.Client) -> None:
    rows = _rows(kc, "/v2/daily-ohlcv", token_id=3375, startDate="2025-01-01", endDate="2025-01-31", limit=100)
    assert len(rows) == 31
    assert rows[0]["DATE"].startswith("2025-01-31") and rows[-1]["DATE"].startswith("2025-01-01")
    hourly = _rows(kc, "/v2/hourly-ohlcv", token_id=3375, startDate="2025-01-01", endDate="2025-01-02", limit=100)
    assert len(hourly) == 48 and hourly[-1]["TIMESTAMP"] == "2025-01-01T00:00:00.000Z"


def test_page_series_matches_brute_force() -> None:
    rng = np.random.default_rng(1)
    ranges = [(int(a), int(a + rng.integers(0, 40))) for a in rng.integers(0, 60, 7)] + [(5, 4)]
    brute = sorted(
        ((t, k) for k, (lo, hi) in enumerate(ranges) for t in range(lo, hi + 1)), key=lambda x: (-x[0], x[1])
    )
    for offset, count in [(0, 10), (3, 50), (100, 7), (len(brute) - 2, 10), (len(brute), 5)]:
        assert page_series(ranges, offset, count) == brute[offset : offset + count]
        assert page_points(brute[::-1], offset, count) == brute[offset : offset + count]


# -- coherence -----------------------------------------------------------------------------------------------------


def test_ohlc_is_consistent(kc: httpx.Client) -> None:
    rows = _rows(kc, "/v2/daily-ohlcv", token_id=3306, limit=100)
    for newer, older in itertools.pairwise(rows):
        assert newer["OPEN"] == older["CLOSE"]  # gap-free: today's open is yesterday's close
    for r in rows:
        assert r["LOW"] <= min(r["OPEN"], r["CLOSE"]) <= max(r["OPEN"], r["CLOSE"]) <= r["HIGH"]
        assert r["VOLUME"] > 0


def test_hourly_bars_aggregate_to_the_daily_bar(kc: httpx.Client) -> None:
    day = _rows(kc, "/v2/daily-ohlcv", token_id=3375, startDate="2026-03-15", endDate="2026-03-15")[0]
    hours = _rows(kc, "/v2/hourly-ohlcv", token_id=3375, startDate="2026-03-15", endDate="2026-03-15", limit=24)
    hours = hours[::-1]  # oldest first
    assert len(hours) == 24
    assert hours[0]["OPEN"] == pytest.approx(day["OPEN"], rel=1e-9)
    assert hours[-1]["CLOSE"] == pytest.approx(day["CLOSE"], rel=1e-9)
    assert max(h["HIGH"] for h in hours) == pytest.approx(day["HIGH"], rel=1e-9)
    assert min(h["LOW"] for h in hours) == pytest.approx(day["LOW"], rel=1e-9)
    assert sum(h["VOLUME"] for h in hours) == pytest.approx(day["VOLUME"], rel=1e-6)


def test_price_is_the_last_close(kc: httpx.Client) -> None:
    price = _rows(kc, "/v2/price", token_id="3375,3306")
    closes = {r["TOKEN_ID"]: r["CLOSE"] for r in _rows(kc, "/v2/daily-ohlcv", token_id="3375,3306", limit=2)}
    assert {r["TOKEN_ID"]: r["CURRENT_PRICE"] for r in price} == closes


def test_signals_follow_the_trend(kc: httpx.Client, svc: DataService) -> None:
    rows = _rows(kc, "/v2/trading-signals", token_id=3375, limit=100, startDate="2025-01-01", endDate="2026-10-31")
    rows = rows[::-1]
    for prev, cur in itertools.pairwise(rows):
        if cur["TOKEN_TREND"] != prev["TOKEN_TREND"]:
            assert cur["TRADING_SIGNAL"] == cur["TOKEN_TREND"]
        else:
            assert cur["TRADING_SIGNAL"] == 0
    s = svc.market.series(3375)
    # Long/short strategy ROI is the compounded trend-following return.
    simple = np.expm1(np.diff(np.log(s.close)))
    roi = np.cumprod(1 + s.trend[:-1] * simple)[-1] - 1
    assert roi == pytest.approx(s.strategy_roi[-1], rel=1e-9)
    # Signals only fire on flips, and the trend is bullish mostly when the price rises.
    flips = np.nonzero(s.signal)[0]
    assert len(flips) >= 5 and all(s.signal[i] == s.trend[i] != s.trend[i - 1] for i in flips)
    # (The day's own return against that day's trend: the data move with the anchor every day, and
    # this holds on every day; the next day's return, a forecast, beats chance only on most days.)
    ret = np.diff(np.log(s.close))
    assert ret[s.trend[1:] > 0].mean() > ret[s.trend[1:] < 0].mean()


def test_signal_filter(kc: httpx.Client) -> None:
    rows = _rows(kc, "/v2/trading-signals", symbol="ETH", signal=1, limit=50)
    assert rows and all(r["TRADING_SIGNAL"] == 1 for r in rows)
    dates = [r["DATE"] for r in rows]
    assert dates == sorted(dates, reverse=True)


def test_grades_move_with_momentum(svc: DataService) -> None:
    for tid in (3375, 3306, 3377):
        s = svc.market.series(tid)
        logc = np.log(s.close)
        mom7 = logc[7:] - logc[:-7]
        assert np.corrcoef(mom7, s.trader_grade[7:])[0, 1] > 0.6
        assert np.corrcoef(mom7, s.tm_grade[7:])[0, 1] > 0.3
        assert (s.tm_grade >= 1).all() and (s.tm_grade <= 99).all()


def test_grade_endpoints_agree(kc: httpx.Client) -> None:
    latest = _rows(kc, "/v2/tm-grade", token_id=3306)[0]
    history = _rows(kc, "/v2/tm-grade-history", token_id=3306, limit=1)[0]
    assert {k: v for k, v in history.items() if k != "DATE"} == latest
    signal = _rows(kc, "/v2/trading-signals", token_id=3306, limit=1)[0]
    assert 0 < signal["TM_TRADER_GRADE"] < 100
    label = latest["TM_GRADE_SIGNAL"]
    g = latest["TM_GRADE"]
    assert label == (
        "Strong Buy" if g >= 80 else "Buy" if g >= 60 else "Neutral" if g > 40 else "Sell" if g > 20 else "Strong Sell"
    )


def test_bridged_tokens_track_their_underlying(svc: DataService) -> None:
    u = svc.universe
    eth = svc.market.series(3306)
    for t in u.select(symbols=["ETH"])[1:]:
        s = svc.market.series(t)
        ratio = s.close / eth.close[s.start - eth.start :]
        assert np.abs(ratio - 1).max() < 0.01


def test_correlation_and_quant_are_sane(kc: httpx.Client) -> None:
    corr = _rows(kc, "/v2/correlation", token_id=3306)[0]["TOP_CORRELATION"]
    assert len(corr) == 20
    values = [c["correlation"] for c in corr]
    assert values == sorted(values, reverse=True) and -1 <= values[-1] <= values[0] <= 1
    q = _rows(kc, "/v2/quantmetrics", token_id=3375)[0]
    assert q["MAX_DRAWDOWN"] < 0 and q["VOLATILITY"] > 0 and q["DAILY_RETURN_STD"] > 0


def test_index_performance_moves_with_holdings(kc: httpx.Client, sb1: SandboxServer) -> None:
    holdings = _rows(kc, "/v2/indices-holdings", id=1)
    assert sum(h["WEIGHT"] for h in holdings) == pytest.approx(100, abs=0.01)
    last = sb1.state.market.calendar.anchor
    start = last - timedelta(days=30)
    perf = _rows(kc, "/v2/indices-performance", id=1, startDate=str(start), endDate=str(last), limit=100)
    assert len(perf) == 31 and perf[0]["DATE"].startswith(str(last))
    idx = {r["ID"]: r for r in _rows(kc, "/v2/indices")}[1]
    assert idx["ALL_TIME"] == pytest.approx(perf[0]["INDEX_CUMULATIVE_ROI"] * 100, abs=1e-3)
    assert {r["ID"] for r in _rows(kc, "/v2/indices", indicesType="active")} < set(range(1, 9))


# -- warm requests ----------------------------------------------------------------------------------------------------

WARM_QUERIES = [
    ("daily_ohlcv", P.SeriesQuery(symbol="BTC", limit=100)),
    ("hourly_ohlcv", P.SeriesQuery(token_id="3306", limit=100)),
    ("trading_signals", P.TradingSignalsQuery(symbol="ETH", limit=100)),
    ("tm_grade", P.LatestQuery(limit=50)),
    ("quantmetrics", P.LatestFilteredQuery(token_id="3375,3306")),
    ("tokens", P.TokensQuery(limit=100)),
]


@pytest.mark.parametrize(("name", "q"), WARM_QUERIES, ids=[n for n, _ in WARM_QUERIES])
def test_warm_requests_rebuild_nothing(svc: DataService, monkeypatch: pytest.MonkeyPatch, name: str, q) -> None:
    """A warm request is cheap because it reuses what the first one built: no token's price path
    is generated again and no cached row is added. How fast that is on a given machine is a row of
    ``python bench/sandbox_throughput.py``, not an assertion here."""
    cold = getattr(svc, name)(q)
    cached = len(svc._cache)

    def rebuild(token):
        raise AssertionError(f"{name}: a warm request rebuilt the series of {token.symbol}")

    monkeypatch.setattr(svc.market, "_build", rebuild)
    assert getattr(svc, name)(q) == cold
    assert len(svc._cache) == cached


def test_every_builder_serves_an_endpoint() -> None:
    """Builders are called by the name the catalogue gives (nothing refers to them directly), so a
    builder no endpoint names is dead code, and a name with no builder fails at request time."""
    assert {e.builder for e in ENDPOINTS} == BUILDERS
    assert all(callable(getattr(DataService, name)) for name in BUILDERS)


def test_anchor_is_configurable() -> None:
    m = Market(seed=1, anchor=date(2025, 4, 10))
    assert m.calendar.iso(m.calendar.last) == "2025-04-10T00:00:00.000Z"
    assert m.series(3375).close[-1] == pytest.approx(96849.0)
