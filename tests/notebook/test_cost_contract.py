"""Cost is a contract (issue 12), where a notebook user meets it: ``%tm`` in a real IPython shell.

A request's plan (windows × id batches × pages) is its quote, reserved against every cap before
the first payment; a cap that cannot hold it refuses with nothing paid and a hint the user can
type; ``max_per_cell`` holds per run of a cell, from the cell that opens the session on;
``confirm_above`` asks (or refuses where no one can answer); ``--pages`` bounds what the data's
size cannot. (``{{var}}`` carrying a flag stays one value: test_magics.py covers it.)
"""

from __future__ import annotations

import io
import re
import warnings
from decimal import Decimal

import pytest

import tm402_nb as tm
from tests.notebook.shell import reset_magics
from tm402_nb.errors import BudgetExceeded, NotConfirmed
from tm402_nb.notebook.parse import MagicUsageError
from tm402_nb.session import CONFIGURED, current_session
from tm402_nb.tokenmetrics.client import MoreRowsWarning, Quote

#: Three tokens × ten months of daily candles: 11 windows of 29 days (the default since issue 13), a page
#: each (it was one 365-day window of 10 pages).
OHLCV = "ohlcv BTC ETH SOL --start 2026-01-01 --end 2026-10-31"
#: Its quote: 11 calls × 0.017 USDC (a history's tier).
OHLCV_CALLS, PRICE = 11, Decimal("0.017")
#: Settings a test here may change, put back after it (confirm_above is not in shell.SETTINGS).
EXTRA_SETTINGS = ("confirm_above",)


def _reset(ip) -> None:
    reset_magics(ip)
    magics = ip.magics_manager.registry["TMMagics"]
    for name in EXTRA_SETTINGS:
        magics.set_trait(name, magics.trait_defaults(name))
    magics._explicit.clear()
    CONFIGURED.clear()
    for name in ("a", "b", "c", "df", "q"):
        ip.user_ns.pop(name, None)


def _close_current() -> None:
    current = current_session()
    if current is not None:
        current.close()


@pytest.fixture
def fresh(ip, tmp_path, monkeypatch):
    """No session open and default settings: the first ``%tm`` opens one."""
    monkeypatch.chdir(tmp_path)
    _close_current()
    _reset(ip)
    yield
    _close_current()
    _reset(ip)


@pytest.fixture
def s(fresh):
    """A fresh sandbox session (its own ledger under the test's TM402_HOME)."""
    return tm.connect(mode="sandbox")


def paid_rows(session):
    frame = session.ledger.payments()
    return frame[frame["status"] == "settled"]


def paid_total(session) -> Decimal:
    return sum((Decimal(str(v)) for v in paid_rows(session)["amount"]), Decimal(0))


def hint_line(exc: BaseException) -> str:
    """The line the hint asks the user to type, between backticks."""
    found = re.search(r"`([^`]+)`", str(exc))
    assert found, str(exc)
    return found.group(1)


# -- 1. a plan the budget cannot hold is refused before its first payment ---------------------------------


def test_a_budget_that_cannot_hold_the_plan_refuses_it_before_paying(ip, s):
    ip.run_line_magic("tm", "grade BTC")  # something spent already: the hint must count it
    ip.run_line_magic("tm", "budget 0.10")
    spent, payments = s.budget_text(), len(s.ledger.payments())
    with pytest.raises(BudgetExceeded) as info:
        ip.run_cell(f"df = %tm {OHLCV}")
    message = str(info.value)
    # The plan (calls × price) and the cap it does not fit.
    assert f"{OHLCV_CALLS} paid calls × 0.017 USDC = 0.187 USDC" in message
    assert "0.083 USD is left of the session budget 0.10 USD" in message
    # Refused before the first payment: nothing signed, nothing counted, nothing held.
    assert len(s.ledger.payments()) == payments and s.budget_text() == spent
    assert s.policy.held_usd() == 0 and "df" not in ip.user_ns
    # The hint is the %tm budget line, with an amount that holds what was spent plus the plan.
    assert hint_line(info.value) == "%tm budget 0.21"  # 0.017 spent + 0.187 planned, up to the cent


