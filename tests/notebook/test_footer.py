"""The per-cell cost footer: once under cells that made calls, never under the others."""

from __future__ import annotations

import pytest

from tests.notebook.shell import make_shell
from tm402_nb.errors import BudgetExceeded
from tm402_nb.notebook.footer import CostFooter
from tm402_nb.tokenmetrics.cost import GLOBAL_LISTENERS, CallCost, Cost


def footer_lines(text):
    return [line for line in text.splitlines() if line.startswith("tm402 · ")]


def test_footer_once_under_a_paid_cell(ip, s, capsys):
    ip.run_cell("%tm grade BTC ETH")
    out = capsys.readouterr().out
    (line,) = footer_lines(out)
    assert out.rstrip().endswith(line)  # below the result
    # The free calls say what they were: the token lists that turned BTC and ETH into ids.
    assert "SANDBOX" in line and "4 calls (1 paid, 3 free: symbol lookup) · 0.017 USDC" in line
    assert "base-sepolia" in line
    assert "tx 0x" in line and "session 0.017 USD" in line


def test_footer_for_assignment_and_cached_calls(ip, s, capsys):
    ip.run_cell("df = %tm grade BTC")
    ip.run_cell("df2 = %tm grade BTC")
    lines = footer_lines(capsys.readouterr().out)
    assert len(lines) == 2 and "1 cached" in lines[1] and "nothing paid" in lines[1]


def test_no_footer_without_calls(ip, s, capsys):
    ip.run_cell("x = 1 + 1")
    ip.run_cell("%tm endpoints")  # reads the catalogue: no call
    assert footer_lines(capsys.readouterr().out) == []


def test_footer_for_plain_client_code(ip, s, capsys):
    ip.run_cell('frame = s.client.frame("quantmetrics", symbol="BTC")')
    (line,) = footer_lines(capsys.readouterr().out)
    assert "0.068 USDC" in line


def test_footer_for_quote_cells(ip, s, capsys):
    ip.run_cell("%tm quote ai-reports BTC")
    (line,) = footer_lines(capsys.readouterr().out)
    assert "(4 free: 3 symbol lookups + 1 quote) · nothing paid" in line


def test_footer_still_shows_when_the_cell_fails_after_paying(ip, s, capsys):
    with pytest.raises(ZeroDivisionError):
        ip.run_cell("df = %tm grade SOL\n1 / 0")
    (line,) = footer_lines(capsys.readouterr().out)
    assert "1 paid" in line


def test_max_per_cell_refuses_the_payment_that_would_exceed_it(ip, s, capsys):
    ip.run_line_magic("config", "TMMagics.max_per_cell = 0.03")
    with pytest.raises(BudgetExceeded, match="cell cap") as info:
        ip.run_cell("a = %tm grade BTC\nb = %tm grade ETH")
    assert "TMMagics.max_per_cell" in str(info.value)
    # The hint names a cap that holds the cell's spending so far plus this call (0.034), never
    # one lower than the cap that just refused it.
    assert "TMMagics.max_per_cell = 0.04`" in str(info.value)
    assert len(s.ledger.payments()) == 1
    ip.run_cell("b = %tm grade ETH")  # a new cell, a new allowance
    assert len(s.ledger.payments()) == 2
    ip.run_line_magic("config", "TMMagics.max_per_cell = 0.04")  # the hint's cap lets the same cell through
    ip.run_cell("c = %tm grade SOL\nd = %tm grade ADA")
    assert len(s.ledger.payments()) == 4


def test_show_footer_off_and_feedback_zero(ip, s, capsys):
    ip.run_line_magic("config", "TMMagics.show_footer = False")
    ip.run_cell("%tm grade BTC")
    ip.run_line_magic("config", "TMMagics.show_footer = True")
    ip.run_line_magic("config", "TMMagics.feedback = 0")
    ip.run_cell("%tm grade ETH")
    assert footer_lines(capsys.readouterr().out) == []


def test_cell_id_is_recorded_on_calls(ip, s):
    ip.run_cell("%tm grade BTC", cell_id="cell-42")
    assert set(s.ledger.calls()["cell_id"].dropna()) == {"cell-42"}
    assert s.ledger.payments()["cell_id"].tolist() == ["cell-42"]


