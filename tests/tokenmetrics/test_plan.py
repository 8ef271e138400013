"""The plan is the quote: one pure function turns a call into its requests and page bounds,
and a run never pages past them (issue 12)."""

from __future__ import annotations

import itertools
import warnings
from datetime import date, timedelta

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.tokenmetrics.test_paging import mock_client
from tm402_nb.tokenmetrics.catalogue import get_endpoint
from tm402_nb.tokenmetrics.client import Client, MoreRowsWarning
from tm402_nb.tokenmetrics.errors import PlanExceeded
from tm402_nb.tokenmetrics.paging import Pages
from tm402_nb.tokenmetrics.plan import FREE_PAGES, plan_call

OHLCV = get_endpoint("daily-ohlcv")
HOURLY = get_endpoint("hourly-ohlcv")
GRADE = get_endpoint("tm-grade")
SIGNALS = get_endpoint("trading-signals")
TODAY = date(2026, 11, 30)


def test_three_tokens_over_ten_months_is_ten_pages():
    """The issue's example: quoted 1 call, paid 10. The plan now says 10 before anything is paid
    (in one 365-day window, as asked here; the default 29-day windows are below)."""
    params = {"token_id": [3375, 3306, 3988], "startDate": date(2026, 1, 1), "endDate": date(2026, 10, 31)}
    plan = plan_call(OHLCV, params, window_days=365)
    assert plan.calls == 10 and not plan.exact and not plan.open_ended
    assert [r.rows for r in plan.requests] == [3 * 304]
    # Issue 13: windows of 29 days by default (the official SDKs' limit): 11 windows of 87 rows, a page each.
    default = plan_call(OHLCV, params)
    assert default.calls == len(default.requests) == 11 and default.exact


def test_a_start_without_an_end_runs_to_today_in_windows():
    """The issue's example: `signals BTC --start 2025-01-01` quoted 1 call and paid 7."""
    plan = plan_call(SIGNALS, {"token_id": [3375], "startDate": date(2025, 1, 1)}, today=TODAY)
    spans = [(r.params["startDate"], r.params["endDate"]) for r in plan.requests]
    # 699 days in windows of 29 (the default since issue 13; it was 365 + 334 days in 4 + 4 pages).
    assert spans[0] == (date(2025, 1, 1), date(2025, 1, 29)) and spans[-1] == (date(2026, 11, 28), TODAY)
    assert plan.calls == len(spans) == 25 and plan.exact
    wide = plan_call(SIGNALS, {"token_id": [3375], "startDate": date(2025, 1, 1)}, today=TODAY, window_days=365)
    assert wide.calls == 4 + 4  # 365 and 334 daily rows, 100 a page


def test_latest_values_are_one_page_per_hundred_tokens():
    assert plan_call(GRADE, {"token_id": [1, 2]}).calls == 1
    many = plan_call(GRADE, {"token_id": list(range(1, 121))})
    assert many.calls == 2 and many.exact and [len(r.params["token_id"]) for r in many.requests] == [100, 20]


def test_hourly_series_count_24_rows_a_day():
    two_days = plan_call(HOURLY, {"token_id": [3375], "startDate": TODAY, "endDate": TODAY + timedelta(days=1)})
    assert two_days.calls == 1 and two_days.requests[0].rows == 48
    ten_days = plan_call(HOURLY, {"token_id": [3375], "startDate": TODAY, "endDate": TODAY + timedelta(days=9)})
    assert ten_days.calls == 3


def test_no_token_filter_reads_one_page_of_a_paid_endpoint_and_says_more_may_exist():
    plan = plan_call(GRADE, {})
    assert plan.calls == 1 and plan.open_ended and plan.requests[0].rows is None
    assert plan_call(GRADE, {}, max_pages=3).calls == 3
    free = plan_call(get_endpoint("tokens"), {})
    assert free.calls == FREE_PAGES and free.open_ended


def test_a_page_limit_below_the_data_bounds_the_plan_and_marks_it_open_ended():
    plan = plan_call(
        OHLCV,
        {"token_id": [3375], "startDate": date(2026, 1, 1), "endDate": date(2026, 10, 31)},
        max_pages=2,
        window_days=365,  # one window of 304 rows: 4 pages, 2 allowed
    )
    assert plan.calls == 2 and plan.open_ended


