"""%tm / %%tm driven through a real InteractiveShell: one test per flag and subcommand."""

from __future__ import annotations

import threading
from decimal import Decimal

import pandas as pd
import pytest

import tm402_nb as tm
from tests.notebook.shell import make_shell, reset_magics  # noqa: F401
from tm402_nb.errors import BudgetExceeded, ConfigurationError, TM402Error
from tm402_nb.notebook.parse import MagicUsageError
from tm402_nb.tokenmetrics.catalogue import UnknownEndpoint
from tm402_nb.tokenmetrics.client import Quote
from tm402_nb.tokenmetrics.errors import UnknownSymbol


def payments(s):
    return len(s.ledger.payments())


def footers(text):
    return [line for line in text.splitlines() if line.startswith("tm402 · ")]


# -- the line magic ---------------------------------------------------------------------------
def test_line_magic_returns_a_frame(ip, s):
    df = ip.run_line_magic("tm", "grade BTC ETH")
    assert isinstance(df, pd.DataFrame) and set(df["TOKEN_SYMBOL"]) == {"BTC", "ETH"}
    assert df.attrs["tm402"]["paid"] == 1


def test_assignment_captures_the_frame(ip, s):
    ip.run_cell("df = %tm grade BTC")
    assert isinstance(ip.user_ns["df"], pd.DataFrame) and len(ip.user_ns["df"]) == 1


def test_start_and_end(ip, s):
    df = ip.run_line_magic("tm", "ohlcv BTC --start 2026-09-01 --end 2026-09-30")
    assert len(df) == 30 and df["DATE"].min().day == 1


def test_limit(ip, s):
    assert len(ip.run_line_magic("tm", "signals BTC --limit 5")) == 5


def test_param(ip, s):
    df = ip.run_line_magic("tm", "moonshots --param type=past --limit 3")
    assert len(df) == 3


def test_params_dict(ip, s):
    ip.user_ns["p"] = {"startDate": "2026-10-01", "endDate": "2026-10-10"}
    assert len(ip.run_line_magic("tm", "ohlcv ETH --params $p")) == 10


def test_params_must_be_a_dict(ip, s):
    ip.user_ns["p"] = ["not", "a", "dict"]
    with pytest.raises(MagicUsageError, match="must be a dict"):
        ip.run_line_magic("tm", "ohlcv ETH --params $p")
    assert payments(s) == 0


def test_template_variables(ip, s):
    ip.user_ns["syms"] = ["BTC", "SOL"]
    df = ip.run_line_magic("tm", "grade {{syms}}")
    assert set(df["TOKEN_SYMBOL"]) == {"BTC", "SOL"}


def test_template_variables_are_type_checked(ip, s):
    ip.user_ns["syms"] = {"BTC": 1}
    with pytest.raises(MagicUsageError, match="unsupported type"):
        ip.run_line_magic("tm", "grade {{syms}}")
    assert payments(s) == 0


def test_save_stores_without_display(ip, s):
    assert ip.run_line_magic("tm", "grade BTC --save grades") is None
    assert isinstance(ip.user_ns["grades"], pd.DataFrame)


def test_dry_run_returns_a_quote_and_pays_nothing(ip, s):
    q = ip.run_line_magic("tm", "ai-reports BTC --dry-run")
    assert isinstance(q, Quote) and q.per_call == 68_000
    assert payments(s) == 0


def test_refresh_pays_again(ip, s):
    ip.run_line_magic("tm", "grade BTC")
    assert ip.run_line_magic("tm", "grade BTC").attrs["tm402"]["cached"] == 1
    assert ip.run_line_magic("tm", "grade BTC --refresh").attrs["tm402"]["paid"] == 1
    assert payments(s) == 2


def test_max_cost_flag_beats_the_config(ip, s):
    ip.run_line_magic("config", "TMMagics.max_per_call = 0.01")
    with pytest.raises(BudgetExceeded) as info:
        ip.run_line_magic("tm", "grade BTC")
    assert "--max-cost 0.02" in str(info.value) and "%config TMMagics.max_per_call = 0.02" in str(info.value)
    assert payments(s) == 0
    ip.run_line_magic("tm", "grade BTC --max-cost 0.02")
    assert payments(s) == 1
    with pytest.raises(BudgetExceeded):  # the flag was for that call only
        ip.run_line_magic("tm", "grade ETH")


def test_pay_with_tmai(ip, s):
    ip.run_line_magic("tm", "grade BTC --pay-with tmai")
    assert s.ledger.payments()["asset_symbol"].tolist() == ["TMAI"]
    ip.run_line_magic("tm", "grade ETH")
    assert s.ledger.payments()["asset_symbol"].tolist() == ["TMAI", "USDC"]