def test_html_and_text_forms():
    cost = Cost(
        "cell",
        [
            CallCost(
                "tm-grade",
                "u",
                None,
                200,
                paid=True,
                amount=17_000,
                asset="USDC",
                network="base-sepolia",
                tx="0x" + "ab" * 32,
            )
        ],
    )

    class FakeSession:
        mode, network, policy = "sandbox", "base-sepolia", object()

        def budget_text(self):
            return "0.017 USD of 1.00 USD budget"

    footer = CostFooter(cost, FakeSession())
    html = footer._repr_html_()
    assert "SANDBOX" in html and 'title="0x' + "ab" * 32 in html and "0.017 USDC" in html
    text = repr(footer)
    assert text.startswith("tm402 · SANDBOX · 1 call (1 paid) · 0.017 USDC") and "0xababab" in text
    live = CostFooter(cost, type("S", (), {"mode": "x402", "network": "base", "policy": None})())
    assert "SANDBOX" not in live._repr_html_() and "tm402 · x402" in repr(live)


def test_unload_removes_the_hook_and_load_twice_is_harmless():
    shell = make_shell()
    shell.run_line_magic("load_ext", "tm402_nb")
    shell.run_line_magic("reload_ext", "tm402_nb")
    pre = [f for f in shell.events.callbacks["post_run_cell"] if "CellTracker" in repr(f)]
    assert len(pre) == 1
    shell.run_line_magic("unload_ext", "tm402_nb")
    assert not [f for f in shell.events.callbacks["post_run_cell"] if "CellTracker" in repr(f)]
    assert "tm" not in shell.magics_manager.magics["line"]
    assert not [f for f in GLOBAL_LISTENERS if "CellTracker" in repr(f)]
    shell.run_line_magic("load_ext", "tm402_nb")  # and back, for the other tests


def test_footer_flags_a_payment_that_did_not_settle(ip, s, capsys):
    s.sandbox.set_faults(settle_failure=1)
    with pytest.raises(Exception, match="settlement failed"):
        ip.run_cell("%tm grade ADA")
    (line,) = footer_lines(capsys.readouterr().out)
    # Refused, so nothing was spent; but the signature is valid until it expires: reserved, apart.
    assert "1 refused" in line and "nothing paid" in line
    assert "0.017 USDC refused, not spent: reserved until" in line and "may still settle" in line
    assert "not settled" not in line and "see %tm ledger" not in line  # only for unknown outcomes


def test_footer_flags_a_receipt_that_disagrees_with_what_was_signed():
    from tm402_nb.notebook.footer import CostFooter
    from tm402_nb.tokenmetrics.cost import CallCost, Cost

    call = CallCost(
        "tm-grade",
        "u",
        None,
        200,
        paid=True,
        amount=17_000,
        asset="USDC",
        tx="0xabc",
        payment_status="settled",
        discrepancy="receipt names payer 0x1111",
    )
    footer = CostFooter(Cost(calls=[call]))
    assert "⚠ 1 receipt(s) disagree with what was signed" in repr(footer)
    assert "⚠ 1 receipt(s) disagree" in footer._repr_html_()


def test_footer_counts_a_payment_whose_answer_was_lost(lost_answer, capsys):
    (line,) = footer_lines(capsys.readouterr().out)
    assert "1 paid" in line and "0.017 USDC" in line and "1 payment(s) not settled" in line


# -- a 404 to a paid request is not a lost payment (issue 12) ---------------------------------------------


@pytest.fixture
def shown(monkeypatch):
    """The footers the cells display, as objects (for their HTML form)."""
    import IPython.display

    seen: list[CostFooter] = []
    display = IPython.display.display

    def capture(*objs, **kw):
        seen.extend(o for o in objs if isinstance(o, CostFooter))
        return display(*objs, **kw)

    monkeypatch.setattr(IPython.display, "display", capture)
    return seen