def test_a_chosen_page_or_limit_is_exactly_one_call():
    assert plan_call(GRADE, {"token_id": [1], "page": 3}).calls == 1
    assert plan_call(GRADE, {"limit": 10}).calls == 1


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    ids=st.integers(min_value=0, max_value=250),
    start=st.dates(min_value=date(2020, 1, 1), max_value=date(2026, 11, 1)),
    days=st.integers(min_value=0, max_value=900),
    window=st.sampled_from([None, 29, 365]),
    max_pages=st.sampled_from([None, 1, 3]),
)
def test_a_plan_covers_the_range_once_and_bounds_every_page(ids, start, days, window, max_pages):
    params = {"startDate": start, "endDate": start + timedelta(days=days)}
    if ids:
        params["token_id"] = list(range(1, ids + 1))
    plan = plan_call(OHLCV, params, window_days=window, max_pages=max_pages)
    assert plan.calls == sum(r.pages for r in plan.requests) >= len(plan.requests) >= 1
    for r in plan.requests:
        assert len(r.params.get("token_id", [])) <= OHLCV.page_size
        assert max_pages is None or r.pages <= max_pages
        if r.rows is not None and not r.open_ended:
            assert r.pages * OHLCV.page_size >= r.rows  # enough pages for every expected row
    # Windows of one id batch tile [start, end] exactly.
    first_batch = [
        r for r in plan.requests if r.params.get("token_id", [None])[:1] == params.get("token_id", [None])[:1]
    ]
    spans = [(r.params["startDate"], r.params["endDate"]) for r in first_batch]
    assert spans[0][0] == start and spans[-1][1] == params["endDate"]
    assert all(b[0] == a[1] + timedelta(days=1) for a, b in itertools.pairwise(spans))


# -- a run never pages past its plan ---------------------------------------------------------------
class OverfullServer:
    """Always a full page of new daily rows, whatever the range: more than any plan allows for."""

    def __init__(self) -> None:
        self.requests = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        page = int(request.url.params.get("page", 1))
        size = int(request.url.params.get("limit", 100))
        data = [
            {
                "TOKEN_ID": 3375,
                "TOKEN_SYMBOL": "BTC",
                "DATE": (date(2000, 1, 1) + timedelta(days=(page - 1) * size + i)).isoformat(),
                "CLOSE": 1.0,
            }
            for i in range(size)
        ]
        return httpx.Response(200, json={"success": True, "message": "ok", "length": len(data), "data": data})


def _client(server: OverfullServer) -> Client:
    return mock_client(server.handle)


def test_a_server_with_more_rows_than_the_plan_stops_at_its_bound_with_what_was_fetched():
    server = OverfullServer()
    with _client(server) as c, pytest.raises(PlanExceeded, match="more rows than the plan") as info:
        c.frame("daily-ohlcv", token_id=3375, start="2026-01-01", end="2026-05-30")  # 150 days: two pages
    assert server.requests == 2  # the plan's bound, never one more
    assert len(info.value.partial) == 200 and "partial" in info.value.hint


def test_a_page_limit_returns_the_pages_and_says_more_exist():
    server = OverfullServer()
    with _client(server) as c:
        with warnings.catch_warnings():
            warnings.simplefilter("error", MoreRowsWarning)  # the caller chose the limit: no warning
            df = c.frame("daily-ohlcv", token_id=3375, start="2026-01-01", end="2026-10-31", max_pages=2)
        assert server.requests == 2 and len(df) == 200 and df.attrs["tm402"]["more"] is True
        with pytest.warns(MoreRowsWarning, match="more rows may exist") as caught:
            latest = c.frame("daily-ohlcv", token_id=3375)  # a history without dates: its latest page
    assert len(latest) == 100 and caught[0].filename == __file__  # points at the caller's line


def test_pages_stop_once_every_expected_row_is_in():
    """A full page holding every row the plan expects ends paging: the next page would be paid for nothing."""
    plan = plan_call(GRADE, {"token_id": list(range(1, 101))})
    pages = Pages(plan.requests[0])
    pages.add([{"TOKEN_ID": i} for i in range(1, 101)])
    assert pages.next() is None and not pages.fetched.exceeded and not pages.fetched.more
