"""A lost answer's payment re-sent by a later run of the cell is counted once: the footer and the
session's total agree with the ledger (one row per signed payment)."""

from __future__ import annotations

import pytest

from tests.notebook.test_footer import footer_lines


def test_a_payment_re_sent_after_a_lost_answer_is_counted_once(ip, s, capsys):
    from tm402_nb.errors import PaymentOutcomeUnknown
    from tm402_nb.tokenmetrics.client import Client, RetryPolicy

    ip.user_ns["impatient"] = Client(
        mode="sandbox",
        base_url=s.sandbox.api_url,
        auth=s.auth,
        ledger=s.ledger,
        cost=s.cost,
        timeout=0.3,
        retry=RetryPolicy(attempts=1, base=0.01),
        progress=False,
    )
    ip.run_cell('impatient.frame("tm-grade", symbol="BTC")')  # learn the price: the next call is pre-paid
    s.sandbox.set_faults(latency_ms=1000)
    try:
        with pytest.raises(PaymentOutcomeUnknown):
            ip.run_cell('impatient.frame("tm-grade", token_id=3306)')
    finally:
        s.sandbox.set_faults()
    capsys.readouterr()
    ip.run_cell('impatient.frame("tm-grade", token_id=3306)')  # the same request: the same payment again
    (line,) = footer_lines(capsys.readouterr().out)
    assert "1 call (1 re-sent, paid once)" in line and "nothing paid" in line
    assert "session 0.034 USD" in line  # BTC and 3306, once each
    rows = s.ledger.payments(session_id=s.id)
    assert len(rows) == 2 and set(rows["status"]) == {"settled"}
    total = s.cost.total
    assert (total.n_paid, total.n_resent) == (2, 1)
    assert total.amount_text() == "0.034 USDC"
