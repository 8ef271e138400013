"""``%tm ledger --resolve`` and ``s.ledger.reconcile_chain()`` (issue 14) in a real IPython shell:
a settlement_pending payment shows in the footer, is decided on the sandbox chain by its nonce,
and the reconciliation report names what a refund needs."""

from __future__ import annotations

import time

import pytest

from tests.notebook.test_footer import footer_lines
from tm402_nb.errors import SettlementPending
from tm402_nb.notebook.parse import MagicUsageError, parse_line
from tm402_nb.status import PaymentStatus
from tm402_nb.x402.recorder import PaymentRecord

USDC_SEPOLIA = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"


def _pending_cell(ip, s, capsys) -> str:
    s.sandbox.set_faults(settle_pending=1, settle_pending_reads=0)
    try:
        with pytest.raises(SettlementPending):
            ip.run_cell("df = %tm grade BTC")
    finally:
        s.sandbox.set_faults()
    (line,) = footer_lines(capsys.readouterr().out)
    return line


def _fake_row(s, *, status, valid_before, session_id=None) -> PaymentRecord:
    rec = PaymentRecord(
        amount=17_000,
        asset=USDC_SEPOLIA,
        network="eip155:84532",
        pay_to="0x" + "b" * 40,
        payer=s.wallet.address,
        nonce="0x" + f"{time.time_ns():064x}"[-64:],
        valid_before=valid_before,
        asset_symbol="USDC",
        endpoint="tm-grade",
        status=status,
        session_id=session_id or s.id,
        tx="0x" + "de" * 32 if status == PaymentStatus.SETTLED else None,
    )
    s.ledger.record_payment(rec)
    return rec


def test_the_footer_names_a_pending_settlement(ip, s, capsys):
    line = _pending_cell(ip, s, capsys)
    assert "1 paid (settlement pending: see %tm ledger --resolve)" in line
    assert s.ledger.payment_rows()[0]["status"] == "settlement_pending"


def test_ledger_resolve_decides_pending_and_unknown_rows_from_the_chain(ip, s, capsys):
    _pending_cell(ip, s, capsys)
    s.sandbox.mine()
    # A row another (earlier) sandbox wrote: its chain is gone, so it is not checked against this one.
    old = _fake_row(s, status=PaymentStatus.UNKNOWN, valid_before=int(time.time()) - 3600, session_id="earlier")
    # An unknown row of this session whose authorization expired and never executed.
    lost = _fake_row(s, status=PaymentStatus.UNKNOWN, valid_before=int(time.time()) - 3600)
    report = ip.run_line_magic("tm", "ledger --resolve")
    text = repr(report)
    assert "checked on chain via the sandbox's /rpc" in text
    assert "settlement_pending → settled (nonce used on chain" in text
    assert "unknown → failed (nonce unused and the authorization expired" in text
    assert "earlier sandbox" in text
    assert text.splitlines()[-1] == (
        "2 checked: 1 settled on chain, 1 expired unexecuted (never settled); 1 not checked"
    )
    statuses = {r["id"]: r["status"] for r in s.ledger.payment_rows()}
    assert statuses[lost.id] == "failed" and statuses[old.id] == "unknown"
    assert sorted(statuses.values()) == ["failed", "settled", "unknown"]
    assert "<pre>" in report._repr_html_()
    # Nothing left open in this session: said so, nothing checked.
    again = repr(ip.run_line_magic("tm", f"ledger --resolve --session {s.id}"))
    assert again == "nothing to resolve: no unknown or settlement_pending payments"


def test_reconcile_chain_reports_verdicts_with_evidence_and_changes_nothing(ip, s, capsys):
    ip.run_cell("ok = %tm grade ETH")  # paid and delivered
    capsys.readouterr()
    _pending_cell(ip, s, capsys)  # paid, data withheld ...
    s.sandbox.mine()  # ... and the transfer landed: settled but not delivered
    liar = _fake_row(s, status=PaymentStatus.SETTLED, valid_before=int(time.time()) - 3600)  # a receipt, no transfer
    before = {r["id"]: r["status"] for r in s.ledger.payment_rows()}
    report = s.ledger.reconcile_chain()
    assert {r["id"]: r["status"] for r in s.ledger.payment_rows()} == before  # read-only by default
    verdicts = dict(zip(report["id"], report["verdict"], strict=True))
    assert sorted(verdicts.values()) == ["never settled", "settled", "settled but not delivered"]
    assert verdicts[liar.id] == "never settled"
    lost = report[report["verdict"] == "settled but not delivered"].iloc[0]
    for col in ("tx", "nonce", "payer", "asset", "amount", "endpoint", "when", "network", "url"):
        assert col in report.columns
    assert lost["tx"].startswith("0x") and lost["payer"] == s.wallet.address and lost["endpoint"] == "tm-grade"
    assert bool(lost["nonce_used"]) and not bool(lost["delivered"]) and lost["status"] == "settlement_pending"
    # Asked to, it records what the chain decided (a settled row is never rewritten).
    s.ledger.reconcile_chain(update=True)
    after = {r["id"]: r["status"] for r in s.ledger.payment_rows()}
    assert after[lost["id"]] == "settled" and after[liar.id] == "settled"


def test_resolve_takes_no_view_flags():
    for line in ("ledger --resolve --by endpoint", "ledger --resolve --calls", "ledger --resolve --csv"):
        with pytest.raises(MagicUsageError, match="--resolve"):
            parse_line(line)
    assert parse_line("ledger --resolve").ledger.resolve is True
