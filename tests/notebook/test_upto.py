"""A notebook session paying the TMAI agent ``upto``, end to end against the sandbox.

The sandbox (``agent_scheme="upto"``, x402 v2) offers ``POST /v2/tmai`` at its tier price as a
Permit2 ceiling and settles the answer's share of it. After the call the budget counts what
settled, the ledger row keeps the ceiling and the settled amount side by side, and the cell's
footer says both.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

import tm402_nb as tm
from tm402_nb.errors import BudgetExceeded, PaymentRefused

from .test_footer import footer_lines

QUESTION = "Which tokens look strongest this week?"
CEILING = 68_000  # the agent's tier price, 0.068 USDC


@pytest.fixture
def s(ip, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    session = tm.connect(
        mode="sandbox",
        sandbox_options={"x402_version": 2, "agent_scheme": "upto"},
        ledger=tmp_path / "ledger.sqlite3",  # this test's payments only
        budget="0.10",
        progress=False,
    )
    ip.user_ns["s"] = session
    yield session
    session.close()
    ip.user_ns.pop("s", None)
    ip.user_ns.pop("a", None)


def test_an_upto_agent_call_counts_what_settled(ip, s, capsys):
    ip.run_cell(f"a = s.client.ask({QUESTION!r})")
    (line,) = footer_lines(capsys.readouterr().out)
    settlement = s.sandbox.settlements()[-1]
    settled = int(settlement["amount"])
    assert 0 < settled < CEILING and settlement["path"] == "/v2/tmai"
    # The budget reflects the settled amount, not the ceiling.
    assert s.spent == Decimal(settled).scaleb(-6)
    assert s.budget_text().startswith(f"{Decimal(settled).scaleb(-6)} USD of 0.10 USD")
    # The ledger row: the ceiling signed, the amount settled, counted as settled.
    (row,) = s.ledger.payment_rows()
    assert row["scheme"] == "upto" and row["transfer"] == "permit2" and row["status"] == "settled"
    assert int(row["amount"]) == CEILING and int(row["settled_amount"]) == settled
    assert s.ledger.spent_usd() == settled
    frame = s.ledger.payments()
    assert frame["settled"].iloc[0] == pytest.approx(settled / 1e6)
    # The footer: what settled, of up to the ceiling.
    paid = f"{Decimal(settled).scaleb(-6)} USDC (of up to 0.068)"
    assert f"1 call (1 paid) · {paid}" in line and settlement["tx"][:10] in line
    assert ip.user_ns["a"].cost["amount"] == {"USDC": str(Decimal(settled).scaleb(-6))}


def test_the_given_back_part_pays_the_next_call(ip, s, capsys):
    # 0.10 holds one 0.068 ceiling; the second call fits only because the first settled less.
    s.client.ask(QUESTION)
    s.client.ask("And which look weakest?")
    assert len(s.ledger.payment_rows()) == 2
    assert s.spent < Decimal("0.068")


def test_a_ceiling_over_the_budget_is_refused_unsigned(ip, s, capsys):
    s.policy.set_budget("0.05")  # the answer would cost less, but the ceiling is 0.068
    with pytest.raises(BudgetExceeded, match=r"up to 0\.068 USDC") as info:
        s.client.ask(QUESTION)
    assert "nothing was signed" in info.value.hint
    assert s.ledger.payment_rows() == [] and s.sandbox.settlements() == []
    assert s.spent == 0


def test_a_session_that_pays_only_exact_refuses_the_upto_agent(tmp_path):
    with tm.connect(
        mode="sandbox",
        sandbox_options={"x402_version": 2, "agent_scheme": "upto"},
        ledger=tmp_path / "ledger.sqlite3",
        schemes=("exact",),
        progress=False,
    ) as session:
        with pytest.raises(PaymentRefused, match="this policy pays exact"):
            session.client.ask(QUESTION)
        assert session.ledger.payment_rows() == [] and session.spent == 0
