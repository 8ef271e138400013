"""``df.tm``: enrich / shortcuts / quote / plot / cost against the embedded sandbox."""

from __future__ import annotations

import copy
import doctest
import re
import subprocess
import sys
import types
from collections.abc import Iterator

import pandas as pd
import pytest

import tm402_nb as tm
from tm402_nb.errors import ConfigurationError
from tm402_nb.notebook import accessor as accessor_module
from tm402_nb.notebook.accessor import FrameCost, TMAccessor, UnknownSymbolsWarning
from tm402_nb.tokenmetrics.catalogue import UnknownEndpoint
from tm402_nb.tokenmetrics.client import Quote
from tm402_nb.tokenmetrics.errors import ParamError, UnknownSymbol


# -- fixtures ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sess(tmp_path_factory) -> Iterator[tm.Session]:
    # Module scope runs before the per-test autouse TM402_HOME fixture, so isolate it here too:
    # the ledger gets an explicit path and TM402_HOME points at a temporary dir while connecting.
    home = tmp_path_factory.mktemp("tm402home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TM402_HOME", str(home))
        for name in ("TM402_PRIVATE_KEY", "TM402_KEY_FILE", "TM_API_KEY", "TM402_MODE"):
            mp.delenv(name, raising=False)
        s = tm.connect(
            mode="sandbox",
            ledger=home / "ledger.sqlite3",
            progress=False,
            sandbox_options={"rate_limit": 10_000, "rate_burst": 10_000},
        )
        try:
            yield s
        finally:
            s.close()


@pytest.fixture(scope="module")
def universe(sess) -> pd.DataFrame:
    """The sandbox's token universe (a free endpoint): TOKEN_ID, TOKEN_SYMBOL, ..."""
    return sess.client.frame("tokens").reset_index()


def n_payments(s) -> int:
    return len(s.ledger.payments())


@pytest.fixture
def coins() -> pd.DataFrame:
    return pd.DataFrame({"symbol": ["ETH", "btc", "SOL"], "weight": [0.5, 0.3, 0.2]}, index=["x", "y", "z"])


# -- batching ------------------------------------------------------------------------------------
def test_hundred_symbol_portfolio_in_one_paid_call(sess, universe):
    symbols = list(dict.fromkeys(universe["TOKEN_SYMBOL"]))[:100]
    assert len(symbols) == 100
    # Mixed case, reversed order, a non-default index: all must survive the join.
    portfolio = pd.DataFrame(
        {
            "symbol": [s.lower() if i % 3 == 0 else s for i, s in enumerate(reversed(symbols))],
            "qty": range(100),
        },
        index=pd.Index([f"row{i}" for i in range(100)], name="pos"),
    )
    before = n_payments(sess)

    out = portfolio.tm.grades()

    payments = sess.ledger.payments().iloc[before:]
    assert len(payments) == 1  # one paid call; no second page asked for (and signed) after a full one
    assert payments["status"].tolist() == ["settled"]
    assert out.attrs["tm402"]["paid"] == 1
    assert out.attrs["tm402"]["enrich"]["tokens"] == 100
    assert len(out) == 100
    assert out.index.equals(portfolio.index)
    assert out["symbol"].tolist() == portfolio["symbol"].tolist()
    assert out["TM_GRADE"].notna().all()
    resolved = sess.client.resolve_symbols(portfolio["symbol"].tolist())
    assert out["TOKEN_ID"].tolist() == [resolved[s.upper()] for s in portfolio["symbol"]]


def test_more_than_a_page_of_tokens_batches_in_hundreds(sess, universe):
    ids = universe["TOKEN_ID"].astype(int).tolist()[100:220]
    frame = pd.DataFrame({"token_id": ids})
    before = n_payments(sess)
    out = frame.tm.enrich("tm-grade", on="token_id", columns=["TM_GRADE"])
    assert out.attrs["tm402"]["paid"] == 2  # 120 tokens: two comma lists of ≤ 100
    assert n_payments(sess) - before == 2
    assert out.attrs["tm402"]["enrich"]["by"] == "token_id"
    assert list(out.columns) == ["token_id", "TM_GRADE"]
    assert out["TM_GRADE"].notna().all()


