"""X402Auth end to end against a hand-written x402 server (v1 and v2, sync and async)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.toyserver import PAY_TO, ToyConfig, ToyX402, serve_app
from tm402_nb.errors import (
    BudgetExceeded,
    PaymentFailed,
    PaymentOutcomeUnknown,
    PaymentRefused,
    ReceiptError,
    X402ProtocolError,
)
from tm402_nb.x402 import (
    SpendPolicy,
    X402Auth,
    async_paying_client,
    paying_client,
    payment_of,
    receipt,
)
from tm402_nb.x402.eip3009 import Eip712Domain, recover_signer
from tm402_nb.x402.encoding import b64json_encode
from tm402_nb.x402.messages import PaymentPayload, SettlementResponse
from tm402_nb.x402.networks import BASE_SEPOLIA, USDC_BASE, USDC_BASE_SEPOLIA, Asset
from tm402_nb.x402.options import PaymentOptions


@pytest.fixture(params=[1, 2], ids=["v1", "v2"])
def server(request):
    toy = ToyX402(ToyConfig(version=request.param))
    with serve_app(toy.app) as url:
        toy.url = url
        yield toy


def statuses(ledger):
    return sorted(ledger.payments()["status"].tolist())


def test_pays_and_records_settlement(server, wallet, ledger):
    with paying_client(wallet, SpendPolicy(), ledger=ledger) as client:
        r = client.get(server.url + "/data")
    assert r.status_code == 200 and r.json()["paid"] is True
    rec = receipt(r)
    assert rec.success and rec.payer == wallet.address
    pay = payment_of(r)
    assert pay.status == "settled" and pay.tx == rec.transaction
    rows = ledger.payments()
    assert rows["status"].tolist() == ["settled"]
    assert rows["tx"].tolist() == [rec.transaction] == [s["tx"] for s in server.settlements]
    assert rows["amount"].tolist() == [0.017] and rows["amount_atomic"].tolist() == [17_000]
    assert rows["x402_version"].tolist() == [server.config.version]


def test_free_endpoints_are_untouched(server, wallet, ledger):
    auth = X402Auth(wallet, ledger=ledger)
    with httpx.Client(auth=auth) as client:
        assert client.get(server.url + "/free").json() == {"ok": True}
    assert auth.stats["signed"] == 0 and ledger.payments().empty


def test_warm_path_is_one_round_trip_per_paid_call(server, wallet, ledger):
    with paying_client(wallet, SpendPolicy(), ledger=ledger) as client:
        for _ in range(5):
            assert client.get(server.url + "/data").status_code == 200
    # One unpaid request to learn the price, then one request per paid call.
    assert server.counts["requests"] == 6
    assert server.counts["unpaid"] == 1
    assert statuses(ledger) == ["settled"] * 5


def test_cold_path_is_two_round_trips(server, wallet):
    auth = X402Auth(wallet, warm=False)
    with httpx.Client(auth=auth) as client:
        for _ in range(3):
            client.get(server.url + "/data")
    assert server.counts["requests"] == 6


def test_warm_miss_signs_once_per_call_and_the_next_call_pays_the_new_terms(server, wallet, ledger):
    """A refused pre-signed payment is still a valid signature: the call that made it signs
    nothing more (a hostile server could collect both); it learns the new terms instead."""
    policy = SpendPolicy()
    auth = X402Auth(wallet, policy, ledger=ledger)
    with paying_client(wallet, auth=auth) as client:
        client.get(server.url + "/data")
        server.config.amount = 20_000  # the price changed
        with pytest.raises(PaymentFailed, match="remembered terms") as info:
            client.get(server.url + "/data")
        assert auth.stats["signed"] == 2  # one for each call, never two in the second
        assert "counts against your caps until" in str(info.value)
        # The refused authorization stays counted (reserved) until it expires.
        assert policy.spent_usd() == 17_000 * 2 and policy.reserved_usd() == 17_000
        r = client.get(server.url + "/data")  # warm, on the new terms: one round trip, one signature
    assert r.status_code == 200 and auth.stats["signed"] == 3
    assert statuses(ledger) == ["failed", "settled", "settled"]
    assert len(server.settlements) == 2  # exactly the settled rows
    assert sorted(ledger.payments(status="settled")["tx"]) == sorted(s["tx"] for s in server.settlements)


def test_async_client_pays(server, wallet, ledger):
    async def main():
        async with async_paying_client(wallet, SpendPolicy(), ledger=ledger) as client:
            rs = [await client.get(server.url + "/data") for _ in range(3)]
            return rs

    rs = asyncio.run(main())
    assert all(r.status_code == 200 and receipt(r).success for r in rs)
    assert server.counts["requests"] == 4
    assert statuses(ledger) == ["settled"] * 3


def test_concurrent_async_calls_respect_the_budget(server, wallet, ledger):
    policy = SpendPolicy(budget="0.10")  # room for five 0.017 calls

    async def main():
        async with async_paying_client(wallet, policy, ledger=ledger) as client:
            return await asyncio.gather(*(client.get(server.url + "/data") for _ in range(12)), return_exceptions=True)

    results = asyncio.run(main())
    ok = [r for r in results if isinstance(r, httpx.Response) and r.status_code == 200]
    refused = [r for r in results if isinstance(r, BudgetExceeded)]
    assert len(ok) == 5 and len(refused) == 7
    assert len(server.settlements) == 5 and statuses(ledger) == ["settled"] * 5


def test_second_402_raises_payment_failed_with_reason(server, wallet, ledger):
    server.config.balance = 0
    policy = SpendPolicy(budget="1")
    with paying_client(wallet, policy, ledger=ledger) as client, pytest.raises(PaymentFailed) as info:
        client.get(server.url + "/data")
    err = info.value
    assert err.reason == "insufficient_funds"
    assert "fund" in str(err)  # the hint from the seed's common errors
    assert statuses(ledger) == ["failed"]
    # Refused, but the signature stays valid until it expires: counted (reserved) till then.
    assert policy.spent_usd() == policy.reserved_usd() == 17_000
    assert server.settlements == []


def test_settlement_failure_receipt(server, wallet, ledger):
    server.config.settle_fails = "invalid_exact_evm_payload_authorization_valid_before"
    with paying_client(wallet, SpendPolicy(), ledger=ledger) as client, pytest.raises(PaymentFailed) as info:
        client.get(server.url + "/data")
    assert info.value.receipt is not None and info.value.receipt.success is False
    assert "clock" in str(info.value)
    assert statuses(ledger) == ["failed"]


@pytest.mark.parametrize("bad", ["%%%", b64json_encode({"success": "maybe"})])
def test_malformed_receipt_keeps_data_and_marks_unknown(server, wallet, ledger, bad):
    server.config.receipt_override = bad
    with paying_client(wallet, SpendPolicy(), ledger=ledger) as client, pytest.raises(ReceiptError) as info:
        client.get(server.url + "/data")
    assert info.value.response.json()["paid"] is True  # the data is not lost
    assert statuses(ledger) == ["unknown"]


def test_failing_receipt_on_200_is_payment_failed(server, wallet, ledger):
    server.config.receipt_override = b64json_encode(
        {"success": False, "transaction": "", "network": "base-sepolia", "errorReason": "unexpected_settle_error"}
    )
    with paying_client(wallet, SpendPolicy(), ledger=ledger) as client, pytest.raises(PaymentFailed):
        client.get(server.url + "/data")
    assert statuses(ledger) == ["failed"]


HOSTILE = {
    "over the cap": dict(amount=100_001),
    "mainnet on testnet": dict(network="base", asset=USDC_BASE.address, extra={"name": "USD Coin", "version": "2"}),
    "unknown asset": dict(asset="0x" + "99" * 20),
    "payTo not an address": dict(pay_to="not-an-address"),
    "zero timeout": dict(timeout=0),
    "negative timeout": dict(timeout=-1),
    "timeout over a day": dict(timeout=86_401),
    "unknown asset without domain": dict(asset="0x" + "98" * 20, extra=None),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_challenges_are_refused_before_signing(server, wallet, ledger, name):
    for k, v in HOSTILE[name].items():
        setattr(server.config, k, v)
    auth = X402Auth(wallet, SpendPolicy(), ledger=ledger)
    with httpx.Client(auth=auth) as client, pytest.raises(PaymentRefused) as info:
        client.get(server.url + "/data")
    assert "nothing was signed" in str(info.value) or isinstance(info.value, BudgetExceeded)
    assert auth.stats["signed"] == 0
    assert server.counts["paid_attempts"] == 0
    assert ledger.payments().empty


@pytest.mark.parametrize(
    "override",
    [
        "no accepts",
        "v2 in body only",
        "oversized header",
        "garbage header",
    ],
)
def test_unparseable_challenges_are_protocol_errors(wallet, ledger, override):
    version = 1 if override in ("no accepts", "v2 in body only") else 2
    toy = ToyX402(ToyConfig(version=version))
    if override == "no accepts":
        toy.config.challenge_override = {"x402Version": 1, "error": "pay", "accepts": []}
    elif override == "v2 in body only":
        toy.config.challenge_override = json.dumps({"x402Version": 2, "accepts": [toy.requirement()]})
    elif override == "oversized header":
        toy.config.header_override = b64json_encode({"x402Version": 2, "accepts": [], "pad": "A" * 20_000})
    else:
        toy.config.header_override = "this is not base64 json"
    auth = X402Auth(wallet, ledger=ledger)
    with serve_app(toy.app) as url, httpx.Client(auth=auth) as client, pytest.raises(X402ProtocolError):
        client.get(url + "/data")
    assert auth.stats["signed"] == 0 and toy.counts["paid_attempts"] == 0 and ledger.payments().empty


def test_payee_switch_mid_session_is_refused(server, wallet, ledger):
    auth = X402Auth(wallet, ledger=ledger, warm=False)
    with httpx.Client(auth=auth) as client:
        client.get(server.url + "/data")
        server.config.pay_to = "0x" + "44" * 20
        with pytest.raises(PaymentRefused, match="payee changed"):
            client.get(server.url + "/data")
    assert len(server.settlements) == 1 and statuses(ledger) == ["settled"]


def test_row_is_written_before_the_payment_leaves(server, wallet, ledger):
    seen = []
    server.on_paid = lambda payload: seen.append(
        ledger.payments().query("nonce == @payload.authorization.nonce")["status"].tolist()
    )
    with paying_client(wallet, SpendPolicy(), ledger=ledger) as client:
        client.get(server.url + "/data")
    assert seen == [["pending"]]
    assert statuses(ledger) == ["settled"]


def test_lost_answer_is_replayed_with_the_same_header(server, wallet, ledger):
    server.config.drop_next_paid = 1
    seen_nonces = []
    server.on_paid = lambda payload: seen_nonces.append(payload.authorization.nonce)
    with (
        paying_client(wallet, SpendPolicy(), ledger=ledger, replay_attempts=2) as client,
        pytest.raises(PaymentOutcomeUnknown),
    ):
        client.get(server.url + "/data")
    # The same signed payment was sent twice; it settled once; nothing new was signed.
    assert len(seen_nonces) == 2 and len(set(seen_nonces)) == 1
    assert len(server.settlements) == 1
    assert statuses(ledger) == ["unknown"]


def test_timeout_then_user_retry_replays_not_repays(server, wallet, ledger):
    server.config.slow_next_paid = 2.0
    seen_nonces = []
    server.on_paid = lambda payload: seen_nonces.append(payload.authorization.nonce)
    auth = X402Auth(wallet, ledger=ledger)
    with httpx.Client(auth=auth, timeout=0.5) as client:  # no replay transport: the error reaches the user
        with pytest.raises(httpx.TimeoutException):
            client.get(server.url + "/data")
        assert statuses(ledger) == ["unknown"]
        with pytest.raises(PaymentOutcomeUnknown):
            client.get(server.url + "/data")  # the user re-runs the cell
    assert len(seen_nonces) == 2 and len(set(seen_nonces)) == 1
    assert len(server.settlements) == 1
    assert auth.stats["signed"] == 1
    assert statuses(ledger) == ["unknown"]


def test_caller_supplied_payment_header_is_left_alone(server, wallet):
    auth = X402Auth(wallet)
    with httpx.Client(auth=auth) as client:
        r = client.get(server.url + "/data", headers={"X-PAYMENT": "e30=", "PAYMENT-SIGNATURE": "e30="})
    assert r.status_code in (400, 402) and auth.stats["signed"] == 0


def test_listeners_see_each_step(server, wallet):
    events = []
    auth = X402Auth(wallet, listeners=[lambda e: events.append(e.kind)])
    with httpx.Client(auth=auth) as client:
        client.get(server.url + "/data")
    assert events == ["signed", "settled"]


def test_resending_the_same_request_object_never_replays_a_failed_header(server, wallet, ledger):
    """Regression: the warm path once put the header on the caller's request object, so a
    client retrying that object replayed a payment the ledger had recorded as failed."""
    seen = []
    server.on_paid = lambda payload: seen.append(payload.authorization.nonce)
    auth = X402Auth(wallet, ledger=ledger)
    with httpx.Client(auth=auth) as client:
        client.get(server.url + "/data")  # warm up
        request = client.build_request("GET", server.url + "/data")
        server.config.amount = 20_000  # the warm payment will be refused; the next send pays afresh
        with pytest.raises(PaymentFailed):
            client.send(request)
        assert "X-PAYMENT" not in request.headers and "PAYMENT-SIGNATURE" not in request.headers
        assert client.send(request).status_code == 200
        assert client.send(request).status_code == 200
    assert len(seen) == len(set(seen))  # every payment sent once
    assert statuses(ledger).count("settled") == len(server.settlements) == 3


def test_no_second_signature_when_the_wallet_is_empty(server, wallet, ledger):
    """A warm payment refused for insufficient funds is not followed by a fresh one to be refused too."""
    auth = X402Auth(wallet, ledger=ledger)
    with httpx.Client(auth=auth) as client:
        client.get(server.url + "/data")
        server.config.balance = 0
        with pytest.raises(PaymentFailed) as info:
            client.get(server.url + "/data")
    assert info.value.reason == "insufficient_funds" and info.value.payment.status == "failed"
    assert auth.stats["signed"] == 2
    assert statuses(ledger) == ["failed", "settled"]


def test_a_refused_replay_stays_unknown_and_nothing_new_is_signed(server, wallet, ledger):
    """Regression: the replay of a lost answer refused for another reason than "nonce used" (here a
    facilitator clock running ahead) was marked failed and a second payment was signed and settled."""
    server.config.slow_next_paid = 2.0
    seen = []

    def on_paid(payload):
        seen.append(payload.authorization.nonce)
        if len(seen) == 2:
            server.config.clock_skew = 56  # the replay now looks expired to the facilitator

    server.on_paid = on_paid
    policy = SpendPolicy()
    auth = X402Auth(wallet, policy, ledger=ledger)
    with httpx.Client(auth=auth, timeout=0.5) as client:
        with pytest.raises(httpx.TimeoutException):
            client.get(server.url + "/data")
        with pytest.raises(PaymentOutcomeUnknown, match="replay was refused"):
            client.get(server.url + "/data")
    assert auth.stats["signed"] == 1 and len(set(seen)) == 1
    assert len(server.settlements) == 1
    assert statuses(ledger) == ["unknown"]
    assert policy.spent_usd() == server.config.amount  # still counted: it did settle


def test_a_replay_is_claimed_by_one_request_only(server, wallet, ledger):
    """Regression: two identical requests could both replay one unresolved payment, and the late
    answer overwrote the settled row."""
    import threading

    server.config.error_500_next_paid = 1
    auth = X402Auth(wallet, ledger=ledger)
    release, replaying = threading.Event(), threading.Event()
    sent = []

    def on_paid(payload):
        sent.append(payload.authorization.nonce)
        if len(sent) == 2:  # the replay: hold it until the second request has tried
            replaying.set()
            release.wait(timeout=10)

    server.on_paid = on_paid
    with httpx.Client(auth=auth) as client:
        assert client.get(server.url + "/data").status_code == 500  # not settled: unknown, replayable
        outcome = {}
        first = threading.Thread(target=lambda: outcome.setdefault("a", client.get(server.url + "/data")))
        first.start()
        assert replaying.wait(timeout=10), "the replay never reached the server"
        with pytest.raises(PaymentOutcomeUnknown, match="being replayed"):
            client.get(server.url + "/data")
        release.set()
        first.join(timeout=20)
    assert outcome["a"].status_code == 200
    assert auth.stats["signed"] == 1 and len(sent) == 2 and len(set(sent)) == 1
    assert statuses(ledger) == ["settled"] and len(server.settlements) == 1


def test_replay_memory_is_bounded_but_never_forgets_a_live_unknown_payment(wallet):
    from tm402_nb.x402.auth import Payment

    auth = X402Auth(wallet, max_remembered=3)

    def fake(status, valid_before):
        record = type("R", (), {"valid_before": valid_before})()
        return Payment(record=record, offer=None, header_name="X-PAYMENT", header_value="", payload=None, status=status)

    import time as _t

    now = _t.time()
    live = fake("unknown", now + 60)
    auth._unresolved.update({"live": live, "old": fake("unknown", now - 3600), "done": fake("settled", now + 60)})
    auth._unresolved["new1"] = fake("pending", now + 60)
    auth._unresolved["new2"] = fake("pending", now + 60)
    auth._trim_unresolved()
    assert "live" in auth._unresolved and "old" not in auth._unresolved and "done" not in auth._unresolved
    assert len(auth._unresolved) == 3


# -- per-request payment options ---------------------------------------------------------------
TMAI_SEPOLIA = Asset("TMAI", "0x" + "7a" * 20, BASE_SEPOLIA.caip2, 18, None, None, False, False)


#: symbol -> (asset, price in atomic units, EIP-712 token name)
TWO_ASSET_PRICES = {"USDC": (USDC_BASE_SEPOLIA, 17_000, "USDC"), "TMAI": (TMAI_SEPOLIA, 10**18, "Token Metrics AI")}


class TwoAssetServer:
    """Offers /data for 0.017 USDC or 1 TMAI, and settles a payment signed for either.

    With ``meet=n``, the first ``n`` unpaid requests wait for each other, and so do the first
    ``n`` paid ones: those requests are provably inside one auth's flow at the same time.
    """

    def __init__(self, meet: int = 0) -> None:
        self.lock = threading.Lock()
        self.meet = meet
        self.barriers = {phase: threading.Barrier(meet) for phase in ("unpaid", "paid")} if meet else {}
        self.arrived: Counter[str] = Counter()
        self.settled: list[str] = []  # asset symbols, in settlement order

    def _arrive(self, phase: str) -> None:
        with self.lock:
            self.arrived[phase] += 1
            wait = self.arrived[phase] <= self.meet
        if wait:
            self.barriers[phase].wait(timeout=10)  # broken (the test fails) unless all `meet` arrive

    @staticmethod
    def offers() -> list[dict]:
        return [
            {
                "scheme": "exact",
                "network": BASE_SEPOLIA.v1_name,
                "maxAmountRequired": str(price),
                "resource": "http://two/data",
                "asset": asset.address,
                "payTo": PAY_TO,
                "maxTimeoutSeconds": 60,
                "extra": {"name": name, "version": "2"},
            }
            for asset, price, name in TWO_ASSET_PRICES.values()
        ]

    @staticmethod
    def signed_for(payload: PaymentPayload) -> str | None:
        """The asset whose EIP-712 domain and price this payment was signed for."""
        auth = payload.authorization
        for symbol, (asset, price, name) in TWO_ASSET_PRICES.items():
            domain = Eip712Domain(name, "2", BASE_SEPOLIA.chain_id, asset.address)
            if auth.value == price and recover_signer(auth, domain, payload.signature).lower() == auth.from_.lower():
                return symbol
        return None

    def handler(self, request: httpx.Request) -> httpx.Response:
        header = request.headers.get("X-PAYMENT")
        if header is None:
            self._arrive("unpaid")
            body = {"x402Version": 1, "error": "X-PAYMENT header is required", "accepts": self.offers()}
            return httpx.Response(402, json=body)
        self._arrive("paid")
        payload = PaymentPayload.decode(header)
        symbol = self.signed_for(payload)
        if symbol is None:
            return httpx.Response(402, json={"x402Version": 1, "error": "invalid_exact_evm_payload_signature"})
        with self.lock:
            self.settled.append(symbol)
        auth = payload.authorization
        receipt = SettlementResponse(True, "0x" + auth.nonce[2:], BASE_SEPOLIA.v1_name, auth.from_)
        return httpx.Response(200, json={"paid_with": symbol}, headers={"X-PAYMENT-RESPONSE": receipt.encode()})


def test_concurrent_requests_each_pay_in_the_asset_they_ask_for(wallet, ledger):
    two = TwoAssetServer(meet=2)
    policy = SpendPolicy(extra_assets=[TMAI_SEPOLIA], asset_limits={"TMAI": {"max_per_call": "5"}})
    auth = X402Auth(wallet, policy, ledger=ledger)
    tmai = PaymentOptions(pay_with="tmai").extensions()
    with httpx.Client(auth=auth, transport=httpx.MockTransport(two.handler)) as client:
        with ThreadPoolExecutor(2) as pool:
            in_tmai = pool.submit(client.get, "http://two/data", extensions=tmai)
            by_default = pool.submit(client.get, "http://two/data")
            first = (in_tmai.result(timeout=30), by_default.result(timeout=30))
        # Warm now: each preference remembered its own challenge, and pays from it.
        second = (client.get("http://two/data", extensions=tmai), client.get("http://two/data"))
    for r_tmai, r_default in (first, second):
        assert r_tmai.json() == {"paid_with": "TMAI"} and payment_of(r_tmai).offer.asset.symbol == "TMAI"
        assert r_default.json() == {"paid_with": "USDC"} and payment_of(r_default).offer.asset.symbol == "USDC"
    assert two.arrived["unpaid"] == 2 and sorted(two.settled) == ["TMAI", "TMAI", "USDC", "USDC"]
    assert policy.pay_with == "usdc"
    rows = ledger.payments()
    assert sorted(rows["asset_symbol"]) == ["TMAI", "TMAI", "USDC", "USDC"] and set(rows["status"]) == {"settled"}


def test_a_request_can_carry_its_own_per_call_cap(server, wallet, ledger):
    server.config.amount = 200_000  # 0.20 USDC, over the policy's 0.10 per call
    auth = X402Auth(wallet, SpendPolicy(max_per_call="0.10"), ledger=ledger)
    with httpx.Client(auth=auth) as client:
        r = client.get(server.url + "/data", extensions=PaymentOptions(max_per_call="0.50").extensions())
        assert r.status_code == 200 and payment_of(r).amount == 200_000
        with pytest.raises(BudgetExceeded, match=r"per-call cap is 0\.10 USD"):
            client.get(server.url + "/data")  # no options: the policy's cap again, even on the warm path
    assert auth.stats["signed"] == 1 and auth.policy.max_per_call == 100_000
    assert len(server.settlements) == 1 and statuses(ledger) == ["settled"]
