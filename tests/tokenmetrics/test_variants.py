"""The client under the real API's documented variants (issue 13, ``live-api-2026.md``).

Each test puts the client in front of an in-process server (``variant_server.py``, through
``httpx.MockTransport``: nothing leaves the process) that plays one reading of the API, and
checks the client gives the same typed frames and honest costs, or a clear error or warning.
"""

from __future__ import annotations

import asyncio
import warnings
from datetime import date, timedelta
from decimal import Decimal

import httpx
import pandas as pd
import pytest

from tests.tokenmetrics.variant_server import BASE_URL, DATA_END, Variant, VariantServer, transport
from tm402_nb.errors import BudgetExceeded, ConfigurationError, PaymentRefused
from tm402_nb.ledger import Ledger
from tm402_nb.sandbox.assets import SANDBOX_TMAI_BASE_SEPOLIA
from tm402_nb.tokenmetrics.catalogue import WINDOW_DAYS
from tm402_nb.tokenmetrics.client import AsyncClient, Client
from tm402_nb.tokenmetrics.errors import ParamError
from tm402_nb.tokenmetrics.gaps import GapWarning
from tm402_nb.x402 import SpendPolicy, Wallet, X402Auth

START = DATA_END - timedelta(days=119)  # 120 days of data, all before DATA_END


def client(server: VariantServer, **kw) -> Client:
    """An API-key client (nothing to pay) in front of ``server``."""
    return Client(mode="api-key", api_key="k", base_url=BASE_URL, transport=transport(server), progress=False, **kw)


def frame(variant: Variant, endpoint: str, **params) -> tuple[pd.DataFrame, VariantServer]:
    server = VariantServer(variant)
    with client(server) as c:
        return c.frame(endpoint, **params), server


# -- field case: the same typed frames, whatever case the server uses -------------------------------
CASES = [
    pytest.param("daily-ohlcv", dict(symbol=["BTC", "ETH"], start=START, end=DATA_END), id="dated"),
    pytest.param("trading-signals", dict(symbol="SOL", start=START, end=DATA_END), id="signals"),
    pytest.param("tm-grade", dict(symbol=["BTC", "ETH", "SOL", "NEW"]), id="latest"),
    pytest.param("tm-grade-history", dict(token_id=[3375, 9002], start="2025-03-01", end="2025-04-15"), id="history"),
    pytest.param("tokens", dict(symbol=["ETH", "BTC"]), id="tokens"),
]


@pytest.mark.parametrize("endpoint, params", CASES)
def test_lowercase_rows_give_the_same_typed_frames(endpoint, params):
    upper, _ = frame(Variant(case="upper"), endpoint, **params)
    lower, lower_server = frame(Variant(case="lower"), endpoint, **params)
    assert lower_server.requests("tokens") or "symbol" not in params  # the lookup itself read lowercase rows
    pd.testing.assert_frame_equal(lower, upper)
    assert len(upper) > 0 and "TOKEN_ID" in {*upper.columns, upper.index.name}


def test_symbols_resolve_from_lowercase_token_rows_by_market_cap():
    """Two tokens answer to ETH: the larger market cap wins, read from ``market_cap``."""
    server = VariantServer(Variant(case="lower"))
    with client(server) as c:
        assert c.resolve_symbols(["eth", "BTC"]) == {"ETH": 3306, "BTC": 3375}


def test_without_a_market_cap_the_lowercase_ranking_breaks_the_tie():
    server = VariantServer(Variant(case="lower", market_cap_in_tokens=False))
    with client(server) as c:
        assert c.resolve_symbols("ETH") == {"ETH": 3306}
    assert server.requests("top-market-cap-tokens")  # the ranking was read, in lower case too


def test_paging_deduplicates_lowercase_rows():
    """A server that ignores ``page`` repeats its first page: the repeat adds nothing new (its
    lowercase keys are the same rows), so paging stops there."""
    server = VariantServer(Variant(case="lower", ignore_page=True))
    with client(server, window_days=365) as c:
        df = c.frame("daily-ohlcv", token_id=3375, start=START, end=DATA_END, limit=None)
    assert len(server.requests("daily-ohlcv")) == 2 and len(df) == 100 and df["DATE"].is_unique


def test_grades_sent_as_text_are_numbers():
    df, _ = frame(Variant(case="lower", grades_as_text=True), "tm-grade", token_id=[3375, 3306])
    assert pd.api.types.is_float_dtype(df["TM_GRADE"]) and pd.api.types.is_float_dtype(df["FUNDAMENTAL_GRADE"])


