"""erc20ApprovalGasSponsoring in the sandbox (``gas_sponsoring="erc20"``): the challenge advertises it,
our client signs (never sends) an approval of exactly the payment into a payload short of allowance,
the facilitator checks it as the x402 SDK does and mines it with the Permit2 transfer at its own gas
cost; bad approvals are refused with the SDK's reason strings and nothing moves."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sandbox_helpers import get_challenge, headers_for

from tm402_nb.errors import Permit2AllowanceRequired
from tm402_nb.ledger import Ledger
from tm402_nb.sandbox import SandboxServer, serve
from tm402_nb.sandbox.assets import SANDBOX_TMAI_BASE_SEPOLIA
from tm402_nb.sandbox.facilitator import Facilitator
from tm402_nb.x402 import SpendPolicy, X402Auth, paying_client
from tm402_nb.x402.approval import (
    ERC20_APPROVAL_GAS_SPONSORING,
    ApprovalTx,
    approve_calldata,
    sign_sponsored_approval,
)
from tm402_nb.x402.auth import PaymentEvent
from tm402_nb.x402.chain import ChainReader
from tm402_nb.x402.messages import PaymentPayload, PaymentRequired, PaymentRequirements, build_payment_payload
from tm402_nb.x402.permit2 import PERMIT2_ADDRESS, sign_permit2
from tm402_nb.x402.wallet import Wallet

PATH, PARAMS = "/v2/tm-grade", {"symbol": "BTC"}
PRICE = 1_530_000_000_000_000_000
CHAIN = 84532
TMAI_HEADERS = {"x-coinbase-402": "true", "x-payment-token": "tmai"}
OTHER = "0x" + "44" * 20


@pytest.fixture(scope="module")
def sbg() -> Iterator[SandboxServer]:
    with serve(x402_version=2, tmai_transfer="permit2", gas_sponsoring="erc20") as server:
        yield server


@pytest.fixture(scope="module")
def challenge(sbg: SandboxServer) -> PaymentRequired:
    with httpx.Client(base_url=sbg.url, timeout=10) as c:
        return get_challenge(c, PATH, PARAMS, token="tmai")


def tmai_offer(required: PaymentRequired) -> PaymentRequirements:
    return next(r for r in required.accepts if (r.extra or {}).get("assetTransferMethod") == "permit2")


def tmai(sbg: SandboxServer) -> str:
    return sbg.state.asset("tmai").address


def payer(sbg: SandboxServer) -> Wallet:
    """TMAI, but no ETH and no allowance to Permit2."""
    w = Wallet.create()
    sbg.fund(w.address, "tmai", "100")
    return w


def sponsored(
    wallet: Wallet, required: PaymentRequired, req: PaymentRequirements, info: dict[str, Any]
) -> PaymentPayload:
    auth, sig = sign_permit2(wallet, req)
    return build_payment_payload(required, req, auth, sig, extensions={ERC20_APPROVAL_GAS_SPONSORING: {"info": info}})


def untouched(sbg: SandboxServer, wallet: Wallet) -> None:
    assert sbg.settlements(wallet.address) == []
    assert sbg.balance(wallet.address, "tmai") == 100 * 10**18
    reader = ChainReader(sbg.rpc_url)
    assert reader.allowance(tmai(sbg), wallet.address, PERMIT2_ADDRESS) == 0
    assert reader.transaction_count(wallet.address) == 0


def policy() -> SpendPolicy:
    return SpendPolicy(pay_with="tmai", extra_assets=(SANDBOX_TMAI_BASE_SEPOLIA,), usd_rates={"TMAI": "0.01"})


# -- the challenge -------------------------------------------------------------------------------------------


def test_v2_permit2_challenges_advertise_it_as_the_sdk_declares_it(challenge: PaymentRequired) -> None:
    pytest.importorskip("x402.extensions.erc20_approval_gas_sponsoring")
    from x402.extensions.erc20_approval_gas_sponsoring import declare_erc20_approval_gas_sponsoring_extension

    assert challenge.extensions is not None
    ours = challenge.extensions[ERC20_APPROVAL_GAS_SPONSORING]
    sdk = declare_erc20_approval_gas_sponsoring_extension()[ERC20_APPROVAL_GAS_SPONSORING]
    assert ours["info"] == sdk["info"]

    def bare(schema: dict[str, Any]) -> dict[str, Any]:
        return {k: {f: v for f, v in p.items() if f != "description"} for k, p in schema["properties"].items()}

    assert bare(ours["schema"]) == bare(sdk["schema"]) and ours["schema"]["required"] == sdk["schema"]["required"]


@pytest.mark.parametrize(
    "options", [{"x402_version": 1, "tmai_transfer": "permit2"}, {"x402_version": 2, "tmai_transfer": "eip3009"}]
)
def test_not_advertised_without_a_v2_permit2_offer(options: dict[str, Any]) -> None:
    with serve(gas_sponsoring="erc20", **options) as server, httpx.Client(base_url=server.url, timeout=10) as c:
        required = get_challenge(c, PATH, PARAMS, token="tmai")
    assert ERC20_APPROVAL_GAS_SPONSORING not in (required.extensions or {})
    assert server.state.facilitator.supported()["extensions"] == [ERC20_APPROVAL_GAS_SPONSORING]


# -- our client ----------------------------------------------------------------------------------------------


def test_a_wallet_without_allowance_or_eth_pays_with_a_sponsored_approval(sbg: SandboxServer, ledger: Ledger) -> None:
    wallet = payer(sbg)
    reader = ChainReader(sbg.rpc_url)
    events: list[PaymentEvent] = []
    auth = X402Auth(wallet, policy(), ledger=ledger, chain=reader, listeners=[events.append])
    with paying_client(wallet, auth=auth) as client:
        r = client.get(sbg.api_url + "/tm-grade", params=PARAMS, headers=TMAI_HEADERS)
        assert r.status_code == 200, r.text
        # The approval was exactly the payment's amount: spent by it, so the next one is sponsored again.
        r2 = client.get(sbg.api_url + "/tm-grade", params={"symbol": "ETH"}, headers=TMAI_HEADERS)
        assert r2.status_code == 200, r2.text
    rows = ledger.payment_rows()
    assert [(x["status"], x["transfer"]) for x in rows] == [("settled", "permit2")] * 2
    assert len(sbg.settlements(wallet.address)) == 2
    assert sbg.balance(wallet.address, "tmai") == 100 * 10**18 - 2 * PRICE
    assert sbg.balance(wallet.address, "eth") == 0  # the facilitator paid the approvals' gas
    assert reader.transaction_count(wallet.address) == 2  # both approvals mined, from the wallet
    assert reader.allowance(tmai(sbg), wallet.address, PERMIT2_ADDRESS) == 0
    signed = [e for e in events if e.kind == "signed"]
    assert len(signed) == 2 and all("server sponsors the gas" in (e.reason or "") for e in signed)
    first = signed[0].payment
    assert first.sponsored_approval is not None
    receipt = reader.receipt(first.sponsored_approval)
    assert receipt is not None and receipt["status"] == "0x1"
    assert int(receipt["logs"][0]["data"], 16) == PRICE  # Approval(owner, Permit2, exactly the price)


def test_with_an_allowance_nothing_is_sponsored(sbg: SandboxServer) -> None:
    wallet = payer(sbg)
    sbg.state.chain.approve(tmai(sbg), wallet.address, PERMIT2_ADDRESS, 2**256 - 1)
    events: list[PaymentEvent] = []
    auth = X402Auth(wallet, policy(), chain=ChainReader(sbg.rpc_url), listeners=[events.append])
    with paying_client(wallet, auth=auth) as client:
        assert client.get(sbg.api_url + "/tm-grade", params=PARAMS, headers=TMAI_HEADERS).status_code == 200
    [signed] = [e for e in events if e.kind == "signed"]
    assert signed.reason is None and signed.payment.sponsored_approval is None
    assert signed.payment.payload.extensions is not None
    assert "info" not in signed.payment.payload.extensions[ERC20_APPROVAL_GAS_SPONSORING] or (
        "signedTransaction" not in signed.payment.payload.extensions[ERC20_APPROVAL_GAS_SPONSORING]["info"]
    )


def test_without_the_switch_the_refusal_stays() -> None:
    with serve(x402_version=2, tmai_transfer="permit2") as server:
        wallet = payer(server)
        auth = X402Auth(wallet, policy(), chain=ChainReader(server.rpc_url))
        with paying_client(wallet, auth=auth) as client, pytest.raises(Permit2AllowanceRequired) as info:
            client.get(server.api_url + "/tm-grade", params=PARAMS, headers=TMAI_HEADERS)
        assert 'approve_permit2("tmai", N)' in (info.value.hint or "")
        untouched(server, wallet)
        # A payload carrying an approval anyway is refused as the SDK refuses it: the extension is not on.
        with httpx.Client(base_url=server.url, timeout=10) as c:
            required = get_challenge(c, PATH, PARAMS, token="tmai")
            req = tmai_offer(required)
            payload = sponsored(wallet, required, req, sign_sponsored_approval(wallet, req.asset, CHAIN, nonce=0))
            r = c.get(PATH, params=PARAMS, headers={**headers_for(payload), "x-payment-token": "tmai"})
        assert r.status_code == 412 and r.json()["error"] == "permit2_allowance_required"
        untouched(server, wallet)


# -- the facilitator's checks ---------------------------------------------------------------------------------


def _tx(wallet: Wallet, *, to: str | None = None, data: bytes | None = None, **fields: Any) -> str:
    base: dict[str, Any] = {
        "chain_id": CHAIN,
        "nonce": 0,
        "max_priority_fee_per_gas": 10**8,
        "max_fee_per_gas": 10**9,
        "gas": 70_000,
        "token": to or SANDBOX_TMAI_BASE_SEPOLIA.address,
        "data": data if data is not None else approve_calldata(PERMIT2_ADDRESS, PRICE),
    }
    return ApprovalTx(**{**base, **fields}).sign(wallet).raw_hex


BAD: dict[str, tuple[Any, str]] = {
    "format": (lambda w, i: {**i, "amount": "lots"}, "invalid_erc20_approval_extension_format"),
    "from": (lambda w, i: {**i, "from": OTHER}, "erc20_approval_from_mismatch"),
    "asset": (lambda w, i: {**i, "asset": OTHER}, "erc20_approval_asset_mismatch"),
    "spender": (lambda w, i: {**i, "spender": OTHER}, "erc20_approval_spender_not_permit2"),
    "garbage": (lambda w, i: {**i, "signedTransaction": "0x02c0ffee"}, "erc20_approval_tx_invalid_signature"),
    "odd-hex": (lambda w, i: {**i, "signedTransaction": "0x02c0ffe"}, "erc20_approval_tx_parse_failed"),
    "signer": (lambda w, i: {**i, "signedTransaction": _tx(Wallet.create())}, "erc20_approval_tx_signer_mismatch"),
    "target": (lambda w, i: {**i, "signedTransaction": _tx(w, to=OTHER)}, "erc20_approval_tx_wrong_target"),
    "selector": (
        lambda w, i: {**i, "signedTransaction": _tx(w, data=bytes.fromhex("a9059cbb") + bytes(64))},
        "erc20_approval_tx_wrong_selector",
    ),
    "tx-spender": (
        lambda w, i: {**i, "signedTransaction": _tx(w, data=approve_calldata(OTHER, PRICE))},
        "erc20_approval_tx_wrong_spender",
    ),
    "chain-id": (lambda w, i: {**i, "signedTransaction": _tx(w, chain_id=8453)}, "erc20_approval_broadcast_failed"),
    "nonce": (lambda w, i: {**i, "signedTransaction": _tx(w, nonce=3)}, "erc20_approval_broadcast_failed"),
    "too-small": (
        lambda w, i: {**i, "signedTransaction": _tx(w, data=approve_calldata(PERMIT2_ADDRESS, PRICE - 1))},
        "permit2_allowance_required",
    ),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_approvals_are_refused_with_the_sdks_reasons_and_nothing_moves(
    sbg: SandboxServer, challenge: PaymentRequired, case: str
) -> None:
    edit, reason = BAD[case]
    wallet = payer(sbg)
    req = tmai_offer(challenge)
    info = edit(wallet, sign_sponsored_approval(wallet, req.asset, CHAIN, nonce=0, amount=PRICE))
    payload = sponsored(wallet, challenge, req, info)
    fac: Facilitator = sbg.state.facilitator
    verdict = fac.verify(payload, req)
    assert (verdict.is_valid, verdict.invalid_reason) == (False, reason), verdict.message
    settled = fac.settle(payload, req)
    assert (settled.success, settled.error_reason) == (False, reason)
    with httpx.Client(base_url=sbg.url, timeout=10) as c:
        r = c.get(PATH, params=PARAMS, headers={**headers_for(payload), "x-payment-token": "tmai"})
    assert r.status_code in (402, 412) and r.json()["error"] == reason
    untouched(sbg, wallet)


def test_the_sdks_own_check_agrees(sbg: SandboxServer, challenge: PaymentRequired) -> None:
    """Where the SDK's facilitator decides from the info alone, it gives the same reason."""
    pytest.importorskip("x402.extensions.erc20_approval_gas_sponsoring")
    from x402.extensions.erc20_approval_gas_sponsoring import (
        Erc20ApprovalGasSponsoringInfo,
        validate_erc20_approval_for_payment,
    )

    req = tmai_offer(challenge)
    for case, (edit, reason) in BAD.items():
        if reason in ("erc20_approval_broadcast_failed", "permit2_allowance_required"):
            continue  # decided by the node / the chain after the SDK's checks
        wallet = Wallet.create()
        info = edit(wallet, sign_sponsored_approval(wallet, req.asset, CHAIN, nonce=0, amount=PRICE))
        got = validate_erc20_approval_for_payment(
            Erc20ApprovalGasSponsoringInfo.from_dict(info), wallet.address, req.asset
        )
        assert got[0] == reason, case


def test_a_good_approval_settles_once_and_is_not_replayed(sbg: SandboxServer, challenge: PaymentRequired) -> None:
    wallet = payer(sbg)
    req = tmai_offer(challenge)
    payload = sponsored(
        wallet, challenge, req, sign_sponsored_approval(wallet, req.asset, CHAIN, nonce=0, amount=PRICE)
    )
    fac: Facilitator = sbg.state.facilitator
    assert fac.verify(payload, req).is_valid
    first = fac.settle(payload, req)
    assert first.success, first.message
    assert len(sbg.settlements(wallet.address)) == 1 and sbg.balance(wallet.address, "eth") == 0
    again = fac.settle(payload, req)
    assert not again.success and len(sbg.settlements(wallet.address)) == 1
    # Another permit with the same (now used) approval transaction: the allowance was spent, the tx is known.
    other = dataclasses.replace(sponsored(wallet, challenge, req, {}), extensions=payload.extensions)
    refused = fac.verify(other, req)
    assert refused.invalid_reason == "erc20_approval_broadcast_failed"  # nonce too low: it was mined
