"""x402 in the sandbox, v1 and v2: challenges, paying, receipts, and every bad input of issue 3.

Each bad input must get a clear 4xx, settle nothing and leave every balance unchanged.
"""

from __future__ import annotations

import asyncio
import base64
import time

import httpx
import pytest
from sandbox_helpers import (
    X402,
    decode_header,
    fresh_wallet,
    get_challenge,
    headers_for,
    key_headers,
    sign,
    snapshot,
    tamper,
)

from tm402_nb.sandbox import SandboxServer
from tm402_nb.x402.messages import read_receipt
from tm402_nb.x402.wallet import Wallet

TIER1 = "/v2/tm-grade"  # $0.017
TIER3 = "/v2/quantmetrics"  # $0.068
BTC = {"symbol": "BTC"}


# -- challenges ------------------------------------------------------------------------------------


def test_v1_challenge_is_in_the_body(c1: httpx.Client, sb1: SandboxServer) -> None:
    r = c1.get(TIER1, params=BTC, headers=X402)
    assert r.status_code == 402
    assert "payment-required" not in r.headers
    body = r.json()
    assert body["x402Version"] == 1 and body["error"] == "X-PAYMENT header is required"
    usdc, tmai = body["accepts"]
    assert usdc == {
        "scheme": "exact",
        "network": "base-sepolia",
        "maxAmountRequired": "17000",
        "resource": str(r.url),
        "description": usdc["description"],
        "mimeType": "application/json",
        "payTo": sb1.pay_to,
        "maxTimeoutSeconds": 60,
        "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
        "extra": {"name": "USDC", "version": "2"},
    }
    assert tmai["maxAmountRequired"] == "1530000000000000000"  # $0.0153 at $0.01/TMAI, 18 decimals
    assert tmai["extra"] == {"name": "Token Metrics AI", "version": "1"}
    assert r.headers["x-tm402-sandbox"] == "true"


def test_v2_challenge_is_in_the_header(c2: httpx.Client, sb2: SandboxServer) -> None:
    r = c2.get(TIER3, params=BTC, headers=X402)
    assert r.status_code == 402 and r.json() == {}
    required = decode_header(r.headers["PAYMENT-REQUIRED"])
    assert required["x402Version"] == 2
    assert required["error"] == "PAYMENT-SIGNATURE header is required"
    assert required["resource"]["url"] == str(r.url)
    usdc = required["accepts"][0]
    assert usdc == {
        "scheme": "exact",
        "network": "eip155:84532",
        "amount": "68000",
        "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
        "payTo": sb2.pay_to,
        "maxTimeoutSeconds": 60,
        "extra": {"name": "USDC", "version": "2"},
    }
    assert required["accepts"][1]["amount"] == "6120000000000000000"


def test_tmai_offer_comes_first_when_asked(client: httpx.Client) -> None:
    required = get_challenge(client, TIER1, BTC, token="tmai")
    assert required.accepts[0].eip712_name == "Token Metrics AI"
    assert required.accepts[1].eip712_name == "USDC"
    r = client.get(TIER1, params=BTC, headers={**X402, "x-payment-token": "doge"})
    assert r.status_code == 400 and "x-payment-token" in r.json()["message"]


# -- paying -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("asset,price", [("usdc", 17000), ("tmai", 1_530_000_000_000_000_000)])
def test_pay_and_get_data_with_receipt(client: httpx.Client, sbv: SandboxServer, asset: str, price: int) -> None:
    w = fresh_wallet(sbv)
    before = snapshot(sbv, w.address)
    payload = sign(w, get_challenge(client, TIER1, BTC, token=asset), pay_with=asset)
    r = client.get(TIER1, params=BTC, headers=headers_for(payload))
    assert r.status_code == 200, r.text
    assert r.json()["success"] is True and r.json()["length"] >= 1
    assert r.headers["cache-control"] == "private, no-store"
    receipt = read_receipt(r.headers)
    assert receipt is not None and receipt.success and receipt.payer == w.address
    assert receipt.network == ("base-sepolia" if sbv.x402_version == 1 else "eip155:84532")
    assert ("x-payment-response" in r.headers) == (sbv.x402_version == 1)
    after = snapshot(sbv, w.address)
    assert after[(w.address, asset)] == before[(w.address, asset)] - price
    assert after[(sbv.pay_to, asset)] == before[(sbv.pay_to, asset)] + price
    assert after["settlements"] == before["settlements"] + 1
    s = sbv.settlements(payer=w.address)[-1]
    assert s["tx"] == receipt.transaction and s["nonce"] == payload.authorization.nonce
    assert s["amount"] == str(price) and s["payer"] == w.address and s["path"] == TIER1