def while_paying(s, call):
    """Run ``call`` on another thread while this session's next payment is in flight (signed, unanswered).

    Returns what it saw then: the call's frame (or error) and the session's defaults at that moment.
    """
    seen = {}

    def outcome():
        try:
            seen["concurrent"] = call()
        except Exception as exc:  # the assertions look at it
            seen["concurrent"] = exc

    def on_payment(event):
        if event.kind != "signed" or seen:
            return
        seen.update(max_per_call=s.policy.max_per_call, pay_with=(s.pay_with, s.policy.pay_with))
        worker = threading.Thread(target=outcome)
        worker.start()
        worker.join()

    s.auth.listeners.append(on_payment)
    return seen


def test_max_cost_is_for_that_call_only(ip, s):
    ip.run_line_magic("config", "TMMagics.max_per_call = 0.01")  # below tm-grade's 0.017
    seen = while_paying(s, lambda: s.client.frame("tm-grade", symbol="ETH"))
    paid = ip.run_line_magic("tm", "grade BTC --max-cost 0.5")
    assert paid.attrs["tm402"]["paid"] == 1
    assert isinstance(seen["concurrent"], BudgetExceeded)  # a call running meanwhile kept the 0.01 cap
    assert seen["max_per_call"] == 10_000  # the session's cap never changed, not even during the call
    with pytest.raises(BudgetExceeded):  # nor for the next call
        ip.run_line_magic("tm", "grade SOL")
    assert s.policy.max_per_call == 10_000 and payments(s) == 1


def test_pay_with_is_for_that_call_only(ip, s):
    seen = while_paying(s, lambda: s.client.frame("tm-grade", symbol="ETH"))
    in_tmai = ip.run_line_magic("tm", "grade BTC --pay-with tmai")
    assert list(in_tmai.attrs["tm402"]["amount"]) == ["TMAI"]
    assert list(seen["concurrent"].attrs["tm402"]["amount"]) == ["USDC"]  # a call running meanwhile
    assert seen["pay_with"] == ("usdc", "usdc")  # the session's default never changed
    after = ip.run_line_magic("tm", "grade SOL")
    assert list(after.attrs["tm402"]["amount"]) == ["USDC"]
    assert sorted(s.ledger.payments()["asset_symbol"]) == ["TMAI", "USDC", "USDC"]
    assert s.pay_with == s.policy.pay_with == "usdc"


def test_config_pay_with(ip, s):
    ip.run_line_magic("config", "TMMagics.pay_with = 'tmai'")
    ip.run_line_magic("tm", "grade BTC")
    assert s.ledger.payments()["asset_symbol"].tolist() == ["TMAI"]


def test_config_budget(ip, s):
    ip.run_line_magic("config", "TMMagics.budget = 0.02")
    ip.run_line_magic("tm", "grade BTC")
    with pytest.raises(BudgetExceeded, match="session budget"):
        ip.run_line_magic("tm", "grade ETH")


def test_cache_ttl_zero_disables_the_cache(ip, s):
    ip.run_line_magic("config", "TMMagics.cache_ttl = 0")
    ip.run_line_magic("tm", "grade BTC")
    ip.run_line_magic("tm", "grade BTC")
    assert payments(s) == 2


# -- subcommands ----------------------------------------------------------------------------
def test_endpoints(ip, s):
    frame = ip.run_line_magic("tm", "endpoints")
    assert "tm-grade" in frame.index and frame.loc["ai-reports", "usdc"] == 0.068


def test_quote(ip, s):
    q = ip.run_line_magic("tm", "quote correlation BTC")
    assert q.per_call == 68_000 and payments(s) == 0


def test_ledger(ip, s):
    ip.run_line_magic("tm", "grade BTC")
    frame = ip.run_line_magic("tm", "ledger")
    assert frame["status"].tolist() == ["settled"]


def test_wallet(ip, s):
    text = repr(ip.run_line_magic("tm", "wallet"))
    assert s.wallet.address in text and "USDC" in text and "base-sepolia" in text


def test_budget_show_and_set(ip, s):
    assert "of 1.00 USD budget" in repr(ip.run_line_magic("tm", "budget"))  # the default every session has
    assert "of 2.50 USD budget" in repr(ip.run_line_magic("tm", "budget 2.50"))
    assert s.budget == Decimal("2.5")


def test_budget_with_dollar_sign_is_refused(ip, s):
    with pytest.raises(MagicUsageError, match=r"\$"):
        ip.run_line_magic("tm", "budget $5")


def test_feed_updates_with_payments(ip, s, capsys):
    ip.run_line_magic("tm", "feed")
    ip.run_line_magic("tm", "grade BTC")
    feed = next(fn for fn in s.auth.listeners if getattr(fn, "__self__", None).__class__.__name__ == "PaymentFeed")
    text = repr(feed.__self__)
    assert "tm-grade" in text and "settled" in text and "0.017 USDC" in text


