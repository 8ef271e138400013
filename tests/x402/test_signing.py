"""EIP-712 / EIP-3009 signing against the reference vectors and eth-account."""

from __future__ import annotations

import time

from eth_account import Account
from eth_account.messages import encode_typed_data
from hypothesis import given, settings
from hypothesis import strategies as st

from tm402_nb.x402.eip3009 import (
    DOMAIN_TYPEHASH,
    TRANSFER_TYPEHASH,
    VALID_AFTER_SKEW,
    Eip712Domain,
    build_authorization,
    domain_for,
    recover_signer,
    sign_authorization,
    struct_hash,
    transfer_digest,
)
from tm402_nb.x402.messages import Authorization, PaymentRequirements
from tm402_nb.x402.networks import USDC_BASE, USDC_BASE_SEPOLIA
from tm402_nb.x402.wallet import Wallet

# x402-protocol reference, Appendix A.
SPEC_AUTH = Authorization(
    "0x857b06519E91e3A54538791bDbb0E22373e36b66",
    "0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
    10000,
    1740672089,
    1740672154,
    "0xf3746613c2d920b5fdabc0856f2aeb2d4f88ee6037b8cc5d04a71a4462f13480",
)
SPEC_SIG = (
    "0x2d6a7588d6acca505cbf0d9a4a227e0c52c6c34008c8e8986a1283259764173608a2ce6496642e377d6da8dbbf5836e9bd"
    "15092f9ecab05ded3d6293af148b571c"
)
SEPOLIA = Eip712Domain("USDC", "2", 84532, USDC_BASE_SEPOLIA.address)
MAINNET = Eip712Domain("USD Coin", "2", 8453, USDC_BASE.address)


def test_typehashes_match_reference():
    assert TRANSFER_TYPEHASH.hex() == "7c7c6cdb67a18743f49ec6fa9b35f50d52ed05cbed4cc592e13b44501c1a2267"
    assert len(DOMAIN_TYPEHASH) == 32


def test_domain_separators_match_reference():
    assert SEPOLIA.separator().hex() == "71f17a3b2ff373b803d70a5a07c046c1a2bc8e89c09ef722fcb047abe94c9818"
    assert MAINNET.separator().hex() == "02fa7265e7c5d81118673727957699e4d68f74cd74b7db77da710fe8a2c7834f"


def test_spec_struct_hash_and_digest():
    assert struct_hash(SPEC_AUTH).hex() == "49ad644555c7bdf3ea4fc022a4940ae5589b230b1dde0065c5504fa19bbe39a4"
    assert (
        transfer_digest(SPEC_AUTH, SEPOLIA).hex() == "f256992871671abcb27ff92885a7afa46218724e5fc0bac35d050115aa1d22e6"
    )


def test_spec_signature_recovers_the_payer():
    assert recover_signer(SPEC_AUTH, SEPOLIA, SPEC_SIG) == "0x857b06519E91e3A54538791bDbb0E22373e36b66"


def test_wrong_domain_name_recovers_someone_else():
    # The classic silent failure: "USD Coin" on Sepolia gives a valid-looking, wrong signer.
    wrong = Eip712Domain("USD Coin", "2", 84532, USDC_BASE_SEPOLIA.address)
    assert recover_signer(SPEC_AUTH, wrong, SPEC_SIG) != SPEC_AUTH.from_


def _typed(auth: Authorization, d: Eip712Domain) -> dict:
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "TransferWithAuthorization": [
                {"name": "from", "type": "address"},
                {"name": "to", "type": "address"},
                {"name": "value", "type": "uint256"},
                {"name": "validAfter", "type": "uint256"},
                {"name": "validBefore", "type": "uint256"},
                {"name": "nonce", "type": "bytes32"},
            ],
        },
        "primaryType": "TransferWithAuthorization",
        "domain": {
            "name": d.name,
            "version": d.version,
            "chainId": d.chain_id,
            "verifyingContract": d.verifying_contract,
        },
        "message": {
            "from": auth.from_,
            "to": auth.to,
            "value": auth.value,
            "validAfter": auth.valid_after,
            "validBefore": auth.valid_before,
            "nonce": bytes.fromhex(auth.nonce[2:]),
        },
    }


@settings(max_examples=60, deadline=None)
@given(
    value=st.integers(min_value=0, max_value=2**256 - 1),
    after=st.integers(min_value=0, max_value=2**64),
    before=st.integers(min_value=0, max_value=2**64),
    nonce=st.binary(min_size=32, max_size=32),
    mainnet=st.booleans(),
)
def test_digest_and_signature_agree_with_eth_account(value, after, before, nonce, mainnet):
    wallet = Wallet.create()
    auth = Authorization(
        wallet.address, "0x209693Bc6afc0C5328bA36FaF03C514EF312287C", value, after, before, "0x" + nonce.hex()
    )
    domain = MAINNET if mainnet else SEPOLIA
    signable = encode_typed_data(full_message=_typed(auth, domain))
    digest = transfer_digest(auth, domain)
    assert signable.body == struct_hash(auth)
    sig = wallet.sign_digest(digest)
    assert sig[64] in (27, 28)
    assert Account.recover_message(signable, signature=sig) == wallet.address
    assert recover_signer(auth, domain, "0x" + sig.hex()) == wallet.address


def _req(timeout: int = 60, **extra) -> PaymentRequirements:
    raw = {
        "scheme": "exact",
        "network": "base-sepolia",
        "maxAmountRequired": "17000",
        "asset": USDC_BASE_SEPOLIA.address,
        "payTo": "0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
        "maxTimeoutSeconds": timeout,
        **extra,
    }
    return PaymentRequirements.from_json(raw, 1)


def test_authorization_window_and_nonce():
    wallet = Wallet.create()
    now = int(time.time())
    auth = build_authorization(wallet.address, _req(timeout=90), now=now)
    assert auth.valid_after == now - VALID_AFTER_SKEW
    assert auth.valid_before == now + 90
    assert auth.nonce.startswith("0x") and len(auth.nonce) == 66
    other = build_authorization(wallet.address, _req(), now=now)
    assert other.nonce != auth.nonce  # random each time


def test_wire_numbers_are_decimal_strings():
    wallet = Wallet.create()
    auth, sig = sign_authorization(wallet, _req(extra={"name": "USDC", "version": "2"}))
    wire = auth.to_json()
    assert all(isinstance(wire[k], str) for k in ("value", "validAfter", "validBefore"))
    assert wire["value"] == "17000"
    assert sig.startswith("0x") and len(sig) == 132


def test_domain_falls_back_to_known_asset_table():
    # No `extra`: USDC on Sepolia is known, so its domain ("USDC", "2") is used.
    assert domain_for(_req()) == SEPOLIA
    assert domain_for(_req(extra={"name": "Other", "version": "9"})).name == "Other"
