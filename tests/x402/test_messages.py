"""Parsing and building x402 v1/v2 messages, including hostile bytes."""

from __future__ import annotations

import base64
import contextlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tm402_nb.errors import X402ProtocolError
from tm402_nb.x402.encoding import b64json_decode, b64json_encode
from tm402_nb.x402.messages import (
    PaymentPayload,
    PaymentRequired,
    SettlementResponse,
    build_payment_payload,
    parse_challenge,
    read_receipt,
)

# Literal values from the x402 transport specs (reference §1.2, §1.3).
SPEC_X_PAYMENT = (
    "eyJ4NDAyVmVyc2lvbiI6MSwic2NoZW1lIjoiZXhhY3QiLCJuZXR3b3JrIjoiYmFzZS1zZXBvbGlhIiwicGF5bG9hZCI6eyJzaWduYXR1cmUiOiIw"
    "eDJkNmE3NTg4ZDZhY2NhNTA1Y2JmMGQ5YTRhMjI3ZTBjNTJjNmMzNDAwOGM4ZTg5ODZhMTI4MzI1OTc2NDE3MzYwOGEyY2U2NDk2NjQyZTM3N2Q2"
    "ZGE4ZGJiZjU4MzZlOWJkMTUwOTJmOWVjYWIwNWRlZDNkNjI5M2FmMTQ4YjU3MWMiLCJhdXRob3JpemF0aW9uIjp7ImZyb20iOiIweDg1N2IwNjUx"
    "OUU5MWUzQTU0NTM4NzkxYkRiYjBFMjIzNzNlMzZiNjYiLCJ0byI6IjB4MjA5NjkzQmM2YWZjMEM1MzI4YkEzNkZhRjAzQzUxNEVGMzEyMjg3QyIs"
    "InZhbHVlIjoiMTAwMDAiLCJ2YWxpZEFmdGVyIjoiMTc0MDY3MjA4OSIsInZhbGlkQmVmb3JlIjoiMTc0MDY3MjE1NCIsIm5vbmNlIjoiMHhmMzc0"
    "NjYxM2MyZDkyMGI1ZmRhYmMwODU2ZjJhZWIyZDRmODhlZTYwMzdiOGNjNWQwNGE3MWE0NDYyZjEzNDgwIn19fQ=="
)
SPEC_PAYMENT_REQUIRED = (
    "eyJ4NDAyVmVyc2lvbiI6MiwiZXJyb3IiOiJQQVlNRU5ULVNJR05BVFVSRSBoZWFkZXIgaXMgcmVxdWlyZWQiLCJyZXNvdXJjZSI6eyJ1cmwiOiJo"
    "dHRwczovL2FwaS5leGFtcGxlLmNvbS9wcmVtaXVtLWRhdGEiLCJkZXNjcmlwdGlvbiI6IkFjY2VzcyB0byBwcmVtaXVtIG1hcmtldCBkYXRhIiwi"
    "bWltZVR5cGUiOiJhcHBsaWNhdGlvbi9qc29uIn0sImFjY2VwdHMiOlt7InNjaGVtZSI6ImV4YWN0IiwibmV0d29yayI6ImVpcDE1NTo4NDUzMiIs"
    "ImFtb3VudCI6IjEwMDAwIiwiYXNzZXQiOiIweDAzNkNiRDUzODQyYzU0MjY2MzRlNzkyOTU0MWVDMjMxOGYzZENGN2UiLCJwYXlUbyI6IjB4MjA5"
    "NjkzQmM2YWZjMEM1MzI4YkEzNkZhRjAzQzUxNEVGMzEyMjg3QyIsIm1heFRpbWVvdXRTZWNvbmRzIjo2MCwiZXh0cmEiOnsibmFtZSI6IlVTREMi"
    "LCJ2ZXJzaW9uIjoiMiJ9fV19"
)
V1_BODY = {
    "x402Version": 1,
    "error": "X-PAYMENT header is required",
    "accepts": [
        {
            "scheme": "exact",
            "network": "base-sepolia",
            "maxAmountRequired": "10000",
            "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
            "payTo": "0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
            "resource": "https://api.example.com/premium-data",
            "description": "Access to premium market data",
            "mimeType": "application/json",
            "outputSchema": None,
            "maxTimeoutSeconds": 60,
            "extra": {"name": "USDC", "version": "2"},
        }
    ],
}


def test_v1_body_challenge():
    req = parse_challenge({}, json.dumps(V1_BODY).encode())
    assert req.x402_version == 1 and req.source == "body"
    (offer,) = req.accepts
    assert offer.amount == 10000 and offer.network == "base-sepolia" and offer.max_timeout_seconds == 60
    assert offer.eip712_name == "USDC" and offer.resource == "https://api.example.com/premium-data"


def test_v2_header_challenge_from_spec():
    req = parse_challenge({"payment-required": SPEC_PAYMENT_REQUIRED}, b"{}")
    assert req.x402_version == 2 and req.source == "header"
    assert req.accepts[0].network == "eip155:84532" and req.accepts[0].amount == 10000
    assert req.resource_url == "https://api.example.com/premium-data"


def test_header_wins_over_body_and_no_v1_fallback():
    # A server offering both speaks v2: never fall back to the body's v1 offer.
    req = parse_challenge({"PAYMENT-REQUIRED": SPEC_PAYMENT_REQUIRED}, json.dumps(V1_BODY).encode())
    assert req.x402_version == 2
    bad_header = {"PAYMENT-REQUIRED": "!!!not base64!!!"}
    with pytest.raises(X402ProtocolError):
        parse_challenge(bad_header, json.dumps(V1_BODY).encode())


