"""The sandbox plays x402 v2's payment-identifier (issue 14): advertised by default in v2, the
identical payload gets its cached answer without a second charge, the same id with another payload
gets 409; our client attaches ids, recovers a lost answer by replaying the identical payload, and
treats a 409 as a clear error, never a second signature."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import httpx
import pytest

from tests.sandbox.sandbox_helpers import fresh_wallet
from tm402_nb.errors import PaymentFailed
from tm402_nb.ledger import Ledger
from tm402_nb.sandbox import SandboxServer, serve
from tm402_nb.x402 import SpendPolicy, X402Auth
from tm402_nb.x402.client import paying_client
from tm402_nb.x402.identifier import PAYMENT_IDENTIFIER, identifier_of
from tm402_nb.x402.messages import parse_challenge

HEADERS = {"x-coinbase-402": "true"}
PARAMS = {"token_id": "3375"}


@pytest.fixture(scope="module")
def v2() -> Iterator[SandboxServer]:
    with serve(x402_version=2, fund=False, rate_limit=10_000, rate_burst=10_000) as sb:
        yield sb


@pytest.fixture
def ledger(tmp_path) -> Iterator[Ledger]:
    led = Ledger(tmp_path / "ledger.sqlite3")
    yield led
    led.close()


def _challenge(sb: SandboxServer):
    r = httpx.get(sb.api_url + "/tm-grade", params=PARAMS, headers=HEADERS)
    assert r.status_code == 402
    return parse_challenge(r.headers, r.content)


def _decode(header: str) -> dict:
    return json.loads(base64.b64decode(header))


def _encode(payload: dict) -> str:
    return base64.b64encode(json.dumps(payload).encode()).decode()


def test_v2_advertises_the_extension_and_v1_and_the_off_switch_do_not(v2: SandboxServer) -> None:
    ext = _challenge(v2).extensions or {}
    decl = ext[PAYMENT_IDENTIFIER]
    assert decl["info"] == {"required": False}
    assert decl["schema"]["properties"]["id"]["minLength"] == 16
    assert decl["schema"]["properties"]["id"]["maxLength"] == 128
    with serve(x402_version=2, payment_identifier="off", fund=False) as off:
        assert not (_challenge(off).extensions or {})
        assert off.profile.switches()["payment_identifier"] == "off"
    with serve(x402_version=1, fund=False) as v1:
        r = httpx.get(v1.api_url + "/tm-grade", params=PARAMS, headers=HEADERS)
        assert "extensions" not in r.json()


def test_the_identical_payload_gets_the_cached_answer_and_pays_once(v2: SandboxServer, ledger: Ledger) -> None:
    wallet = fresh_wallet(v2, tmai=None)
    start = v2.balance(wallet.address)
    auth = X402Auth(wallet, SpendPolicy(max_per_call="0.05"), ledger=ledger)
    with httpx.Client(auth=auth, headers=HEADERS) as c:
        first = c.get(v2.api_url + "/tm-grade", params=PARAMS)
    assert first.status_code == 200
    header = first.request.headers["PAYMENT-SIGNATURE"]
    pid = identifier_of(_decode(header))
    assert pid is not None and ledger.payment_rows()[0]["identifier"] == pid
    # The same payload again, by hand: the cached answer, receipt included, no second settlement.
    again = httpx.get(v2.api_url + "/tm-grade", params=PARAMS, headers={**HEADERS, "PAYMENT-SIGNATURE": header})
    assert again.status_code == 200 and again.json() == first.json()
    assert again.headers["PAYMENT-RESPONSE"] == first.headers["PAYMENT-RESPONSE"]
    assert len(v2.settlements(wallet.address)) == 1
    assert start - v2.balance(wallet.address) == int(ledger.payment_rows()[0]["amount"])
    # The same id with another payload (here: another nonce, so an unsigned change): 409.
    other = _decode(header)
    other["payload"]["authorization"]["nonce"] = "0x" + "ab" * 32
    conflict = httpx.get(
        v2.api_url + "/tm-grade", params=PARAMS, headers={**HEADERS, "PAYMENT-SIGNATURE": _encode(other)}
    )
    assert conflict.status_code == 409 and conflict.json()["error"] == "payment_identifier_conflict"
    assert len(v2.settlements(wallet.address)) == 1


def test_a_lost_answer_is_recovered_by_the_transport_replaying_the_identical_payload(
    v2: SandboxServer, ledger: Ledger
) -> None:
    wallet = fresh_wallet(v2, tmai=None)
    v2.set_faults(drop_after_settle=1)
    try:
        with paying_client(wallet, SpendPolicy(max_per_call="0.05"), ledger=ledger, headers=HEADERS) as c:
            r = c.get(v2.api_url + "/tm-grade", params=PARAMS)
            auth = c.auth
    finally:
        v2.set_faults()
    assert r.status_code == 200 and r.json()["data"]
    assert isinstance(auth, X402Auth) and auth.stats["signed"] == 1
    (row,) = ledger.payment_rows()
    (settled,) = v2.settlements(wallet.address)
    assert row["status"] == "settled" and row["tx"] == settled["tx"]


def test_a_lost_answer_is_recovered_when_the_caller_sends_the_request_again(v2: SandboxServer, ledger: Ledger) -> None:
    """No replaying transport: the answer is lost (unknown); sending the same request again replays
    the same header, and the server's cache turns it into the answer and a settled row."""
    wallet = fresh_wallet(v2, tmai=None)
    auth = X402Auth(wallet, SpendPolicy(max_per_call="0.05"), ledger=ledger)
    replays = v2.stats().get("identifier_replays", 0)
    v2.set_faults(drop_after_settle=1)
    try:
        with httpx.Client(auth=auth, headers=HEADERS) as c:
            with pytest.raises(httpx.TransportError):
                c.get(v2.api_url + "/tm-grade", params=PARAMS)
            assert ledger.payment_rows()[0]["status"] == "unknown"
            r = c.get(v2.api_url + "/tm-grade", params=PARAMS)
    finally:
        v2.set_faults()
    assert r.status_code == 200 and r.json()["data"]
    assert auth.stats["signed"] == 1
    assert [row["status"] for row in ledger.payment_rows()] == ["settled"]
    assert len(v2.settlements(wallet.address)) == 1
    assert v2.stats()["identifier_replays"] == replays + 1  # answered from the cache


def test_a_409_is_a_clear_error_and_never_a_second_signature(
    v2: SandboxServer, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two payments that end up with one id (forced here): the second is answered 409; the client
    says so and signs nothing more."""
    import tm402_nb.x402.identifier as identifier

    monkeypatch.setattr(identifier.secrets, "token_hex", lambda n: "7" * (2 * n))
    wallet = fresh_wallet(v2, tmai=None)
    auth = X402Auth(wallet, SpendPolicy(max_per_call="0.05"), ledger=ledger, warm=False)
    with httpx.Client(auth=auth, headers=HEADERS) as c:
        assert c.get(v2.api_url + "/tm-grade", params=PARAMS).status_code == 200
        with pytest.raises(PaymentFailed, match="payment_identifier_conflict") as e:
            c.get(v2.api_url + "/tm-grade", params={"token_id": "3306"})
    assert e.value.reason == "payment_identifier_conflict"
    assert auth.stats["signed"] == 2  # one per request: the conflict was not answered with a new signature
    rows = ledger.payment_rows()
    assert [r["status"] for r in rows] == ["settled", "failed"]
    assert rows[0]["identifier"] == rows[1]["identifier"]
    assert "bound to another payment" in rows[1]["error"]
    assert len(v2.settlements(wallet.address)) == 1
