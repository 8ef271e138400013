"""Permit2 authorizations are byte-for-byte what the official x402 SDK signs for the same inputs.

The SDK (test-only peer) builds and signs through eth-account's generic EIP-712 path; ours hashes
the one fixed type directly. For any key, chain, token, payee, amount, nonce and time, both must
give the same ``permit2Authorization`` and the same signature (RFC 6979 makes ECDSA deterministic),
for the exact witness and upto's (which also names the facilitator).
"""

from __future__ import annotations

import time
from typing import Any
from unittest import mock

import pytest
from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st

from tm402_nb.errors import PaymentRefused, X402ProtocolError
from tm402_nb.x402.messages import PaymentPayload, PaymentRequirements, Permit2Authorization
from tm402_nb.x402.permit2 import (
    EXACT_PERMIT2_PROXY,
    UPTO_PERMIT2_PROXY,
    build_permit2_authorization,
    permit2_digest,
    recover_permit2_signer,
    sign_permit2,
)
from tm402_nb.x402.wallet import Wallet, to_checksum

sdk_exact = pytest.importorskip("x402.mechanisms.evm.exact.permit2_utils")
sdk_upto = pytest.importorskip("x402.mechanisms.evm.upto.client")
from x402.mechanisms.evm.signers import EthAccountSigner  # noqa: E402
from x402.schemas import PaymentRequirements as SdkRequirements  # noqa: E402

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
NETWORKS = {"eip155:8453": 8453, "eip155:84532": 84532}

addresses = st.binary(min_size=20, max_size=20).map(lambda b: to_checksum("0x" + b.hex()))


def _requirements(scheme: str, network: str, token: str, pay_to: str, amount: int, timeout: int, extra: dict) -> dict:
    return {
        "scheme": scheme,
        "network": network,
        "asset": token,
        "amount": str(amount),
        "payTo": pay_to,
        "maxTimeoutSeconds": timeout,
        "extra": extra,
    }


def _sdk_payload(scheme: str, key: int, raw: dict[str, Any], now: int, nonce: int) -> dict[str, Any]:
    signer = EthAccountSigner(Account.from_key(key.to_bytes(32, "big")))
    req = SdkRequirements.model_validate(raw)
    with mock.patch.object(time, "time", return_value=now):
        if scheme == "exact":
            with mock.patch.object(sdk_exact, "create_permit2_nonce", return_value=str(nonce)):
                return sdk_exact.create_permit2_payload(signer, req)
        with mock.patch.object(sdk_upto, "create_permit2_nonce", return_value=str(nonce)):
            return sdk_upto._create_upto_permit2_payload(signer, req)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    scheme=st.sampled_from(["exact", "upto"]),
    key=st.integers(min_value=1, max_value=SECP256K1_N - 1),
    network=st.sampled_from(sorted(NETWORKS)),
    token=addresses,
    pay_to=addresses,
    facilitator=addresses,
    amount=st.integers(min_value=0, max_value=2**256 - 1),
    nonce=st.integers(min_value=0, max_value=2**256 - 1),
    timeout=st.integers(min_value=1, max_value=86_400),
    now=st.integers(min_value=1_600_000_000, max_value=2_000_000_000),
)
def test_our_permit2_authorization_and_signature_equal_the_sdks(
    scheme, key, network, token, pay_to, facilitator, amount, nonce, timeout, now
):
    extra: dict[str, Any] = {"assetTransferMethod": "permit2"}
    if scheme == "upto":
        extra["facilitatorAddress"] = facilitator
    raw = _requirements(scheme, network, token, pay_to, amount, timeout, extra)
    wallet = Wallet.from_key(key.to_bytes(32, "big"))
    ours, signature = sign_permit2(wallet, PaymentRequirements.from_json(raw, 2), now=now, nonce=nonce)
    theirs = _sdk_payload(scheme, key, raw, now, nonce)
    assert {"permit2Authorization": ours.to_json(), "signature": signature} == theirs
    assert ours.spender == (UPTO_PERMIT2_PROXY if scheme == "upto" else EXACT_PERMIT2_PROXY)
    assert recover_permit2_signer(ours, NETWORKS[network], signature) == wallet.address
    # what the wire carries reads back to the same authorization
    assert Permit2Authorization.from_json(theirs["permit2Authorization"]) == ours