def test_connect(ip, s):
    new = ip.run_line_magic("tm", "connect sandbox")
    try:
        assert new is tm.session() and new is not s and s.closed
    finally:
        new.close()


def test_help(ip, s):
    assert "%tm ENDPOINT" in repr(ip.run_line_magic("tm", "help"))


# -- the cell magic ---------------------------------------------------------------------------
def test_cell_magic_yaml_body(ip, s):
    df = ip.run_cell_magic("tm", "", "endpoint: tm-grade\nsymbol: [BTC, ETH, SOL]\n")
    assert len(df) == 3


def test_cell_magic_save(ip, s):
    assert ip.run_cell_magic("tm", "--save grades", "endpoint: grade\nsymbol: [BTC]") is None
    assert len(ip.user_ns["grades"]) == 1


def test_cell_magic_one_call_per_line(ip, s):
    out = ip.run_cell_magic("tm", "", "grade BTC\n# a comment\nquant ETH\ngrades SOL\n")
    assert isinstance(out, dict) and list(out) == ["tm-grade", "quantmetrics", "tm-grade #2"]
    assert list(out["tm-grade #2"]["TOKEN_SYMBOL"]) == ["SOL"]
    assert all(isinstance(v, pd.DataFrame) for v in out.values())


def test_cell_magic_calls_show_each_under_its_caption(ip, s):
    out = ip.run_cell_magic("tm", "", "grade BTC\nquant ETH\n")
    bundle, _ = ip.display_formatter.format(out)
    html = bundle["text/html"]
    first, second = html.index("tm-grade · grade BTC · 1 row"), html.index("quantmetrics · quant ETH · 1 row")
    assert first < html.index("<table", first) < second < html.index("<table", second)  # caption, then its frame
    text = bundle["text/plain"]
    assert text.startswith("tm-grade · grade BTC · 1 row\n───") and "\nquantmetrics · quant ETH · 1 row\n" in text
    assert "Bitcoin" in text and "Ethereum" in text


def test_cell_magic_several_calls_save_the_dict(ip, s):
    assert ip.run_cell_magic("tm", "--save grades", "grade BTC\nquote ai-reports ETH\n") is None
    saved = ip.user_ns["grades"]
    assert list(saved) == ["tm-grade", "ai-reports"] and isinstance(saved["ai-reports"], Quote)


def test_cell_magic_checks_every_endpoint_before_paying(ip, s):
    with pytest.raises(UnknownEndpoint, match="gradez"):
        ip.run_cell_magic("tm", "", "grade BTC\ngradez ETH\n")
    assert payments(s) == 0


def test_cell_magic_dry_run(ip, s):
    q = ip.run_cell_magic("tm", "--dry-run", "endpoint: price-prediction\nsymbol: [ETH]")
    assert isinstance(q, Quote) and payments(s) == 0


def test_cell_magic_empty_body(ip, s):
    with pytest.raises(MagicUsageError, match="empty"):
        ip.run_cell_magic("tm", "", "   \n# nothing\n")


def test_cell_magic_malformed_body(ip, s):
    with pytest.raises(MagicUsageError, match="cannot read"):
        ip.run_cell_magic("tm", "", "endpoint: tm-grade\nthis is not yaml\n")
    assert payments(s) == 0


def test_dollar_is_never_expanded(ip, s):
    ip.user_ns["x"] = "0.50"
    with pytest.raises(MagicUsageError, match="without '\\$'"):
        ip.run_line_magic("tm", "grade BTC --max-cost $x")


# -- bad input ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "line, exc, text",
    [
        ("grdae BTC", UnknownEndpoint, "did you mean grade"),
        ("grade BTC --stat 2026-01-01", MagicUsageError, "did you mean --start"),
        ("grade BTC --limit 2 --limit 3", MagicUsageError, "twice"),
        ("grade BTC --max-cost cheap", MagicUsageError, "number"),
        ("grade BTC --max-cost $0.05", MagicUsageError, "without '\\$'"),
        ("grade NOPECOIN", UnknownSymbol, "NOPECOIN"),
        ("grade BTC --pay-with eth", MagicUsageError, "usdc or tmai"),
    ],
)
def test_bad_input_is_a_clear_error_and_pays_nothing(ip, s, line, exc, text):
    with pytest.raises(exc, match=text):
        ip.run_line_magic("tm", line)
    assert payments(s) == 0


def test_errors_render_in_one_line_and_fail_the_cell(ip, s):
    with pytest.raises(TM402Error) as info:
        ip.run_cell("%tm grdae BTC")
    lines = info.value._render_traceback_()
    assert len(lines) == 1 and "UnknownEndpoint" in lines[0]