# -- never mutate, keep the rows -----------------------------------------------------------------
def test_input_is_never_mutated(sess, coins):
    coins.attrs["note"] = {"mine": [1, 2]}
    before = coins.copy(deep=True)
    before_attrs = copy.deepcopy(coins.attrs)

    out = coins.tm.enrich("tm-grade")
    coins.tm.signals()
    coins.tm.quote("quantmetrics")
    _ = coins.tm.cost

    pd.testing.assert_frame_equal(coins, before)
    assert coins.attrs == before_attrs
    assert out is not coins
    assert "tm402" in out.attrs and "tm402" not in coins.attrs
    assert out.attrs["note"] == {"mine": [1, 2]}
    out.attrs["note"]["mine"].append(3)  # the copy's attrs are its own
    assert coins.attrs["note"] == {"mine": [1, 2]}
    out.loc["x", "weight"] = 99.0
    assert coins.loc["x", "weight"] == 0.5


def test_row_order_index_duplicates_and_missing_values(sess):
    frame = pd.DataFrame(
        {"symbol": ["ETH", "btc", None, "BTC ", "", "eth", float("nan")], "n": range(7)},
        index=[5, 5, 3, 1, 1, 0, 9],
    )
    before = frame.copy(deep=True)
    out = frame.tm.grades(columns=["TOKEN_ID", "TOKEN_NAME", "TM_GRADE"])

    assert out.index.tolist() == [5, 5, 3, 1, 1, 0, 9]
    assert out["n"].tolist() == list(range(7))
    assert out["TOKEN_ID"].tolist()[:2] == [3306, 3375]
    assert out["TOKEN_NAME"].tolist()[3] == "Bitcoin"  # "BTC " is BTC, the one the client resolves
    # Duplicates carry the same values; missing symbols stay unmatched.
    assert out["TM_GRADE"].iloc[1] == out["TM_GRADE"].iloc[3]
    assert out["TM_GRADE"].iloc[0] == out["TM_GRADE"].iloc[5]
    assert out["TM_GRADE"].iloc[[2, 4, 6]].isna().all()
    assert out.attrs["tm402"]["enrich"]["tokens"] == 2
    assert out.attrs["tm402"]["enrich"]["matched"] == 4
    pd.testing.assert_frame_equal(frame, before)

    inner = frame.tm.grades(columns="TM_GRADE", how="inner")
    assert inner.index.tolist() == [5, 5, 1, 0]
    assert inner["n"].tolist() == [0, 1, 3, 5]


def test_symbols_shared_by_several_tokens_join_on_the_resolved_id(sess, universe):
    assert (universe["TOKEN_SYMBOL"] == "BTC").sum() > 1  # bridged BTCs share the symbol
    out = pd.DataFrame({"symbol": ["BTC"]}).tm.grades()
    assert out.loc[0, "TOKEN_ID"] == 3375 == sess.client.resolve_symbols(["BTC"])["BTC"]
    assert out.loc[0, "TOKEN_NAME"] == "Bitcoin"


# -- bad input: short errors, nothing paid ---------------------------------------------------------
def test_unknown_symbols_keep_their_rows_and_are_named_once(sess):
    """Regression: one unknown symbol (MATIC, then POL) killed a whole 20-symbol enrichment."""
    frame = pd.DataFrame({"symbol": ["BTC", "NOTACOINX", "ETH", "zzzqq", "NOTACOINX"]})
    before = n_payments(sess)
    with pytest.warns(UnknownSymbolsWarning) as caught:
        out = frame.tm.grades(columns="TM_GRADE")
    (warning,) = [w for w in caught if issubclass(w.category, UnknownSymbolsWarning)]
    assert "NOTACOINX, ZZZQQ" in str(warning.message) and "BTC" not in str(warning.message)
    assert out["TM_GRADE"].notna().tolist() == [True, False, True, False, False]
    assert n_payments(sess) - before == 1  # the known tokens, in one paid call
    with pytest.warns(UnknownSymbolsWarning):
        inner = frame.tm.grades(columns="TM_GRADE", how="inner")
    assert inner["symbol"].tolist() == ["BTC", "ETH"]


