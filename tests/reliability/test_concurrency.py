"""Two processes, one wallet, one ledger file, one daily cap: 200 paid calls at once.

Each process has its own Ledger connection, SpendPolicy and X402Auth for the
same key (payee pinning and warm challenges are per process). The shared
budget is the persistent ``daily_cap``, checked and the pending row written in
one ``BEGIN IMMEDIATE`` transaction, so the two processes cannot both spend
the last cent. The cap allows 120 of the 200 calls.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.reliability.helpers import reconcile
from tm402_nb.errors import TM402Error
from tm402_nb.ledger import Ledger
from tm402_nb.sandbox import serve
from tm402_nb.x402 import Wallet

ROOT = Path(__file__).resolve().parents[2]
PRICE = 17_000  # tm-grade: 0.017 USDC
ALLOWED = 120
CALLS_PER_PROCESS = 100


def _seconds_to_utc_midnight() -> float:
    now = datetime.now(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0).timestamp() + 86_400
    return midnight - now.timestamp()


@pytest.mark.slow
def test_two_processes_share_one_ledger_and_one_daily_cap(tmp_path):
    if _seconds_to_utc_midnight() < 120:
        pytest.skip("the daily cap resets at 00:00 UTC; too close to midnight to test it")
    ledger_path = tmp_path / "shared.sqlite3"
    Ledger(ledger_path).close()
    wallet = Wallet.create()
    cap_atomic = PRICE * ALLOWED
    env = {k: v for k, v in os.environ.items() if k not in ("TM402_PRIVATE_KEY", "TM402_KEY_FILE", "TM_API_KEY")}
    with serve(fund=False, rate_limit=10_000, rate_burst=10_000) as sb:
        sb.fund(wallet.address, "usdc", "5")  # 200 calls would cost 3.40: the cap binds, not the balance
        start_balance = sb.balance(wallet.address, "usdc")
        procs = []
        try:
            for kind in ("async", "sync"):
                p = subprocess.Popen(
                    [sys.executable, "-m", "tests.reliability._worker"],
                    cwd=ROOT,
                    env=env,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                procs.append(p)
                settings = {
                    "api_url": sb.api_url,
                    "ledger": str(ledger_path),
                    "daily_cap": f"{cap_atomic / 1e6:.6f}",
                    "calls": CALLS_PER_PROCESS,
                    "concurrency": 8,
                    "kind": kind,
                    "key": wallet._export_key_hex(),
                }
                p.stdin.write(json.dumps(settings) + "\n")
                p.stdin.flush()
            for p in procs:  # both set up (imports, ledger, client) before either pays
                assert p.stdout.readline().strip() == "ready", p.stderr.read()
            for p in procs:
                p.stdin.write("go\n")
                p.stdin.flush()
            outputs = [p.communicate(timeout=150) for p in procs]  # a hang guard, not a speed goal
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait(timeout=10)
        for p, (_out, err) in zip(procs, outputs, strict=False):
            assert p.returncode == 0, err[-2000:]
            assert "Traceback" not in err, err[-2000:]
        reports = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
        assert {r["payer"] for r in reports} == {wallet.address}

        with Ledger(ledger_path) as ledger:
            rec = reconcile(sb, wallet.address, ledger)
            calls = ledger.call_rows()
            pids = {r["pid"] for r in ledger.payment_rows()}
        end_balance = sb.balance(wallet.address, "usdc")

    outcomes = [r["outcomes"] for r in reports]
    ok = sum(o.get("ok", 0) for o in outcomes)
    refused = sum(o.get("refused", 0) for o in outcomes)
    others = {k: v for o in outcomes for k, v in o.items() if k not in ("ok", "refused")}
    assert not others, f"calls that neither paid nor were refused by the cap: {others}"
    # The cap is never exceeded, and it binds exactly: nothing failed, so every allowed cent was spent.
    assert rec["counted_atomic"] <= cap_atomic
    assert ok == ALLOWED and refused == 2 * CALLS_PER_PROCESS - ALLOWED
    # Every row is there: one settled row per settlement (same tx), one call row per call.
    assert rec["statuses"] == {"settled": ALLOWED}
    assert rec["settlements"] == ALLOWED and rec["paid_atomic"] == cap_atomic
    assert start_balance - end_balance == cap_atomic
    assert len(calls) == 2 * CALLS_PER_PROCESS
    # Each process can make at most 100 of the 120 payments, so both paid (and both wrote rows).
    assert all(o.get("ok", 0) >= ALLOWED - CALLS_PER_PROCESS for o in outcomes)
    assert len(pids) == 2


# -- in one process: identical requests in flight at the same time --------------------------------
# Regression tests for X402Auth (tm402_nb/x402/auth.py): a payment still in flight was taken for a
# "lost answer" by an identical concurrent request, which re-sent its header (so one of the two got a
# spurious PaymentOutcomeUnknown and a settled payment was marked unknown in the ledger); and the
# first request to finish dropped the other's replay slot, so a lost answer could be paid twice.


def test_identical_concurrent_requests_each_pay_once(tmp_path):
    import asyncio

    from tests.reliability.helpers import FAST_RETRY
    from tm402_nb.tokenmetrics.client import AsyncClient, Client
    from tm402_nb.x402 import SpendPolicy, X402Auth

    with serve(fund=False, rate_limit=10_000, rate_burst=10_000) as sb:
        wallet = Wallet.create()
        sb.fund(wallet.address, "usdc", "5")
        ledger = Ledger(tmp_path / "l.sqlite3")
        auth = X402Auth(wallet, SpendPolicy(budget="1"), ledger=ledger)
        kw = dict(mode="sandbox", base_url=sb.api_url, auth=auth, ledger=ledger, retry=FAST_RETRY, progress=False)

        async def burst() -> list:
            async with AsyncClient(**kw) as c:
                await c.get("tm-grade", token_id=[3375], refresh=True)  # warm: the rest sign up front
                same = [c.get("tm-grade", token_id=[3375], refresh=True) for _ in range(10)]
                return await asyncio.wait_for(asyncio.gather(*same, return_exceptions=True), 60)

        results = asyncio.run(burst())
        with Client(**kw) as c:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(8) as pool:
                results += list(
                    pool.map(lambda _: c.get("tm-grade", token_id=[3375], refresh=True), range(8), timeout=60)
                )
        rec = reconcile(sb, wallet.address, ledger)
        ledger.close()
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors[:2]
    assert rec["statuses"] == {"settled": 19} and rec["settlements"] == 19


def test_a_lost_answer_keeps_its_replay_slot_when_an_identical_request_finishes_first():
    import threading

    import httpx

    from tests.toyserver import PAY_TO
    from tm402_nb.x402 import SpendPolicy, X402Auth
    from tm402_nb.x402.messages import PaymentPayload, SettlementResponse
    from tm402_nb.x402.networks import USDC_BASE_SEPOLIA
    from tm402_nb.x402.transport import PaymentReplayTransport

    challenge = {
        "x402Version": 1,
        "error": "pay",
        "accepts": [
            {
                "scheme": "exact",
                "network": "base-sepolia",
                "maxAmountRequired": "17000",
                "resource": "http://t/data",
                "asset": USDC_BASE_SEPOLIA.address,
                "payTo": PAY_TO,
                "maxTimeoutSeconds": 300,
                "extra": {"name": "USDC", "version": "2"},
            }
        ],
    }
    paid_nonces: list[str] = []
    second_arrived, first_done = threading.Event(), threading.Event()
    lock = threading.Lock()

    def handler(request: httpx.Request) -> httpx.Response:
        header = request.headers.get("X-PAYMENT")
        if header is None:
            return httpx.Response(402, json=challenge)
        nonce = PaymentPayload.decode(header).authorization.nonce
        with lock:
            paid_nonces.append(nonce)
            order = len(paid_nonces)
        if order == 1:  # the first paid request answers once the second one is in flight
            assert second_arrived.wait(10)
            receipt = SettlementResponse(True, "0x" + nonce[2:], "base-sepolia", None)
            return httpx.Response(200, json={"ok": True}, headers={"X-PAYMENT-RESPONSE": receipt.encode()})
        if order == 2:  # the second one loses its answer, after the first has finished
            second_arrived.set()
            assert first_done.wait(10)
            raise httpx.ReadTimeout("answer lost", request=request)
        return httpx.Response(402, json={**challenge, "error": "invalid_exact_evm_nonce_already_used"})

    auth = X402Auth(Wallet.create(), SpendPolicy(), warm=False)
    transport = PaymentReplayTransport(httpx.MockTransport(handler), attempts=0)
    outcomes: list[object] = []
    with httpx.Client(auth=auth, transport=transport) as http:

        def worker() -> None:  # roles go by arrival at the server, not by thread
            try:
                outcomes.append(http.get("http://t/data").status_code)
                first_done.set()
            except httpx.ReadTimeout as exc:
                outcomes.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert outcomes.count(200) == 1 and sum(isinstance(o, httpx.ReadTimeout) for o in outcomes) == 1
        pending = auth.pending_for(http.build_request("GET", "http://t/data"))
        assert pending is not None and pending.status == "unknown", "the lost answer lost its replay slot"
        lost_nonce = paid_nonces[1]
        assert pending.payload.authorization.nonce == lost_nonce
        # Re-sending the same request replays the lost payment (same nonce), it does not pay again.
        with pytest.raises(TM402Error):
            http.get("http://t/data")
    assert paid_nonces[2] == lost_nonce and auth.stats["signed"] == 2