def test_short_errors_off_gives_the_traceback(ip, s):
    ip.run_line_magic("config", "TMMagics.short_errors = False")
    with pytest.raises(TM402Error) as info:
        ip.run_cell("%tm grdae BTC")
    assert len(info.value._render_traceback_()) > 3


def test_keyboard_interrupt_propagates_and_nothing_is_signed(ip, s, monkeypatch):
    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(s.client, "_resolve", interrupted)  # frame()'s symbol lookup
    with pytest.raises(KeyboardInterrupt):
        ip.run_line_magic("tm", "grade BTC")
    assert payments(s) == 0


# -- %config ------------------------------------------------------------------------------------
def test_config_traits_validate(ip, s, caplog, capsys):
    magics = ip.magics_manager.registry["TMMagics"]
    ip.run_line_magic("config", "TMMagics.feedback = 5")  # %config logs the TraitError and keeps the value
    ip.run_line_magic("config", "TMMagics.max_per_call = '$1'")
    assert magics.feedback == 1 and magics.max_per_call == "0.10"
    assert "feedback must be 0, 1 or 2" in caplog.text and "'$' sign" in caplog.text
    ip.run_line_magic("config", "TMMagics")  # prints every setting with its help
    assert "TMMagics.max_per_call" in capsys.readouterr().out


def test_pyproject_settings(ip, s, tmp_path):
    from tm402_nb.notebook.extension import apply_settings, project_settings

    (tmp_path / "pyproject.toml").write_text('[tool.tm402]\nmax_per_call = "0.05"\nfeedback = 2\nbudgt = 1\n')
    settings = project_settings(tmp_path)
    magics = ip.magics_manager.registry["TMMagics"]
    with pytest.warns(UserWarning, match="did you mean 'budget'"):
        apply_settings(magics, settings)
    assert magics.max_per_call == "0.05" and magics.feedback == 2
    bad = {"feedback": 9}
    with pytest.raises(ConfigurationError, match="feedback"):
        apply_settings(magics, bad)


def test_budget_hint_replaces_a_too_low_max_cost(ip, s):
    with pytest.raises(BudgetExceeded) as info:
        ip.run_line_magic("tm", "correlation BTC --max-cost 0.001")
    hint = str(info.value)
    assert "`%tm correlation BTC --max-cost 0.07`" in hint and hint.count("--max-cost") == 1


# -- an inserted value is one value, never a flag (issue 12) ------------------------------------------------


@pytest.mark.parametrize(
    "line, namespace",
    [
        ("grade {{coins}}", {"coins": "BTC --max-cost 5"}),
        ("grade {{coins}}", {"coins": ["BTC", "ETH --max-cost 5"]}),
        ("grade BTC {{flag}}", {"flag": "--max-cost"}),
        ("grade BTC {{flag}} 5", {"flag": "--max-cost"}),
        ("quote grade {{coins}}", {"coins": "BTC --pay-with tmai"}),
    ],
)
def test_a_template_value_never_becomes_a_flag(ip, s, line, namespace):
    from tm402_nb.notebook.parse import MagicUsageError, parse_line

    ip.user_ns.update(namespace)
    with pytest.raises(MagicUsageError, match="not a symbol"):
        parse_line(line, namespace)
    with pytest.raises(MagicUsageError, match="not a symbol"):
        ip.run_line_magic("tm", line)
    assert payments(s) == 0 and s.policy.max_per_call == 100_000


def test_a_template_value_in_a_cell_body_adds_no_line_or_key(ip, s):
    from tm402_nb.notebook.parse import MagicUsageError, parse_cell

    namespace = {"coins": "BTC\nendpoint: ai-reports", "more": "ETH]\nlimit: 100", "ok": ["BTC", "ETH"]}
    for name in ("coins", "more"):
        with pytest.raises(MagicUsageError, match="not a symbol"):
            parse_cell("", f"endpoint: tm-grade\nsymbol: [{{{{{name}}}}}]", namespace)
    _, (call,) = parse_cell("", "endpoint: tm-grade\nsymbol: [{{ok}}]", namespace)
    assert call.endpoint == "tm-grade" and call.symbols == ["BTC", "ETH"] and call.params == {}


def test_a_template_value_still_fills_flags_and_symbols(ip, s):
    from tm402_nb.notebook.parse import parse_line

    cmd = parse_line(
        "grade {{coins}} --start {{day}} --max-cost {{cap}}", {"coins": ["BTC", "ETH"], "day": "2026-10-01", "cap": 0.5}
    )
    assert cmd.symbols == ["BTC", "ETH"] and cmd.params["startDate"] == "2026-10-01" and cmd.max_cost == "0.5"