def test_errors_raise_refuses_unknown_symbols_before_paying(sess):
    before = n_payments(sess)
    frame = pd.DataFrame({"symbol": ["BTC", "NOTACOINX", "ETH", "zzzqq"]})
    with pytest.raises(UnknownSymbol) as err:
        frame.tm.grades(errors="raise")
    assert "NOTACOINX" in str(err.value) and "ZZZQQ" in str(err.value)
    assert "BTC" not in str(err.value).split("—")[0]
    assert "tm.session()" in err.value.hint  # what a %load_ext user has
    with pytest.raises(UnknownSymbol):
        frame.tm.quote()
    with pytest.warns(UnknownSymbolsWarning):
        nothing = pd.DataFrame({"symbol": ["NOTACOINX"]}).tm.grades(columns="TM_GRADE")
    assert nothing["TM_GRADE"].isna().all()
    assert n_payments(sess) == before


def test_missing_on_column_lists_the_columns_and_pays_nothing(sess):
    before = n_payments(sess)
    frame = pd.DataFrame({"ticker": ["BTC"], "weight": [1.0]})
    with pytest.raises(ConfigurationError) as err:
        frame.tm.enrich("tm-grade")
    msg = str(err.value)
    assert "'symbol'" in msg and "ticker" in msg and "weight" in msg
    assert "on='ticker'" in msg  # the hint names the likely column
    with pytest.raises(ConfigurationError, match="'coin'"):
        frame.tm.quote(on="coin")
    assert n_payments(sess) == before


@pytest.mark.parametrize(
    "call, error, text",
    [
        (lambda f: f.tm.enrich("market-metrics"), ConfigurationError, "not keyed by token"),
        (lambda f: f.tm.enrich("indices"), ConfigurationError, "not keyed by token"),
        (lambda f: f.tm.quote("top-market-cap-tokens"), ConfigurationError, "not keyed by token"),
        (lambda f: f.tm.enrich("tm-grde"), UnknownEndpoint, "did you mean"),
        (lambda f: f.tm.enrich("tm-grade", symbol=["ETH"]), ConfigurationError, "tokens come from"),
        (lambda f: f.tm.enrich("tm-grade", ids=[1]), ConfigurationError, "tokens come from"),
        (lambda f: f.tm.enrich("tm-grade", colour="red"), ParamError, "unknown parameter"),
        (lambda f: f.tm.enrich("tm-grade", columns=["TM_GRAED"]), ConfigurationError, "did you mean TM_GRADE"),
        (lambda f: f.tm.enrich("tm-grade", columns=[]), ConfigurationError, "columns is empty"),
        (lambda f: f.tm.enrich("tm-grade", how="outer"), ConfigurationError, "how must be"),
        (lambda f: f.tm.enrich("tm-grade", suffix=""), ConfigurationError, "suffix"),
        (lambda f: f.tm.enrich("tm-grade", by="ticker"), ConfigurationError, "by must be"),
        (lambda f: f.tm.enrich("tm-grade", by="token_id"), ConfigurationError, "not a token id"),
        (lambda f: f.assign(symbol=[None, None]).tm.grades(), ConfigurationError, "no values"),
        (lambda f: f.assign(symbol=["BTC,ETH", "SOL"]).tm.grades(), ConfigurationError, "one symbol per row"),
        (lambda f: f.assign(symbol=["BTC", 3306]).tm.grades(), ConfigurationError, "mixes"),
        (lambda f: f.assign(symbol=[True, False]).tm.grades(), ConfigurationError, "booleans"),
        (lambda f: f.assign(symbol=[1.5, 2.0]).tm.grades(), ConfigurationError, "not a token id"),
        (lambda f: f.assign(symbol=[[1], [2]]).tm.grades(), ConfigurationError, "unhashable"),
        (lambda f: f.tm.enrich("tm-grade", session=object()), ConfigurationError, "Session or Client"),
    ],
)
def test_bad_input_fails_before_paying(sess, call, error, text):
    before = n_payments(sess)
    frame = pd.DataFrame({"symbol": ["BTC", "ETH"], "w": [1, 2]})
    with pytest.raises(error, match=text):
        call(frame)
    assert n_payments(sess) == before


