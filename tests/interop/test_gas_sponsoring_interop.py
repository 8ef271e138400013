"""The official x402 SDK's client (2.25, a test-only peer) pays the sandbox's sponsored Permit2 offer.

It signs the ``erc20ApprovalGasSponsoring`` approval itself when the challenge advertises it, but
only with a signer that can sign transactions and read the chain: ``EthAccountSignerWithRPC``
(web3 over the sandbox's ``/rpc``: ``eth_call`` allowance, ``eth_getTransactionCount``,
``eth_getBlockByNumber``, ``eth_maxPriorityFeePerGas``). Its approval is unlimited (2**256 - 1),
as its client always signs; ours approves exactly the payment (tests/sandbox/test_gas_sponsoring.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

pytest.importorskip("x402.http.clients")
pytest.importorskip("web3")

from eth_account import Account
from x402 import x402Client
from x402.http.clients import x402HttpxClient
from x402.http.utils import decode_payment_response_header
from x402.mechanisms.evm.exact import register_exact_evm_client
from x402.mechanisms.evm.signers import EthAccountSigner, EthAccountSignerWithRPC

from tm402_nb.sandbox import SandboxServer, serve
from tm402_nb.x402.chain import ChainReader
from tm402_nb.x402.permit2 import PERMIT2_ADDRESS
from tm402_nb.x402.wallet import Wallet

pytestmark = pytest.mark.interop

PATH, PARAMS = "/v2/tm-grade", {"symbol": "BTC"}
PRICE = 1_530_000_000_000_000_000
HEADERS = {"x-coinbase-402": "true", "x-payment-token": "tmai"}


@pytest.fixture(scope="module")
def sbs() -> Iterator[SandboxServer]:
    # Only the requested asset is offered, so the SDK's first-offer choice is the Permit2 TMAI one.
    with serve(x402_version=2, tmai_transfer="permit2", offers="requested", gas_sponsoring="erc20") as server:
        yield server


async def _sdk_pay(sbs: SandboxServer, wallet: Wallet, *, rpc: bool) -> httpx.Response:
    account = Account.from_key(wallet._export_key_hex())
    signer = EthAccountSignerWithRPC(account, sbs.rpc_url) if rpc else EthAccountSigner(account)
    client = x402Client()
    register_exact_evm_client(client, signer)
    tmai = sbs.state.asset("tmai").address
    client.set_spend_controls(
        {"allowed_assets": [{"network": "eip155:84532", "asset": tmai, "max_amount_per_payment": str(2 * 10**18)}]}
    )
    async with x402HttpxClient(client, base_url=sbs.url, timeout=20) as http:
        r = await http.get(PATH, params=PARAMS, headers=HEADERS)
        await r.aread()
        return r


def test_the_official_sdk_pays_the_sponsored_offer_without_allowance_or_eth(sbs: SandboxServer) -> None:
    wallet = Wallet.create()
    sbs.fund(wallet.address, "tmai", "100")
    reader = ChainReader(sbs.rpc_url)
    tmai = sbs.state.asset("tmai").address
    r = asyncio.run(_sdk_pay(sbs, wallet, rpc=True))
    assert r.status_code == 200, r.text
    receipt = decode_payment_response_header(r.headers["PAYMENT-RESPONSE"])
    assert receipt.success and receipt.payer == wallet.address
    [settled] = sbs.settlements(wallet.address)
    assert settled["tx"] == receipt.transaction and settled["amount"] == str(PRICE)
    assert reader.allowance(tmai, wallet.address, PERMIT2_ADDRESS) == 2**256 - 1  # the SDK approves unlimited
    assert reader.transaction_count(wallet.address) == 1 and reader.native_balance(wallet.address) == 0
    assert sbs.balance(wallet.address, "tmai") == 100 * 10**18 - PRICE


def test_the_official_sdk_without_an_rpc_signer_is_refused(sbs: SandboxServer) -> None:
    """A plain EthAccountSigner cannot sign the approval: the payment carries none and is refused 412."""
    wallet = Wallet.create()
    sbs.fund(wallet.address, "tmai", "100")
    r = asyncio.run(_sdk_pay(sbs, wallet, rpc=False))
    assert r.status_code == 412
    assert sbs.settlements(wallet.address) == []
