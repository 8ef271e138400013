"""Permit2 TMAI, both ways round: the official x402 SDK (2.25, a test-only peer) and our client pay the
sandbox's Permit2 offer (x402 v2), and both are refused ``permit2_allowance_required`` without the
one-time approval of the Permit2 contract (the SDK after signing, with the spec's 412; ours before
signing, as it reads the allowance from the chain)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

pytest.importorskip("x402.http.clients")

from eth_account import Account
from x402 import x402Client
from x402.http.clients import x402HttpxClient
from x402.http.utils import decode_payment_response_header
from x402.mechanisms.evm.exact import register_exact_evm_client
from x402.mechanisms.evm.signers import EthAccountSigner

from tm402_nb.errors import Permit2AllowanceRequired
from tm402_nb.ledger import Ledger
from tm402_nb.sandbox import SandboxServer, serve
from tm402_nb.sandbox.assets import SANDBOX_TMAI_BASE_SEPOLIA
from tm402_nb.x402 import SpendPolicy, X402Auth, paying_client
from tm402_nb.x402.chain import ChainReader
from tm402_nb.x402.messages import parse_challenge
from tm402_nb.x402.wallet import Wallet

pytestmark = pytest.mark.interop

PATH, PARAMS = "/v2/tm-grade", {"symbol": "BTC"}
PRICE = 1_530_000_000_000_000_000
HEADERS = {"x-coinbase-402": "true", "x-payment-token": "tmai"}


@pytest.fixture(scope="module")
def sbp() -> Iterator[SandboxServer]:
    # Only the requested asset is offered, so the SDK's first-offer choice is the Permit2 TMAI one.
    with serve(x402_version=2, tmai_transfer="permit2", offers="requested") as server:
        yield server


def funded(sbp: SandboxServer, *, approve: bool) -> Wallet:
    w = Wallet.create()
    sbp.fund(w.address, "tmai", "100", approve_permit2=approve)
    return w


async def _sdk_pay(sbp: SandboxServer, wallet: Wallet) -> httpx.Response:
    client = x402Client()
    register_exact_evm_client(client, EthAccountSigner(Account.from_key(wallet._export_key_hex())))
    # TMAI is no default asset of the SDK: its spend controls refuse it unless allowed, with an atomic cap.
    tmai = sbp.state.asset("tmai").address
    client.set_spend_controls(
        {"allowed_assets": [{"network": "eip155:84532", "asset": tmai, "max_amount_per_payment": str(2 * 10**18)}]}
    )
    async with x402HttpxClient(client, base_url=sbp.url, timeout=20) as http:
        r = await http.get(PATH, params=PARAMS, headers=HEADERS)
        await r.aread()
        return r


def test_the_official_sdk_pays_the_permit2_offer(sbp: SandboxServer) -> None:
    wallet = funded(sbp, approve=True)
    r = asyncio.run(_sdk_pay(sbp, wallet))
    assert r.status_code == 200, r.text
    assert r.json()["data"][0]["TOKEN_SYMBOL"] == "BTC"
    receipt = decode_payment_response_header(r.headers["PAYMENT-RESPONSE"])
    assert receipt.success and receipt.payer == wallet.address and receipt.network == "eip155:84532"
    [settled] = sbp.settlements(wallet.address)
    assert settled["tx"] == receipt.transaction and settled["amount"] == str(PRICE)
    assert ChainReader(sbp.rpc_url).permit2_nonce_used(wallet.address, int(settled["nonce"], 16))
    assert sbp.balance(wallet.address, "tmai") == 100 * 10**18 - PRICE


def test_the_official_sdk_is_refused_without_the_allowance(sbp: SandboxServer) -> None:
    wallet = funded(sbp, approve=False)
    r = asyncio.run(_sdk_pay(sbp, wallet))
    assert r.status_code == 412  # Precondition Failed: the SDK signed, the sandbox refused
    assert parse_challenge(r.headers, r.content).error == "permit2_allowance_required"
    assert sbp.settlements(wallet.address) == [] and sbp.balance(wallet.address, "tmai") == 100 * 10**18


@pytest.mark.parametrize("approve", [True, False], ids=["approved", "not-approved"])
def test_our_client_pays_the_same_offer_or_refuses_before_signing(
    sbp: SandboxServer, ledger: Ledger, approve: bool
) -> None:
    wallet = funded(sbp, approve=approve)
    policy = SpendPolicy(pay_with="tmai", extra_assets=(SANDBOX_TMAI_BASE_SEPOLIA,), usd_rates={"TMAI": "0.01"})
    auth = X402Auth(wallet, policy, ledger=ledger, chain=ChainReader(sbp.rpc_url))
    with paying_client(wallet, auth=auth) as client:
        if approve:
            r = client.get(sbp.url + PATH, params=PARAMS, headers=HEADERS)
            assert r.status_code == 200
            [row] = ledger.payment_rows()
            assert (row["status"], row["transfer"]) == ("settled", "permit2")
            assert sbp.settlements(wallet.address)[0]["nonce"] == row["nonce"]
        else:
            with pytest.raises(Permit2AllowanceRequired):
                client.get(sbp.url + PATH, params=PARAMS, headers=HEADERS)
            assert auth.stats["signed"] == 0 and ledger.payment_rows() == []
            assert sbp.settlements(wallet.address) == []