@pytest.mark.parametrize(
    "line",
    [
        "%tm grade --param token_id=999999",  # a token with no data
        "%tm ohlcv BTC --start 2018-01-01 --end 2018-01-05",  # dates before the data starts
    ],
)
def test_a_404_to_a_paid_request_is_reserved_then_released_not_lost(ip, s, capsys, shown, line):
    import time

    from tm402_nb.status import may_settle_until
    from tm402_nb.tokenmetrics.errors import DataNotFound

    with pytest.raises(DataNotFound, match="Data not found"):
        ip.run_cell(line)
    (text,) = footer_lines(capsys.readouterr().out)
    (row,) = s.ledger.payments().itertuples()
    assert row.status == "failed" and row.amount == 0.017 and row.reserved  # the ledger's failed · 0.017 row
    until = time.strftime("%H:%M UTC", time.gmtime(may_settle_until(row.valid_before)))
    # Nothing spent for it; the signed authorization reserved until it expires, then released.
    assert "1 refused" in text and "nothing paid" in text and "paid," not in text
    assert f"0.017 USDC refused (HTTP 404), not spent: reserved until {until} (may still settle until then), " in text
    assert "then released" in text
    assert "session 0.00 USD + 0.017 USD reserved of 1.00 USD budget" in text
    # Not the words for a payment whose outcome is unknown.
    assert "not settled" not in text and "see %tm ledger" not in text and "unknown" not in text
    (footer,) = shown
    html = footer._repr_html_()
    assert f"0.017 USDC refused (HTTP 404), not spent: reserved until {until}" in html
    assert "not settled" not in html and 'title="The server refused this payment (nothing was spent)' in html


def _refused(amount=17_000, *, until, status=404, asset="USDC", decimals=6):
    return CallCost(
        "tm-grade",
        "u",
        None,
        status,
        amount=amount,
        asset=asset,
        decimals=decimals,
        network="base-sepolia",
        payment_status="failed",
        reserved_until=until,
    )


def test_spent_reserved_and_released_are_told_apart():
    import time

    now = time.time()
    settled = CallCost(
        "tm-grade", "u", None, 200, paid=True, amount=17_000, asset="USDC", tx="0xabc", payment_status="settled"
    )
    lost = CallCost("tm-grade", "u", None, None, paid=True, amount=34_000, asset="USDC", payment_status="unknown")
    cost = Cost(
        "cell",
        [
            settled,
            lost,
            _refused(until=now + 600),
            _refused(68_000, until=now + 300),
            _refused(until=now - 60),  # its authorization expired: released
            _refused(until=now - 120, status=None),  # a refused settlement (no answer body)
        ],
    )
    assert (cost.n_paid, cost.n_refused, cost.n_free) == (2, 4, 0)
    footer = CostFooter(cost)
    text = repr(footer)
    assert "6 calls (2 paid, 4 refused) · 0.051 USDC" in text  # spent: settled + perhaps settled
    assert "1 payment(s) not settled, outcome unknown — see %tm ledger" in text  # only the unknown one
    until = time.strftime("%H:%M UTC", time.gmtime(now + 600))
    assert f"0.085 USDC refused (HTTP 404), not spent: reserved until {until} (may still settle" in text
    expired = time.strftime("%H:%M UTC", time.gmtime(now - 60))
    assert f"0.034 USDC refused (HTTP 404), not spent: released (expired {expired})" in text
    html = footer._repr_html_()
    assert 'title="The server refused this payment and its authorization has expired' in html
    # The same cost, seen once every authorization has expired: all released, none reserved.
    later = cost.reserved_text(now + 3600), cost.released_text(now + 3600)
    assert later[0] is None and later[1] is not None and later[1].startswith("0.119 USDC refused (HTTP 404)")


def test_a_footer_shown_after_the_authorization_expired_says_released(monkeypatch):
    import time

    from tm402_nb.notebook import footer as footer_module

    now = time.time()
    cost = Cost("cell", [_refused(until=now + 330)])
    assert "reserved until" in repr(CostFooter(cost)) and "released (expired" not in repr(CostFooter(cost))
    monkeypatch.setattr(footer_module, "_now", lambda: now + 331)  # a cell that ran past the expiry
    text = repr(CostFooter(cost))
    assert "0.017 USDC refused (HTTP 404), not spent: released (expired" in text and "reserved until" not in text


def test_released_payments_are_summed_not_kept_one_by_one():
    import time

    now = time.time()
    cost = Cost("session", keep=10)
    for i in range(500):
        cost.add(_refused(until=now - 1 - i))
    assert len(cost._reserved) == 0 and cost.n_refused == 500
    assert cost.released_text().startswith("8.50 USDC refused (HTTP 404), not spent: released")


# -- what free calls were (issue 15, item 5) ---------------------------------------------------------------


def _free(endpoint, status=200):
    return CallCost(endpoint, "u", None, status)


