"""The money path under hostile answers (issue 11, defects 1–4 and 6).

The rule behind each test: a signed authorization can be settled by whoever holds it until its
``validBefore``. So what reached a server stays counted against every cap until a receipt settles
it or it expires; what the client signed is what the ledger keeps; and a payment header never
leaves the origin it was signed for.

Most tests use an in-process scripted server (``httpx.MockTransport``): every answer a hostile or
broken server could give to a paid request is one entry of a script.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from tests.toyserver import PAY_TO, serve_app
from tm402_nb.errors import PaymentFailed, PaymentOutcomeUnknown, PaymentRefused, TM402Error, X402ProtocolError
from tm402_nb.ledger import Ledger
from tm402_nb.status import EXPIRY_MARGIN_SECONDS, PaymentStatus
from tm402_nb.x402 import SpendPolicy, Wallet, X402Auth, async_paying_client, paying_client, payment_of
from tm402_nb.x402.encoding import b64json_encode
from tm402_nb.x402.messages import PaymentPayload, SettlementResponse
from tm402_nb.x402.networks import USDC_BASE_SEPOLIA

PRICE = 17_000
OTHER = "0x1111111111111111111111111111111111111111"


def requirement(timeout: int = 3600) -> dict[str, Any]:
    return {
        "scheme": "exact",
        "network": "base-sepolia",
        "maxAmountRequired": str(PRICE),
        "resource": "http://toy/data",
        "asset": USDC_BASE_SEPOLIA.address,
        "payTo": PAY_TO,
        "maxTimeoutSeconds": timeout,
        "extra": {"name": "USDC", "version": "2"},
    }


def challenge(error: str = "X-PAYMENT header is required") -> httpx.Response:
    return httpx.Response(402, json={"x402Version": 1, "error": error, "accepts": [requirement()]})


def receipt_header(payload: PaymentPayload, *, success: bool = True, **override: Any) -> dict[str, str]:
    fields = {"payer": payload.authorization.from_, "network": "base-sepolia", "reason": None, "amount": None}
    fields.update(override)
    tx = "0x" + payload.authorization.nonce[2:] if success else ""
    rec = SettlementResponse(success, tx, fields["network"], fields["payer"], fields["reason"], fields["amount"])
    return {"X-PAYMENT-RESPONSE": rec.encode()}


#: What a server may answer to a request that carries a payment header.
ANSWERS = ("ok", "refuse", "settle-failed", "4xx", "5xx", "429", "no-receipt", "odd-receipt", "drop")


class ScriptedServer:
    """Answers each paid request with the next entry of ``script`` ("ok" once it runs out) and
    keeps every payment it was sent: a hostile server may settle any of them later."""

    def __init__(self, script: list[str]) -> None:
        self.script = list(script)
        self.received: dict[str, int] = {}  # nonce -> amount of every payment header seen
        self.settled: dict[str, int] = {}

    def handle(self, request: httpx.Request) -> httpx.Response:
        header = request.headers.get("X-PAYMENT")
        if header is None:
            return challenge()
        payload = PaymentPayload.decode(header)
        nonce, amount = payload.authorization.nonce, payload.authorization.value
        self.received[nonce] = amount
        answer = self.script.pop(0) if self.script else "ok"
        data = {"data": [1], "paid": True}
        if answer == "ok":
            self.settled[nonce] = amount
            return httpx.Response(200, json=data, headers=receipt_header(payload))
        if answer == "refuse":
            return challenge("invalid_exact_evm_payload_authorization_value_mismatch")
        if answer == "settle-failed":
            return httpx.Response(402, json={}, headers=receipt_header(payload, success=False, reason="unexpected"))
        if answer == "4xx":
            return httpx.Response(409, json={"error": "conflict"})
        if answer == "5xx":
            return httpx.Response(503, json={"error": "busy"})
        if answer == "429":
            return httpx.Response(429, json={"error": "slow down"})
        if answer == "no-receipt":
            return httpx.Response(200, json=data)
        if answer == "odd-receipt":
            self.settled[nonce] = amount
            return httpx.Response(200, json=data, headers=receipt_header(payload, payer=OTHER, amount=amount + 1))
        raise httpx.ReadError("connection cut after the payment arrived", request=request)


def counted(policy: SpendPolicy) -> int:
    return sum(policy.spent().values())


def ledger_counted(ledger: Ledger) -> int:
    return ledger.spent(USDC_BASE_SEPOLIA.address, USDC_BASE_SEPOLIA.network)


# -- the class: whatever the answers, nothing that may still settle is ever released ----------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    script=st.lists(st.sampled_from(ANSWERS), min_size=1, max_size=8),
    paths=st.lists(st.sampled_from(["/a", "/b"]), min_size=1, max_size=6),
)
def test_nothing_that_may_still_settle_is_ever_released(tmp_path_factory, script, paths):
    """For any sequence of server answers to signed payments, the sum counted against the caps
    (by the policy and by the ledger alike) is never below the sum that could still settle, and
    no call signs more than once."""
    server = ScriptedServer(script)
    policy = SpendPolicy(budget="10.00", authorization_seconds=3600)
    ledger = Ledger(tmp_path_factory.mktemp("ledger") / "l.sqlite3")
    auth = X402Auth(Wallet.create(), policy, ledger=ledger)
    with paying_client(auth.wallet, auth=auth, transport=httpx.MockTransport(server.handle)) as client:
        for path in paths:
            signed_before = auth.stats["signed"]
            # The x402 layer raises a TM402Error, or httpx's own error once a cut answer's replays run out.
            with contextlib.suppress(TM402Error, httpx.TransportError):
                client.get("https://toy.test" + path)
            assert auth.stats["signed"] - signed_before <= 1, "a call signed twice"
            # Every header the server holds is unexpired (one-hour window): all of it may still settle.
            may_settle = sum(server.received.values())
            assert counted(policy) >= may_settle
            assert ledger_counted(ledger) == counted(policy)
            assert not set(server.settled) - set(ledger.payments()["nonce"])
    ledger.close()


# -- defect 1: a refused replay is not proof that the first attempt failed --------------------------------------


@pytest.mark.parametrize("refusal", ["4xx", "settle-failed", "refuse"])
def test_a_replay_refused_by_any_status_stays_unknown_and_counted(ledger, refusal):
    """The answer to a paid request is lost; its replay is refused (409, a failed settlement, a
    402). The first attempt may have settled: the payment stays unknown, counted, nothing re-signed."""
    server = ScriptedServer(["drop", refusal])
    policy = SpendPolicy(budget="1.00", daily_cap="0.034")
    auth = X402Auth(Wallet.create(), policy, ledger=ledger)
    with (
        paying_client(auth.wallet, auth=auth, transport=httpx.MockTransport(server.handle)) as client,
        contextlib.suppress(TM402Error, httpx.TransportError),
    ):
        client.get("https://toy.test/a")
    assert auth.stats["signed"] == 1
    assert ledger.payments()["status"].tolist() == ["unknown"]
    assert counted(policy) == PRICE and ledger_counted(ledger) == PRICE


# -- defect 2: a refusal keeps the signature counted until it expires --------------------------------------------


def test_refused_authorizations_count_against_the_budget_until_they_expire(ledger):
    """Six calls refused after signing used to leave 0.102 USDC of valid authorizations against a
    0.05 budget. Now each refused one is reserved until its validBefore: the budget stops the run."""
    now = [1_000_000.0]
    server = ScriptedServer(["refuse"] * 10)
    policy = SpendPolicy(budget="0.05", authorization_seconds=3600, clock=lambda: now[0])
    auth = X402Auth(Wallet.create(), policy, ledger=ledger, warm=False)
    refusals: list[str] = []
    with paying_client(auth.wallet, auth=auth, transport=httpx.MockTransport(server.handle)) as client:
        for i in range(6):
            try:
                client.get(f"https://toy.test/c{i}")
            except PaymentFailed:
                refusals.append("failed")
            except PaymentRefused:
                refusals.append("budget")
    assert refusals == ["failed"] * 2 + ["budget"] * 4
    assert sum(server.received.values()) == 2 * PRICE <= 50_000
    assert policy.reserved_usd() == 2 * PRICE
    rows = ledger.payments()
    assert rows["status"].tolist() == ["failed", "failed"] and rows["reserved"].all()
    # Once the authorizations have expired they can never settle: the budget gets them back.
    latest = int(rows["valid_before"].max())
    now[0] = latest + EXPIRY_MARGIN_SECONDS + 1
    assert policy.reserved_usd() == 0 and counted(policy) == 0


def test_an_authorization_is_valid_no_longer_than_the_policy_allows(ledger):
    """A server may allow a day; the client signs for at most ``authorization_seconds``, so a
    refused payment stops counting soon."""
    seen: list[PaymentPayload] = []

    def handle(request: httpx.Request) -> httpx.Response:
        header = request.headers.get("X-PAYMENT")
        if header is None:
            return httpx.Response(402, json={"x402Version": 1, "error": "pay", "accepts": [requirement(86_400)]})
        seen.append(PaymentPayload.decode(header))
        return httpx.Response(200, json={}, headers=receipt_header(seen[-1]))

    policy = SpendPolicy(authorization_seconds=120)
    with paying_client(Wallet.create(), policy, ledger=ledger, transport=httpx.MockTransport(handle)) as client:
        client.get("https://toy.test/a")
    auth = seen[0].authorization
    assert auth.valid_before - auth.valid_after <= 120 + 600  # validAfter is back-dated for clock skew


def test_a_404_after_paying_is_reserved_not_lost(ledger):
    """The handler refused (no settlement): failed, shown as reserved while it could still settle."""
    server = ScriptedServer(["4xx"])
    policy = SpendPolicy(budget="1.00", authorization_seconds=3600)
    with paying_client(Wallet.create(), policy, ledger=ledger, transport=httpx.MockTransport(server.handle)) as c:
        assert c.get("https://toy.test/a").status_code == 409
    row = ledger.payments().iloc[0]
    assert row["status"] == "failed" and bool(row["reserved"])
    assert policy.reserved_usd() == PRICE


# -- defect 3: a payment header never leaves its origin -----------------------------------------------------------


class Origin:
    """A toy origin that records what it receives; ``/data`` 402s, and a paid ``/data`` answers
    ``paid_answer`` (a redirect elsewhere, by default)."""

    def __init__(self) -> None:
        self.seen_payment_headers: list[str] = []
        self.redirect_to = ""
        self.challenge_everything = False
        self.app = Starlette(routes=[Route("/data", self.data), Route("/new", self.new)])

    async def data(self, request: Request) -> Response:
        header = request.headers.get("X-PAYMENT")
        if header is None or self.challenge_everything:
            if header is not None:
                self.seen_payment_headers.append(header)
            return JSONResponse({"x402Version": 1, "error": "pay", "accepts": [requirement()]}, status_code=402)
        self.seen_payment_headers.append(header)
        return RedirectResponse(self.redirect_to, status_code=307)

    async def new(self, request: Request) -> Response:
        header = request.headers.get("X-PAYMENT")
        if header is None:
            return JSONResponse({"x402Version": 1, "error": "pay", "accepts": [requirement()]}, status_code=402)
        self.seen_payment_headers.append(header)
        payload = PaymentPayload.decode(header)
        return JSONResponse({"ok": True}, headers=receipt_header(payload))


@pytest.fixture
def two_origins():
    a, b = Origin(), Origin()
    with serve_app(a.app) as url_a, serve_app(b.app) as url_b:
        a.url, b.url = url_a, url_b
        yield a, b


@pytest.mark.parametrize("guarded", [False, True], ids=["plain-httpx", "paying_client"])
def test_a_paid_request_redirected_to_another_origin_is_never_paid_again(two_origins, ledger, guarded):
    a, b = two_origins
    a.redirect_to = b.url + "/data"
    b.challenge_everything = True
    auth = X402Auth(Wallet.create(), SpendPolicy(), ledger=ledger)
    client = (
        paying_client(auth.wallet, auth=auth, follow_redirects=True)
        if guarded
        else httpx.Client(auth=auth, follow_redirects=True)
    )
    with client, pytest.raises(PaymentOutcomeUnknown, match="redirected"):
        client.get(a.url + "/data")
    assert auth.stats["signed"] == 1  # B's challenge was never paid
    assert len(a.seen_payment_headers) == 1
    # The guard keeps the header home; plain httpx copies it, and the client says so.
    assert b.seen_payment_headers == ([] if guarded else a.seen_payment_headers)
    assert ledger.payments()["status"].tolist() == ["unknown"]  # A holds it and may settle it


def test_a_challenge_from_a_redirect_target_is_refused_unsigned(two_origins, ledger):
    """An unpaid request to A redirected to B, whose 402 asks for money: B's price is not what the
    caller agreed to, and pinning B's payee under A would be wrong. Nothing is signed."""
    a, b = two_origins

    async def bounce(request: Request) -> Response:
        return RedirectResponse(b.url + "/data", status_code=302)

    a.app = Starlette(routes=[Route("/data", bounce)])
    with serve_app(a.app) as url_a:
        auth = X402Auth(Wallet.create(), SpendPolicy(), ledger=ledger)
        with (
            httpx.Client(auth=auth, follow_redirects=True) as client,
            pytest.raises(PaymentRefused, match="after a redirect"),
        ):
            client.get(url_a + "/data")
    assert auth.stats["signed"] == 0 and ledger.payments().empty and b.seen_payment_headers == []


