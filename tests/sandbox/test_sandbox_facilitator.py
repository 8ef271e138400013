"""The facilitator over HTTP (spec §7 shapes), the JSON-RPC subset, the faucet and the rate limit."""

from __future__ import annotations

import httpx
import pytest
from sandbox_helpers import X402, fresh_wallet, get_challenge, headers_for, key_headers, offer, sign

from tm402_nb.sandbox import SandboxServer, serve
from tm402_nb.sandbox.ratelimit import RateLimiter
from tm402_nb.sandbox.rpc import AUTHORIZATION_STATE, BALANCE_OF, DECIMALS, SYMBOL
from tm402_nb.x402.wallet import Wallet

PATH = "/v2/ai-reports"
BTC = {"symbol": "BTC"}


def _body(server: SandboxServer, c: httpx.Client, wallet: Wallet, **overrides) -> dict:
    required = get_challenge(c, PATH, BTC)
    payload = sign(wallet, required, **overrides)
    return {
        "x402Version": server.x402_version,
        "paymentPayload": payload.to_json(),
        "paymentRequirements": offer(required).raw,
    }


# -- facilitator ------------------------------------------------------------------------------------


def test_supported(client: httpx.Client, sbv: SandboxServer) -> None:
    body = client.get("/facilitator/supported").json()
    assert {"x402Version": 1, "scheme": "exact", "network": "base-sepolia"} in body["kinds"]
    assert {"x402Version": 2, "scheme": "exact", "network": "eip155:84532"} in body["kinds"]
    assert body["extensions"] == [] and list(body["signers"]) == ["eip155:*"]


def test_verify_does_not_change_state(client: httpx.Client, sbv: SandboxServer) -> None:
    w = fresh_wallet(sbv)
    body = _body(sbv, client, w)
    before = sbv.balance(w.address)
    for _ in range(2):  # verifying twice is fine: nothing is reserved or spent
        r = client.post("/facilitator/verify", json=body)
        assert r.status_code == 200 and r.json() == {"isValid": True, "payer": w.address}
    assert sbv.balance(w.address) == before


def test_verify_reasons(client: httpx.Client, sbv: SandboxServer) -> None:
    w = fresh_wallet(sbv)
    body = _body(sbv, client, w)
    body["paymentPayload"]["payload"]["authorization"]["to"] = "0x000000000000000000000000000000000000dEaD"
    r = client.post("/facilitator/verify", json=body).json()
    assert r["isValid"] is False and r["invalidReason"] == "invalid_exact_evm_payload_recipient_mismatch"
    assert r["payer"] == w.address and r["invalidMessage"]
    poor = Wallet.create()
    r = client.post("/facilitator/verify", json=_body(sbv, client, poor)).json()
    assert r["invalidReason"] == "insufficient_funds"


def test_settle_then_replay(client: httpx.Client, sbv: SandboxServer) -> None:
    w = fresh_wallet(sbv)
    body = _body(sbv, client, w)
    before = sbv.balance(w.address)
    r = client.post("/facilitator/settle", json=body).json()
    assert r["success"] is True and r["payer"] == w.address and len(r["transaction"]) == 66
    assert r["network"] == ("base-sepolia" if sbv.x402_version == 1 else "eip155:84532")
    assert sbv.balance(w.address) == before - 68000
    again = client.post("/facilitator/settle", json=body)
    assert again.status_code == 200
    assert again.json() == {
        "success": False,
        "transaction": "",
        "network": r["network"],
        "payer": w.address,
        "errorReason": "invalid_exact_evm_nonce_already_used",
        "errorMessage": again.json()["errorMessage"],
    }
    # A payment settled through the facilitator cannot be replayed at the API either.
    name = "X-PAYMENT" if sbv.x402_version == 1 else "PAYMENT-SIGNATURE"
    from tm402_nb.x402.encoding import b64json_encode

    assert (
        client.get(PATH, params=BTC, headers={**X402, name: b64json_encode(body["paymentPayload"])}).status_code == 402
    )


@pytest.mark.parametrize(
    "payload", [b"not json", b"[]", b'{"x402Version": 1}', b'{"paymentPayload": {}, "paymentRequirements": {}}']
)
def test_malformed_facilitator_requests(client: httpx.Client, payload: bytes) -> None:
    r = client.post("/facilitator/verify", content=payload)
    assert r.status_code == 400 and r.json()["isValid"] is False and r.json()["invalidReason"] == "invalid_payload"
    r = client.post("/facilitator/settle", content=payload)
    assert r.status_code == 400 and r.json()["success"] is False