def test_the_2026_trading_signals_fields_are_typed_and_plot():
    """The current docs' fields (lower case, ``tm_grade`` instead of trader/investor grades)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    df, _ = frame(Variant(signals_2026=True), "trading-signals", token_id=[3375, 3306], start=START, end=DATA_END)
    for col in ("TRADING_SIGNAL", "TM_GRADE", "FUNDAMENTAL_GRADE", "HOLDING_RETURNS"):
        assert pd.api.types.is_numeric_dtype(df[col]), col
    assert df["TOKEN_SIGNAL_STR"].isin(["bullish", "bearish", "neutral"]).all()
    assert list(df.columns[:4]) == ["TOKEN_ID", "TOKEN_NAME", "TOKEN_SYMBOL", "DATE"]
    try:
        assert df.tm.plot().get_title().startswith("trading-signals")
        ax = df.tm.plot(kind="grades")
        assert ax.get_ylabel() == "TM grade"  # the grade the 2026 rows carry
        # Without any grade column the grades chart says which columns it looks for.
        with pytest.raises(ConfigurationError, match="TM_TRADER_GRADE") as info:
            df.drop(columns=["TM_GRADE", "FUNDAMENTAL_GRADE"]).tm.plot(kind="grades")
        assert "a 'grades' chart needs" in str(info.value)
        # A signals frame without returns or signal degrades to the chart its columns fit.
        bare = df[["TOKEN_ID", "TOKEN_SYMBOL", "DATE", "TM_GRADE"]].copy()
        bare.attrs = df.attrs
        assert bare.tm.plot().get_ylabel() == "TM grade"
        nothing = df[["TOKEN_ID", "TOKEN_SYMBOL", "DATE"]].copy()
        nothing.attrs = df.attrs
        with pytest.raises(ConfigurationError, match=r"a 'signals' chart needs .*TRADING_SIGNAL"):
            nothing.tm.plot()
    finally:
        plt.close("all")


def test_mid_2025_signals_still_plot_their_trader_grade():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    df, _ = frame(Variant(case="lower"), "trading-signals", token_id=3375, start=START, end=DATA_END)
    try:
        assert df.tm.plot(kind="grades").get_ylabel() == "TM trader grade"
    finally:
        plt.close("all")


# -- 29-day windows, and a window that comes back short ------------------------------------------------
def test_dated_requests_ask_for_29_days_at_most_and_the_quote_counts_them():
    server = VariantServer()
    with client(server) as c:
        q = c.quote("daily-ohlcv", token_id=[3375, 3306], start=START, end=DATA_END)
        df = c.frame("daily-ohlcv", token_id=[3375, 3306], start=START, end=DATA_END)
    asked = server.requests("daily-ohlcv")
    spans = [(date.fromisoformat(s.params["startDate"]), date.fromisoformat(s.params["endDate"])) for s in asked]
    assert all((b - a).days + 1 <= WINDOW_DAYS for a, b in spans)
    assert q.calls == len(asked) == 5 and q.requests == 5  # 120 days: 4 windows of 29 and one of 4
    assert len(df) == 240 and not df.duplicated(["TOKEN_ID", "DATE"]).any()


@pytest.mark.parametrize("mode", ["truncate", "error"])
def test_a_server_with_a_29_day_limit_serves_the_default_windows_whole(mode):
    with warnings.catch_warnings():
        warnings.simplefilter("error", GapWarning)
        df, _ = frame(Variant(range_limit=mode), "daily-ohlcv", token_id=3375, start=START, end=DATA_END)
    assert len(df) == 120 and df.attrs["tm402"]["gaps"] == []


def test_a_long_window_cut_short_by_the_server_is_a_gap_warning():
    """Windows of 365 days asked for (``window_days=``): the server silently keeps the first 29 days."""
    server = VariantServer(Variant(range_limit="truncate"))
    with client(server, window_days=365) as c, pytest.warns(GapWarning) as caught:
        df = c.frame("daily-ohlcv", token_id=[3375, 3306], start=START, end=DATA_END)
    assert len(df) == 2 * 29
    message = str(caught[0].message)
    first_missing = START + timedelta(days=29)
    assert message.startswith("daily-ohlcv: 182 day(s) of rows are missing")
    assert f"BTC (3375): {first_missing}..{DATA_END} (91 days)" in message and "ETH (3306)" in message
    assert "window_days=29" in message and "nothing was paid beyond the quote" in message.lower()
    assert caught[0].filename == __file__  # points at the line that called frame()
    gaps = df.attrs["tm402"]["gaps"]
    assert {g["token_id"] for g in gaps} == {3375, 3306}
    assert all(g["missing"] == [first_missing.isoformat(), DATA_END.isoformat()] for g in gaps)
    assert len(server.requests("daily-ohlcv")) == 1  # nothing refetched: nothing paid past the quote


def test_windows_cut_short_between_windows_with_data_are_gaps_too():
    """Windows of 60 days over 180: each kept its first 29 days, and the data goes on after each."""
    server = VariantServer(Variant(range_limit="truncate"))
    start = DATA_END - timedelta(days=179)
    with client(server, window_days=60) as c, pytest.warns(GapWarning) as caught:
        df = c.frame("daily-ohlcv", token_id=3375, start=start, end=DATA_END)
    assert len(df) == 3 * 29
    assert [g["missing"][0] for g in df.attrs["tm402"]["gaps"]] == [
        (start + timedelta(days=29 + 60 * i)).isoformat() for i in range(3)
    ]
    assert "(31 days)" in str(caught[0].message)


def test_the_async_client_warns_alike():
    server = VariantServer(Variant(range_limit="truncate"))

    async def main():
        async with AsyncClient(
            mode="api-key",
            api_key="k",
            base_url=BASE_URL,
            transport=httpx.MockTransport(server.ahandle),
            progress=False,
            window_days=365,
        ) as c:
            return await c.frame("daily-ohlcv", token_id=3375, start=START, end=DATA_END)

    with pytest.warns(GapWarning, match="daily-ohlcv"):
        df = asyncio.run(main())
    assert len(df.attrs["tm402"]["gaps"]) == 1


def test_a_server_that_refuses_long_ranges_says_how_to_ask():
    server = VariantServer(Variant(range_limit="error"))
    with client(server, window_days=365) as c, pytest.raises(ParamError, match="cannot exceed 29 days") as info:
        c.frame("daily-ohlcv", token_id=3375, start=START, end=DATA_END)
    assert "window_days ≤ 29 (the default)" in info.value.hint and "120 days" in info.value.hint


@pytest.mark.parametrize(
    "params",
    [
        pytest.param(
            dict(token_id=[3375], start=DATA_END - timedelta(days=40), end=DATA_END + timedelta(days=50)),
            id="past-the-data",
        ),
        pytest.param(dict(token_id=[9002], start=date(2025, 1, 1), end=date(2025, 4, 30)), id="before-the-token"),
        pytest.param(dict(token_id=[3375, 9002], start=date(2025, 2, 1), end=date(2025, 3, 31)), id="two-tokens"),
    ],
)
@pytest.mark.parametrize("window", [None, 365])
def test_data_that_ends_or_begins_inside_the_range_is_no_gap(params, window):
    """No rows past the data's last day, or before a token existed: those are edges, not gaps."""
    server = VariantServer()
    with warnings.catch_warnings():
        warnings.simplefilter("error", GapWarning)
        with client(server, window_days=window) as c:
            df = c.frame("daily-ohlcv", **params)
    assert len(df) > 0 and df.attrs["tm402"]["gaps"] == []


