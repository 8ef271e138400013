"""The official x402 SDK's ``upto`` client (a test-only peer) pays the sandbox's upto agent.

The sandbox under ``agent_scheme="upto"`` offers ``POST /v2/tmai`` as a Permit2 ceiling bound
to its facilitator; the SDK's client signs it its own way, the sandbox settles the answer's
share, and the SDK decodes the receipt's ``amount``. Our client and the SDK's then pay the same
ceiling and are charged the same way.
"""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("x402.mechanisms.evm.upto")

from eth_account import Account
from x402 import x402Client
from x402.http.clients import x402HttpxClient
from x402.http.utils import decode_payment_response_header
from x402.mechanisms.evm.signers import EthAccountSigner
from x402.mechanisms.evm.upto import UptoEvmClientScheme

from tm402_nb.sandbox import serve
from tm402_nb.sandbox.pricing import upto_charge

pytestmark = pytest.mark.interop

QUESTION = {"messages": [{"user": "Which tokens look strongest this week?"}]}


async def _ask(url: str, key_hex: str) -> tuple[int, int, str | None]:
    client = x402Client()
    client.register("eip155:*", UptoEvmClientScheme(EthAccountSigner(Account.from_key(key_hex))))
    async with x402HttpxClient(client, base_url=url, timeout=20) as http:
        r = await http.post("/v2/tmai", json=QUESTION, headers={"x-coinbase-402": "true"})
        return r.status_code, len(r.content), r.headers.get("PAYMENT-RESPONSE")


def test_the_official_upto_client_pays_the_sandbox_agent() -> None:
    with serve(x402_version=2, agent_scheme="upto") as sb:  # its wallet has approved Permit2
        before = sb.balance(sb.wallet.address, "usdc")
        status, delivered, header = asyncio.run(_ask(sb.url, sb.wallet._export_key_hex()))
        assert status == 200 and header is not None
        receipt = decode_payment_response_header(header)
        assert receipt.success is True and receipt.payer == sb.wallet.address
        settled = int(receipt.amount)
        assert settled == upto_charge(68_000, delivered) and 0 < settled < 68_000
        assert sb.balance(sb.wallet.address, "usdc") == before - settled
        (settlement,) = sb.settlements()
        assert settlement["tx"] == receipt.transaction and int(settlement["amount"]) == settled
