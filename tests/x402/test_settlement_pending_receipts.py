"""How X402Auth reads a ``settlement_pending`` receipt (issue 14), against a toy x402 server: with the
data (200) the payment is pending and the data delivered; without it (402) a SettlementPending error;
either way counted and open, nothing signed again."""

from __future__ import annotations

import httpx
import pytest

from tests.toyserver import ToyConfig, ToyX402, serve_app
from tm402_nb.errors import PaymentOutcomeUnknown, SettlementPending
from tm402_nb.x402 import SpendPolicy, X402Auth
from tm402_nb.x402.auth import payment_of
from tm402_nb.x402.messages import SettlementResponse

TX = "0x" + "5e" * 32


@pytest.mark.parametrize("version", [1, 2])
def test_data_with_a_pending_receipt_is_delivered_and_pending(wallet, ledger, version: int) -> None:
    network = "base-sepolia" if version == 1 else "eip155:84532"
    pending = SettlementResponse(False, TX, network, wallet.address, "settlement_pending")
    toy = ToyX402(ToyConfig(version=version, receipt_override=pending.encode()))
    auth = X402Auth(wallet, SpendPolicy(max_per_call="0.05"), ledger=ledger)
    with serve_app(toy.app) as url, httpx.Client(auth=auth) as c:
        r = c.get(url + "/data")
    assert r.status_code == 200 and r.json()["data"] == [1, 2, 3]
    pay = payment_of(r)
    assert pay is not None and pay.status == "settlement_pending" and pay.tx == TX
    (row,) = ledger.payment_rows()
    assert (row["status"], row["tx"]) == ("settlement_pending", TX)
    assert sum(auth.policy.spent().values()) == int(row["amount"])  # counted


@pytest.mark.parametrize("version", [1, 2])
def test_a_402_with_a_pending_receipt_raises_settlement_pending(wallet, ledger, version: int) -> None:
    toy = ToyX402(ToyConfig(version=version, settle_fails="settlement_pending"))
    auth = X402Auth(wallet, SpendPolicy(max_per_call="0.05"), ledger=ledger)
    with serve_app(toy.app) as url, httpx.Client(auth=auth) as c:
        with pytest.raises(SettlementPending) as e:
            c.get(url + "/data")
        assert isinstance(e.value, PaymentOutcomeUnknown)  # code catching "unknown" catches this too
        assert auth.pending_for(c.build_request("GET", url + "/data")) is e.value.payment  # type: ignore[attr-defined]
    (row,) = ledger.payment_rows()
    assert row["status"] == "settlement_pending" and "settlement_pending" in row["error"]
    assert auth.stats["signed"] == 1
    assert sum(auth.policy.spent().values()) == int(row["amount"])


def test_settlement_pending_is_a_name_users_can_catch():
    import tm402_nb as tm
    from tm402_nb.errors import PaymentOutcomeUnknown, SettlementPending

    assert tm.SettlementPending is SettlementPending and issubclass(tm.SettlementPending, PaymentOutcomeUnknown)