def test_a_same_origin_redirect_still_pays_once(two_origins, ledger):
    a, _ = two_origins
    a.redirect_to = a.url + "/new"
    with paying_client(Wallet.create(), SpendPolicy(), ledger=ledger, follow_redirects=True) as client:
        r = client.get(a.url + "/data")
    assert r.status_code == 200 and r.json() == {"ok": True}
    assert ledger.payments()["status"].tolist() == ["settled"]


def test_the_async_guard_strips_the_header_too(two_origins, ledger):
    a, b = two_origins
    a.redirect_to = b.url + "/data"
    b.challenge_everything = True

    async def main() -> None:
        async with async_paying_client(Wallet.create(), SpendPolicy(), ledger=ledger, follow_redirects=True) as c:
            with pytest.raises(PaymentOutcomeUnknown):
                await c.get(a.url + "/data")

    asyncio.run(main())
    assert b.seen_payment_headers == []


# -- defect 4: the ledger keeps what we signed ----------------------------------------------------------------


@pytest.mark.parametrize(
    "override, words",
    [
        ({"payer": OTHER}, "payer"),
        ({"network": "base"}, "network"),
        ({"amount": PRICE * 10}, "amount"),
        ({"network": "solana-devnet"}, "network"),
    ],
)
def test_a_receipt_that_disagrees_is_recorded_beside_what_was_signed(ledger, override, words):
    wallet = Wallet.create()

    def handle(request: httpx.Request) -> httpx.Response:
        header = request.headers.get("X-PAYMENT")
        if header is None:
            return challenge()
        return httpx.Response(200, json={}, headers=receipt_header(PaymentPayload.decode(header), **override))

    with paying_client(wallet, SpendPolicy(), ledger=ledger, transport=httpx.MockTransport(handle)) as client:
        r = client.get("https://toy.test/a")
    row = ledger.payments().iloc[0]
    assert row["status"] == "settled"
    assert row["payer"] == wallet.address  # never overwritten by the receipt
    assert row["amount_atomic"] == PRICE and row["network"] == USDC_BASE_SEPOLIA.network
    assert words in row["discrepancy"]
    assert words in payment_of(r).discrepancy