def test_free_endpoints_need_no_payment(client: httpx.Client, sbv: SandboxServer) -> None:
    before = len(sbv.settlements())
    for path, params in [
        ("/v2/tokens", {"limit": 3}),
        ("/v2/price", {"token_id": 3375}),
        ("/v2/top-market-cap-tokens", {"top_k": 3}),
    ]:
        r = client.get(path, params=params, headers=X402)
        assert r.status_code == 200, (path, r.text)
        assert read_receipt(r.headers) is None
    assert len(sbv.settlements()) == before


def test_api_key_mode_serves_paid_endpoints_free(client: httpx.Client, sbv: SandboxServer) -> None:
    before = len(sbv.settlements())
    r = client.get(TIER3, params=BTC, headers=key_headers(sbv))
    assert r.status_code == 200 and r.json()["length"] >= 1
    assert len(sbv.settlements()) == before


def test_handler_error_is_not_settled_and_releases_the_payment(client: httpx.Client, sbv: SandboxServer) -> None:
    w = fresh_wallet(sbv)
    payload = sign(w, get_challenge(client, TIER1, BTC))
    before = snapshot(sbv, w.address)
    r = client.get(TIER1, params={"symbol": "NO-SUCH-TOKEN"}, headers=headers_for(payload))
    assert r.status_code == 404 and r.json()["message"] == "Data not found"
    assert read_receipt(r.headers) is None
    assert snapshot(sbv, w.address) == before
    # The nonce was released: the same signed payment still buys one answer.
    r = client.get(TIER1, params=BTC, headers=headers_for(payload))
    assert r.status_code == 200


# -- bad inputs ---------------------------------------------------------------------------------------

OTHER = "0x000000000000000000000000000000000000dEaD"


def _refused(client: httpx.Client, sbv: SandboxServer, w: Wallet, headers: dict, path: str = TIER1) -> httpx.Response:
    before = snapshot(sbv, w.address)
    r = client.get(path, params=BTC, headers=headers)
    assert 400 <= r.status_code < 500, r.text
    assert r.status_code in (400, 402)
    assert read_receipt(r.headers) is None
    assert snapshot(sbv, w.address) == before, "a refused payment must not move money"
    return r


def _reason(r: httpx.Response) -> str:
    if "payment-required" in r.headers:
        return decode_header(r.headers["payment-required"])["error"]
    return r.json()["error"]


def test_tampered_amount(client: httpx.Client, sbv: SandboxServer) -> None:
    w = fresh_wallet(sbv)
    p = sign(w, get_challenge(client, TIER1, BTC))
    d = tamper(p, lambda d: d["payload"]["authorization"].update(value="1"))
    r = _refused(client, sbv, w, headers_for(d))
    assert _reason(r) in (
        "invalid_exact_evm_payload_authorization_value_mismatch",
        "invalid_exact_evm_payload_signature",
    )


def test_signed_for_a_lower_amount(client: httpx.Client, sbv: SandboxServer) -> None:
    w = fresh_wallet(sbv)
    key = "maxAmountRequired" if sbv.x402_version == 1 else "amount"
    p = sign(w, get_challenge(client, TIER1, BTC), **{key: "1"})
    r = _refused(client, sbv, w, headers_for(p))
    assert _reason(r) == "invalid_exact_evm_payload_authorization_value_mismatch"


def test_tampered_payee(client: httpx.Client, sbv: SandboxServer) -> None:
    w = fresh_wallet(sbv)
    p = sign(w, get_challenge(client, TIER1, BTC), payTo=OTHER)
    r = _refused(client, sbv, w, headers_for(p))
    assert _reason(r) == "invalid_exact_evm_payload_recipient_mismatch"
    assert sbv.balance(OTHER) == 0


def test_tampered_asset(client: httpx.Client, sbv: SandboxServer) -> None:
    w = fresh_wallet(sbv)
    p = sign(w, get_challenge(client, TIER1, BTC), asset=OTHER)
    r = _refused(client, sbv, w, headers_for(p))
    expected = "invalid_exact_evm_payload_signature" if sbv.x402_version == 1 else "invalid_payment_requirements"
    assert _reason(r) == expected


