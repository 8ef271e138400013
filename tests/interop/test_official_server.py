"""Our X402Auth pays a server built with the official x402 SDK's FastAPI middleware (v2)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.interop.official import official_stack
from tm402_nb.x402 import SpendPolicy, X402Auth, async_paying_client, paying_client, payment_of, receipt

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def stack():
    with official_stack() as s:
        yield s


def test_we_pay_the_official_sdk_server(stack, wallet, ledger):
    url, _counts, fac = stack
    before = len(fac.settled)
    with paying_client(wallet, SpendPolicy(), ledger=ledger) as client:
        r = client.get(url + "/weather")
    assert r.status_code == 200 and r.json()["report"]["weather"] == "sunny"
    rec = receipt(r)
    assert rec.success and rec.network == "eip155:84532" and rec.payer == wallet.address
    assert payment_of(r).record.x402_version == 2
    assert ledger.payments()["status"].tolist() == ["settled"]
    assert ledger.payments()["amount_atomic"].tolist() == [10_000]
    assert len(fac.settled) == before + 1 and fac.settled[-1]["tx"] == rec.transaction


def test_warm_path_against_the_official_server(stack, wallet, ledger):
    url, counts, _fac = stack
    start = dict(counts)
    with paying_client(wallet, SpendPolicy(), ledger=ledger) as client:
        for _ in range(4):
            assert client.get(url + "/weather").status_code == 200
    requests = counts["requests"] - start.get("requests", 0)
    paid = counts["paid_requests"] - start.get("paid_requests", 0)
    assert (requests, paid) == (5, 4)  # one request to learn the price, then one per paid call
    assert ledger.payments()["status"].tolist() == ["settled"] * 4


def test_async_client_pays_the_official_server(stack, wallet):
    url, _counts, _fac = stack

    async def main():
        async with async_paying_client(wallet, SpendPolicy()) as client:
            return await asyncio.gather(*(client.get(url + "/weather") for _ in range(5)))

    assert all(r.status_code == 200 and receipt(r).success for r in asyncio.run(main()))


def test_price_over_cap_is_refused_before_signing(stack, wallet, ledger):
    url, _counts, _fac = stack
    auth = X402Auth(wallet, SpendPolicy(max_per_call="0.005"), ledger=ledger)
    with httpx.Client(auth=auth) as client, pytest.raises(Exception) as info:
        client.get(url + "/weather")
    assert "0.01 USDC" in str(info.value) and "0.005" in str(info.value)
    assert auth.stats["signed"] == 0 and ledger.payments().empty


# -- payment-identifier (issue 14) -------------------------------------------------------------------------


def _id_of(request: httpx.Request) -> str | None:
    from tm402_nb.x402.identifier import identifier_of
    from tm402_nb.x402.messages import PaymentPayload

    return identifier_of(PaymentPayload.decode(request.headers["PAYMENT-SIGNATURE"]).to_json())


def test_we_attach_an_id_the_official_server_accepts(stack, wallet, ledger):
    """The SDK route declares payment-identifier: we echo its declaration with an id, which the
    SDK's echo check accepts. Its middleware keeps no cache: the identical payload sent again is
    verified afresh and refused (nonce already used), with no second settlement."""
    from x402.extensions.payment_identifier import is_valid_payment_id

    url, _counts, fac = stack
    before = len(fac.settled)
    with paying_client(wallet, SpendPolicy(), ledger=ledger) as client:
        r = client.get(url + "/forecast")
    assert r.status_code == 200 and r.json() == {"forecast": ["rain", "sun"]}
    pid = _id_of(r.request)
    assert pid is not None and is_valid_payment_id(pid)
    assert ledger.payment_rows()[0]["identifier"] == pid
    again = httpx.get(url + "/forecast", headers={"PAYMENT-SIGNATURE": r.request.headers["PAYMENT-SIGNATURE"]})
    assert again.status_code == 402  # what the SDK's plain middleware does: no cache of its own
    assert len(fac.settled) == before + 1


def test_a_lost_answer_comes_back_from_an_sdk_server_with_an_idempotency_store(stack, wallet, ledger):
    """/report adds the spec's store (SDK helpers): the identical payload gets the cached answer,
    the same id with another payload 409; one settlement in all."""
    url, counts, fac = stack
    before, handled = len(fac.settled), counts["report_handler"]
    auth = X402Auth(wallet, SpendPolicy(), ledger=ledger)
    with httpx.Client(auth=auth) as client:
        r = client.get(url + "/report")
    assert r.status_code == 200
    header = r.request.headers["PAYMENT-SIGNATURE"]
    again = httpx.get(url + "/report", headers={"PAYMENT-SIGNATURE": header})
    assert again.status_code == 200 and again.json() == r.json()
    assert again.headers["PAYMENT-RESPONSE"] == r.headers["PAYMENT-RESPONSE"]
    assert counts["report_cached"] >= 1 and counts["report_handler"] == handled + 1
    assert len(fac.settled) == before + 1
    assert auth.stats["signed"] == 1 and ledger.payment_rows()[0]["status"] == "settled"


def test_lost_answer_replay_through_our_transport_against_the_sdk_store(stack, wallet, ledger):
    """The answer is cut after settlement (the connection dropped by a proxy in front): our
    transport replays the identical payload and the SDK server's store answers it."""
    url, _counts, fac = stack
    before = len(fac.settled)

    class CutFirstAnswer(httpx.BaseTransport):
        def __init__(self) -> None:
            self.inner = httpx.HTTPTransport()
            self.cut = 0

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            response = self.inner.handle_request(request)
            if request.headers.get("PAYMENT-SIGNATURE") and not self.cut:
                self.cut += 1
                response.read()  # the server answered and settled ...
                response.close()
                raise httpx.RemoteProtocolError("connection lost mid-answer", request=request)  # ... we never saw it
            return response

    cut = CutFirstAnswer()
    with paying_client(wallet, SpendPolicy(), ledger=ledger, transport=cut) as client:
        r = client.get(url + "/report")
    assert cut.cut == 1 and r.status_code == 200 and receipt(r).success
    assert len(fac.settled) == before + 1
    assert [row["status"] for row in ledger.payment_rows()] == ["settled"]