#: x402/policy.py: SpendPolicy.select() screens each payment against the caps with
#: ``_refusal(offer, 1, usd_per_call=...)`` and no ``reservation=``, so ``_limits`` subtracts the
#: plan's *own* reservation from every cap: a plan that leaves less than one call's price of a cap
#: free is reserved, then refused at its first payment ("server asks 0.017 USDC on base-sepolia;
#: 0.003 USD is left of the session budget 0.19 USD"). authorize() passes the reservation; select()
#: does not. Nothing is paid, but the hint's amount does not let the request through.
@pytest.mark.parametrize("spent_before", [False, True], ids=["fresh", "after-one-payment"])
def test_the_budget_hint_lets_the_plan_through(ip, s, spent_before):
    if spent_before:
        ip.run_line_magic("tm", "grade BTC")
    ip.run_line_magic("tm", "budget 0.10")
    with pytest.raises(BudgetExceeded) as info:
        ip.run_line_magic("tm", OHLCV)
    line = hint_line(info.value)
    assert line.startswith("%tm budget ")
    ip.run_line_magic(*line[1:].split(" ", 1))  # exactly what the hint says
    df = ip.run_line_magic("tm", OHLCV)
    assert len(df) == 3 * 304 and 1 <= df.attrs["tm402"]["paid"] <= OHLCV_CALLS
    assert paid_total(s) <= Decimal(line.split()[-1])


# -- 2. --max-cost is the most the whole request may pay --------------------------------------------------


def test_max_cost_below_the_quote_refuses_with_the_flag_that_allows_it(ip, s):
    with pytest.raises(BudgetExceeded) as info:
        ip.run_line_magic("tm", f"{OHLCV} --max-cost 0.05")
    assert "max_cost is 0.05 USD" in str(info.value) and "0.187 USDC" in str(info.value)
    assert s.ledger.payments().empty
    line = hint_line(info.value)
    assert line == f"%tm {OHLCV} --max-cost 0.19" and str(info.value).count("--max-cost") == 1
    df = ip.run_line_magic(*line[1:].split(" ", 1))
    assert len(df) == 3 * 304
    assert 1 <= len(paid_rows(s)) <= OHLCV_CALLS and paid_total(s) <= Decimal("0.187")


def test_max_cost_above_the_quote_pays_no_more_than_it(ip, s):
    df = ip.run_line_magic("tm", f"{OHLCV} --max-cost 0.25")
    assert len(df) == 3 * 304 and df.attrs["tm402"]["paid"] >= 1
    assert paid_total(s) <= Decimal("0.25") and paid_total(s) <= OHLCV_CALLS * PRICE


# -- 3. max_per_cell holds per run of a cell, from the cell that opens the session on ---------------------


def test_max_per_cell_holds_in_the_cell_that_opens_the_session(ip, fresh):
    assert current_session() is None
    ip.run_line_magic("config", "TMMagics.max_per_cell = 0.02")
    with pytest.raises(BudgetExceeded, match="per-cell cap") as info:
        ip.run_cell("a = %tm grade BTC\nb = %tm grade ETH")
    s = current_session()
    assert s is not None and s.mode == "sandbox"  # the cell opened it
    assert len(s.ledger.payments()) == 1 and "b" not in ip.user_ns
    assert "TMMagics.max_per_cell = 0.04" in str(info.value)


def test_max_per_cell_holds_in_a_cell_that_connects(ip, s):
    ip.run_line_magic("config", "TMMagics.max_per_cell = 0.02")
    with pytest.raises(BudgetExceeded, match="per-cell cap"):
        ip.run_cell("%tm connect sandbox\na = %tm grade BTC\nb = %tm grade ETH")
    new = current_session()
    assert new is not None and new is not s and s.closed
    assert len(new.ledger.payments()) == 1 and new.max_per_cell == Decimal("0.02")


def test_a_cell_run_twice_gets_its_cap_twice(ip, s):
    ip.run_line_magic("config", "TMMagics.max_per_cell = 0.02")
    ip.run_line_magic("config", "TMMagics.cache_ttl = 0")  # each run pays again
    for _ in range(2):
        ip.run_cell("a = %tm grade BTC", cell_id="same-cell")
    assert len(paid_rows(s)) == 2
    assert set(s.ledger.payments()["cell_id"]) == {"same-cell"}
    with pytest.raises(BudgetExceeded, match="per-cell cap"):  # within one run the cap still holds
        ip.run_cell("a = %tm grade BTC\nb = %tm grade ETH", cell_id="same-cell")
    assert len(paid_rows(s)) == 3


# -- 4. confirm_above asks, or refuses where no one can answer ----------------------------------------


