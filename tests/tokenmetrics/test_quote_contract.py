"""Cost is a contract, as a property (issue 12, "Done when").

Over random requests to the sandbox (paid endpoints, symbol counts, id lists longer than
one batch, date ranges, start or end only, page limits, page sizes, USDC or TMAI), on the
plain sandbox and behind servers that clamp ``page`` (they answer their last page again,
forever): a run pays at most its quote, in calls and in atomic units, and exactly its quote
where the quote is exact (less only the requests the API found no data for: a 404 is never
settled). And any cap below the quote (session budget, daily cap, the call's ``max_cost``)
refuses the call before anything is signed.

"Paid" is read from both sides: the sandbox's settlements for the example's own wallet (what
moved) and the ledger's payment rows that settled or still may (what the client signed).
The clamping server is the module's sandbox behind a transport that rewrites ``page``:
nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.tokenmetrics.conftest import make_client
from tm402_nb.errors import BudgetExceeded
from tm402_nb.ledger import Ledger
from tm402_nb.sandbox import serve
from tm402_nb.sandbox.assets import SANDBOX_TMAI_BASE_SEPOLIA
from tm402_nb.sandbox.market import FIXED_ANCHOR
from tm402_nb.sandbox.universe import build_universe
from tm402_nb.tokenmetrics.catalogue import ENDPOINTS
from tm402_nb.tokenmetrics.client import MoreRowsWarning
from tm402_nb.tokenmetrics.errors import DataNotFound, PlanExceeded
from tm402_nb.tokenmetrics.quote import Quote
from tm402_nb.x402 import SpendPolicy, Wallet

# Deterministic (the same examples every run, no example database) and unhurried: each
# example is a few real round trips on loopback.
HYPO = dict(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

#: The sandbox's last day of data, pinned (its first is 2019-01-01; every token has 60 days at least).
LAST_DAY = FIXED_ANCHOR
UNIVERSE = build_universe()
SYMBOLS = list(dict.fromkeys(t.symbol for t in UNIVERSE[:40]))  # BTC, ETH, USDC each name several tokens
NAMES = [t.name for t in UNIVERSE[:40]]
IDS = [t.token_id for t in UNIVERSE]

#: Every paid endpoint, by the shape of its plan: each kind is a parametrized case of the
#: properties, so every kind gets its share of examples.
KINDS: dict[str, tuple[str, ...]] = {
    # A row per token per day, windows of 29 days (or the 30 or 7 a request asks for): many windows.
    "daily": (
        "daily-ohlcv",
        "trading-signals",
        "tm-grade-history",
        "technology-grade-history",
        "fundamental-grade-history",
    ),
    # 24 rows a day, windows of 29 days: short ranges only.
    "hourly": ("hourly-ohlcv",),
    # A row a day, no token filter.
    "unkeyed-daily": ("market-metrics", "indices-performance"),
    # A row per token: id lists longer than a batch of 100 split in batches.
    "latest": (
        "tm-grade",
        "technology-grade",
        "fundamental-grade",
        "quantmetrics",
        "resistance-support",
        "price-prediction",
        "ai-reports",
        "correlation",
    ),
    # Nothing bounds their rows (first page only, unless max_pages), or one answer, no pages.
    "undated": ("hourly-trading-signals", "moonshot-tokens", "crypto-investors", "indices", "indices-holdings"),
}
INDEX_IDS = range(1, 10)  # the sandbox has indices 1..8: 9 finds nothing


def test_every_paid_endpoint_is_drawn():
    drawn = [name for names in KINDS.values() for name in names]
    # Every paid GET endpoint; the agent (a POST of a question) has its own tests in test_agent.py.
    assert sorted(drawn) == sorted(e.name for e in ENDPOINTS if e.tier > 0 and not e.free and e.method == "GET")


# -- requests ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Request:
    endpoint: str
    params: dict[str, Any]
    max_pages: int | None = None
    pay_with: str = "usdc"
    #: The server answers pages past this one with this one again (None: an honest server).
    clamp: int | None = None
    #: The client's date windows, in days (None: the endpoint's own, 29).
    window_days: int | None = None


# Values are picked from lists rather than drawn from ranges (hypothesis favours the small end
# of a range), the first of each list being the one it tries first and shrinks to: plans of many
# pages (long ranges, several tokens), where a bound can be overrun, come first and often.
def pick(draw: st.DrawFn, values: list[Any] | tuple[Any, ...]) -> Any:
    return draw(st.sampled_from(values))


@st.composite
def tokens(draw: st.DrawFn, most: int, *, many: bool = False, none: bool = True) -> dict[str, Any]:
    """A few symbols, ids, names (which may each match several tokens: unbounded), symbols and
    ids that overlap, (``many``) an id list longer than one batch of 100, or none."""
    forms = [*(["many"] if many else []), "symbols", "ids", "symbols", "mixed", "names", *(["none"] if none else [])]
    form = pick(draw, forms)
    n = pick(draw, range(most, 0, -1))
    if form == "symbols":
        return {"symbol": draw(st.lists(st.sampled_from(SYMBOLS), min_size=n, max_size=n, unique=True))}
    if form == "ids":
        return {"token_id": draw(st.lists(st.sampled_from(IDS), min_size=n, max_size=n, unique=True))}
    if form == "names":
        return {"token_name": draw(st.lists(st.sampled_from(NAMES), min_size=n, max_size=n, unique=True))}
    if form == "mixed":  # BTC twice, once by symbol and once by id: one series
        return {
            "symbol": ["BTC", *draw(st.lists(st.sampled_from(SYMBOLS[1:]), max_size=n - 1, unique=True))],
            "token_id": [3375],
        }
    if form == "many":
        n = pick(draw, [200, 101, 150])
        first = pick(draw, [0, len(IDS) - n, 50])
        return {"token_id": IDS[first : first + n]}
    return {}


@st.composite
def dates(draw: st.DrawFn, lengths: list[int], *, start_only: bool = True) -> dict[str, Any]:
    """A range of one of ``lengths`` days ending up to ~5 years before the data's last day
    (where some tokens have no data yet) or a few days past it, or a start only (to today),
    an end only, or no dates."""
    form = pick(draw, ["range"] * 4 + ["end", "none", *(["start"] if start_only else [])])
    days = pick(draw, lengths)
    end = LAST_DAY - timedelta(days=pick(draw, [0, 17, 100, 400, 1000, 1900, -5, 1]))
    start = end - timedelta(days=days - 1)
    if form == "range":
        return {"start": start.isoformat(), "end": end.isoformat()}
    if form == "start":  # runs to today: kept near the data's end so the plan stays small
        return {"startDate": (LAST_DAY - timedelta(days=pick(draw, [90, 10, 0]))).isoformat()}
    if form == "end":
        return {"endDate": end.isoformat()}
    return {}


#: Range lengths: many windows of 29 days, and one or two of 365 days at their edges (a request asking
#: for windows of 365 days pages within them); hourly ones stay short (24 rows a day: 32 days is two
#: windows of 29 days).
DAILY_DAYS = [400, 366, 365, 200, 100, 3, 1]
HOURLY_DAYS = [5, 4, 32, 2, 1]


@st.composite
def requests(draw: st.DrawFn, kind: str) -> Request:
    endpoint: str = pick(draw, KINDS[kind])
    pay_with = pick(draw, ["usdc", "usdc", "tmai"])
    none = pick(draw, [False] * 5 + [True])
    if kind == "daily":  # more than 100 ids only over a few days: 300 rows a batch at most
        ids = draw(tokens(3, many=True, none=none))
        params = {**ids, **draw(dates(DAILY_DAYS if len(ids.get("token_id", ())) <= 100 else [3, 2, 1]))}
    elif kind == "hourly":
        params = {**draw(tokens(2, none=none)), **draw(dates(HOURLY_DAYS, start_only=False))}
    elif kind == "unkeyed-daily":
        params = draw(dates(DAILY_DAYS))
    elif kind == "latest":
        params = draw(tokens(4, many=True))
    elif endpoint == "hourly-trading-signals":  # the API refuses it without a token (400)
        params = draw(tokens(2, none=False))
    else:
        params = {}
    if endpoint.startswith("indices-"):
        params["id"] = pick(draw, INDEX_IDS)
    if endpoint == "indices-holdings":  # not paged: one answer
        return Request(endpoint, params, pay_with=pay_with)
    limit = pick(draw, [None] * 8 + [1, 7, 50, 100])  # the caller's page size: one page, more may exist
    if limit is not None:
        params["limit"] = limit
    return Request(
        endpoint,
        params,
        max_pages=pick(draw, [None] * 4 + [1, 2, 3]),
        pay_with=pay_with,
        clamp=pick(draw, [None, 1, 2]),
        window_days=pick(draw, [None, None, 30, 7]) if "daily" in kind else None,
    )


# -- the server variants and one example's world -------------------------------------------------
class ClampingTransport(httpx.HTTPTransport):
    """The sandbox behind a server that clamps ``page``: any page past ``last`` is answered
    with page ``last`` again (as ``tests/tokenmetrics/test_paging.py``'s server does)."""

    def __init__(self, last: int) -> None:
        super().__init__()
        self.last = last
        self.clamped: list[str] = []  # the paths of the requests it clamped

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        page = request.url.params.get("page")
        if page is not None and int(page) > self.last:
            request.url = request.url.copy_set_param("page", str(self.last))
            self.clamped.append(request.url.path)
        return super().handle_request(request)


_ids = itertools.count()
#: Payment rows that cost money: settled, or may still settle.
COUNTED = ("settled", "pending", "unknown")


@dataclass
class Run:
    """One example: a fresh funded wallet, its own ledger, and a client with no budget that
    talks to the sandbox (behind the request's clamping server, if any)."""

    sandbox: Any
    folder: Path
    req: Request

    def __post_init__(self) -> None:
        self.wallet = Wallet.create()
        self.sandbox.fund(self.wallet.address, "usdc", "100")
        self.sandbox.fund(self.wallet.address, "tmai", "10000")
        self.ledger = Ledger(self.folder / f"run-{next(_ids)}.sqlite3")
        self.transport = ClampingTransport(self.req.clamp) if self.req.clamp else None
        self.client = self.client_with()

    def client_with(self, **policy: Any):
        """A client for this run's wallet and ledger, its spend policy given ``policy``."""
        policy = {"budget": None, **policy}
        return make_client(
            self.sandbox,
            self.wallet,
            self.ledger,
            policy=SpendPolicy(extra_assets=[SANDBOX_TMAI_BASE_SEPOLIA], **policy),
            transport=self.transport,
            window_days=self.req.window_days,
        )

    def quote(self) -> Quote:
        r = self.req
        return self.client.quote(r.endpoint, pay_with=r.pay_with, max_pages=r.max_pages, **r.params)

    def frame(self, client=None, **kw: Any) -> Exception | None:
        """Run the request (paying again, never from the cache); the error it ended with, if any."""
        r = self.req
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MoreRowsWarning)
            try:
                (client or self.client).frame(
                    r.endpoint, refresh=True, pay_with=r.pay_with, max_pages=r.max_pages, **kw, **r.params
                )
            except (DataNotFound, PlanExceeded) as exc:
                return exc
        return None

    def settled(self) -> list[dict[str, Any]]:
        return self.sandbox.settlements(payer=self.wallet.address)

    def payments(self) -> list[int]:
        """Atomic amounts of the ledger's payments that cost money."""
        rows = self.ledger.payments()
        return [int(a) for a, s in zip(rows["amount_atomic"], rows["status"], strict=True) if s in COUNTED]

    def signed(self) -> int:
        """Every payment row, whatever its status: anything signed at all."""
        return len(self.ledger.payments())

    def not_found(self) -> int:
        """Answers of the request's endpoint that found no data (never settled)."""
        calls = self.ledger.calls()
        return int(((calls["endpoint"] == self.req.endpoint) & (calls["status_code"] == 404)).sum())

    @property
    def clamped(self) -> bool:
        """Whether the server clamped a page of the request's endpoint (not only of a lookup's)."""
        clamped = self.transport.clamped if self.transport is not None else []
        return any(path.endswith("/" + self.req.endpoint) for path in clamped)

    def close(self) -> None:
        self.client.close()
        self.ledger.close()


