"""Review of the Permit2 / upto / settlement_pending money path: defects found, each pinned by a test.

The rule each one breaks: a signed authorization can be settled by whoever holds it until its
deadline (``validBefore``), so it stays counted until then plus the clock-skew margin.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Route

import tm402_nb.ledger.store as store_module
import tm402_nb.x402.auth as auth_module
from tests.toyserver import serve_app
from tests.x402.test_money_path import ChainOf, ScriptedServer
from tests.x402.test_upto import UptoToy
from tm402_nb.errors import TM402Error
from tm402_nb.ledger import Ledger
from tm402_nb.status import EXPIRY_MARGIN_SECONDS, PaymentStatus
from tm402_nb.x402 import SpendPolicy, Wallet, X402Auth, paying_client, payment_of
from tm402_nb.x402.recorder import PaymentRecord


@pytest.fixture
def ledger(tmp_path: Any) -> Any:
    led = Ledger(tmp_path / "ledger.sqlite3")
    yield led
    led.close()


def test_review_an_upto_zero_settlement_stays_counted_until_its_permit_expires(ledger, monkeypatch):
    # "Settled" at 0 moves nothing and sends no transaction: the Permit2 nonce stays unused, so the
    # facilitator the witness names can still settle up to the whole ceiling until the deadline.
    server = UptoToy(settle=0)
    clock = [time.time()]
    policy = SpendPolicy(budget="1.00", clock=lambda: clock[0])
    auth = X402Auth(Wallet.create(), policy, ledger=ledger)
    with serve_app(Starlette(routes=[Route("/data", server.data)])) as url, httpx.Client(auth=auth) as client:
        response = client.get(url + "/data")
    payment = payment_of(response)
    assert payment is not None and payment.status == "settled" and payment.settled_amount == 0
    assert policy.spent_usd() == 50_000  # the ceiling, still settleable
    assert ledger.spent_usd() == 50_000
    assert ledger.spent(payment.record.asset, payment.record.network) == 50_000
    # Once the permit's deadline (and the margin) has passed, it costs nothing.
    later = payment.record.valid_before + EXPIRY_MARGIN_SECONDS + 1
    clock[0] = later
    assert policy.spent_usd() == 0
    monkeypatch.setattr(store_module.time, "time", lambda: float(later))
    assert ledger.spent_usd() == 0
    assert ledger.spent(payment.record.asset, payment.record.network) == 0


def test_review_resolve_keeps_an_unused_payment_open_within_the_expiry_margin(ledger, monkeypatch):
    # Local clock just past validBefore (a Permit2 deadline is even inclusive): a node's next block
    # may still carry it. FAILED is final, so deciding it now could miss a settlement for good.
    server = ScriptedServer(["drop", "drop", "drop"])  # every replay dropped too: nothing settles
    chain = ChainOf(server)
    auth = X402Auth(Wallet.create(), SpendPolicy(authorization_seconds=3600), ledger=ledger, chain=chain)
    with (
        paying_client(auth.wallet, auth=auth, transport=httpx.MockTransport(server.handle)) as client,
        contextlib.suppress(TM402Error, httpx.TransportError),
    ):
        client.get("https://toy.test/a")
    (payment_id,) = ledger.payments()["id"]
    valid_before = int(ledger.payments()["valid_before"].iloc[0])
    monkeypatch.setattr(auth_module.time, "time", lambda: valid_before + 1.0)
    assert auth.resolve_unknown() == {payment_id: PaymentStatus.UNKNOWN}
    monkeypatch.setattr(auth_module.time, "time", lambda: valid_before + EXPIRY_MARGIN_SECONDS + 1.0)
    assert auth.resolve_unknown() == {payment_id: PaymentStatus.FAILED}


class _OtherChain:
    """A node of another chain (Base mainnet, id 8453): Permit2 sits at the same address there, so
    every nonce of a Base Sepolia payment reads unused, whatever happened on Base Sepolia."""

    def __init__(self) -> None:
        self.asked = 0

    def chain_id(self) -> int:
        return 8453

    def authorization_used(self, asset: str, authorizer: str, nonce: str) -> bool:
        self.asked += 1
        return False

    def permit2_nonce_used(self, owner: str, nonce: int) -> bool:
        self.asked += 1
        return False


def test_review_resolve_never_decides_from_a_node_of_another_chain(ledger, monkeypatch):
    server = ScriptedServer(["drop", "drop", "drop"])
    auth = X402Auth(Wallet.create(), SpendPolicy(authorization_seconds=3600), ledger=ledger, chain=_OtherChain())
    with (
        paying_client(auth.wallet, auth=auth, transport=httpx.MockTransport(server.handle)) as client,
        contextlib.suppress(TM402Error, httpx.TransportError),
    ):
        client.get("https://toy.test/a")
    (payment_id,) = ledger.payments()["id"]
    valid_before = int(ledger.payments()["valid_before"].iloc[0])
    monkeypatch.setattr(auth_module.time, "time", lambda: valid_before + EXPIRY_MARGIN_SECONDS + 1.0)
    # The other chain's "unused" says nothing about this payment: it stays unknown (and counted).
    assert auth.resolve_unknown() == {payment_id: PaymentStatus.UNKNOWN}


def test_review_the_ledger_never_decides_a_row_from_a_node_of_another_chain(ledger):
    rec = PaymentRecord(
        amount=17_000,
        asset="0x036CbD53842c5426634e7929541eC2318f3dCF7e",
        network="eip155:84532",
        pay_to="0x" + "b" * 40,
        payer="0x" + "c" * 40,
        nonce="0x" + "01" * 32,
        valid_before=int(time.time()) - 3600,
        status=PaymentStatus.UNKNOWN,
        transfer="permit2",
    )
    ledger.record_payment(rec)
    (check,) = ledger.resolve_open(_OtherChain())
    assert check.verdict == "unchecked" and check.new_status is None
    assert "8453" in check.detail
    assert ledger.payment(rec.id)["status"] == "unknown"  # type: ignore[index]


def test_review_a_tmai_payment_is_not_anchored_on_an_unpayable_usdc_price():
    # A hostile server lists USDC on *another network* at 1 atomic unit beside 1000 TMAI: the TMAI
    # payment must not count as 0.000001 USD. Without usd_rates it is refused; nothing is signed.
    from tests.reliability.test_hostile import CountingWallet, HostileServer
    from tm402_nb.errors import PaymentRefused
    from tm402_nb.sandbox.assets import SANDBOX_TMAI_BASE_SEPOLIA
    from tm402_nb.x402.networks import USDC_BASE

    pay_to = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"
    server = HostileServer()
    server.challenge = {
        "x402Version": 1,
        "accepts": [
            {
                "scheme": "exact",
                "network": "base",
                "maxAmountRequired": "1",
                "asset": USDC_BASE.address,
                "payTo": pay_to,
                "maxTimeoutSeconds": 60,
                "extra": {"name": "USD Coin", "version": "2"},
            },
            {
                "scheme": "exact",
                "network": "base-sepolia",
                "maxAmountRequired": str(1000 * 10**18),
                "asset": SANDBOX_TMAI_BASE_SEPOLIA.address,
                "payTo": pay_to,
                "maxTimeoutSeconds": 60,
                "extra": {"name": "Token Metrics AI", "version": "1"},
            },
        ],
    }
    wallet = CountingWallet.create()
    policy = SpendPolicy(pay_with="tmai", extra_assets=[SANDBOX_TMAI_BASE_SEPOLIA], budget="1.00")
    auth = X402Auth(wallet, policy)
    with serve_app(server.app) as url, httpx.Client(auth=auth) as client, pytest.raises(PaymentRefused) as info:
        client.get(url + "/data")
    assert "usd_rates" in info.value.hint
    assert wallet.signed == 0 and policy.spent_usd() == 0
