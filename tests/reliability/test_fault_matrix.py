"""Every sandbox fault × x402 v1/v2 × sync/async client, once and persistent.

Each call either returns the same data as API-key mode on the same sandbox or
raises a clear :class:`TM402Error` of the expected kind; afterwards the ledger
matches the sandbox's settlements exactly (see ``helpers.reconcile``): no
double charge, no lost row, ambiguous outcomes ``unknown``, a broadcast but unconfirmed settlement
``settlement_pending`` (and settled once the sandbox chain mines it and the ledger is resolved).

A lost answer on x402 v2 is recovered: the sandbox advertises payment-identifier, so the replay of
the identical payload gets the cached answer (one settlement, a settled row); v1 has no extensions,
so the same loss stays ``unknown`` there.

A fresh funded wallet per case keeps each case's settlements its own. The sync
client makes its calls one after another; the async client makes them all at
once (``asyncio.gather``), so the same invariants are checked under concurrency.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tests.reliability.helpers import FAST_RETRY, reconcile
from tm402_nb.errors import PaymentFailed, PaymentOutcomeUnknown, SettlementPending, TM402Error, X402ProtocolError
from tm402_nb.ledger import Ledger
from tm402_nb.sandbox import SandboxServer, serve
from tm402_nb.tokenmetrics.client import AsyncClient, Client
from tm402_nb.tokenmetrics.errors import APIError, RateLimited
from tm402_nb.x402 import SpendPolicy, Wallet, X402Auth
from tm402_nb.x402.chain import ChainReader

#: Four paid calls: distinct requests (so a lost answer's replay slot is never shared), one path twice.
CALLS = [("tm-grade", 3375), ("tm-grade", 3306), ("quantmetrics", 3375), ("tm-grade", 50004)]
N = len(CALLS)
OK = "ok"


def _all(outcome: str) -> list[str]:
    return [outcome] * N


def _first(outcome: str) -> list[str]:
    return [outcome] + [OK] * (N - 1)


# name -> (faults, expected outcome of each call; a dict when x402 v1 and v2 differ)
CASES: dict[str, tuple[dict[str, Any], list[str] | dict[int, list[str]]]] = {
    "latency": (dict(latency_ms=25), _all(OK)),
    "429-burst": (dict(burst_429=2, retry_after_s=0), _all(OK)),
    "429-always": (dict(burst_429=True, retry_after_s=0), _all("RateLimited")),
    "5xx-twice": (dict(error_5xx_next=2), _all(OK)),
    "5xx-always": (dict(error_5xx_next=True), _all("APIError")),
    "settle-failure-once": (dict(settle_failure=1), _first("PaymentFailed")),
    "settle-failure-always": (dict(settle_failure=True), _all("PaymentFailed")),
    "slow-settle-once": (dict(slow_settle_past_valid_before=1, slow_settle_ms=20), _first("PaymentFailed")),
    "slow-settle-always": (dict(slow_settle_past_valid_before=True, slow_settle_ms=20), _all("PaymentFailed")),
    "malformed-challenge-once": (dict(malformed_challenge=1), _first("X402ProtocolError")),
    "malformed-challenge-always": (dict(malformed_challenge=True), _all("X402ProtocolError")),
    "oversized-challenge-once": (dict(oversized_challenge=1), _first("X402ProtocolError")),
    "oversized-challenge-always": (dict(oversized_challenge=True), _all("X402ProtocolError")),
    # Lost answers: v1 cannot name the payment (unknown); v2 sends a payment-identifier, and the
    # identical replay gets the cached answer ("lost answers with identifiers").
    "drop-after-settle-once": (dict(drop_after_settle=1), {1: _first("PaymentOutcomeUnknown"), 2: _all(OK)}),
    "drop-after-settle-always": (dict(drop_after_settle=True), {1: _all("PaymentOutcomeUnknown"), 2: _all(OK)}),
    "settle-pending-once": (dict(settle_pending=1, settle_pending_reads=0), _first("SettlementPending")),
    "settle-pending-always": (dict(settle_pending=True, settle_pending_reads=0), _all("SettlementPending")),
}
KINDS = {
    c.__name__: c
    for c in (APIError, RateLimited, PaymentFailed, PaymentOutcomeUnknown, SettlementPending, X402ProtocolError)
}


@pytest.fixture(scope="module")
def sandboxes() -> Iterator[dict[int, SandboxServer]]:
    with (
        serve(x402_version=1, fund=False, rate_limit=10_000, rate_burst=10_000) as sb1,
        serve(x402_version=2, fund=False, rate_limit=10_000, rate_burst=10_000) as sb2,
    ):
        yield {1: sb1, 2: sb2}


@pytest.fixture(scope="module")
def reference(sandboxes) -> dict[int, list[list[dict[str, Any]]]]:
    """The same calls in API-key mode (no faults, no payment): the data a paid call must return."""
    out = {}
    for version, sb in sandboxes.items():
        with Client(mode="api-key", api_key=sb.api_key, base_url=sb.api_url, progress=False) as c:
            out[version] = [c.get(ep, token_id=[tid])["data"] for ep, tid in CALLS]
    return out


def _outcome(result: Any, expected_data: list[dict[str, Any]]) -> str:
    if isinstance(result, BaseException):
        assert isinstance(result, TM402Error), f"not a TM402Error: {type(result).__name__}: {result}"
        assert str(result).strip(), "an error without a message"
        return type(result).__name__
    assert result["data"] == expected_data, "a paid call returned different data than API-key mode"
    return OK


def _run_sync(sb: SandboxServer, auth: X402Auth, ledger: Ledger) -> list[Any]:
    results: list[Any] = []
    with Client(
        mode="sandbox", base_url=sb.api_url, auth=auth, ledger=ledger, retry=FAST_RETRY, progress=False, timeout=10
    ) as c:
        for ep, tid in CALLS:
            try:
                results.append(c.get(ep, token_id=[tid], refresh=True))
            except Exception as exc:
                results.append(exc)
    return results


def _run_async(sb: SandboxServer, auth: X402Auth, ledger: Ledger) -> list[Any]:
    async def main() -> list[Any]:
        async with AsyncClient(
            mode="sandbox", base_url=sb.api_url, auth=auth, ledger=ledger, retry=FAST_RETRY, progress=False, timeout=10
        ) as c:
            calls = [c.get(ep, token_id=[tid], refresh=True) for ep, tid in CALLS]
            return list(await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), timeout=60))

    return asyncio.run(main())


@pytest.mark.parametrize("client_kind", ["sync", "async"])
@pytest.mark.parametrize("version", [1, 2], ids=["v1", "v2"])
@pytest.mark.parametrize("case", list(CASES))
def test_fault(sandboxes, reference, tmp_path, case, version, client_kind):
    sb = sandboxes[version]
    faults, expected_by = CASES[case]
    expected = expected_by[version] if isinstance(expected_by, dict) else expected_by
    wallet = Wallet.create()
    sb.fund(wallet.address, "usdc", "5")
    start_balance = sb.balance(wallet.address, "usdc")
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    auth = X402Auth(wallet, SpendPolicy(budget="1.00"), ledger=ledger)
    replays_before = sb.stats().get("identifier_replays", 0)
    drops_before = sb.stats()["faults_fired"].get("drop_after_settle", 0)
    sb.set_faults(**faults)
    try:
        run = _run_sync if client_kind == "sync" else _run_async
        results = run(sb, auth, ledger)
    finally:
        sb.set_faults()
    outcomes = [_outcome(r, ref) for r, ref in zip(results, reference[version], strict=False)]
    if client_kind == "sync":
        assert outcomes == expected
    else:  # concurrent: which call meets a one-shot fault is a race, how many is not
        assert Counter(outcomes) == Counter(expected)

    rec = reconcile(sb, wallet.address, ledger)
    ok = outcomes.count(OK)
    unknown_calls = outcomes.count("PaymentOutcomeUnknown")
    assert rec["statuses"]["settled"] == ok, "each call that returned data has exactly one settled row"
    # One signature per call that got past the challenge, whatever happened next: a 5xx or a lost
    # answer on the paid request is retried by replaying the same payment, never by signing anew.
    signing_calls = N - outcomes.count("X402ProtocolError") - outcomes.count("RateLimited")
    assert auth.stats["signed"] == sum(rec["statuses"].values()) == signing_calls
    # Ambiguous outcomes are `unknown`: every lost answer, and a payment a server kept answering 5xx
    # to (it holds a valid authorization until validBefore: the library counts it as possibly spent).
    unknown_rows = N if case == "5xx-always" else unknown_calls
    assert rec["statuses"]["unknown"] == unknown_rows
    # No double charge: one settlement per answered call, plus at most one per lost answer.
    assert rec["settlements"] == ok + rec["unknown_settled"]
    assert rec["unknown_settled"] <= unknown_calls
    if case.startswith("drop-after-settle"):
        assert rec["unknown_settled"] == unknown_calls  # the server did settle: unknown, not failed
    assert start_balance - sb.balance(wallet.address, "usdc") == rec["paid_atomic"]
    # Budget accounting: what the policy still counts is what may still move: settled, unknown, and
    # refused authorizations that have not expired (reserved), the same sum the ledger counts.
    assert sum(auth.policy.spent().values()) == rec["counted_atomic"]
    assert sum(auth.policy.reserved().values()) == rec["reserved_atomic"]
    usdc = auth.policy.allowed_assets[0]
    assert ledger.spent(usdc.address, usdc.network) == rec["counted_atomic"]
    for outcome, result in zip(outcomes, results, strict=False):
        if outcome != OK:
            assert isinstance(result, KINDS[outcome])
    if case.startswith("drop-after-settle") and version == 2:
        # Every lost answer came back from the server's payment-identifier cache: one settlement each.
        assert rec["statuses"]["settled"] == rec["settlements"] == N
        drops = sb.stats()["faults_fired"].get("drop_after_settle", 0) - drops_before
        assert drops >= 1 and sb.stats()["identifier_replays"] - replays_before == drops
    pending = outcomes.count("SettlementPending")
    assert rec["statuses"]["settlement_pending"] == pending
    if pending:
        # Counted, nothing moved yet; then the chain mines them and the ledger reads it by nonce.
        assert rec["settlements"] == ok
        sb.mine()
        checks = ledger.resolve_open(ChainReader(sb.rpc_url))
        # The transfers landed, the data was withheld: the evidence a refund needs.
        assert [c.verdict for c in checks] == ["settled but not delivered"] * pending
        after = reconcile(sb, wallet.address, ledger)
        assert after["statuses"]["settled"] == after["settlements"] == ok + pending
        assert start_balance - sb.balance(wallet.address) == after["paid_atomic"]
    ledger.close()
