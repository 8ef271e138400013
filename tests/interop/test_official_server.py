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