def test_tampered_network(client: httpx.Client, sbv: SandboxServer) -> None:
    w = fresh_wallet(sbv)
    p = sign(w, get_challenge(client, TIER1, BTC))
    if sbv.x402_version == 1:
        d = tamper(p, lambda d: d.update(network="base"))
    else:
        d = tamper(p, lambda d: d["accepted"].update(network="eip155:8453"))
    r = _refused(client, sbv, w, headers_for(d))
    assert _reason(r) == "network_mismatch"


def test_tampered_nonce(client: httpx.Client, sbv: SandboxServer) -> None:
    w = fresh_wallet(sbv)
    p = sign(w, get_challenge(client, TIER1, BTC))
    d = tamper(p, lambda d: d["payload"]["authorization"].update(nonce="0x" + "ab" * 32))
    r = _refused(client, sbv, w, headers_for(d))
    assert _reason(r) == "invalid_exact_evm_payload_signature"


@pytest.mark.parametrize("how", ["flipped", "truncated", "other-signer"])
def test_tampered_signature(client: httpx.Client, sbv: SandboxServer, how: str) -> None:
    w = fresh_wallet(sbv)
    required = get_challenge(client, TIER1, BTC)
    p = sign(w, required)
    if how == "flipped":
        sig = p.signature[:10] + ("0" if p.signature[10] != "0" else "1") + p.signature[11:]
    elif how == "truncated":
        sig = p.signature[:-2]
    else:  # a valid signature by someone else over the same authorization fields
        sig = sign(Wallet.create(), required).signature
    d = tamper(p, lambda d: d["payload"].update(signature=sig))
    r = _refused(client, sbv, w, headers_for(d))
    assert _reason(r) == "invalid_exact_evm_payload_signature"


def test_expired_authorization(client: httpx.Client, sbv: SandboxServer) -> None:
    w = fresh_wallet(sbv)
    p = sign(w, get_challenge(client, TIER1, BTC), now=int(time.time()) - 3600)
    r = _refused(client, sbv, w, headers_for(p))
    assert _reason(r) == "invalid_exact_evm_payload_authorization_valid_before"


def test_not_yet_valid_authorization(client: httpx.Client, sbv: SandboxServer) -> None:
    w = fresh_wallet(sbv)
    p = sign(w, get_challenge(client, TIER1, BTC), now=int(time.time()) + 3600)
    r = _refused(client, sbv, w, headers_for(p))
    assert _reason(r) == "invalid_exact_evm_payload_authorization_valid_after"


def test_replay_is_refused(client: httpx.Client, sbv: SandboxServer) -> None:
    w = fresh_wallet(sbv)
    p = sign(w, get_challenge(client, TIER1, BTC))
    assert client.get(TIER1, params=BTC, headers=headers_for(p)).status_code == 200
    r = _refused(client, sbv, w, headers_for(p))
    assert _reason(r) == "invalid_exact_evm_nonce_already_used"


def test_parallel_replay_serves_exactly_one(sbv: SandboxServer) -> None:
    w = fresh_wallet(sbv)
    with httpx.Client(base_url=sbv.url) as c:
        p = sign(w, get_challenge(c, TIER1, BTC))
    before = snapshot(sbv, w.address)
    headers = headers_for(p)

    async def burst() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=20)
        async with httpx.AsyncClient(base_url=sbv.url, limits=limits, timeout=20) as ac:
            return await asyncio.gather(*(ac.get(TIER1, params=BTC, headers=headers) for _ in range(20)))

    responses = asyncio.run(burst())
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] + [402] * 19, codes
    assert all(_reason(r) == "invalid_exact_evm_nonce_already_used" for r in responses if r.status_code == 402)
    after = snapshot(sbv, w.address)
    assert after[(w.address, "usdc")] == before[(w.address, "usdc")] - 17000
    assert after["settlements"] == before["settlements"] + 1


def test_payment_for_a_cheaper_endpoint(client: httpx.Client, sbv: SandboxServer) -> None:
    w = fresh_wallet(sbv)
    p = sign(w, get_challenge(client, TIER1, BTC))  # $0.017, sent to a $0.068 endpoint
    r = _refused(client, sbv, w, headers_for(p), path=TIER3)
    assert _reason(r) == "invalid_exact_evm_payload_authorization_value_mismatch"


