"""Soak: 2,000 paid calls in one session, with no growth in memory or open file descriptors.

Memory is measured with tracemalloc started after a 200-call warm-up (connection
pool, challenge cache, SQLite page cache, import-time caches all filled), so what
it reports after call 2,000 is exactly what the last 1,800 calls allocated and
left alive. Two numbers come out of it:

- the session's cost total (``client.cost.total``) keeps one ``CallCost`` per call
  in memory, by design (it can list its calls): about 0.8 KB each, ~1.4 MB over
  1,800 calls. It is measured separately and held to < 1.5 KB per call;
- everything else must stay flat: < 512 KB for 1,800 calls (under 300 bytes a
  call, i.e. no per-call object survives: the slack is allocator and cache noise).

The overall bound, < 5 MB, is the sum with a margin. Open descriptors (sockets,
the ledger's SQLite and WAL files) are counted in /proc/self/fd: flat during the
run, and back to where they started once the client is closed.

How many calls went warm is not a constant: a remembered challenge lapses after
the server's window (60 s), and a slow machine lapses it more often. The test
checks that every call was either warm or cold, that the server saw exactly the
challenges the client answered, and that cold calls are no more than the window
can explain for the time the run actually took. Speed itself is ``make bench``.
"""

from __future__ import annotations

import gc
import os
import time
import tracemalloc

import pytest

from tests.reliability.helpers import FAST_RETRY, reconcile
from tm402_nb.ledger import Ledger
from tm402_nb.sandbox import serve
from tm402_nb.tokenmetrics.client import Client
from tm402_nb.tokenmetrics.cost import SESSION_CALLS_KEPT
from tm402_nb.x402 import SpendPolicy, Wallet, X402Auth

WARMUP = 200
TOTAL = 2_000
PRICE = 17_000  # tm-grade


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to count file descriptors")
@pytest.mark.timeout(900)  # a hang guard for a loaded 2-core machine, not a speed goal
def test_two_thousand_paid_calls_without_growth(tmp_path):
    # The default rate limit (20/s) would make this a test of 429 handling: raised for the soak.
    with serve(fund=False, rate_limit=100_000, rate_burst=100_000) as sb:
        wallet = Wallet.create()
        sb.fund(wallet.address, "usdc", "50")
        ledger = Ledger(tmp_path / "soak.sqlite3")
        auth = X402Auth(wallet, SpendPolicy(budget="40"), ledger=ledger)
        gc.collect()
        fds_before = open_fds()
        # The clock X402Auth uses to expire what it remembers, so the bound below uses the same.
        started = time.time()
        client = Client(mode="sandbox", base_url=sb.api_url, auth=auth, ledger=ledger, retry=FAST_RETRY, progress=False)
        try:
            for _ in range(WARMUP):
                assert client.get("tm-grade", token_id=[3375], refresh=True)["data"]
            gc.collect()
            fds_warm = open_fds()
            tracemalloc.start(1)
            try:
                for _ in range(TOTAL - WARMUP):
                    assert client.get("tm-grade", token_id=[3375], refresh=True)["data"]
                gc.collect()
                grown = tracemalloc.get_traced_memory()[0]
                retained_calls = len(client.cost.total.calls)
                counted_calls = client.cost.total.n_paid
            finally:
                tracemalloc.stop()
            fds_end = open_fds()
        finally:
            client.close()
        elapsed = time.time() - started
        server = sb.stats()
        window = sb.state.config.max_timeout_seconds
        gc.collect()
        fds_closed = open_fds()
        rec = reconcile(sb, wallet.address, ledger)
        ledger.close()

    # The session's cost total remembers the last SESSION_CALLS_KEPT calls in full (its sums stay
    # exact), so memory is bounded by that window, not by the number of calls. ~0.75 KB a kept call
    # plus the rest: 1 MB is ample for the window filling up from 200 to 1,000 calls here.
    assert retained_calls == SESSION_CALLS_KEPT and counted_calls == TOTAL
    assert grown < 1024 * 1024, f"memory grew {grown / 1e6:.2f} MB over {TOTAL - WARMUP} paid calls"
    assert fds_end <= fds_warm + 2, f"descriptors grew during the soak: {fds_warm} -> {fds_end}"
    assert fds_closed <= fds_before + 2, f"descriptors left open after close: {fds_before} -> {fds_closed}"
    # One signature per call; each call warm (one round trip) or cold (challenge, then pay).
    cold = auth.stats["challenges"]
    assert auth.stats["signed"] == TOTAL and auth.stats["warm_misses"] == 0
    assert auth.stats["warm_hits"] + cold == TOTAL
    # The server agrees: it served exactly those challenges, one extra request each, and every
    # other payment came without one (pre-signed on a remembered challenge).
    assert server["challenges"] == cold and server["requests"] == TOTAL + cold
    assert server["unchallenged_payments"] == auth.stats["warm_hits"]
    # Cold calls after the first happen only when the remembered challenge has lapsed, which
    # takes most of the server's window each time (half of it is a bound that does not depend on
    # the client's exact margin): a slow run may have several, a broken warm path has ~TOTAL.
    assert 1 <= cold <= 1 + int(elapsed // (window / 2)), f"{cold} cold calls in {elapsed:.0f} s"
    # Every payment accounted for.
    assert rec["statuses"] == {"settled": TOTAL} and rec["settlements"] == TOTAL
    assert rec["paid_atomic"] == TOTAL * PRICE