def test_an_agreeing_receipt_records_no_discrepancy(ledger):
    server = ScriptedServer(["ok"])
    with paying_client(
        Wallet.create(), SpendPolicy(), ledger=ledger, transport=httpx.MockTransport(server.handle)
    ) as c:
        c.get("https://toy.test/a")
    assert ledger.payments()["discrepancy"].isna().all()


# -- defect 6: the 16 KB limit is applied while reading -------------------------------------------------------


class HugeChallenge:
    """A 402 whose body is 64 MiB, produced lazily chunk by chunk as the client pulls it, so the
    test counts exactly what the client read."""

    CHUNK = 64 * 1024
    TOTAL = 64 * 1024 * 1024

    def __init__(self, *, version: int, declare_length: bool) -> None:
        self.version = version
        self.declare_length = declare_length
        self.read = 0

    def _chunks(self):
        while self.read < self.TOTAL:
            self.read += self.CHUNK
            yield b" " * self.CHUNK

    def _response(self, request: httpx.Request, stream: Any) -> httpx.Response:
        paid = request.headers.get("PAYMENT-SIGNATURE")
        if paid:
            payload = PaymentPayload.decode(paid)
            rec = SettlementResponse(True, "0x" + payload.authorization.nonce[2:], "eip155:84532")
            return httpx.Response(200, json={"ok": True}, headers={"PAYMENT-RESPONSE": rec.encode()})
        headers = {"content-length": str(self.TOTAL)} if self.declare_length else {}
        if self.version == 2:
            req = {**requirement(), "network": "eip155:84532", "amount": str(PRICE)}
            req.pop("maxAmountRequired")
            obj = {"x402Version": 2, "resource": {"url": "http://toy/data"}, "accepts": [req]}
            headers["PAYMENT-REQUIRED"] = b64json_encode(obj)
        return httpx.Response(402, headers=headers, stream=stream)

    def handle(self, request: httpx.Request) -> httpx.Response:
        outer = self

        class Body(httpx.SyncByteStream):
            def __iter__(self):
                yield from outer._chunks()

        return self._response(request, Body())

    async def ahandle(self, request: httpx.Request) -> httpx.Response:
        outer = self

        class Body(httpx.AsyncByteStream):
            async def __aiter__(self):
                for chunk in outer._chunks():
                    yield chunk

        return self._response(request, Body())