def test_a_chosen_page_is_not_judged():
    """A page the caller chose is one request over the whole range: some of it, by choice."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", GapWarning)
        df, server = frame(
            Variant(range_limit="truncate"), "daily-ohlcv", token_id=3375, start=START, end=DATA_END, limit=10
        )
    assert len(df) == 10 and len(server.requests("daily-ohlcv")) == 1


# -- lenient paging ------------------------------------------------------------------------------------------
def test_page_zero_is_a_page_the_client_may_ask_for():
    """The official Python SDK sends page=0 (the API serves it as the first page)."""
    zero, server = frame(Variant(), "tm-grade", token_id=[3375, 3306], page=0)
    assert server.requests("tm-grade")[0].params["page"] == "0" and len(zero) == 2
    with pytest.raises(ParamError, match="page must be ≥ 0"):
        frame(Variant(), "tm-grade", token_id=3375, page=-1)


def test_a_server_that_ignores_page_is_asked_once_more_at_most():
    server = VariantServer(Variant(ignore_page=True))
    with client(server, window_days=365) as c:
        df = c.frame("daily-ohlcv", token_id=3375, start=START, end=DATA_END)
    assert len(server.requests("daily-ohlcv")) == 2 and len(df) == 100


# -- a /v3 base URL ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "url", ["https://api.tokenmetrics.com/v3", "https://api.tokenmetrics.com/v3/", "http://x.test/api/V3"]
)
def test_a_v3_base_url_is_refused_naming_v2(url):
    with pytest.raises(ConfigurationError, match="v3") as info:
        Client(mode="api-key", api_key="k", base_url=url)
    assert "https://api.tokenmetrics.com/v2" in str(info.value) and "snake_case" in str(info.value)


# -- challenges: one asset or both, resource with or without its query, v1 or v2, either network ------------------
def paying(server: VariantServer, ledger, *, pay_with: str = "usdc", **policy) -> Client:
    """An x402 client paying ``server`` from a fresh wallet, on the server's network."""
    net = server.variant.network
    policy.setdefault("budget", "1.00")
    spend = SpendPolicy(network=net, pay_with=pay_with, extra_assets=[SANDBOX_TMAI_BASE_SEPOLIA], **policy)
    auth = X402Auth(Wallet.create(), spend, ledger=ledger)
    return Client(
        mode="x402",
        base_url=BASE_URL,
        auth=auth,
        ledger=ledger,
        transport=transport(server),
        progress=False,
        pay_with=pay_with,
    )