def test_errors_render_as_one_line(sess):
    with pytest.raises(ConfigurationError) as err:
        pd.DataFrame({"a": [1]}).tm.grades()
    (line,) = err.value._render_traceback_()
    assert "ConfigurationError" in line and "'symbol'" in line


# -- columns and suffixes ---------------------------------------------------------------------------
def test_columns_selection(sess, coins):
    out = coins.tm.grades(columns=["TM_GRADE", "TM_GRADE_SIGNAL"])
    assert list(out.columns) == ["symbol", "weight", "TM_GRADE", "TM_GRADE_SIGNAL"]
    one = coins.tm.grades(columns="TM_GRADE")
    assert list(one.columns) == ["symbol", "weight", "TM_GRADE"]
    # Matched case-insensitively against the catalogue, output in the API's spelling.
    low = coins.tm.grades(columns=["tm_grade"])
    assert list(low.columns) == ["symbol", "weight", "TM_GRADE"]


def test_all_columns_identifiers_once(sess, coins):
    out = coins.tm.grades()
    added = [c for c in out.columns if c not in coins.columns]
    assert added[:3] == ["TOKEN_ID", "TOKEN_NAME", "TOKEN_SYMBOL"]
    assert "TM_GRADE" in added and "MOMENTUM" in added
    assert len(added) == len(set(added))
    # The frame already names its tokens: identifiers are not added again, not even suffixed.
    named = coins.assign(token_name=["e", "b", "s"], TOKEN_SYMBOL=["E", "B", "S"])
    out2 = named.tm.grades()
    assert not any(c.startswith(("TOKEN_NAME", "TOKEN_SYMBOL_")) for c in out2.columns)
    assert "TOKEN_ID" in out2.columns
    # `on` already holds ids: TOKEN_ID is not repeated.
    by_id = pd.DataFrame({"id": [3375, 3306]}).tm.grades(on="id")
    assert "TOKEN_ID" not in by_id.columns and "TOKEN_NAME" in by_id.columns


def test_suffix_on_clashing_names(sess, coins):
    mine = coins.assign(TM_GRADE=[1.0, 2.0, 3.0], TM_GRADE_tm=[0, 0, 0])
    out = mine.tm.grades(columns=["TM_GRADE", "MOMENTUM"])
    assert list(out.columns) == ["symbol", "weight", "TM_GRADE", "TM_GRADE_tm", "TM_GRADE_tm_2", "MOMENTUM"]
    assert out["TM_GRADE"].tolist() == [1.0, 2.0, 3.0]
    assert out["TM_GRADE_tm_2"].notna().all()
    custom = coins.assign(MOMENTUM="mine").tm.grades(columns=["MOMENTUM"], suffix="_api")
    assert custom["MOMENTUM"].eq("mine").all() and custom["MOMENTUM_api"].str.startswith("Momentum").all()


# -- shortcuts, histories, nested -------------------------------------------------------------------
def test_shortcuts(sess, coins):
    grades = coins.tm.grades()
    assert grades.attrs["tm402"]["endpoint"] == "tm-grade" and "TM_GRADE" in grades
    quant = coins.tm.quant(columns=["SHARPE", "MAX_DRAWDOWN"])
    assert quant.attrs["tm402"]["endpoint"] == "quantmetrics"
    assert quant[["SHARPE", "MAX_DRAWDOWN"]].notna().all().all()
    signals = coins.tm.signals()
    assert signals.attrs["tm402"]["endpoint"] == "trading-signals"
    assert len(signals) == 3 and signals["TRADING_SIGNAL"].notna().all()