def test_free_calls_say_what_they_were():
    lookups = [_free("tokens"), _free("top-market-cap-tokens"), _free("top-market-cap-tokens")]
    paid = CallCost("tm-grade", "u", None, 200, paid=True, amount=17_000, asset="USDC")
    assert Cost("c", [*lookups, paid]).summary() == "4 calls (1 paid, 3 free: symbol lookup) · 0.017 USDC"
    assert Cost("c", [_free("ai-reports", 402)]).summary() == "1 call (1 free: quote) · nothing paid"
    mixed = Cost("c", [*lookups, _free("ai-reports", 402), _free("price"), _free("tm-grade", None)])
    assert mixed.free_kinds == {"symbol lookup": 3, "quote": 1, "price": 1, "failed": 1}
    assert mixed.summary() == "6 calls (6 free: 3 symbol lookups + 1 failed + 1 price + 1 quote) · nothing paid"
    # Paid, cached and refused calls are not free, and say so as before.
    cached = CallCost("tm-grade", "u", None, 200, cached=True)
    refused = CallCost("tm-grade", "u", None, 404, amount=17_000, asset="USDC", payment_status="failed")
    assert Cost("c", [cached, refused]).summary() == "2 calls (1 cached, 1 refused) · nothing paid"


def test_a_second_call_in_the_session_makes_no_lookup(ip, s, capsys):
    ip.run_cell("%tm grade BTC")
    ip.run_cell("%tm quantmetrics BTC")  # BTC's id is known now: one paid call, nothing free
    first, second = footer_lines(capsys.readouterr().out)
    assert "free: symbol lookup" in first and "1 call (1 paid) · 0.068 USDC" in second


# -- a footer that fits every theme (issue 15, item 2) ---------------------------------------------------------


def _styles(html_text):
    import re

    return [dict(d.split(":", 1) for d in style.split(";") if d) for style in re.findall(r'style="([^"]*)"', html_text)]


def _paid_footer(mode="sandbox"):
    cost = Cost(
        "cell", [CallCost("tm-grade", "u", None, 200, paid=True, amount=17_000, asset="USDC", tx="0x" + "ab" * 32)]
    )
    return CostFooter(cost, type("S", (), {"mode": mode, "network": "base-sepolia", "policy": None})())


def test_the_footer_takes_its_colours_from_the_theme():
    box, badge, code = _styles(_paid_footer()._repr_html_())[:3]
    # Text in the theme's body-text colour, the host's own where there is no JupyterLab theme.
    assert box["color"] == "var(--jp-ui-font-color1,currentColor)"
    assert box["border-top"].endswith("var(--jp-border-color2,rgba(128,128,128,.4))")
    assert badge["background"] == "var(--jp-warn-color0,#e65100)" and badge["color"] == "#000"
    assert code["color"] == "inherit" and code["background"] == "none"
    html_text = _paid_footer()._repr_html_()
    for fixed in ("#555", "#ddd", "color:white", "#b45309"):  # the old fixed colours (2.53:1 on dark)
        assert fixed not in html_text


def _px(size):
    import re

    return [float(n) for n in re.findall(r"(\d+(?:\.\d+)?)px", size)]


def test_footer_text_is_at_least_12px_badge_included():
    box, badge = _styles(_paid_footer()._repr_html_())[:2]
    assert box["font-size"].startswith("max(12px,") and min(_px(box["font-size"])) >= 12
    assert min(_px(badge["font-size"])) >= 12


def _luminance(hex_colour):
    rgb = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def _contrast(a, b):
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


@pytest.mark.parametrize(
    "theme, warn_color0",
    [("light", "#e65100"), ("dark", "#f57c00"), ("no theme (fallback)", "#e65100")],  # JupyterLab 4's values
)
def test_the_sandbox_badge_meets_aa_in_every_theme(theme, warn_color0):
    assert _contrast("#000000", warn_color0) >= 4.5  # black on the theme's warning colour
    assert _contrast("#ffffff", warn_color0) < 4.5  # (why not white: 3.8:1 on light)


def test_the_plain_text_form_is_unchanged_in_substance():
    text = repr(_paid_footer())
    assert text.startswith("tm402 · SANDBOX · 1 call (1 paid) · 0.017 USDC · tx 0xabababab…abab · ")
    assert text.endswith(" · base-sepolia") and "<" not in text