@pytest.mark.parametrize("network", ["base-sepolia", "base"])
@pytest.mark.parametrize("resource_query", [True, False], ids=["resource-with-query", "resource-without-query"])
@pytest.mark.parametrize("offers", ["both", "requested"])
@pytest.mark.parametrize("version", [1, 2], ids=["v1", "v2"])
def test_a_paid_call_under_every_challenge_shape(tmp_path, version, offers, resource_query, network):
    server = VariantServer(Variant(version=version, offers=offers, resource_query=resource_query, network=network))
    with Ledger(tmp_path / "l.sqlite3") as ledger, paying(server, ledger) as c:
        q = c.quote("tm-grade", token_id=[3375, 3306])
        assert (q.per_call, q.asset, q.network, q.refused) == (17_000, "USDC", network, None)
        assert len(q.offers) == (2 if offers == "both" else 1)
        df = c.frame("tm-grade", token_id=[3375, 3306])
        again = c.frame("tm-grade", token_id=[3988])  # warm: signed against the remembered challenge
        payments = ledger.payments()
    assert len(df) == 2 and len(again) == 1 and df.attrs["tm402"]["paid"] == again.attrs["tm402"]["paid"] == 1
    assert server.settled == [17_000, 17_000]
    assert payments["status"].tolist() == ["settled", "settled"]
    # The quote's unpaid probe, whose challenge is remembered: then each call is one paid round trip.
    assert [r.paid for r in server.requests("tm-grade")] == [False, True, True]


@pytest.mark.parametrize("offers", ["both", "requested"])
def test_tmai_is_paid_whether_the_challenge_lists_usdc_beside_it_or_not(tmp_path, offers):
    server = VariantServer(Variant(offers=offers))
    # Listed alone, TMAI has no USDC price beside it to value it by: a rate is given.
    rates = {"usd_rates": {"TMAI": "0.01"}} if offers == "requested" else {}
    with Ledger(tmp_path / "l.sqlite3") as ledger, paying(server, ledger, pay_with="tmai", **rates) as c:
        df = c.frame("tm-grade", token_id=3375)
        (row,) = ledger.payments().itertuples()
    assert df.attrs["tm402"]["paid"] == 1 and row.asset_symbol == "TMAI" and row.status == "settled"
    assert server.settled == [15_300 * 10**14]  # 1.53 TMAI, 10% below the USDC price


def test_tmai_listed_alone_without_a_rate_is_refused_before_signing(tmp_path):
    server = VariantServer(Variant(offers="requested"))
    with Ledger(tmp_path / "l.sqlite3") as ledger, paying(server, ledger, pay_with="tmai") as c:
        with pytest.raises(PaymentRefused) as info:
            c.frame("tm-grade", token_id=3375)
        assert ledger.payments().empty
    assert "usd_rates" in str(info.value) and server.settled == []