@pytest.fixture(scope="module")
def sandbox():
    """The conftest's sandbox with its data pinned to LAST_DAY, which the requests' dates are drawn from."""
    with serve(fund=False, rate_limit=10_000, rate_burst=10_000, anchor=LAST_DAY) as sb:
        yield sb


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("quote-contract")


def _micro_usd(q: Quote) -> int:
    assert q.usd is not None, q
    return int(q.usd.scaleb(6))


# -- the properties ------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=12, **HYPO)
@given(data=st.data())
def test_a_run_pays_at_most_its_quote_and_exactly_it_where_exact(sandbox, folder, kind, data):
    req = data.draw(requests(kind), label="request")
    run = Run(sandbox, folder, req)
    try:
        q = run.quote()
        assert q.calls >= 1 and q.per_call > 0 and q.refused is None, q
        assert run.signed() == 0 and not run.settled()  # a quote pays nothing
        ended = run.frame()
        event(f"{'exact' if q.exact else 'bound'}, {'clamped' if run.clamped else 'not clamped'}")
        event(f"ended: {type(ended).__name__}; {run.not_found()} not found")
        event(f"calls quoted: {min(q.calls, 5)}{'+' if q.calls > 5 else ''}")

        settled, paid = run.settled(), run.payments()
        assert len(settled) == len(paid), "the ledger and the sandbox disagree on what was paid"
        assert len(paid) <= q.calls, (q, len(paid))
        assert sum(paid) <= q.total, (q, sum(paid))
        assert all(a == q.per_call for a in paid)
        if q.exact:
            # Every planned request is one page: each is paid, unless the API found nothing for it.
            assert len(paid) == q.calls - run.not_found(), (q, len(paid), run.not_found())
            assert sum(paid) == q.per_call * len(paid)
        # The sandbox never holds more rows than the catalogue says can exist.
        assert not isinstance(ended, PlanExceeded), ended
    finally:
        run.close()


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=6, **HYPO)
@given(cap=st.sampled_from(["budget", "max_cost", "daily_cap"]), data=st.data())
def test_any_cap_below_the_quote_refuses_the_call_with_nothing_signed(sandbox, folder, kind, cap, data):
    req = data.draw(requests(kind), label="request")
    run = Run(sandbox, folder, req)
    try:
        q = run.quote()
        quoted = _micro_usd(q)
        if q.asset == "USDC":
            assert quoted == q.total  # one USDC atomic unit is one micro-dollar
        short = data.draw(st.one_of(st.just(1), st.integers(1, quoted)), label="micro-dollars below the quote")
        below = Decimal(quoted - short).scaleb(-6)
        client, kw = run.client, {}
        if cap == "budget":
            client.auth.policy.set_budget(below)
        elif cap == "max_cost":
            kw["max_cost"] = below
        else:
            client = run.client_with(daily_cap=below)
        usdc, tmai = sandbox.balance(run.wallet.address, "usdc"), sandbox.balance(run.wallet.address, "tmai")
        try:
            with pytest.raises(BudgetExceeded):
                run.frame(client, **kw)
        finally:
            if client is not run.client:
                client.close()
        assert run.signed() == 0 and not run.settled()
        assert sandbox.balance(run.wallet.address, "usdc") == usdc
        assert sandbox.balance(run.wallet.address, "tmai") == tmai
    finally:
        run.close()