def test_v2_json_only_in_body_is_refused():
    body = base64.b64decode(SPEC_PAYMENT_REQUIRED)
    with pytest.raises(X402ProtocolError, match="PAYMENT-REQUIRED"):
        parse_challenge({}, body)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{}",
        b"[]",
        b'{"x402Version": 1}',
        b'{"x402Version": 1, "accepts": []}',
        b'{"x402Version": 1, "accepts": [42, "usdc"]}',
        b'{"x402Version": 3, "accepts": []}',
        b"<html>pay me</html>",
    ],
)
def test_402_without_parseable_requirements(body):
    with pytest.raises(X402ProtocolError):
        parse_challenge({}, body)


def test_unparseable_entries_are_skipped_not_fatal():
    body = dict(V1_BODY, accepts=["tmai", {"scheme": "exact"}, V1_BODY["accepts"][0]])
    req = parse_challenge({}, json.dumps(body).encode())
    assert len(req.accepts) == 1 and [i for i, _ in req.rejected] == [0, 1]


def test_oversized_challenge_is_refused():
    huge = b64json_encode({"x402Version": 2, "accepts": [], "pad": "x" * 20_000})
    with pytest.raises(X402ProtocolError, match="16 KB"):
        parse_challenge({"PAYMENT-REQUIRED": huge}, b"{}")
    with pytest.raises(X402ProtocolError, match="16 KB"):
        parse_challenge({}, json.dumps(dict(V1_BODY, pad="x" * 20_000)).encode())


def test_spec_x_payment_decodes():
    p = PaymentPayload.decode(SPEC_X_PAYMENT)
    assert p.x402_version == 1 and p.network == "base-sepolia" and p.header_name == "X-PAYMENT"
    assert p.authorization.value == 10000 and p.authorization.valid_before == 1740672154
    assert PaymentPayload.decode(p.encode()) == p  # round trip


def test_v2_payload_echoes_accepted_verbatim_with_unknown_fields():
    header = json.loads(base64.b64decode(SPEC_PAYMENT_REQUIRED))
    header["accepts"][0]["futureField"] = {"nested": [1, 2]}
    header["extensions"] = {"payment-identifier": {"info": {"id": "abc"}, "schema": {}}}
    req = PaymentRequired.from_json(header, source="header")
    p = PaymentPayload.decode(SPEC_X_PAYMENT)
    v2 = build_payment_payload(req, req.accepts[0], p.authorization, p.signature)
    wire = json.loads(base64.b64decode(v2.encode()))
    assert wire["accepted"] == header["accepts"][0]
    assert wire["extensions"] == header["extensions"]
    assert wire["resource"] == header["resource"]
    assert "scheme" not in wire and v2.header_name == "PAYMENT-SIGNATURE"


def test_receipts_v1_and_v2():
    ok = SettlementResponse(True, "0x" + "ab" * 32, "eip155:84532", "0x857b06519E91e3A54538791bDbb0E22373e36b66")
    got = read_receipt({"PAYMENT-RESPONSE": ok.encode()})
    assert got.success and got.transaction == ok.transaction
    failed = SettlementResponse(False, "", "base-sepolia", None, "insufficient_funds")
    got = read_receipt({"x-payment-response": failed.encode()})
    assert not got.success and got.error_reason == "insufficient_funds"
    assert read_receipt({}) is None


@pytest.mark.parametrize(
    "value",
    ["garbage", b64json_encode({"success": "yes"}), b64json_encode({"success": True}), b64json_encode([1, 2]), ""],
)
def test_malformed_receipt_is_a_protocol_error(value):
    with pytest.raises(X402ProtocolError):
        read_receipt({"PAYMENT-RESPONSE": value})


def test_base64_variants_are_tolerated():
    obj = {"a": "??>>"}
    std = b64json_encode(obj)
    urlsafe = std.replace("+", "-").replace("/", "_").rstrip("=")
    assert b64json_decode(std) == obj == b64json_decode(urlsafe)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_any_bytes_give_a_message_or_protocol_error(data):
    for parse in (
        lambda: parse_challenge({}, data),
        lambda: parse_challenge({"PAYMENT-REQUIRED": data.decode("latin-1")}, b""),
        lambda: PaymentPayload.decode(data),
        lambda: read_receipt({"PAYMENT-RESPONSE": data.decode("latin-1")}),
    ):
        with contextlib.suppress(X402ProtocolError):
            parse()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=6),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "x402Version",
                "accepts",
                "error",
                "resource",
                "extensions",
                "payload",
                "scheme",
                "network",
                "accepted",
                "success",
                "transaction",
            ]
        ),
        json_values,
    )
)
def test_any_json_gives_a_message_or_protocol_error(obj):
    encoded = b64json_encode(obj)
    for parse in (
        lambda: parse_challenge({}, json.dumps(obj).encode()),
        lambda: parse_challenge({"PAYMENT-REQUIRED": encoded}, b""),
        lambda: PaymentPayload.decode(encoded),
        lambda: read_receipt({"X-PAYMENT-RESPONSE": encoded}),
    ):
        with contextlib.suppress(X402ProtocolError):
            parse()