def test_confirm_above_refuses_where_no_one_can_answer(ip, s):
    ip.run_line_magic("config", "TMMagics.confirm_above = 0.05")

    def no_input(prompt=""):  # pragma: no cover - must never be reached
        raise AssertionError("asked for input where no one can answer")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("builtins.input", no_input)
        mp.setattr("sys.stdin", io.StringIO())  # piped, not a terminal, even under `pytest -s`
        with pytest.raises(NotConfirmed) as info:
            ip.run_line_magic("tm", OHLCV)
    assert "0.187 USDC" in str(info.value) and f"{OHLCV_CALLS} call(s)" in str(info.value)
    assert s.ledger.payments().empty and s.policy.held_usd() == 0
    ip.run_line_magic("tm", "grade BTC")  # under the threshold: runs unasked
    assert len(paid_rows(s)) == 1


@pytest.mark.parametrize("answer, pays", [("y", True), ("n", False), ("", False), ("yes", True)])
def test_confirm_above_asks_and_only_yes_pays(ip, s, monkeypatch, answer, pays):
    from tm402_nb.session import confirm  # the module (tm402_nb.session is the function)

    prompts: list[str] = []

    def answering(prompt=""):
        prompts.append(prompt)
        return answer

    monkeypatch.setattr(confirm, "_in_kernel", lambda: True)
    monkeypatch.setattr("builtins.input", answering)
    ip.run_line_magic("config", "TMMagics.confirm_above = 0.05")
    if pays:
        df = ip.run_line_magic("tm", OHLCV)
        assert len(df) == 3 * 304 and 1 <= len(paid_rows(s)) <= OHLCV_CALLS
    else:
        with pytest.raises(NotConfirmed, match="declined"):
            ip.run_line_magic("tm", OHLCV)
        assert s.ledger.payments().empty and s.policy.held_usd() == 0
    (prompt,) = prompts
    assert "0.187 USDC" in prompt and f"{OHLCV_CALLS} call(s)" in prompt and "daily-ohlcv" in prompt


# -- 5. --pages bounds what the data's size cannot --------------------------------------------------------


def test_an_unbounded_request_reads_one_page_and_says_more_rows_exist(ip, s, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("error", MoreRowsWarning)  # said in the magic's terms, not as a warning
        df = ip.run_line_magic("tm", "grade")
    assert len(df) == 100 and len(paid_rows(s)) == 1 and df.attrs["tm402"]["more"]
    said = capsys.readouterr().err
    assert "100 rows from the first 1 page(s); more rows may exist (--pages 2 or more reads further" in said


def test_pages_asks_for_more(ip, s, capsys):
    df = ip.run_line_magic("tm", "grade --pages 2")
    assert len(df) == 200 and len(paid_rows(s)) == 2
    assert "--pages 3 or more" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["0", "x", "-1", "1.5"])
def test_a_bad_page_count_is_a_clear_error_and_pays_nothing(ip, s, bad):
    with pytest.raises(MagicUsageError, match="--pages must be a whole number of pages ≥ 1"):
        ip.run_line_magic("tm", f"grade --pages {bad}")
    assert s.ledger.payments().empty and s.ledger.calls().empty


# -- 6. %tm quote is what the run then pays, at most -------------------------------------------------


@pytest.mark.parametrize(
    "line, exact",
    [(OHLCV, True), ("grade BTC ETH", True), ("grade --pages 2", False)],  # OHLCV: a page per window
)
def test_quote_is_what_the_run_pays_at_most(ip, s, capsys, line, exact):
    ip.run_cell(f"%tm quote {line}")
    shown = capsys.readouterr().out
    q = ip.run_line_magic("tm", f"quote {line}")
    assert isinstance(q, Quote) and q.exact is exact
    assert f"{q.calls} call" in shown and q.total_text in shown  # what the cell showed
    assert s.ledger.payments().empty
    df = ip.run_line_magic("tm", line)
    paid = paid_rows(s)
    assert df.attrs["tm402"]["planned_calls"] == q.calls
    assert 1 <= len(paid) <= q.calls and paid_total(s) <= Decimal(q.total).scaleb(-q.decimals)
    if q.exact or line.endswith("--pages 2"):  # two full pages of a few hundred tokens: both paid
        assert len(paid) == q.calls and paid_total(s) == Decimal(q.total).scaleb(-q.decimals)
