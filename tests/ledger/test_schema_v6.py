"""Schema v6: ``settlement_pending`` is a status, and a payment says how it was authorised, which
payment-identifier it carried and, for ``upto``, what it actually settled."""

from __future__ import annotations

import sqlite3

import pytest

from tm402_nb.ledger import SCHEMA_VERSION, Ledger
from tm402_nb.ledger.store import _MIGRATIONS
from tm402_nb.status import COUNTED, PaymentStatus
from tm402_nb.x402.recorder import PaymentRecord

USDC = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"


def _record(**kw: object) -> PaymentRecord:
    base: dict[str, object] = dict(
        amount=100_000,
        asset=USDC,
        network="eip155:84532",
        pay_to="0x" + "22" * 20,
        payer="0x" + "11" * 20,
        nonce="0x" + "00" * 32,
        valid_before=2**40,
        usd=100_000,
    )
    base.update(kw)
    return PaymentRecord(**base)  # type: ignore[arg-type]


def test_a_v5_ledger_migrates_keeping_every_row_and_column(tmp_path):
    path = tmp_path / "v5.sqlite3"
    con = sqlite3.connect(path)
    for migration in _MIGRATIONS[:5]:
        con.executescript(migration)
    con.execute(
        "INSERT INTO payments (id, created_at, updated_at, status, amount, asset, network, usd, discrepancy, writer)"
        " VALUES ('p1', 1.0, 2.0, 'unknown', '17000', ?, 'eip155:84532', '17000', 'd', 'w')",
        (USDC.lower(),),
    )
    con.execute("PRAGMA user_version=5")
    con.commit()
    con.close()
    with Ledger(path) as led:
        assert led.schema_version == SCHEMA_VERSION >= 6
        row = led.payment("p1")
        assert row is not None
        assert (row["status"], row["amount"], row["usd"], row["discrepancy"], row["writer"]) == (
            "unknown",
            "17000",
            "17000",
            "d",
            "w",
        )
        assert row["transfer"] is None and row["identifier"] is None and row["settled_amount"] is None
        assert led.spent_usd() == 17_000


def test_settlement_pending_is_stored_and_counted(tmp_path):
    assert PaymentStatus.SETTLEMENT_PENDING in COUNTED
    with Ledger(tmp_path / "l.sqlite3") as led:
        rec = _record(transfer="permit2", identifier="pay_" + "a" * 28)
        led.record_payment(rec)
        led.update_payment(rec.id, PaymentStatus.SETTLEMENT_PENDING, tx="0x" + "ab" * 32)
        row = led.payment(rec.id)
        assert row is not None
        assert (row["status"], row["transfer"], row["identifier"]) == (
            "settlement_pending",
            "permit2",
            "pay_" + "a" * 28,
        )
        assert led.spent_usd() == 100_000
        assert led.spent(USDC, "eip155:84532") == 100_000


def test_an_unknown_status_is_refused(tmp_path):
    with Ledger(tmp_path / "l.sqlite3") as led:
        rec = _record()
        led.record_payment(rec)
        with pytest.raises(ValueError, match="unknown payment status"):
            led.update_payment(rec.id, "half-settled")


# Settled at 0, nothing moved: the permit is unused and can settle the ceiling until it expires.
@pytest.mark.parametrize(("settled", "usd"), [(40_000, 40_000), (100_000, 100_000), (0, 100_000), (1, 1)])
def test_an_upto_payment_counts_what_it_settled_not_its_ceiling(tmp_path, settled, usd):
    with Ledger(tmp_path / "l.sqlite3") as led:
        rec = _record(scheme="upto", transfer="permit2")
        led.record_payment(rec)
        assert led.spent_usd() == 100_000  # the ceiling is held until the receipt says otherwise
        led.update_payment(rec.id, PaymentStatus.SETTLED, settled_amount=settled)
        assert led.spent(USDC, "eip155:84532") == usd
        assert led.spent_usd() == usd
