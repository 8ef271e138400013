"""The Token Metrics client against the sandbox: frames, pages, batches, cache, faults, refusals."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

import pandas as pd
import pytest

from tests.tokenmetrics.conftest import FAST_RETRY, make_client, settled_match
from tm402_nb.errors import BudgetExceeded, ConfigurationError
from tm402_nb.sandbox.assets import SANDBOX_TMAI_BASE_SEPOLIA
from tm402_nb.tokenmetrics.catalogue import ENDPOINTS, UnknownEndpoint
from tm402_nb.tokenmetrics.client import AsyncClient, Client
from tm402_nb.tokenmetrics.errors import APIError, DataNotFound, ParamError, UnknownSymbol
from tm402_nb.x402 import SpendPolicy

END = date(2025, 6, 30)


def params_for(ep):
    p = {}
    if ep.token_keyed:
        p["symbol"] = "BTC"
    if ep.name in ("indices-holdings", "indices-performance"):
        p["id"] = 1
    if ep.dated:
        p.update(startDate=END - timedelta(days=9), endDate=END)
    return p


def paid_requests(sandbox, path):
    return sandbox.stats()["paths"].get(f"/v2/{path}", {}).get("paid", 0)


@pytest.mark.parametrize("ep", [e for e in ENDPOINTS if e.method == "GET"], ids=lambda e: e.name)
def test_every_endpoint_gives_a_typed_frame(client, sandbox, funded, ledger, ep):
    df = client.frame(ep.name, **params_for(ep))
    assert isinstance(df, pd.DataFrame) and len(df) > 0
    meta = df.attrs["tm402"]
    assert meta["endpoint"] == ep.name
    assert meta["paid"] == (0 if ep.free else meta["paid"]) and (ep.free or meta["paid"] >= 1)
    if ep.date_column and ep.date_column in df.columns:
        assert isinstance(df[ep.date_column].dtype, pd.DatetimeTZDtype)
        assert df[ep.date_column].is_monotonic_increasing  # oldest → newest
    settled_match(sandbox, funded, ledger)


def test_pagination_has_no_duplicates_or_gaps(client, sandbox, funded, ledger):
    start, end = date(2024, 1, 1), date(2024, 10, 31)  # 305 days in one window: 4 pages of 100
    c = make_client(sandbox, funded, ledger, window_days=365)
    df = c.frame("daily-ohlcv", token_id=3375, startDate=start, endDate=end)
    days = pd.to_datetime(df["DATE"]).dt.date.tolist()
    assert days == [start + timedelta(days=i) for i in range((end - start).days + 1)]
    assert df.attrs["tm402"]["paid"] == 4
    settled_match(sandbox, funded, ledger)


def test_long_ranges_split_into_windows_without_overlap(sandbox, funded, ledger):
    c = make_client(sandbox, funded, ledger, window_days=120)
    start, end = date(2024, 1, 1), date(2024, 12, 31)
    df = c.frame("daily-ohlcv", token_id=3375, startDate=start, endDate=end)
    assert len(df) == 366 and df["DATE"].is_unique
    assert df["DATE"].is_monotonic_increasing


def test_history_without_dates_is_the_latest_page(client):
    df = client.frame("daily-ohlcv", symbol="BTC")
    assert 0 < len(df) <= 100 and df.attrs["tm402"]["paid"] == 1


def test_hundred_symbols_cost_at_most_two_paid_calls(client, sandbox, funded, ledger):
    top = client.frame("top-market-cap-tokens", top_k=100)
    symbols = top["TOKEN_SYMBOL"].drop_duplicates().tolist()
    assert len(symbols) >= 90
    df = client.frame("tm-grade", symbol=symbols)
    assert df.attrs["tm402"]["paid"] <= 2
    assert set(df["TOKEN_SYMBOL"]) == set(symbols)
    settled_match(sandbox, funded, ledger)


def test_symbols_resolve_to_the_biggest_token(client):
    ids = client.resolve_symbols(["ETH", "BTC"])
    assert ids == {"ETH": 3306, "BTC": 3375}
    client.symbol_overrides["ETH"] = 12345
    assert client.resolve_symbols("eth") == {"ETH": 12345}


def test_rerun_is_served_from_cache_with_zero_payments(client, sandbox, funded, ledger):
    first = client.frame("tm-grade", symbol=["BTC", "ETH"])
    again = client.frame("tm-grade", symbol=["BTC", "ETH"])
    assert first.attrs["tm402"]["paid"] == 1
    assert again.attrs["tm402"]["paid"] == 0 and again.attrs["tm402"]["cached"] == 1
    pd.testing.assert_frame_equal(first, again)
    assert len(ledger.payments()) == 1
    fresh = client.frame("tm-grade", symbol=["BTC", "ETH"], refresh=True)
    assert fresh.attrs["tm402"]["paid"] == 1 and len(ledger.payments()) == 2
    settled_match(sandbox, funded, ledger)


def test_cache_is_private_to_the_payer(sandbox, funded, ledger):
    from tm402_nb.x402 import Wallet

    a = make_client(sandbox, funded, ledger)
    other = Wallet.create()
    sandbox.fund(other.address, "usdc", "1")
    b = make_client(sandbox, other, ledger)
    a.frame("tm-grade", symbol="BTC")
    assert b.frame("tm-grade", symbol="BTC").attrs["tm402"]["cached"] == 0


def test_429_bursts_are_ridden_out(client, sandbox, funded, ledger):
    sandbox.set_faults(burst_429=3, retry_after_s=0)
    df = client.frame("tm-grade", symbol=["BTC", "ETH"])
    assert len(df) == 2
    assert sandbox.stats()["rate_limited"] >= 3
    settled_match(sandbox, funded, ledger)
    assert len(ledger.payments(status="settled")) == 1


def test_5xx_faults_are_ridden_out_without_double_payment(client, sandbox, funded, ledger):
    client.frame("tm-grade", symbol="BTC")  # warm: next calls carry a payment on the first request
    sandbox.set_faults(error_5xx_next=2)
    df = client.frame("trading-signals", symbol="BTC", refresh=True)
    assert len(df) > 0
    statuses = ledger.payments()["status"].value_counts().to_dict()
    assert statuses.get("unknown", 0) == 0
    settled_match(sandbox, funded, ledger)


def test_429_that_never_ends_is_a_clear_error(sandbox, funded, ledger):
    c = make_client(sandbox, funded, ledger)
    sandbox.set_faults(burst_429=True, retry_after_s=0)
    try:
        with pytest.raises(APIError, match="rate limited"):
            c.frame("tm-grade", symbol="BTC")
    finally:
        sandbox.set_faults()
    assert len(ledger.payments(status="settled")) == 0


def test_whole_batch_refused_before_the_first_payment(sandbox, funded, ledger):
    c = make_client(sandbox, funded, ledger, policy=SpendPolicy(budget="0.05"), window_days=100)
    with pytest.raises(BudgetExceeded) as info:
        c.frame("daily-ohlcv", token_id=3375, startDate=date(2024, 1, 1), endDate=date(2024, 12, 31))
    msg = str(info.value)
    assert "4 paid calls" in msg and "0.068 USDC" in msg and "0.05" in msg
    assert ledger.payments().empty and sandbox.settlements(payer=funded.address) == []


def test_quote_pays_nothing_and_warms_the_next_call(client, sandbox, funded, ledger):
    q = client.quote("ai-reports", symbol="BTC")
    assert q.per_call == 68_000 and q.asset == "USDC" and q.calls == 1 and q.network == "base-sepolia"
    assert "0.068 USDC" in repr(q)
    assert client.quote("tokens", symbol="BTC").free
    assert ledger.payments().empty
    before = sandbox.stats()["paths"]["/v2/ai-reports"]["requests"]
    client.frame("ai-reports", symbol="BTC")
    assert sandbox.stats()["paths"]["/v2/ai-reports"]["requests"] == before + 1  # one round trip


def test_data_not_found_raises_or_gives_empty(sandbox, funded, ledger):
    c = make_client(sandbox, funded, ledger)
    with pytest.raises(DataNotFound, match="Data not found"):
        c.frame("tm-grade", token_id=999_999)
    empty = make_client(sandbox, funded, ledger, on_empty="empty").frame("tm-grade", token_id=999_999)
    assert empty.empty and "TOKEN_ID" in empty.columns


BAD = [
    (("tm-grades-historyy",), {}, UnknownEndpoint, "did you mean"),
    (("tm-grade",), {"symbl": "BTC"}, ParamError, "did you mean symbol"),
    (("tm-grade",), {"token_id": "bitcoin"}, ParamError, "integer"),
    (("tm-grade",), {"limit": 1000}, ParamError, "≤ 100"),
    (("daily-ohlcv",), {"startDate": "2025-02-01", "endDate": "2025-01-01"}, ParamError, "before"),
    (("daily-ohlcv",), {"startDate": "31/01/2025"}, ParamError, "YYYY-MM-DD"),
    (("tm-grade",), {"symbol": []}, ParamError, "empty"),
    (("tm-grade",), {"symbol": ["BTC", "NOPECOIN", "ZZZZ"]}, UnknownSymbol, "NOPECOIN, ZZZZ"),
    (("trading-signals",), {"signal": 2}, ParamError, "one of"),
    (("indices-holdings",), {}, ParamError, "needs id"),
]


@pytest.mark.parametrize("args, params, exc, text", BAD, ids=[b[3] for b in BAD])
def test_bad_input_is_refused_with_nothing_paid(client, sandbox, funded, ledger, args, params, exc, text):
    with pytest.raises(exc, match=text):
        client.frame(*args, **params)
    assert ledger.payments().empty
    assert sandbox.settlements(payer=funded.address) == []


def test_api_key_in_x402_mode_is_refused(sandbox, funded, ledger):
    with pytest.raises(ConfigurationError, match="API key"):
        make_client(sandbox, funded, ledger, api_key="tm-secret")


def test_api_key_mode_pays_nothing(sandbox, ledger):
    with Client(
        mode="api-key",
        base_url=sandbox.api_url,
        api_key=sandbox.api_key,
        ledger=ledger,
        retry=FAST_RETRY,
        progress=False,
    ) as c:
        df = c.frame("quantmetrics", symbol="BTC")
        assert len(df) == 1 and df.attrs["tm402"]["paid"] == 0
    with (
        Client(mode="api-key", base_url=sandbox.api_url, api_key="wrong", retry=FAST_RETRY) as c,
        pytest.raises(APIError, match="not authorized"),
    ):
        c.get("quantmetrics", token_id=3375)
    assert ledger.payments().empty


def test_async_client_batches_concurrently(sandbox, funded, ledger):
    async def main():
        async with make_client(sandbox, funded, ledger, cls=AsyncClient, window_days=60) as c:
            a, b = await asyncio.gather(
                c.frame("daily-ohlcv", symbol="ETH", startDate=date(2024, 1, 1), endDate=date(2024, 6, 30)),
                c.frame("tm-grade", symbol=["BTC", "ETH", "SOL"]),
            )
            q = await c.quote("correlation", symbol="BTC")
            return a, b, q

    ohlcv, grades, quote = asyncio.run(main())
    assert len(ohlcv) == 182 and ohlcv["DATE"].is_unique and ohlcv["DATE"].is_monotonic_increasing
    assert len(grades) == 3 and quote.per_call == 68_000
    settled_match(sandbox, funded, ledger)


def test_generic_request_pays_any_x402_url(client, sandbox, funded, ledger):
    r = client.request("GET", sandbox.api_url + "/quantmetrics", params={"token_id": "3375"})
    assert r.status_code == 200 and r.json()["length"] == 1
    assert ledger.payments()["status"].tolist() == ["settled"]
    assert client.cost.total.n_paid == 1


def test_exactly_a_full_page_of_tokens_is_one_paid_call(client, sandbox, funded, ledger):
    """100 ids fill the page; the client must not sign a payment for a page 2 it knows is empty."""
    ids = client.frame("top-market-cap-tokens", top_k=100)["TOKEN_ID"].astype(int).tolist()
    assert len(set(ids)) == 100
    df = client.frame("tm-grade", token_id=ids)
    assert len(df) == 100 and df.attrs["tm402"]["paid"] == 1
    assert ledger.payments()["status"].tolist() == ["settled"]


def test_429_on_a_warm_paid_request_replays_the_same_payment(client, sandbox, funded, ledger):
    """The server holds the signed authorization it rate-limited: the retry must replay it,
    never sign a second one that could also settle."""
    client.frame("tm-grade", symbol="BTC")  # learn the price: the next call is pre-signed
    sandbox.set_faults(burst_429=2, retry_after_s=0)
    auth = client.auth
    signed_before = auth.stats["signed"]
    df = client.frame("tm-grade", symbol="ETH")
    assert len(df) == 1
    assert auth.stats["signed"] == signed_before + 1  # one signature for the call, replayed through the 429s
    assert ledger.payments()["status"].tolist() == ["settled", "settled"]
    settled_match(sandbox, funded, ledger)


def test_5xx_on_a_warm_paid_request_replays_the_same_payment(client, sandbox, funded, ledger):
    client.frame("tm-grade", symbol="BTC")
    sandbox.set_faults(error_5xx_next=2)
    signed_before = client.auth.stats["signed"]
    assert len(client.frame("tm-grade", symbol="SOL")) == 1
    assert client.auth.stats["signed"] == signed_before + 1
    assert ledger.payments()["status"].tolist() == ["settled", "settled"]
    settled_match(sandbox, funded, ledger)


def test_a_batch_is_checked_against_the_calls_own_cap_and_asset(sandbox, funded, ledger):
    """The up-front batch check prices the call's asset and applies the call's cap, never the defaults."""
    sandbox.fund(funded.address, "tmai", "100")
    policy = SpendPolicy(
        max_per_call="0.01",
        budget="2.00",
        extra_assets=[SANDBOX_TMAI_BASE_SEPOLIA],
        asset_limits={"TMAI": {"max_per_call": "5"}},
    )
    two_windows = dict(symbol="BTC", start="2024-01-01", end="2025-06-30")
    with make_client(sandbox, funded, ledger, policy=policy) as c:
        with pytest.raises(BudgetExceeded, match="per-call cap"):
            c.frame("daily-ohlcv", **two_windows)
        assert ledger.payments().empty  # refused before the first payment
        df = c.frame("daily-ohlcv", max_per_call="0.05", **two_windows)
        assert df.attrs["tm402"]["paid"] >= 2
        assert set(ledger.payments()["asset_symbol"]) == {"USDC"}
        q = c.quote("tm-grade", symbol="BTC", pay_with="tmai")
        assert q.asset == "TMAI"
    assert policy.max_per_call == 10_000  # the call's cap never touched the policy