# -- symbol lookups: remembered across sessions, priced and reserved when the server charges ------------------------
def test_symbols_are_remembered_across_sessions_in_the_ledger(tmp_path):
    server = VariantServer()
    with Ledger(tmp_path / "l.sqlite3") as ledger:
        with client(server, ledger=ledger) as first:
            assert first.resolve_symbols(["BTC", "ETH"]) == {"BTC": 3375, "ETH": 3306}
        assert len(server.requests("tokens")) == 1
        with client(server, ledger=ledger) as second:  # a new session, the same ledger
            q = second.quote("tm-grade", symbol=["BTC", "ETH"])
            df = second.frame("tm-grade", symbol=["ETH", "BTC"])
        assert q.lookups == 0 and len(df) == 2
        assert len(server.requests("tokens")) == 1  # looked up once, in the first session
        # Overrides still win; another server is asked again.
        with client(server, ledger=ledger, symbol_overrides={"ETH": 9001}) as third:
            assert third.resolve_symbols("ETH") == {"ETH": 9001}
        other = VariantServer()
        with Client(
            mode="api-key",
            api_key="k",
            base_url="https://other.test/v2",
            transport=transport(other),
            ledger=ledger,
            progress=False,
        ) as elsewhere:
            elsewhere.resolve_symbols("BTC")
        assert len(other.requests("tokens")) == 1


def test_a_remembered_symbol_is_asked_again_once_it_is_a_week_old(tmp_path):
    import time

    server = VariantServer()
    with Ledger(tmp_path / "l.sqlite3") as ledger:
        ledger.symbols_put(BASE_URL, {"BTC": 1, "ETH": 3306}, now=time.time() - 8 * 86400)  # stale
        ledger.symbols_put(BASE_URL, {"SOL": 3988}, now=time.time() - 6 * 86400)  # still fresh
        with client(server, ledger=ledger) as c:
            assert c.quote("tm-grade", symbol=["SOL"]).lookups == 0
            assert c.resolve_symbols(["BTC", "SOL"]) == {"BTC": 3375, "SOL": 3988}
        assert server.requests("tokens")[0].params["symbol"] == "BTC"
        with client(server, ledger=ledger, symbol_max_age=None) as forgetful:  # no memory across sessions
            forgetful.resolve_symbols("SOL")
        assert len(server.requests("tokens")) == 2


def test_free_lookups_in_x402_mode_cost_one_request_and_nothing(tmp_path):
    server = VariantServer()
    with Ledger(tmp_path / "l.sqlite3") as ledger, paying(server, ledger) as c:
        q = c.quote("tm-grade", symbol=["BTC", "SOL"])
        assert (q.lookups, q.lookup_calls, q.total) == (1, 0, 17_000)
        c.frame("tm-grade", symbol=["BTC", "SOL"])
    assert [r.paid for r in server.requests("tokens")] == [False]  # the quote's lookup, remembered after
    assert server.settled == [17_000]


def test_paid_lookups_are_quoted_without_paying(tmp_path):
    server = VariantServer(Variant(paid_free=True))
    with Ledger(tmp_path / "l.sqlite3") as ledger, paying(server, ledger) as c:
        q = c.quote("tm-grade", symbol=["BTC", "ETH"])
        assert ledger.payments().empty and server.settled == []
    # 1 lookup request of up to 5 pages, and the 2-page market-cap ranking a tie may need: 7 calls at most.
    assert (q.lookups, q.lookup_calls, q.lookup_cost) == (1, 7, 7 * 17_000)
    assert q.calls == 1 and q.total == 8 * 17_000 and not q.exact and q.usd == Decimal("0.136")
    assert q.params["symbol"] == "BTC,ETH" and "-" not in q.params.get("token_id", "")
    assert "+ at most 7 symbol lookup call(s) = 0.119 USDC = 0.136 USDC" in repr(q)
    assert [r.paid for r in server.requests("tokens")] == [False]  # one unpaid probe


def test_paid_lookups_are_reserved_then_paid_and_counted(tmp_path):
    server = VariantServer(Variant(paid_free=True))
    with Ledger(tmp_path / "l.sqlite3") as ledger, paying(server, ledger) as c:
        q = c.quote("tm-grade", symbol=["BTC", "ETH"])
        df = c.frame("tm-grade", symbol=["BTC", "ETH"])
        again = c.frame("tm-grade", symbol=["ETH"], refresh=True)  # the symbols are known now
        assert c.auth.policy.held_usd() == 0  # every reservation closed
        paid = ledger.payments()
    meta = df.attrs["tm402"]
    assert meta["paid"] == 2 and meta["amount"] == {"USDC": "0.034"}  # the lookup and the data, in the footer's tally
    assert server.settled == [17_000, 17_000, 17_000] and sum(server.settled[:2]) <= q.total
    assert [e.rsplit("/", 1)[-1] for e in paid["endpoint"]] == ["tokens", "tm-grade", "tm-grade"]
    assert again.attrs["tm402"]["paid"] == 1 and server.paid("tokens") == 1


