from __future__ import annotations

from collections.abc import Iterator

import pytest

from tm402_nb.sandbox import serve
from tm402_nb.sandbox.assets import SANDBOX_TMAI_BASE_SEPOLIA
from tm402_nb.tokenmetrics.client import Client, RetryPolicy
from tm402_nb.x402 import SpendPolicy, Wallet, X402Auth

FAST_RETRY = RetryPolicy(attempts=4, base=0.01, cap=0.05, jitter=0.0, max_retry_after=0.2)


@pytest.fixture(scope="module")
def sandbox():
    # A high rate limit: these tests are about the client, the 429 tests set their own faults.
    with serve(fund=False, rate_limit=10_000, rate_burst=10_000) as sb:
        yield sb


@pytest.fixture
def funded(sandbox):
    """A fresh wallet with 5 USDC, so the sandbox's settlements for it are this test's alone."""
    w = Wallet.create()
    sandbox.fund(w.address, "usdc", "5")
    return w


def make_client(sandbox, wallet, ledger, *, cls=Client, policy=None, **kw):
    policy = policy or SpendPolicy(budget="2.00", extra_assets=[SANDBOX_TMAI_BASE_SEPOLIA])
    auth = X402Auth(wallet, policy, ledger=ledger)
    kw.setdefault("retry", FAST_RETRY)
    kw.setdefault("progress", False)
    return cls(mode="sandbox", base_url=sandbox.api_url, auth=auth, ledger=ledger, **kw)


@pytest.fixture
def client(sandbox, funded, ledger) -> Iterator[Client]:
    c = make_client(sandbox, funded, ledger)
    yield c
    c.close()
    sandbox.set_faults()  # back to none for the next test


def settled_match(sandbox, wallet, ledger) -> None:
    """The ledger's settled payments are exactly the sandbox's settlements for this wallet."""
    ours = sorted(ledger.payments(status="settled")["tx"].tolist())
    theirs = sorted(s["tx"] for s in sandbox.settlements(payer=wallet.address))
    assert ours == theirs
