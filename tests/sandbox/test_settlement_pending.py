"""settlement_pending (issue 14): the sandbox's facilitator broadcasts but does not confirm; the
client keeps the payment counted and open, and it is resolved by a later receipt (replaying the
identical payment), by the chain (``authorizationState``), or by ``Ledger.resolve_open``.

No sleeps: the sandbox chain mines a broadcast after N JSON-RPC reads, or when told (``mine``).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.sandbox.sandbox_helpers import fresh_wallet
from tm402_nb.cli import main
from tm402_nb.errors import SettlementPending
from tm402_nb.ledger import Ledger
from tm402_nb.ledger.chaincheck import resolution_summary
from tm402_nb.sandbox import SandboxServer, serve
from tm402_nb.x402 import SpendPolicy, Wallet, X402Auth
from tm402_nb.x402.auth import payment_of, receipt
from tm402_nb.x402.chain import ChainReader
from tm402_nb.x402.messages import read_receipt

HEADERS = {"x-coinbase-402": "true"}


@pytest.fixture(scope="module", params=[1, 2], ids=["v1", "v2"])
def sb(request: pytest.FixtureRequest) -> Iterator[SandboxServer]:
    with serve(
        x402_version=request.param, fund=False, rate_limit=10_000, rate_burst=10_000, max_timeout_seconds=900
    ) as server:
        yield server


@pytest.fixture
def ledger(tmp_path) -> Iterator[Ledger]:
    led = Ledger(tmp_path / "ledger.sqlite3")
    yield led
    led.close()


def _auth(wallet: Wallet, ledger: Ledger, sb: SandboxServer, **policy: object) -> X402Auth:
    return X402Auth(
        wallet, SpendPolicy(max_per_call="0.05", **policy), ledger=ledger, chain=ChainReader(sb.rpc_url), warm=False
    )


def _pending(sb: SandboxServer, auth: X402Auth, token_id: int = 3375, *, reads: int = 0) -> SettlementPending:
    sb.set_faults(settle_pending=1, settle_pending_reads=reads)
    try:
        with httpx.Client(auth=auth, headers=HEADERS) as c, pytest.raises(SettlementPending) as e:
            c.get(sb.api_url + "/tm-grade", params={"token_id": str(token_id)})
    finally:
        sb.set_faults()
    return e.value


def test_a_pending_settle_withholds_the_data_and_keeps_the_payment_counted(sb, ledger) -> None:
    wallet = fresh_wallet(sb, tmai=None)
    start = sb.balance(wallet.address)
    auth = _auth(wallet, ledger, sb)
    err = _pending(sb, auth)
    response = err.details["response"]
    assert response.status_code == 402
    got = read_receipt(response.headers)
    assert got is not None and not got.success and got.error_reason == "settlement_pending" and got.transaction
    assert receipt(response) == got and payment_of(response) is err.payment  # type: ignore[attr-defined]
    assert "settlement_pending" in str(err) and "%tm ledger --resolve" in err.hint
    (row,) = ledger.payment_rows()
    assert row["status"] == "settlement_pending" and row["tx"] == got.transaction
    # Counted against every cap, by the ledger and the policy alike; no money moved yet.
    assert ledger.spent(row["asset"], row["network"]) == int(row["amount"])
    assert sum(auth.policy.spent().values()) == int(row["amount"])
    assert sb.balance(wallet.address) == start and sb.settlements(wallet.address) == []
    assert sb.state.facilitator.mempool.size() >= 1


def test_a_later_receipt_resolves_it_replaying_the_same_payment(sb, ledger) -> None:
    wallet = fresh_wallet(sb, tmai=None)
    auth = _auth(wallet, ledger, sb)
    tx = _pending(sb, auth).payment.tx  # type: ignore[attr-defined]
    with httpx.Client(auth=auth, headers=HEADERS) as c:
        # Still pending: the replay says so again; nothing new is signed.
        with pytest.raises(SettlementPending):
            c.get(sb.api_url + "/tm-grade", params={"token_id": "3375"})
        sb.mine()
        r = c.get(sb.api_url + "/tm-grade", params={"token_id": "3375"})
    assert r.status_code == 200 and r.json()["data"]
    assert auth.stats["signed"] == 1
    (row,) = ledger.payment_rows()
    (settled,) = sb.settlements(wallet.address)
    assert row["status"] == "settled" and row["tx"] == settled["tx"] == tx


def test_the_chain_resolves_it_authorization_state(sb, ledger) -> None:
    wallet = fresh_wallet(sb, tmai=None)
    auth = _auth(wallet, ledger, sb)
    pay = _pending(sb, auth, reads=1).payment  # type: ignore[attr-defined]
    # The resolver's first JSON-RPC read is the one the broadcast waited for: it is mined, then read.
    assert auth.resolve_unknown() == {pay.id: "settled"}
    assert ledger.payment_rows()[0]["status"] == "settled"
    assert len(sb.settlements(wallet.address)) == 1


def test_the_facilitator_endpoint_answers_pending_and_reconciles(sb) -> None:
    """``POST /facilitator/settle`` plays it too; settling the same payload again reconciles."""
    from tm402_nb.x402.eip3009 import sign_authorization
    from tm402_nb.x402.messages import build_payment_payload, parse_challenge

    wallet = fresh_wallet(sb, tmai=None)
    r = httpx.get(sb.api_url + "/tm-grade", params={"token_id": "3375"}, headers=HEADERS)
    required = parse_challenge(r.headers, r.content)
    req = required.accepts[0]
    auth, sig = sign_authorization(wallet, req)
    payload = build_payment_payload(required, req, auth, sig)
    body = {"x402Version": req.x402_version, "paymentPayload": payload.to_json(), "paymentRequirements": req.raw}
    sb.mine()  # the module's tests share this sandbox: start from an empty mempool, whatever ran before
    sb.set_faults(settle_pending=1, settle_pending_reads=0)
    try:
        first = httpx.post(sb.facilitator_url + "/settle", json=body).json()
    finally:
        sb.set_faults()
    assert first["success"] is False and first["errorReason"] == "settlement_pending" and first["transaction"]
    assert httpx.post(sb.facilitator_url + "/settle", json=body).json()["errorReason"] == "settlement_pending"
    mined = httpx.post(sb.url + "/sandbox/mine").json()
    assert mined["transactions"] == {first["transaction"].lower(): "mined"}
    again = httpx.post(sb.facilitator_url + "/settle", json=body).json()
    assert again["success"] is True and again["transaction"] == first["transaction"]
    assert len(sb.settlements(wallet.address)) == 1


def test_resolve_open_reads_every_open_row_from_the_ledger(sb, ledger) -> None:
    """Rows decided from the chain by their nonce, not from any auth's memory: one mined, one dropped
    and expired, one still waiting."""
    wallet = fresh_wallet(sb, tmai=None)
    short = _auth(wallet, ledger, sb, authorization_seconds=20)
    long = _auth(wallet, ledger, sb, authorization_seconds=900)
    _pending(sb, short, 3375)
    sb.mine(drop=True)  # the facilitator gave up on it: never mined
    _pending(sb, long, 3306, reads=1)  # mined on the next JSON-RPC read
    _pending(sb, long, 50004)  # waits for mine()
    rows = ledger.payment_rows()
    assert [r["status"] for r in rows] == ["settlement_pending"] * 3
    later = rows[0]["valid_before"] + 120  # the short one has expired; the others have not
    with Ledger(ledger.path) as fresh:  # another process: nothing held in memory
        checks = fresh.resolve_open(ChainReader(sb.rpc_url), now=later)
        assert resolution_summary(checks) == (
            "3 checked: 1 settled on chain, 1 expired unexecuted (never settled), 1 still pending"
        )
        assert [r["status"] for r in fresh.payment_rows()] == ["failed", "settled", "settlement_pending"]
        assert "expired unexecuted" in fresh.payment_rows()[0]["error"]
        # Resolved rows keep saying the data never came: the report a refund needs.
        report = fresh.reconcile_chain(ChainReader(sb.rpc_url), now=later)
        assert report["verdict"].tolist() == ["settled but not delivered", "not settled yet"]
    assert len(sb.settlements(wallet.address)) == 1


def test_cli_ledger_resolve(sb, ledger, capsys) -> None:
    wallet = fresh_wallet(sb, tmai=None)
    _pending(sb, _auth(wallet, ledger, sb))
    sb.mine()
    assert main(["ledger", "--resolve", "--rpc", sb.rpc_url, "--path", str(ledger.path)]) == 0
    out = capsys.readouterr().out
    assert "settlement_pending → settled" in out and "1 checked: 1 settled on chain" in out
    assert ledger.payment_rows()[0]["status"] == "settled"
    assert main(["ledger", "--resolve", "--path", str(ledger.path)]) != 0  # no node to ask
    assert "needs a node" in capsys.readouterr().err