# -- JSON-RPC ---------------------------------------------------------------------------------------------


def _rpc(c: httpx.Client, method: str, params: list | None = None, id_: int = 1) -> dict:
    r = c.post("/rpc", json={"jsonrpc": "2.0", "id": id_, "method": method, "params": params or []})
    assert r.status_code == 200
    return r.json()


def _call(c: httpx.Client, to: str, data: str) -> str:
    return _rpc(c, "eth_call", [{"to": to, "data": data}, "latest"])["result"]


def test_rpc_chain_and_balances(client: httpx.Client, sbv: SandboxServer) -> None:
    assert _rpc(client, "eth_chainId")["result"] == hex(84532)
    assert _rpc(client, "net_version")["result"] == "84532"
    usdc = sbv.assets["usdc"].address
    tmai = sbv.assets["tmai"].address
    w = fresh_wallet(sbv, usdc="12.5", tmai="3")
    arg = w.address[2:].lower().rjust(64, "0")
    assert BALANCE_OF == "0x70a08231"
    bal = _call(client, usdc, BALANCE_OF + arg)
    assert len(bal) == 66 and int(bal, 16) == 12_500_000 == sbv.balance(w.address, "usdc")
    assert int(_call(client, tmai, BALANCE_OF + arg), 16) == 3 * 10**18
    assert int(_call(client, usdc, DECIMALS), 16) == 6 and int(_call(client, tmai, DECIMALS), 16) == 18
    assert bytes.fromhex(_call(client, usdc, SYMBOL)[2:])[64:68] == b"USDC"
    assert _call(client, "0x" + "11" * 20, BALANCE_OF + arg) == "0x"  # not a contract


def test_rpc_block_number_and_receipts_follow_settlements(client: httpx.Client, sbv: SandboxServer) -> None:
    w = fresh_wallet(sbv)
    start = int(_rpc(client, "eth_blockNumber")["result"], 16)
    p = sign(w, get_challenge(client, PATH, BTC))
    r = client.get(PATH, params=BTC, headers=headers_for(p))
    assert r.status_code == 200
    assert int(_rpc(client, "eth_blockNumber")["result"], 16) > start
    tx = sbv.settlements(payer=w.address)[-1]["tx"]
    receipt = _rpc(client, "eth_getTransactionReceipt", [tx])["result"]
    assert receipt["status"] == "0x1" and receipt["transactionHash"] == tx
    assert _rpc(client, "eth_getTransactionReceipt", ["0x" + "00" * 32])["result"] is None
    arg = w.address[2:].lower().rjust(64, "0") + p.authorization.nonce[2:]
    assert int(_call(client, sbv.assets["usdc"].address, AUTHORIZATION_STATE + arg), 16) == 1


def test_rpc_errors_and_batches(client: httpx.Client) -> None:
    assert _rpc(client, "eth_sendTransaction")["error"]["code"] == -32601  # the node holds no keys
    assert _rpc(client, "eth_sendRawTransaction")["error"]["code"] == -32602  # no transaction given
    assert _rpc(client, "eth_sendRawTransaction", ["0xf86c"])["error"]["code"] == -32000  # legacy: type 2 only
    r = client.post("/rpc", content=b"{oops")
    assert r.json()["error"]["code"] == -32700
    assert client.post("/rpc", json={"id": 1}).json()["error"]["code"] == -32600
    batch = client.post("/rpc", json=[{"jsonrpc": "2.0", "id": i, "method": "eth_chainId"} for i in (1, 2)]).json()
    assert [b["id"] for b in batch] == [1, 2]
    bad_call = _rpc(client, "eth_call", [{"to": "0x036CbD53842c5426634e7929541eC2318f3dCF7e", "data": "0xdeadbeef"}])
    assert bad_call["error"]["message"] == "execution reverted"


# -- faucet -------------------------------------------------------------------------------------------------


