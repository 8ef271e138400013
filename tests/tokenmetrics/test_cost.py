"""Cost accounting: exact running totals, bounded memory for long sessions."""

from __future__ import annotations

from decimal import Decimal

from tm402_nb.tokenmetrics.cost import SESSION_CALLS_KEPT, CallCost, Cost, CostTracker


def paid(n: int, asset: str = "USDC", decimals: int = 6) -> CallCost:
    return CallCost(
        "tm-grade",
        "u",
        None,
        200,
        paid=True,
        amount=n,
        asset=asset,
        decimals=decimals,
        network="base-sepolia",
        tx=f"0x{n:064x}",
    )


def test_totals_are_exact_per_asset():
    cost = Cost(
        "x",
        [paid(17_000), paid(34_000), paid(153 * 10**16, "TMAI", 18), CallCost("tm-grade", "u", None, 200, cached=True)],
    )
    assert cost.amounts() == {"USDC": Decimal("0.051"), "TMAI": Decimal("1.53")}
    assert (cost.n_calls, cost.n_paid, cost.n_cached, cost.n_free) == (4, 3, 1, 0)
    assert cost.summary() == "4 calls (3 paid, 1 cached) · 1.53 TMAI + 0.051 USDC"


def test_a_long_session_keeps_exact_totals_but_bounded_memory():
    tracker = CostTracker()
    for _i in range(SESSION_CALLS_KEPT + 500):
        tracker.record(paid(10))
    total = tracker.total
    assert total.n_paid == SESSION_CALLS_KEPT + 500
    assert total.amounts() == {"USDC": Decimal(10 * (SESSION_CALLS_KEPT + 500)).scaleb(-6).normalize()}
    assert len(total.calls) == SESSION_CALLS_KEPT and len(total.receipts) == SESSION_CALLS_KEPT


def test_tallies_see_only_their_calls():
    tracker = CostTracker()
    tracker.record(paid(1))
    with tracker.tally("cell") as cell:
        tracker.record(paid(2))
    tracker.record(paid(3))
    assert cell.n_calls == 1 and cell.amounts() == {"USDC": Decimal("0.000002")}
    assert tracker.total.n_calls == 3
