"""A lost answer's payment re-sent by a later run of the cell is counted once: the footer and the
session's total agree with the ledger (one row per signed payment)."""

from __future__ import annotations

from tests.notebook.test_footer import footer_lines


def test_a_payment_re_sent_after_a_lost_answer_is_counted_once(ip, s, lost_answer, capsys):
    capsys.readouterr()
    ip.run_cell(lost_answer)  # the same request: the same payment again
    (line,) = footer_lines(capsys.readouterr().out)
    assert "1 call (1 re-sent, paid once)" in line and "nothing paid" in line
    assert "session 0.034 USD" in line  # BTC and 3306, once each
    rows = s.ledger.payments(session_id=s.id)
    assert len(rows) == 2 and set(rows["status"]) == {"settled"}
    total = s.cost.total
    assert (total.n_paid, total.n_resent) == (2, 1)
    assert total.amount_text() == "0.034 USDC"