def test_faucet(client: httpx.Client, sbv: SandboxServer) -> None:
    w = Wallet.create()
    r = client.post("/sandbox/faucet", json={"address": w.address, "asset": "usdc", "amount": "2.5"})
    assert r.status_code == 200
    body = r.json()
    assert body["amount"] == "2.5" and body["amount_atomic"] == "2500000" and body["asset"] == "USDC"
    r = client.post(
        "/sandbox/faucet", json={"address": w.address.lower(), "asset": sbv.assets["usdc"].address, "amount": 1}
    )
    assert r.json()["balance"] == "3.5"
    r = client.post("/sandbox/faucet", json={"address": w.address, "asset": "tmai", "amount": "0.000000000000000001"})
    assert r.json()["balance_atomic"] == "1"
    assert client.get("/sandbox/balance", params={"address": w.address}).json()["balance"] == "3.5"


@pytest.mark.parametrize(
    "body,word",
    [
        ({"address": "0x123", "asset": "usdc", "amount": "1"}, "address"),
        ({"address": "0x" + "ab" * 20, "asset": "doge", "amount": "1"}, "asset"),
        ({"address": "0x" + "ab" * 20, "asset": "usdc", "amount": "-1"}, "amount"),
        ({"address": "0x" + "ab" * 20, "asset": "usdc", "amount": "0.0000001"}, "decimal"),
        ({"address": "0x" + "ab" * 20, "asset": "usdc", "amount": "lots"}, "amount"),
        ({"address": "0x" + "ab" * 20, "asset": "usdc", "amount": "0"}, "amount"),
        ({"address": "0x" + "ab" * 20, "asset": "usdc", "amount": "1e12"}, "limit"),
        ({"address": "0x" + "ab" * 20}, "amount"),
        ({"address": "0x" + "ab" * 20, "amount": "1", "extra": 1}, "extra"),
    ],
)
def test_faucet_refuses_bad_requests(c1: httpx.Client, body: dict, word: str) -> None:
    r = c1.post("/sandbox/faucet", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["success"] is False and word in r.json()["message"]


def test_balances_survive_a_restart(tmp_path) -> None:
    db = str(tmp_path / "chain.sqlite3")
    w = Wallet.create()
    with serve(db_path=db, fund=False) as server:
        server.fund(w.address, "usdc", "7")
        with httpx.Client(base_url=server.url) as c:
            p = sign(w, get_challenge(c, "/v2/daily-ohlcv", BTC))
            assert c.get("/v2/daily-ohlcv", params=BTC, headers=headers_for(p)).status_code == 200
    with serve(db_path=db, fund=False) as server:
        assert server.balance(w.address, "usdc") == 7_000_000 - 17_000
        assert len(server.settlements()) == 1
        with httpx.Client(base_url=server.url) as c:  # the nonce is still used after the restart
            assert c.get("/v2/daily-ohlcv", params=BTC, headers=headers_for(p)).status_code == 402


# -- stats and settlements -------------------------------------------------------------------------------------


def test_stats_and_settlements_shape(sb2: SandboxServer) -> None:
    with serve(x402_version=2, fund=False) as server, httpx.Client(base_url=server.url) as c:
        w = fresh_wallet(server)
        required = get_challenge(c, PATH, BTC)
        p = sign(w, required)
        assert c.get(PATH, params=BTC, headers=headers_for(p)).status_code == 200
        p2 = sign(w, required)  # warm call: signed against the remembered challenge, no 402 first
        assert c.get(PATH, params=BTC, headers=headers_for(p2)).status_code == 200
        stats = c.get("/sandbox/stats").json()
        assert stats == server.stats()
        assert stats["paths"][PATH] == {
            "requests": 3,
            "challenges": 1,
            "payment_headers": 2,
            "unchallenged_payments": 1,
            "paid": 2,
            "refused": 0,
            "settle_failures": 0,
        }
        assert stats["settlements"] == 2 and stats["by_status"] == {"200": 2, "402": 1}
        listed = c.get("/sandbox/settlements").json()
        assert listed["length"] == 2
        s = listed["settlements"][0]
        assert set(s) == {
            "id",
            "tx",
            "network",
            "asset",
            "payer",
            "pay_to",
            "amount",
            "nonce",
            "path",
            "x402_version",
            "block",
            "settled_at",
        }
        assert (s["payer"], s["nonce"], s["amount"], s["path"]) == (w.address, p.authorization.nonce, "68000", PATH)
        assert c.get("/sandbox/settlements", params={"payer": "0x" + "00" * 20}).json()["length"] == 0
        assert c.post("/sandbox/stats/reset").json() == {"success": True}
        assert server.stats()["requests"] == 0


# -- rate limit ----------------------------------------------------------------------------------------------------


def test_token_bucket_unit() -> None:
    t = [0.0]
    rl = RateLimiter(rate=2, burst=3, clock=lambda: t[0])
    assert [rl.check("a") for _ in range(3)] == [0, 0, 0]
    assert rl.check("a") == 1  # empty: one token comes back within a second
    assert rl.check("b") == 0  # other callers have their own bucket
    t[0] += 0.5
    assert rl.check("a") == 0
    assert RateLimiter(rate=0, burst=0).check("a") == 0


def test_rate_limit_429_with_retry_after() -> None:
    with serve(fund=False, rate_limit=0.5, rate_burst=3) as server, httpx.Client(base_url=server.url) as c:
        h = key_headers(server)
        codes = [c.get("/v2/tokens", params={"limit": 1}, headers=h).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        r = c.get("/v2/tokens", headers=h)
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert r.json()["error"] == "rate_limited"
        # x402 callers are keyed by IP (or by payer once they pay), not by the API key.
        assert c.get("/v2/tokens", params={"limit": 1}, headers=X402).status_code == 200
        assert server.stats()["rate_limited"] == 2


# -- what the token contract reverts on, the facilitator refuses (issue 11, defect 9) ----------------------

ZERO = "0x0000000000000000000000000000000000000000"


def _settle_refused(client: httpx.Client, body: dict, reason: str) -> None:
    verified = client.post("/facilitator/verify", json=body).json()
    assert verified["isValid"] is False and verified["invalidReason"] == reason
    settled = client.post("/facilitator/settle", json=body).json()
    assert settled["success"] is False and settled["errorReason"] == reason and settled["transaction"] == ""


def test_a_transfer_to_the_zero_address_is_refused(client: httpx.Client, sbv: SandboxServer) -> None:
    """USDC reverts "ERC20: transfer to the zero address": the sandbox refuses it and nothing moves."""
    w = fresh_wallet(sbv)
    before = sbv.balance(w.address)
    body = _body(sbv, client, w, payTo=ZERO)
    body["paymentRequirements"]["payTo"] = ZERO  # a facilitator caller names the zero address as payee
    _settle_refused(client, body, "transaction_failed")
    assert sbv.balance(w.address) == before and sbv.settlements(payer=w.address) == []


@pytest.mark.parametrize("party", ["payer", "payee"])
def test_a_blacklisted_party_is_refused(client: httpx.Client, sbv: SandboxServer, party: str) -> None:
    w = fresh_wallet(sbv)
    body = _body(sbv, client, w)
    who = w.address if party == "payer" else body["paymentRequirements"]["payTo"]
    sbv.state.chain.blacklist.add(who.lower())
    try:
        _settle_refused(client, body, "transaction_failed")
    finally:
        sbv.state.chain.blacklist.discard(who.lower())
    assert sbv.settlements(payer=w.address) == []
    # The same payment settles once the party is cleared: the refusal burned nothing.
    assert client.post("/facilitator/settle", json=body).json()["success"] is True


def test_a_paused_token_is_refused(client: httpx.Client, sbv: SandboxServer) -> None:
    w = fresh_wallet(sbv)
    body = _body(sbv, client, w)
    asset = body["paymentRequirements"]["asset"].lower()
    sbv.state.chain.paused[asset] = True
    try:
        _settle_refused(client, body, "transaction_failed")
    finally:
        sbv.state.chain.paused.pop(asset, None)
    assert sbv.settlements(payer=w.address) == []


def test_valid_after_must_be_strictly_in_the_past(client: httpx.Client, sbv: SandboxServer) -> None:
    """The contract requires block.timestamp > validAfter: an authorization valid from exactly now is early."""
    w = fresh_wallet(sbv)
    required = get_challenge(client, PATH, BTC)
    now = int(sbv.state.facilitator.clock())
    payload = sign(w, required, now=now + 600)  # validAfter = (now + 600) - 600 = now
    body = {
        "x402Version": sbv.x402_version,
        "paymentPayload": payload.to_json(),
        "paymentRequirements": offer(required).raw,
    }
    r = client.post("/facilitator/verify", json=body).json()
    assert r["isValid"] is False and r["invalidReason"] == "invalid_exact_evm_payload_authorization_valid_after"
