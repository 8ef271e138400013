"""Reserve, then pay: a call's whole plan is held against every cap before its first payment,
its payments draw on that reservation, and what it did not use goes back (issue 12)."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest

from tests.tokenmetrics.conftest import make_client
from tm402_nb.errors import BudgetExceeded, NotConfirmed
from tm402_nb.sandbox.assets import SANDBOX_TMAI_BASE_SEPOLIA
from tm402_nb.tokenmetrics.catalogue import get_endpoint
from tm402_nb.tokenmetrics.client import AsyncClient
from tm402_nb.tokenmetrics.options import CallOptions
from tm402_nb.tokenmetrics.paging import page_wire
from tm402_nb.tokenmetrics.plan import plan_call
from tm402_nb.x402 import SpendPolicy

# 3 × 304 rows. In windows of 29 days (the default since issue 13; it was one 365-day window of 10 pages):
# 11 windows of 87 rows, one page each, so 11 calls, exactly.
THREE = dict(token_id=[3375, 3306, 3988], startDate=date(2025, 1, 1), endDate=date(2025, 10, 31))


def n_paid(ledger) -> int:
    return len(ledger.payments())


def test_the_quote_counts_every_page_and_the_run_pays_no_more(sandbox, funded, ledger):
    c = make_client(sandbox, funded, ledger)
    q = c.quote("daily-ohlcv", **THREE)
    assert q.calls == 11 and q.exact and q.total == 11 * q.per_call
    assert "11 calls" in repr(q)
    c.frame("daily-ohlcv", **THREE)
    assert 1 <= n_paid(ledger) <= q.calls
    assert c.auth.policy.held_usd() == 0  # the unused part of the reservation went back


def test_a_budget_that_cannot_hold_the_plan_refuses_it_before_anything_is_signed(sandbox, funded, ledger):
    """The issue's case: a 0.05 budget paid 0.034 of a many-call request, then refused, returning nothing."""
    c = make_client(sandbox, funded, ledger, policy=SpendPolicy(budget="0.05"))
    with pytest.raises(BudgetExceeded) as info:
        c.frame("daily-ohlcv", **THREE)
    msg = str(info.value)
    assert "11 paid calls × 0.017 USDC = 0.187 USDC" in msg and "session budget 0.05 USD" in msg
    assert "budget=0.19" in info.value.hint and "nothing was signed" in info.value.hint
    assert n_paid(ledger) == 0 and sandbox.settlements(payer=funded.address) == []
    assert c.auth.policy.spent_usd() == 0 and c.auth.policy.held_usd() == 0
    # The amount the hint names is enough: the plan's payments draw on its own reservation.
    c.auth.policy.set_budget("0.19")
    c.frame("daily-ohlcv", **THREE)
    assert 1 <= n_paid(ledger) <= 11


def test_max_cost_is_the_whole_calls_limit(sandbox, funded, ledger):
    c = make_client(sandbox, funded, ledger)
    with pytest.raises(BudgetExceeded, match=r"max_cost is 0\.10 USD") as info:
        c.frame("daily-ohlcv", max_cost="0.10", **THREE)
    assert info.value.details["setting"] == "max_cost" and n_paid(ledger) == 0
    c.frame("daily-ohlcv", max_cost="0.187", **THREE)
    paid = ledger.payments()
    assert 1 <= len(paid) <= 11 and paid["amount_atomic"].astype(int).sum() <= 187_000


def test_max_cost_holds_for_a_single_call_too(sandbox, funded, ledger):
    c = make_client(sandbox, funded, ledger)
    with pytest.raises(BudgetExceeded, match="max_cost"):
        c.frame("ai-reports", token_id=3375, max_cost="0.05")  # 0.068 a call
    assert n_paid(ledger) == 0