def test_a_clamping_server_is_paid_for_one_repeat_at_most(sandbox, folder):
    """One fixed case of the property, spelt out: 3 tokens × 425 days in windows of 365 days (asked
    for: the default 29-day windows are one page each) plan 13 pages; a server that clamps at page 2
    is paid for pages 1, 2 and the repeat that ends it, per window."""
    req = Request(
        "daily-ohlcv",
        {"symbol": ["BTC", "ETH", "SOL"], "start": "2025-01-01", "end": "2026-03-01"},
        clamp=2,
        window_days=365,
    )
    run = Run(sandbox, folder, req)
    try:
        q = run.quote()
        assert (q.calls, q.exact) == (13, False)
        assert run.frame() is None
        assert len(run.payments()) == len(run.settled()) == 3 + 2  # window 1: 1, 2, repeat; window 2: 2 pages
        assert run.clamped
    finally:
        run.close()


def test_a_window_the_api_has_no_data_for_is_quoted_and_not_paid(sandbox, folder):
    """The exact quote counts every window; the one past the data's last day answers 404,
    which is never settled: one call paid of the two quoted."""
    end = LAST_DAY + timedelta(days=10)
    req = Request(
        "daily-ohlcv", {"token_id": [3375], "start": LAST_DAY - timedelta(days=29), "end": end}, window_days=30
    )
    run = Run(sandbox, folder, req)
    try:
        q = run.quote()
        assert (q.calls, q.exact) == (2, True)
        assert run.frame() is None
        assert len(run.payments()) == len(run.settled()) == 1 and run.not_found() == 1
    finally:
        run.close()


@pytest.mark.parametrize(
    "endpoint, extra",
    [
        pytest.param("tm-grade", {"limit": 50}, id="limit"),
        pytest.param("tm-grade", {"page": 1}, id="page"),
        pytest.param("price", {}, id="unpaged"),
    ],
)
def test_a_chosen_page_still_batches_ids(sandbox, folder, endpoint, extra):
    req = Request(endpoint, {"token_id": IDS[:150], **extra})
    run = Run(sandbox, folder, req)
    try:
        q = run.quote()
        assert q.calls == 2
        assert run.frame() is None
        assert len(run.payments()) <= q.calls
    finally:
        run.close()