@pytest.mark.parametrize("cap", ["budget", "max_cost"])
def test_a_cap_that_cannot_hold_the_paid_lookups_refuses_them_before_signing(tmp_path, cap):
    """The lookups' plan (5 pages at most, 0.085 USD) is reserved like any other before it pays."""
    server = VariantServer(Variant(paid_free=True))
    policy = {"budget": "0.05"} if cap == "budget" else {}
    with Ledger(tmp_path / "l.sqlite3") as ledger, paying(server, ledger, **policy) as c:
        with pytest.raises(BudgetExceeded) as info:
            c.frame("tm-grade", symbol="BTC", **({"max_cost": "0.05"} if cap == "max_cost" else {}))
        assert ledger.payments().empty and server.settled == [] and c.auth.policy.held_usd() == 0
    assert "tokens" in str(info.value) and "5 paid calls" in str(info.value)


def test_max_cost_counts_what_the_lookups_paid(tmp_path):
    """max_cost is the whole call's: the lookups reserve 0.085 (5 pages) and pay 0.017, so 0.073 of
    0.09 is left, and five windows of candles (0.085) no longer fit, though alone they would."""
    server = VariantServer(Variant(paid_free=True))
    with Ledger(tmp_path / "l.sqlite3") as ledger, paying(server, ledger) as c:
        with pytest.raises(BudgetExceeded, match=r"max_cost is 0\.073 USD"):
            c.frame("daily-ohlcv", symbol=["SOL", "NEW"], start=START, end=DATA_END, max_cost="0.09")
        assert server.paid("tokens") == 1 and server.paid("daily-ohlcv") == 0
        df = c.frame("daily-ohlcv", symbol=["SOL", "NEW"], start=START, end=DATA_END, max_cost="0.09")
    assert df.attrs["tm402"]["paid"] == 5  # the symbols are known now: the whole cap is the data's


def test_the_async_client_prices_and_pays_lookups_alike(tmp_path):
    server = VariantServer(Variant(paid_free=True))

    async def main(ledger):
        policy = SpendPolicy(network="base-sepolia", budget="1.00")
        async with AsyncClient(
            mode="x402",
            base_url=BASE_URL,
            auth=X402Auth(Wallet.create(), policy, ledger=ledger),
            ledger=ledger,
            transport=httpx.MockTransport(server.ahandle),
            progress=False,
        ) as c:
            q = await c.quote("tm-grade", symbol="BTC")
            assert server.settled == []
            return q, await c.frame("tm-grade", symbol="BTC")

    with Ledger(tmp_path / "l.sqlite3") as ledger:
        q, df = asyncio.run(main(ledger))
    assert q.lookup_calls == 7 and df.attrs["tm402"]["paid"] == 2 and server.settled == [17_000, 17_000]


# -- the same checks against the sandbox's own profiles (the other half of issue 13) ---------------------------------
@pytest.fixture(scope="module")
def truncating_sandbox():
    from tm402_nb.sandbox import serve

    with serve(date_range="truncate", fund=False, rate_limit=10_000, rate_burst=10_000) as sb:
        yield sb


def test_the_sandbox_that_truncates_long_ranges_is_caught(truncating_sandbox, tmp_path):
    sb = truncating_sandbox
    wallet = Wallet.create()
    sb.fund(wallet.address, "usdc", "5")
    end = DATA_END  # well inside the sandbox's data, whatever day it ends
    with Ledger(tmp_path / "l.sqlite3") as ledger:
        auth = X402Auth(wallet, SpendPolicy(budget="1.00"), ledger=ledger)
        with Client(mode="sandbox", base_url=sb.api_url, auth=auth, ledger=ledger, progress=False) as c:
            whole = c.frame("daily-ohlcv", token_id=3375, start=end - timedelta(days=89), end=end)
            assert len(whole) == 90 and whole.attrs["tm402"]["gaps"] == []  # the default windows fit
            c.window_days = 90
            with pytest.warns(GapWarning, match=r"daily-ohlcv: 61 day\(s\) of rows are missing"):
                cut = c.frame("daily-ohlcv", token_id=3375, start=end - timedelta(days=89), end=end, refresh=True)
    assert len(cut) == 29