@pytest.mark.parametrize("declare_length", [False, True], ids=["streamed", "content-length"])
@pytest.mark.parametrize("kind", ["sync", "async"])
def test_an_oversized_v1_challenge_is_refused_without_reading_it(ledger, declare_length, kind):
    server = HugeChallenge(version=1, declare_length=declare_length)
    if kind == "sync":
        transport = httpx.MockTransport(server.handle)
        with (
            paying_client(Wallet.create(), SpendPolicy(), ledger=ledger, transport=transport) as c,
            pytest.raises(X402ProtocolError, match="16 KB"),
        ):
            c.get("https://toy.test/data")
    else:

        async def main() -> None:
            transport = httpx.MockTransport(server.ahandle)
            async with async_paying_client(Wallet.create(), SpendPolicy(), ledger=ledger, transport=transport) as c:
                with pytest.raises(X402ProtocolError, match="16 KB"):
                    await c.get("https://toy.test/data")

        asyncio.run(main())
    assert ledger.payments().empty
    # Read up to the limit and one chunk past it at most; a declared length over it is not read at all.
    assert server.read <= (0 if declare_length else 16 * 1024 + HugeChallenge.CHUNK)


def test_a_v2_challenge_pays_without_reading_an_oversized_body(ledger):
    server = HugeChallenge(version=2, declare_length=False)
    transport = httpx.MockTransport(server.handle)
    with paying_client(Wallet.create(), SpendPolicy(), ledger=ledger, transport=transport) as c:
        assert c.get("https://toy.test/data").status_code == 200
    assert server.read <= 16 * 1024 + HugeChallenge.CHUNK
    assert ledger.payments()["status"].tolist() == ["settled"]