def test_history_endpoints_join_the_latest_row_per_token(sess):
    frame = pd.DataFrame({"symbol": ["BTC", "ETH", "BTC"]})
    out = frame.tm.signals(columns=["DATE", "TRADING_SIGNAL", "TM_TRADER_GRADE"])
    hist = sess.client.frame("trading-signals", symbol=["BTC", "ETH"])  # cached: same request
    assert hist.groupby("TOKEN_ID").size().min() > 1  # several rows per token
    for row, tid in zip(out.itertuples(), [3375, 3306, 3375], strict=False):
        latest = hist[hist["TOKEN_ID"] == tid].sort_values("DATE").iloc[-1]
        assert latest["DATE"] == row.DATE
        assert latest["TM_TRADER_GRADE"] == row.TM_TRADER_GRADE
    # Params go to the endpoint: an older window gives older latest rows.
    old = frame.tm.signals(columns=["DATE"], start="2025-01-01", end="2025-01-31")
    assert (old["DATE"] <= pd.Timestamp("2025-01-31", tz="UTC")).all()


def test_nested_endpoints_join_one_list_per_token(sess):
    out = pd.DataFrame({"symbol": ["BTC", "ETH"]}).tm.enrich("resistance-support")
    levels = out["HISTORICAL_RESISTANCE_SUPPORT_LEVELS"]
    assert len(out) == 2 and all(isinstance(v, list) and v for v in levels)


def test_token_id_columns(sess):
    frame = pd.DataFrame({"tid": [3375.0, float("nan"), 3306.0], "txt": ["3375", None, "3306"]})
    by_float = frame.tm.enrich("price", on="tid")
    assert by_float["TOKEN_SYMBOL"].tolist()[0] == "BTC" and pd.isna(by_float["TOKEN_SYMBOL"].iloc[1])
    by_text = frame.tm.enrich("price", on="txt", by="token_id", columns="CURRENT_PRICE")
    assert by_text["CURRENT_PRICE"].iloc[[0, 2]].notna().all()
    # A toolkit frame indexed by TOKEN_ID enriches on its index.
    grades = sess.client.frame("tm-grade", token_id=[3375, 3306])
    assert grades.index.name == "TOKEN_ID"
    both = grades.tm.enrich("quantmetrics", on="TOKEN_ID", columns=["SHARPE"])
    assert both.index.equals(grades.index) and both["SHARPE"].notna().all()
    assert both.attrs["tm402"]["endpoint"] == "quantmetrics"  # the enrichment's cost, not the input's


# -- quote, cache, cost -------------------------------------------------------------------------------
def test_quote_prices_the_whole_enrichment_and_pays_nothing(sess, universe):
    symbols = list(dict.fromkeys(universe["TOKEN_SYMBOL"]))[150:160]
    frame = pd.DataFrame({"symbol": symbols + symbols[:3]})
    before = n_payments(sess)
    q = frame.tm.quote("fundamental-grade")
    assert isinstance(q, Quote)
    assert n_payments(sess) == before  # nothing paid
    assert q.calls == 1 and q.per_call > 0 and q.asset == "USDC" and not q.refused
    assert q.params["token_id"].count(",") == 9  # ten distinct tokens
    out = frame.tm.enrich("fundamental-grade", refresh=True)
    assert n_payments(sess) == before + 1
    assert out.attrs["tm402"]["amount"] == {"USDC": "0.017"}
    assert q.total_text == "0.017 USDC"


def test_rerun_reuses_the_cache_and_refresh_pays(sess):
    frame = pd.DataFrame({"symbol": ["DOGE", "ADA"]})
    first = frame.tm.grades()
    again = frame.tm.grades()
    assert again.attrs["tm402"]["paid"] == 0 and again.attrs["tm402"]["cached"] >= 1
    pd.testing.assert_frame_equal(first, again)
    assert frame.tm.grades(refresh=True).attrs["tm402"]["paid"] == 1


