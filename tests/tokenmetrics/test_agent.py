"""TMAI, the AI agent (``POST /v2/tmai``): in the catalogue, the client (sync and async), the magic
and the sandbox; paid like any call, under the same caps (issue 13)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.tokenmetrics.conftest import make_client
from tm402_nb.errors import BudgetExceeded
from tm402_nb.tokenmetrics.agent import MAX_QUESTION, AgentAnswer
from tm402_nb.tokenmetrics.catalogue import get_endpoint
from tm402_nb.tokenmetrics.client import AsyncClient
from tm402_nb.tokenmetrics.errors import ParamError
from tm402_nb.x402 import SpendPolicy

QUESTION = "Which layer-1 tokens look strongest this week?"


def test_the_catalogue_knows_the_agent_once():
    ep = get_endpoint("ask")
    assert ep.name == "tmai" and ep.method == "POST" and ep.tier == 3 and not ep.paged


def test_ask_pays_one_call_and_answers_the_same_question_the_same_way(sandbox, funded, ledger):
    c = make_client(sandbox, funded, ledger)
    first = c.ask(QUESTION)
    assert isinstance(first, AgentAnswer) and "TM Grade" in first.answer and first.question == QUESTION
    assert first.thread[0] == {"user": QUESTION} and first.thread[-1] == {"chatbot": first.answer}
    assert first.cost["paid"] == 1 and first._repr_markdown_() == first.answer
    rows = ledger.payments()
    assert len(rows) == 1 and rows["endpoint"].iloc[0].endswith("tmai") and int(rows["amount_atomic"].iloc[0]) == 68_000
    assert c.ask(QUESTION).answer == first.answer  # deterministic in the sandbox
    assert c.ask("And for DeFi?").answer != first.answer


@pytest.mark.parametrize("bad", ["", "   ", None, 42, "x" * (MAX_QUESTION + 1)])
def test_a_bad_question_is_refused_before_anything_is_sent(sandbox, funded, ledger, bad):
    c = make_client(sandbox, funded, ledger)
    with pytest.raises(ParamError):
        c.ask(bad)
    assert ledger.payments().empty and ledger.calls().empty


def test_the_agent_is_capped_like_any_call(sandbox, funded, ledger):
    c = make_client(sandbox, funded, ledger, policy=SpendPolicy(budget="0.05"))
    with pytest.raises(BudgetExceeded, match="session budget"):
        c.ask(QUESTION)
    with pytest.raises(BudgetExceeded, match="max_cost"):
        make_client(sandbox, funded, ledger).ask(QUESTION, max_cost="0.05")
    assert ledger.payments().empty


def test_frame_points_to_ask(sandbox, funded, ledger):
    with pytest.raises(ParamError, match="AI agent") as info:
        make_client(sandbox, funded, ledger).frame("tmai", question=QUESTION)
    assert "ask(" in info.value.hint


def test_the_async_client_asks_alike(sandbox, funded, ledger):
    async def main():
        async with make_client(sandbox, funded, ledger, cls=AsyncClient) as c:
            return await c.ask(QUESTION)

    assert "TM Grade" in asyncio.run(main()).answer and len(ledger.payments()) == 1


def test_the_sandbox_refuses_a_malformed_body_unpaid(sandbox):
    for body in ({"messages": []}, {"messages": [{"chatbot": "hi"}]}, {"question": "hi"}):
        r = httpx.post(sandbox.api_url + "/tmai", json=body, headers={"x-coinbase-402": "true"})
        assert r.status_code == 400 and r.json()["success"] is False