# -- defect 1, decided by the chain: the payer asks the token itself --------------------------------------------


class ChainOf:
    """An AuthorizationReader over what the scripted server actually settled."""

    def __init__(self, server: ScriptedServer) -> None:
        self.server = server
        self.asked = 0

    def authorization_used(self, asset: str, authorizer: str, nonce: str) -> bool:
        self.asked += 1
        return nonce in self.server.settled


class SettlesThenCuts(ScriptedServer):
    """Settles the first payment and cuts the connection, and every replay of it too."""

    def handle(self, request: httpx.Request) -> httpx.Response:
        header = request.headers.get("X-PAYMENT")
        if header is None:
            return challenge()
        payload = PaymentPayload.decode(header)
        nonce = payload.authorization.nonce
        self.received[nonce] = payload.authorization.value
        if not self.settled or nonce == next(iter(self.settled)):
            self.settled[nonce] = payload.authorization.value
            raise httpx.ReadError("cut after settling", request=request)
        self.settled[nonce] = payload.authorization.value
        return httpx.Response(200, json={"data": [1]}, headers=receipt_header(payload))


def test_a_lost_answer_is_decided_by_the_chain_not_by_the_servers_refusal(ledger):
    server = SettlesThenCuts([])
    chain = ChainOf(server)
    # A short authorization: too close to its expiry to replay, so the next call asks the chain.
    policy = SpendPolicy(authorization_seconds=10)
    auth = X402Auth(Wallet.create(), policy, ledger=ledger, chain=chain)
    with paying_client(auth.wallet, auth=auth, transport=httpx.MockTransport(server.handle)) as client:
        with contextlib.suppress(TM402Error, httpx.TransportError):
            client.get("https://toy.test/a")
        assert ledger.payments()["status"].tolist() == ["unknown"]
        with pytest.raises(PaymentOutcomeUnknown, match="settled on chain"):
            client.get("https://toy.test/a")
        assert chain.asked == 1 and auth.stats["signed"] == 1
        assert ledger.payments()["status"].tolist() == ["settled"]  # the chain's word, not the refusal's
        assert client.get("https://toy.test/a").status_code == 200  # asked again: a fresh purchase
    assert sorted(ledger.payments()["status"]) == ["settled", "settled"]
    assert len(server.settled) == 2


