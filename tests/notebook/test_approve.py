"""``%tm approve ASSET [AMOUNT|unlimited] [--yes]`` in a real IPython shell: the allowance, or the
one-time approval to Permit2, shown and asked before it is sent."""

from __future__ import annotations

import io

import pytest

import tm402_nb as tm
from tm402_nb.errors import NotConfirmed
from tm402_nb.notebook.parse import MagicUsageError, parse_line
from tm402_nb.x402.approval import InsufficientGas


def test_parse():
    cmd = parse_line("approve tmai 50 --yes")
    assert (cmd.action, cmd.args, cmd.yes) == ("approve", ["tmai", "50"], True)
    assert parse_line("approve TMAI unlimited").args == ["TMAI", "unlimited"] and not parse_line("approve tmai").yes
    for bad, says in [
        ("approve", "needs an asset"),
        ("approve tmai 5 6", "needs an asset"),
        ("approve tmai --force", "no flag --force"),
        ("approve tmai $5", "without '\\$'"),
        ("approve tmai --yes", "needs an amount"),
    ]:
        with pytest.raises(MagicUsageError, match=says):
            parse_line(bad)


def test_approve_in_a_cell_sends_and_shows_the_receipt(ip, s):
    shown = ip.run_line_magic("tm", "approve tmai")
    assert "Permit2 may move no TMAI" in repr(shown) and "%tm approve tmai AMOUNT" in repr(shown)
    done = ip.run_line_magic("tm", "approve tmai 50 --yes")
    assert "Permit2 approved [SANDBOX · Base Sepolia]: 50.00 TMAI" in repr(done) and done.gas_used > 0
    assert s.allowance("tmai").amount == 50
    assert "50.00 TMAI" in repr(ip.run_line_magic("tm", "approve tmai"))


def test_approve_asks_and_a_no_sends_nothing(ip, s, monkeypatch, capsys):
    from tm402_nb.session import confirm

    monkeypatch.setattr(confirm, "_in_kernel", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt="": "n")
    with pytest.raises(NotConfirmed, match="declined"):
        ip.run_line_magic("tm", "approve tmai unlimited")
    assert "Approve Permit2 [SANDBOX" in capsys.readouterr().out and not s.allowance("tmai")
    monkeypatch.setattr("builtins.input", lambda prompt="": "y")
    assert ip.run_line_magic("tm", "approve tmai unlimited").allowance.unlimited


def test_approve_where_no_one_can_answer_and_without_eth(ip, s, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO())
    with pytest.raises(NotConfirmed, match="needs a yes"):
        ip.run_line_magic("tm", "approve tmai 5")
    assert not s.allowance("tmai")
    # A wallet without ETH: refused before it is asked or sent, --yes or not.
    with tm.connect(mode="sandbox", sandbox_options={"fund": {"usdc": "1"}}) as poor:
        with pytest.raises(InsufficientGas, match="gas is paid in ETH"):
            ip.run_line_magic("tm", "approve tmai 5 --yes")
        assert not poor.allowance("tmai") and poor.sandbox.state.chain.transaction_count(poor.wallet.address) == 0
