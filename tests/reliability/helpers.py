"""Shared pieces of the reliability suite: fast retries and the ledger ↔ sandbox reconciliation."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from tm402_nb.ledger import Ledger
from tm402_nb.status import EXPIRY_MARGIN_SECONDS
from tm402_nb.tokenmetrics.client import RetryPolicy

#: Retries that never wait long: the faults are injected, not real congestion.
FAST_RETRY = RetryPolicy(attempts=3, base=0.01, cap=0.05, jitter=0, max_retry_after=0.1)


def reconcile(sandbox: Any, payer: str, ledger: Ledger) -> dict[str, Any]:
    """Check the ledger's payments against the sandbox's settlements for ``payer``, exactly.

    - no nonce settled twice, and no settlement without a ledger row (matched by nonce);
    - a ``settled`` row has a settlement with the same transaction hash;
    - a ``failed`` row has no settlement (the money did not move);
    - an ``unknown`` row may or may not have one (that is what unknown means);
    - no row is left ``pending`` once the calls have returned;
    - the wallet lost exactly the settled amounts.

    Returns counts for case-specific assertions.
    """
    rows = ledger.payment_rows()
    settlements = sandbox.settlements(payer=payer)
    by_nonce = {s["nonce"].lower(): s for s in settlements}
    assert len(by_nonce) == len(settlements), "a nonce was settled twice"
    rows_by_nonce = {r["nonce"].lower(): r for r in rows}
    assert len(rows_by_nonce) == len(rows), "two ledger rows share a nonce"
    orphans = set(by_nonce) - set(rows_by_nonce)
    assert not orphans, f"{len(orphans)} settlement(s) without a ledger row"
    statuses = Counter(r["status"] for r in rows)
    assert statuses["pending"] == 0, f"rows left pending: {statuses}"
    unknown_settled = 0
    for nonce, row in rows_by_nonce.items():
        settled = by_nonce.get(nonce)
        if row["status"] == "settled":
            assert settled is not None, "a settled row with no settlement"
            assert row["tx"] == settled["tx"], "a settled row with the wrong transaction"
            assert int(row["amount"]) == int(settled["amount"])
        elif row["status"] == "failed":
            assert settled is None, f"a failed row whose payment settled ({row['error']})"
        elif row["status"] == "unknown" and settled is not None:
            unknown_settled += 1
    # A refused payment whose authorization has not expired may still be settled by whoever
    # holds it: it is counted (reserved) until then, by the policy and by the ledger alike.
    now = time.time()
    reserved = [r for r in rows if r["status"] == "failed" and r["valid_before"] + EXPIRY_MARGIN_SECONDS > now]
    ours = sorted(r["tx"] for r in rows if r["status"] == "settled")
    theirs = sorted(s["tx"] for s in settlements if rows_by_nonce[s["nonce"].lower()]["status"] == "settled")
    assert ours == theirs
    return {
        "statuses": statuses,
        "settlements": len(settlements),
        "unknown_settled": unknown_settled,
        "paid_atomic": sum(int(s["amount"]) for s in settlements),
        "reserved_atomic": sum(int(r["amount"]) for r in reserved),
        "counted_atomic": sum(
            int(r["amount"]) for r in rows if r["status"] in ("pending", "settled", "unknown", "settlement_pending")
        )
        + sum(int(r["amount"]) for r in reserved),
    }