def test_the_digest_binds_every_field():
    raw = _requirements(
        "upto", "eip155:8453", "0x" + "aa" * 20, "0x" + "bb" * 20, 10**18, 60, {"facilitatorAddress": "0x" + "cc" * 20}
    )
    auth = build_permit2_authorization(
        "0x" + "dd" * 20, PaymentRequirements.from_json(raw, 2), now=1_700_000_000, nonce=7
    )
    base = permit2_digest(auth, 8453)
    changed = [
        auth.__class__(**{**auth.__dict__, field: value})
        for field, value in (
            ("token", "0x" + "ab" * 20),
            ("amount", auth.amount + 1),
            ("spender", EXACT_PERMIT2_PROXY),
            ("nonce", 8),
            ("deadline", auth.deadline + 1),
            ("to", "0x" + "ab" * 20),
            ("valid_after", 1),
            ("facilitator", "0x" + "ab" * 20),
            ("facilitator", None),
        )
    ]
    digests = {permit2_digest(a, 8453) for a in changed} | {permit2_digest(auth, 84532)}
    assert base not in digests and len(digests) == len(changed) + 1


@pytest.mark.parametrize(
    ("scheme", "extra", "timeout", "message"),
    [
        ("upto", {}, 60, "must name its facilitator"),
        ("upto", {"facilitatorAddress": "nope"}, 60, "must name its facilitator"),
        ("batch-settlement", {}, 60, "cannot pay scheme"),
        ("exact", {}, 0, "leaves no time"),
    ],
)
def test_offers_that_cannot_be_signed_are_refused(scheme, extra, timeout, message):
    raw = _requirements(scheme, "eip155:84532", "0x" + "aa" * 20, "0x" + "bb" * 20, 1000, timeout, extra)
    with pytest.raises(PaymentRefused, match=message):
        sign_permit2(Wallet.create(), PaymentRequirements.from_json(raw, 2))


def test_a_permit2_payload_round_trips_on_the_wire():
    raw = _requirements("exact", "eip155:84532", "0x" + "aa" * 20, "0x" + "bb" * 20, 1000, 60, {})
    wallet = Wallet.create()
    auth, sig = sign_permit2(wallet, PaymentRequirements.from_json(raw, 2))
    payload = PaymentPayload(2, "exact", "eip155:84532", sig, auth, accepted=raw)
    back = PaymentPayload.decode(payload.encode())
    assert back.authorization == auth and back.signature == sig
    assert back.to_json()["payload"]["permit2Authorization"]["nonce"] == str(auth.nonce)
    assert auth.nonce_hex == "0x" + auth.nonce.to_bytes(32, "big").hex()


@pytest.mark.parametrize(
    "broken",
    [
        {"permitted": "x"},
        {"witness": {"validAfter": "0"}},
        {"spender": "0x12"},
        {"nonce": "-1"},
        {"deadline": "1e9"},
        {"witness": {"to": "0x" + "bb" * 20, "validAfter": "0", "facilitator": 5}},
    ],
)
def test_malformed_permit2_authorizations_are_refused(broken):
    raw = _requirements("exact", "eip155:84532", "0x" + "aa" * 20, "0x" + "bb" * 20, 1000, 60, {})
    good = build_permit2_authorization("0x" + "dd" * 20, PaymentRequirements.from_json(raw, 2)).to_json()
    with pytest.raises(X402ProtocolError):
        Permit2Authorization.from_json({**good, **broken})