def test_v2_payment_for_another_endpoint_at_the_same_price(c2: httpx.Client, sb2: SandboxServer) -> None:
    w = fresh_wallet(sb2)
    p = sign(w, get_challenge(c2, "/v2/daily-ohlcv", BTC))  # same tier as tm-grade
    r = _refused(c2, sb2, w, headers_for(p), path=TIER1)
    assert _reason(r) == "invalid_payment_requirements"
    assert "/v2/daily-ohlcv" in r.json()["message"]


def test_insufficient_balance(client: httpx.Client, sbv: SandboxServer) -> None:
    w = fresh_wallet(sbv, usdc="0.01", tmai=None)  # 10000 < 17000
    p = sign(w, get_challenge(client, TIER1, BTC))
    r = _refused(client, sbv, w, headers_for(p))
    assert _reason(r) == "insufficient_funds"


def test_unfunded_wallet(client: httpx.Client, sbv: SandboxServer) -> None:
    w = Wallet.create()
    p = sign(w, get_challenge(client, TIER1, BTC, token="tmai"), pay_with="tmai")
    r = _refused(client, sbv, w, headers_for(p))
    assert _reason(r) == "insufficient_funds"


def test_v1_header_to_v2_server(c1: httpx.Client, c2: httpx.Client, sb2: SandboxServer) -> None:
    w = fresh_wallet(sb2)
    v1_payload = sign(w, get_challenge(c1, TIER1, BTC))
    r = _refused(c2, sb2, w, {**X402, "X-PAYMENT": v1_payload.encode()})
    assert r.status_code == 402 and _reason(r) == "invalid_x402_version"
    assert "PAYMENT-SIGNATURE" in r.json()["message"]
    assert decode_header(r.headers["payment-required"])["accepts"]  # the challenge comes along


def test_v2_header_to_v1_server(c1: httpx.Client, c2: httpx.Client, sb1: SandboxServer) -> None:
    w = fresh_wallet(sb1)
    v2_payload = sign(w, get_challenge(c2, TIER1, BTC))
    r = _refused(c1, sb1, w, {**X402, "PAYMENT-SIGNATURE": v2_payload.encode()})
    assert r.status_code == 402 and r.json()["error"] == "invalid_x402_version"
    assert "X-PAYMENT" in r.json()["message"] and r.json()["accepts"]
    # A v2 payload inside the v1 header is refused the same way.
    r = _refused(c1, sb1, w, {**X402, "X-PAYMENT": v2_payload.encode()})
    assert r.json()["error"] == "invalid_x402_version"


@pytest.mark.parametrize(
    "garbage",
    [
        "%%% not base64 %%%",
        base64.b64encode(b"not json").decode(),
        base64.b64encode(b"[1, 2]").decode(),
        base64.b64encode(b'{"x402Version": 1, "payload": {}}').decode(),
        "",
    ],
    ids=["not-base64", "not-json", "not-object", "wrong-shape", "empty"],
)
def test_base64_garbage(client: httpx.Client, sbv: SandboxServer, garbage: str) -> None:
    w = fresh_wallet(sbv)
    name = "X-PAYMENT" if sbv.x402_version == 1 else "PAYMENT-SIGNATURE"
    r = _refused(client, sbv, w, {**X402, name: garbage})
    if garbage:
        assert r.status_code == 400
        body = r.json()
        assert body["success"] is False and body["error"] == "invalid_payload"
        assert body["message"].startswith("Invalid payment header")


def test_twenty_kb_header(client: httpx.Client, sbv: SandboxServer) -> None:
    w = fresh_wallet(sbv)
    p = sign(w, get_challenge(client, TIER1, BTC))
    d = tamper(p, lambda d: d.update(padding="x" * 20 * 1024))
    h = headers_for(d)
    assert len(h["X-PAYMENT" if sbv.x402_version == 1 else "PAYMENT-SIGNATURE"]) > 20 * 1024
    r = _refused(client, sbv, w, h)
    assert r.status_code == 400 and "KB limit" in r.json()["message"]
    # The genuine payment is still good afterwards: nothing was reserved.
    assert client.get(TIER1, params=BTC, headers=headers_for(p)).status_code == 200