def test_cost_summarises_attrs(sess):
    frame = pd.DataFrame({"symbol": ["XRP", "BNB"]})
    out = frame.tm.grades(refresh=True)
    cost = out.tm.cost
    assert isinstance(cost, FrameCost) and cost
    assert cost.paid == 1 and cost.amount == {"USDC": "0.017"} and len(cost.receipts) == 1
    assert re.fullmatch(
        r"\d+ calls? \(1 paid(, \d+ (cached|free: symbol lookup))*\) · 0\.017 USDC · SANDBOX", repr(cost)
    )
    html = cost._repr_html_()
    assert "SANDBOX" in html and cost.receipts[0] in html and "tm-grade" in html
    cached = frame.tm.grades().tm.cost
    assert cached.paid == 0 and "cached" in repr(cached) and "nothing paid" in repr(cached)
    assert cost.to_dict()["receipts"] == list(cost.receipts)

    plain = pd.DataFrame({"a": [1]}).tm.cost
    assert not plain and repr(plain) == "no Token Metrics calls" and "no Token Metrics calls" in plain._repr_html_()
    client_frame = sess.client.frame("price", symbol=["BTC"])  # any toolkit frame has a cost
    assert client_frame.tm.cost.endpoint == "price" and client_frame.tm.cost.paid == 0
    odd = pd.DataFrame({"a": [1]})
    odd.attrs["tm402"] = {"calls": "x", "receipts": "not a list"}
    assert repr(odd.tm.cost) == "no Token Metrics calls"


# -- accessor contract ---------------------------------------------------------------------------------
def test_accessor_is_rebuilt_and_stateless():
    df = pd.DataFrame({"symbol": ["BTC"]})
    a, b = df.tm, df.tm
    assert a is not b and isinstance(a, TMAccessor)
    with pytest.raises(AttributeError):
        a.cache = {}  # nowhere to keep state
    assert not hasattr(a, "__dict__")
    assert pd.DataFrame.tm is TMAccessor  # help(pd.DataFrame.tm) works


def test_accessor_only_on_dataframes():
    with pytest.raises(AttributeError):
        _ = pd.Series(["BTC"]).tm
    with pytest.raises(AttributeError, match="DataFrame"):
        TMAccessor(pd.Series(["BTC"]))
    with pytest.raises(AttributeError):
        TMAccessor(["BTC"])


def test_session_resolution(sess, coins):
    assert tm.session() is sess
    via_current = coins.tm.grades(columns="TM_GRADE")
    via_session = coins.tm.grades(columns="TM_GRADE", session=sess)
    via_client = coins.tm.grades(columns="TM_GRADE", session=sess.client)
    pd.testing.assert_frame_equal(via_current, via_session)
    pd.testing.assert_frame_equal(via_current, via_client)


def test_closed_session_is_refused(sess):
    class Closed:
        closed = True
        client = sess.client

    with pytest.raises(ConfigurationError, match="closed"):
        pd.DataFrame({"symbol": ["BTC"]}).tm.grades(session=Closed())


def test_plot_delegates_lazily(monkeypatch):
    seen = {}

    def plot_frame(df, *, kind=None, ax=None, title=None, **kwargs):
        seen.update(df=df, kind=kind, ax=ax, title=title, kwargs=kwargs)
        return "axes"

    fake = types.ModuleType("tm402_nb.notebook.plots")
    fake.plot_frame = plot_frame
    monkeypatch.setitem(sys.modules, "tm402_nb.notebook.plots", fake)
    df = pd.DataFrame({"x": [1]})
    assert df.tm.plot("bar", ax="AX", title="t", color="red") == "axes"
    assert seen["df"] is df and seen["kind"] == "bar" and seen["ax"] == "AX"
    assert seen["title"] == "t" and seen["kwargs"] == {"color": "red"}


def test_importing_the_accessor_stays_cheap():
    code = (
        "import sys, pandas as pd; import tm402_nb.notebook.accessor; "
        "assert hasattr(pd.DataFrame, 'tm'); "
        "heavy = [m for m in ('httpx', 'tm402_nb.tokenmetrics.client', 'tm402_nb.session.core',"
        " 'tm402_nb.session.modes', 'tm402_nb.sandbox') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_doctests():
    result = doctest.testmod(accessor_module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    assert result.attempted >= 10
