"""The sandbox chain's Permit2 state, read the way a payer reads a real node: allowances to
Permit2 (granted by the faucet's ``approve_permit2``) and Permit2's nonce bitmap."""

from __future__ import annotations

import os

import httpx
import pytest

from tm402_nb.sandbox import SandboxServer
from tm402_nb.x402.chain import ChainReader
from tm402_nb.x402.permit2 import PERMIT2_ADDRESS
from tm402_nb.x402.wallet import Wallet


@pytest.fixture
def reader(sb2: SandboxServer) -> ChainReader:
    return ChainReader(sb2.rpc_url)


def test_the_faucet_grants_permit2_an_allowance_only_when_asked(sb2: SandboxServer, reader: ChainReader) -> None:
    tmai = sb2.state.asset("tmai").address
    plain, approved = Wallet.create().address, Wallet.create().address
    sb2.fund(plain, "tmai", "10")
    with httpx.Client(base_url=sb2.url, timeout=10) as c:
        r = c.post(
            "/sandbox/faucet", json={"address": approved, "asset": "tmai", "amount": "10", "approve_permit2": True}
        )
    assert r.status_code == 200 and r.json()["permit2_allowance"] == "unlimited"
    assert reader.allowance(tmai, plain, PERMIT2_ADDRESS) == 0
    assert reader.allowance(tmai, approved, PERMIT2_ADDRESS) == 2**256 - 1
    # per token and per spender
    assert reader.allowance(sb2.state.asset("usdc").address, approved, PERMIT2_ADDRESS) == 0
    assert reader.allowance(tmai, approved, Wallet.create().address) == 0


def test_an_approval_sets_rather_than_adds(sb2: SandboxServer, reader: ChainReader) -> None:
    tmai = sb2.state.asset("tmai").address
    owner = Wallet.create().address
    sb2.state.chain.approve(tmai, owner, PERMIT2_ADDRESS, 50)
    sb2.state.chain.approve(tmai, owner, PERMIT2_ADDRESS, 20)
    assert reader.allowance(tmai, owner, PERMIT2_ADDRESS) == 20
    with pytest.raises(ValueError, match="uint256"):
        sb2.state.chain.approve(tmai, owner, PERMIT2_ADDRESS, 2**256)


@pytest.mark.parametrize("nonce", [0, 255, 256, 2**200 + 7])
def test_permit2_nonce_bitmap_marks_used_nonces_only(sb2: SandboxServer, reader: ChainReader, nonce: int) -> None:
    owner = Wallet.create().address
    key = "0x" + nonce.to_bytes(32, "big").hex()
    assert not reader.permit2_nonce_used(owner, nonce)
    assert sb2.state.chain.reserve_nonce(PERMIT2_ADDRESS, owner, key)
    assert not reader.permit2_nonce_used(owner, nonce), "a reservation is not on chain"
    sb2.state.chain.transfer_with_authorization(
        asset=PERMIT2_ADDRESS, payer=owner, pay_to=owner, amount=0, nonce=key, tx="0x" + os.urandom(32).hex(),
        network="test", path=None, x402_version=2, reserved=True,
    )  # fmt: skip
    assert reader.permit2_nonce_used(owner, nonce)
    assert not reader.permit2_nonce_used(owner, nonce ^ 1)
    assert not reader.permit2_nonce_used(Wallet.create().address, nonce)


def test_other_permit2_calls_revert(sb2: SandboxServer) -> None:
    with httpx.Client(timeout=10) as c:
        reply = c.post(
            sb2.rpc_url,
            json={
                "jsonrpc": "2.0",
                "id": 1,
                "method": "eth_call",
                "params": [{"to": PERMIT2_ADDRESS, "data": "0xdeadbeef"}],
            },
        ).json()
    assert reply["error"]["code"] == 3
