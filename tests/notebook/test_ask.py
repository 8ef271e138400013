"""``%tm ask QUESTION``: the rest of the line is the question, as typed; the answer shows as Markdown."""

from __future__ import annotations

import pytest

from tm402_nb.notebook.parse import MagicUsageError, parse_line
from tm402_nb.tokenmetrics.agent import AgentAnswer


def test_the_question_is_the_rest_of_the_line_as_typed():
    cmd = parse_line("ask What's the next --max-cost 5 coin?")
    assert cmd.action == "ask" and cmd.args == ["What's the next --max-cost 5 coin?"]  # no flags, no quoting
    assert parse_line("ask about {{sym}}", {"sym": "BTC"}).args == ["about BTC"]
    with pytest.raises(MagicUsageError, match="needs a question"):
        parse_line("ask   ")


def test_ask_in_a_cell_pays_one_call_and_shows_markdown(ip, s, capsys):
    answer = ip.run_line_magic("tm", "ask Which layer-1 tokens look strongest?")
    assert isinstance(answer, AgentAnswer) and "TM Grade" in answer._repr_markdown_()
    assert len(s.ledger.payments()) == 1
