"""The sandbox facilitator verifies and settles Permit2 payments as the x402 SDKs do.

``exact`` (spender = the exact proxy) through the paywall and the facilitator's own API, and
``upto`` (spender = the upto proxy, witness.facilitator = this facilitator, any amount up to
the permitted one settled), which the upto flow builds on.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sandbox_helpers import X402, get_challenge, headers_for

from tm402_nb.sandbox import SandboxServer, serve
from tm402_nb.sandbox.facilitator import Facilitator
from tm402_nb.x402.chain import ChainReader
from tm402_nb.x402.messages import PaymentPayload, PaymentRequired, PaymentRequirements, parse_challenge
from tm402_nb.x402.permit2 import EXACT_PERMIT2_PROXY, PERMIT2_ADDRESS, UPTO_PERMIT2_PROXY, sign_permit2
from tm402_nb.x402.wallet import Wallet

PATH, PARAMS = "/v2/tm-grade", {"symbol": "BTC"}
PRICE = 1_530_000_000_000_000_000  # tm-grade in TMAI (18 decimals)
UNLIMITED = 2**256 - 1


@pytest.fixture(scope="module")
def sbp() -> Iterator[SandboxServer]:
    with serve(x402_version=2, tmai_transfer="permit2") as server:
        yield server


@pytest.fixture(scope="module")
def challenge(sbp: SandboxServer) -> PaymentRequired:
    with httpx.Client(base_url=sbp.url, timeout=10) as c:
        return get_challenge(c, PATH, PARAMS, token="tmai")


@pytest.fixture
def fac(sbp: SandboxServer) -> Facilitator:
    return sbp.state.facilitator


def tmai_offer(required: PaymentRequired) -> PaymentRequirements:
    return next(r for r in required.accepts if (r.extra or {}).get("assetTransferMethod") == "permit2")


def payer(sbp: SandboxServer, *, tmai: str = "100", allowance: int | None = UNLIMITED) -> Wallet:
    w = Wallet.create()
    if tmai:
        sbp.fund(w.address, "tmai", tmai)
    if allowance is not None:
        sbp.state.chain.approve(sbp.state.asset("tmai").address, w.address, PERMIT2_ADDRESS, allowance)
    return w


def signed(wallet: Wallet, required: PaymentRequired, req: PaymentRequirements, **edits: Any) -> PaymentPayload:
    """A Permit2 payment for ``req``, its authorization edited *after* signing (so the signature no
    longer covers it) when ``edits`` are given."""
    from tm402_nb.x402.messages import build_payment_payload

    auth, sig = sign_permit2(wallet, req)
    payload = build_payment_payload(required, req, auth, sig)
    if edits:
        payload = dataclasses.replace(payload, authorization=dataclasses.replace(auth, **edits))
    return payload


# -- exact: verification order and reasons ---------------------------------------------------------------


@pytest.mark.parametrize(
    "edits, reason",
    [
        ({"spender": UPTO_PERMIT2_PROXY}, "invalid_permit2_spender"),
        ({"spender": "0x" + "11" * 20, "amount": 1}, "invalid_permit2_spender"),  # the first failing check wins
        ({"to": "0x" + "22" * 20}, "invalid_permit2_recipient_mismatch"),
        ({"deadline": int(time.time()) + 3}, "permit2_deadline_expired"),
        ({"valid_after": int(time.time()) + 600}, "permit2_not_yet_valid"),
        ({"amount": PRICE - 1}, "permit2_amount_mismatch"),
        ({"token": "0x" + "33" * 20}, "permit2_token_mismatch"),
        ({"nonce": 7}, "invalid_permit2_signature"),  # every field is signed
    ],
    ids=["spender", "spender-before-amount", "recipient", "deadline", "valid-after", "amount", "token", "signature"],
)
def test_verify_refuses_in_the_sdks_order(
    sbp: SandboxServer, challenge: PaymentRequired, fac: Facilitator, edits: dict[str, Any], reason: str
) -> None:
    req = tmai_offer(challenge)
    verdict = fac.verify(signed(payer(sbp), challenge, req, **edits), req)
    assert (verdict.is_valid, verdict.invalid_reason) == (False, reason), verdict.message


def test_verify_refuses_what_the_chain_would(sbp: SandboxServer, challenge: PaymentRequired, fac: Facilitator) -> None:
    req = tmai_offer(challenge)
    assert fac.verify(signed(payer(sbp), challenge, req), req).is_valid
    # No allowance to Permit2, or one short of the price: the spec's 412 reason.
    for allowance in (None, PRICE - 1):
        verdict = fac.verify(signed(payer(sbp, allowance=allowance), challenge, req), req)
        assert verdict.invalid_reason == "permit2_allowance_required", allowance
        assert PERMIT2_ADDRESS in (verdict.message or "")
    # Approved but not funded.
    assert fac.verify(signed(payer(sbp, tmai=""), challenge, req), req).invalid_reason == "permit2_insufficient_balance"
    # A USDC requirement is not paid by a TMAI permit (token check), and a tampered signature fails.
    usdc = next(r for r in challenge.accepts if r is not req)
    bad_sig = dataclasses.replace(signed(payer(sbp), challenge, req), signature="0x" + "00" * 65)
    assert fac.verify(bad_sig, req).invalid_reason == "invalid_permit2_signature"
    wrong_scheme = dataclasses.replace(signed(payer(sbp), challenge, req), scheme="upto")
    assert fac.verify(wrong_scheme, req).invalid_reason == "invalid_upto_evm_scheme"
    amount_ok = dataclasses.replace(req, amount=usdc.amount)
    assert fac.verify(signed(payer(sbp), challenge, req), amount_ok).invalid_reason == "permit2_amount_mismatch"


# -- exact: settlement --------------------------------------------------------------------------------------


def test_settle_burns_the_nonce_spends_the_allowance_and_moves_the_tokens(
    sbp: SandboxServer, challenge: PaymentRequired, fac: Facilitator
) -> None:
    req = tmai_offer(challenge)
    tmai = req.asset
    reader = ChainReader(sbp.rpc_url)
    finite, unlimited = payer(sbp, allowance=3 * PRICE), payer(sbp)
    for wallet, left in ((finite, 2 * PRICE), (unlimited, UNLIMITED)):
        payload = signed(wallet, challenge, req)
        nonce = payload.authorization.nonce  # type: ignore[union-attr]
        before_payee = sbp.balance(req.pay_to, "tmai")
        result = fac.settle(payload, req)
        assert result.success and result.transaction.startswith("0x"), result.message
        assert sbp.balance(wallet.address, "tmai") == 100 * 10**18 - PRICE
        assert sbp.balance(req.pay_to, "tmai") == before_payee + PRICE
        assert reader.permit2_nonce_used(wallet.address, nonce)
        assert reader.allowance(tmai, wallet.address, PERMIT2_ADDRESS) == left  # an unlimited one stays so
        assert sbp.state.chain.settlement_by_tx(result.transaction)["amount"] == str(PRICE)
        # The same payment again: Permit2 refuses a used nonce; nothing moves.
        again = fac.settle(payload, req)
        assert (again.success, again.error_reason) == (False, "permit2_invalid_nonce")
        assert sbp.balance(wallet.address, "tmai") == 100 * 10**18 - PRICE
    # An exact payment settles exactly what was signed.
    other = signed(payer(sbp), challenge, req)
    assert fac.settle(other, req, amount=PRICE - 1).error_reason == "permit2_amount_mismatch"
    assert fac.settle(other, req, chain_time=other.authorization.valid_before + 1).error_reason == (
        "permit2_deadline_expired"
    )


def test_parallel_replays_of_one_payment_settle_once(sbp: SandboxServer, challenge: PaymentRequired) -> None:
    wallet = payer(sbp)
    req = tmai_offer(challenge)
    headers = {**headers_for(signed(wallet, challenge, req)), "x-payment-token": "tmai"}
    statuses: list[int] = []
    start = threading.Barrier(8)

    def send() -> None:
        with httpx.Client(base_url=sbp.url, timeout=20) as c:
            start.wait()
            statuses.append(c.get(PATH, params=PARAMS, headers=headers).status_code)

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200] + [402] * 7
    assert len(sbp.settlements(wallet.address)) == 1
    assert sbp.balance(wallet.address, "tmai") == 100 * 10**18 - PRICE


def test_the_paywall_answers_412_without_an_allowance_and_settles_nothing(
    sbp: SandboxServer, challenge: PaymentRequired
) -> None:
    wallet = payer(sbp, allowance=None)
    payload = signed(wallet, challenge, tmai_offer(challenge))
    with httpx.Client(base_url=sbp.url, timeout=10) as c:
        r = c.get(PATH, params=PARAMS, headers={**headers_for(payload), "x-payment-token": "tmai"})
    assert r.status_code == 412
    assert parse_challenge(r.headers, r.content).error == "permit2_allowance_required"
    assert r.json()["error"] == "permit2_allowance_required"
    assert sbp.settlements(wallet.address) == [] and sbp.balance(wallet.address, "tmai") == 100 * 10**18
    # Once approved, the very same signed payment settles (it was never used).
    sbp.state.chain.approve(tmai_offer(challenge).asset, wallet.address, PERMIT2_ADDRESS, PRICE)
    with httpx.Client(base_url=sbp.url, timeout=10) as c:
        r = c.get(PATH, params=PARAMS, headers={**headers_for(payload), "x-payment-token": "tmai"})
    assert r.status_code == 200 and len(sbp.settlements(wallet.address)) == 1


# -- upto -----------------------------------------------------------------------------------------------------


def upto_requirements(sbp: SandboxServer, fac: Facilitator, ceiling: int, **extra: Any) -> PaymentRequirements:
    return PaymentRequirements.from_json(
        {
            "scheme": "upto",
            "network": sbp.state.network.caip2,
            "amount": str(ceiling),
            "asset": sbp.state.asset("tmai").address,
            "payTo": sbp.pay_to,
            "maxTimeoutSeconds": 60,
            "extra": {"assetTransferMethod": "permit2", "facilitatorAddress": fac.signer_address, **extra},
        },
        2,
    )


def test_upto_settles_any_amount_up_to_the_permitted_one(
    sbp: SandboxServer, challenge: PaymentRequired, fac: Facilitator
) -> None:
    ceiling = 5 * PRICE
    req = upto_requirements(sbp, fac, ceiling)
    wallet = payer(sbp)
    payload = signed(wallet, challenge, req)
    assert payload.authorization.spender == UPTO_PERMIT2_PROXY  # type: ignore[union-attr]
    assert fac.verify(payload, req).is_valid
    over = fac.settle(payload, req, amount=ceiling + 1)
    assert (over.success, over.error_reason) == (False, "invalid_upto_evm_payload_settlement_exceeds_amount")
    result = fac.settle(payload, req, amount=PRICE)
    assert result.success and result.amount == PRICE
    assert result.receipt().to_json()["amount"] == str(PRICE)
    assert sbp.balance(wallet.address, "tmai") == 100 * 10**18 - PRICE  # only what was used moved
    assert ChainReader(sbp.rpc_url).permit2_nonce_used(wallet.address, payload.authorization.nonce)  # type: ignore[union-attr]
    assert fac.settle(payload, req, amount=PRICE).error_reason == "permit2_invalid_nonce"


def test_upto_refusals(sbp: SandboxServer, challenge: PaymentRequired, fac: Facilitator) -> None:
    req = upto_requirements(sbp, fac, PRICE)
    wallet = payer(sbp)
    # Signed for another facilitator: only the named one may settle.
    elsewhere = upto_requirements(sbp, fac, PRICE, facilitatorAddress="0x" + "44" * 20)
    assert fac.verify(signed(wallet, challenge, elsewhere), req).invalid_reason == "upto_facilitator_mismatch"
    # An exact permit (exact proxy, no facilitator in its witness) is not an upto payment.
    exact = dataclasses.replace(signed(wallet, challenge, tmai_offer(challenge)), scheme="upto")
    assert fac.verify(exact, req).invalid_reason in ("invalid_permit2_spender", "invalid_upto_evm_scheme")
    wrong_spender = signed(wallet, challenge, req, spender=EXACT_PERMIT2_PROXY)
    assert fac.verify(wrong_spender, req).invalid_reason == "invalid_permit2_spender"
    # An upto permit offered to an exact requirement.
    assert fac.verify(signed(wallet, challenge, req), tmai_offer(challenge)).invalid_reason == "invalid_upto_evm_scheme"


def test_upto_over_the_facilitator_api(sbp: SandboxServer, challenge: PaymentRequired, fac: Facilitator) -> None:
    """Over HTTP, as the SDK's resource server calls it: verify against the ceiling, settle with the
    actual amount in the requirements."""
    ceiling = 3 * PRICE
    req = upto_requirements(sbp, fac, ceiling)
    wallet = payer(sbp)
    payload = signed(wallet, challenge, req)
    with httpx.Client(base_url=sbp.url, timeout=10, headers=X402) as c:
        body = {"x402Version": 2, "paymentPayload": payload.to_json(), "paymentRequirements": req.raw}
        assert c.post("/facilitator/verify", json=body).json()["isValid"] is True
        actual = {**req.raw, "amount": str(PRICE)}
        settled = c.post("/facilitator/settle", json={**body, "paymentRequirements": actual}).json()
    assert settled["success"] is True and settled["amount"] == str(PRICE)
    assert sbp.balance(wallet.address, "tmai") == 100 * 10**18 - PRICE