def test_an_unexecuted_payment_is_released_only_once_expired(ledger, monkeypatch):
    server = ScriptedServer(["drop", "drop", "drop"])
    chain = ChainOf(server)  # the server settles nothing: every nonce stays unused
    policy = SpendPolicy(authorization_seconds=3600)
    auth = X402Auth(Wallet.create(), policy, ledger=ledger, chain=chain)
    with (
        paying_client(auth.wallet, auth=auth, transport=httpx.MockTransport(server.handle)) as client,
        contextlib.suppress(TM402Error, httpx.TransportError),
    ):
        client.get("https://toy.test/a")
    (payment_id,) = ledger.payments()["id"]
    assert auth.resolve_unknown() == {payment_id: PaymentStatus.UNKNOWN}  # unused, but still valid
    assert counted(policy) == PRICE
    valid_before = int(ledger.payments()["valid_before"].iloc[0])
    import tm402_nb.x402.auth as auth_module

    monkeypatch.setattr(auth_module.time, "time", lambda: valid_before + EXPIRY_MARGIN_SECONDS + 1.0)
    assert auth.resolve_unknown() == {payment_id: PaymentStatus.FAILED}  # expired unexecuted: never can settle
    assert ledger.payments()["status"].tolist() == ["failed"]


def test_the_chain_reader_reads_the_sandboxs_token(tmp_path):
    from tm402_nb.sandbox import serve
    from tm402_nb.x402 import ChainReader

    with serve(fund=False) as sb:
        wallet = Wallet.create()
        sb.fund(wallet.address, "usdc", "1")
        reader = ChainReader(sb.rpc_url)
        assert reader.balance_of(USDC_BASE_SEPOLIA.address, wallet.address) == 1_000_000
        led = Ledger(tmp_path / "l.sqlite3")
        with paying_client(wallet, SpendPolicy(), ledger=led) as c:
            c.get(sb.api_url + "/tm-grade", params={"token_id": "3375"}, headers={"x-coinbase-402": "true"})
        (nonce,) = led.payments()["nonce"]
        assert reader.authorization_used(USDC_BASE_SEPOLIA.address, wallet.address, nonce)
        assert not reader.authorization_used(USDC_BASE_SEPOLIA.address, wallet.address, "0x" + "ab" * 32)
        led.close()


@pytest.mark.parametrize("payable", [True, False], ids=["new-terms-payable", "new-terms-over-the-cap"])
def test_a_warm_refusal_says_whether_the_next_call_can_pay(payable, ledger):
    price = [PRICE]

    def handle(request: httpx.Request) -> httpx.Response:
        header = request.headers.get("X-PAYMENT")
        if header is None or PaymentPayload.decode(header).authorization.value != price[0]:
            req = {**requirement(), "maxAmountRequired": str(price[0])}
            return httpx.Response(402, json={"x402Version": 1, "error": "price changed", "accepts": [req]})
        return httpx.Response(200, json={}, headers=receipt_header(PaymentPayload.decode(header)))

    auth = X402Auth(Wallet.create(), SpendPolicy(max_per_call="0.05"), ledger=ledger)
    with paying_client(auth.wallet, auth=auth, transport=httpx.MockTransport(handle)) as client:
        client.get("https://toy.test/a")
        price[0] = 20_000 if payable else 90_000
        with pytest.raises(PaymentFailed) as info:
            client.get("https://toy.test/a")
        assert ("current terms are remembered" in str(info.value)) is payable
        if payable:
            assert client.get("https://toy.test/a").status_code == 200
        else:
            with pytest.raises(PaymentRefused, match="per-call cap"):
                client.get("https://toy.test/a")
    assert auth.stats["signed"] == (3 if payable else 2)