def test_two_plans_in_flight_cannot_both_be_promised_the_same_budget(sandbox, funded, ledger):
    """The second plan sees what the first holds, not only what it has paid so far."""
    policy = SpendPolicy(budget="0.20")
    c = make_client(sandbox, funded, ledger, policy=policy)
    ep = get_endpoint("daily-ohlcv")
    plan = plan_call(ep, {**THREE})
    required = c._challenge(ep, page_wire(plan.requests[0]), CallOptions())
    first = policy.reserve(policy.select(required), plan.calls)  # another call's plan, in flight
    assert policy.held_usd() == 187_000
    try:
        with pytest.raises(BudgetExceeded, match="session budget"):
            c.frame("daily-ohlcv", **THREE)
        assert n_paid(ledger) == 0
    finally:
        first.close()
    c.frame("daily-ohlcv", **THREE)  # once the first plan gave its hold back, the second fits
    assert n_paid(ledger) >= 1


def test_confirm_above_asks_and_a_no_pays_nothing(sandbox, funded, ledger):
    asked = []
    c = make_client(sandbox, funded, ledger, confirm_above="0.05", confirm=lambda q: asked.append(q) or False)
    with pytest.raises(NotConfirmed, match="declined"):
        c.frame("daily-ohlcv", **THREE)
    assert [q.calls for q in asked] == [11] and n_paid(ledger) == 0 and c.auth.policy.held_usd() == 0
    c.confirm = lambda q: True
    c.frame("daily-ohlcv", **THREE)
    assert n_paid(ledger) >= 1
    c.frame("tm-grade", token_id=3375)  # one call under the threshold is not asked about
    assert len(asked) == 1


def test_confirm_above_without_anyone_to_ask_refuses(sandbox, funded, ledger):
    c = make_client(sandbox, funded, ledger, confirm_above="0.05")
    with pytest.raises(NotConfirmed, match="no one to ask"):
        c.frame("daily-ohlcv", **THREE)
    assert n_paid(ledger) == 0


def test_tmai_payments_count_against_the_usd_budget(sandbox, funded, ledger):
    """Regression: four 1.53 TMAI payments went through a 0.01 USDC budget."""
    sandbox.fund(funded.address, "tmai", "100")
    policy = SpendPolicy(budget="0.03", pay_with="tmai", extra_assets=[SANDBOX_TMAI_BASE_SEPOLIA])
    c = make_client(sandbox, funded, ledger, policy=policy, pay_with="tmai")
    c.frame("tm-grade", token_id=3375)
    assert policy.spent_usd() == 17_000  # valued at the same call's USDC price
    with pytest.raises(BudgetExceeded, match="session budget"):
        c.frame("tm-grade", token_id=3306)
    with pytest.raises(BudgetExceeded, match="session budget"):
        c.frame("daily-ohlcv", **THREE)
    assert list(ledger.payments()["asset_symbol"]) == ["TMAI"]


def test_the_async_client_reserves_alike(sandbox, funded, ledger):
    async def main():
        async with make_client(sandbox, funded, ledger, cls=AsyncClient, policy=SpendPolicy(budget="0.05")) as c:
            with pytest.raises(BudgetExceeded, match="11 paid calls"):
                await c.frame("daily-ohlcv", **THREE)
            return c.auth.policy.held_usd()

    assert asyncio.run(main()) == 0 and n_paid(ledger) == 0


def test_a_quote_reads_the_daily_cap_from_the_ledger_as_the_run_does(sandbox, funded, ledger):
    """A daily cap made every quote fail ("a daily cap needs a ledger") although the client has one."""
    c = make_client(sandbox, funded, ledger, policy=SpendPolicy(daily_cap="0.20"))
    q = c.quote("daily-ohlcv", **THREE)
    assert q.calls == 11 and q.refused is None  # 0.187 fits 0.20
    c.frame("tm-grade", token_id=[3375])  # 0.017 spent today
    refused = c.quote("daily-ohlcv", **THREE).refused
    assert refused is not None and "daily" in refused
    with pytest.raises(BudgetExceeded):
        c.frame("daily-ohlcv", **THREE)
    assert n_paid(ledger) == 1
