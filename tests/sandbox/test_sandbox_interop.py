"""The official x402 SDK (a test-only dependency) pays the sandbox and decodes its receipt."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("x402.http.clients")

from eth_account import Account
from x402 import x402Client
from x402.http.clients import x402HttpxClient
from x402.http.utils import decode_payment_response_header
from x402.mechanisms.evm.exact import register_exact_evm_client
from x402.mechanisms.evm.signers import EthAccountSigner

from tm402_nb.sandbox import serve

pytestmark = pytest.mark.interop


async def _pay(url: str, key_hex: str, path: str, params: dict) -> tuple[int, dict, str | None]:
    client = x402Client()
    register_exact_evm_client(client, EthAccountSigner(Account.from_key(key_hex)))
    async with x402HttpxClient(client, base_url=url, timeout=20) as http:
        r = await http.get(path, params=params, headers={"x-coinbase-402": "true"})
        receipt = r.headers.get("PAYMENT-RESPONSE") or r.headers.get("X-PAYMENT-RESPONSE")
        return r.status_code, r.json(), receipt


@pytest.mark.parametrize("version", [2, 1])
def test_official_httpx_client_pays_the_sandbox(version: int) -> None:
    with serve(x402_version=version) as sb:
        before = sb.balance(sb.wallet.address, "usdc")
        status, body, header = asyncio.run(
            _pay(sb.url, sb.wallet._export_key_hex(), "/v2/trading-signals", {"symbol": "BTC", "limit": 3})
        )
        assert status == 200
        assert body["success"] is True and body["length"] == 3
        assert body["data"][0]["TOKEN_SYMBOL"] == "BTC"
        assert header is not None
        receipt = decode_payment_response_header(header)
        assert receipt.success is True
        assert receipt.payer == sb.wallet.address
        assert receipt.network == ("eip155:84532" if version == 2 else "base-sepolia")
        settled = sb.settlements()
        assert len(settled) == 1 and settled[0]["tx"] == receipt.transaction
        assert sb.balance(sb.wallet.address, "usdc") == before - 17_000
        paths = sb.stats()["paths"]["/v2/trading-signals"]
        assert (paths["challenges"], paths["paid"]) == (1, 1)
