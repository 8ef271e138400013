"""Paging stops at a page that adds nothing new: a server that clamps ``page`` repeats its last
page forever, and every repeat would be another paid call (issue 12)."""

from __future__ import annotations

from datetime import date, timedelta

import httpx
import pytest

from tm402_nb.tokenmetrics.client import AsyncClient, Client

START, END = date(2025, 11, 1), date(2026, 10, 16)  # 350 days: one date window, pages of 100
DAYS = [(START + timedelta(days=i)).isoformat() for i in range((END - START).days + 1)]
RANGE = dict(token_id=3375, start=START.isoformat(), end=END.isoformat())


class ClampingServer:
    """Pages of ``size`` daily rows, newest first; past ``last_page`` it answers the last page again."""

    def __init__(self, last_page: int) -> None:
        self.last_page = last_page
        self.requests = 0

    def rows(self, page: int, size: int) -> list[dict]:
        page = min(page, self.last_page)
        days = list(reversed(DAYS))[(page - 1) * size : page * size]
        return [{"TOKEN_ID": 3375, "TOKEN_SYMBOL": "BTC", "DATE": d, "CLOSE": 1.0} for d in days]

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        params = request.url.params
        data = self.rows(int(params.get("page", 1)), int(params.get("limit", 100)))
        return httpx.Response(200, json={"success": True, "message": "ok", "length": len(data), "data": data})

    async def ahandle(self, request: httpx.Request) -> httpx.Response:
        return self.handle(request)


def mock_client(handle, **kw) -> Client:
    """An API-key client (nothing to pay) whose every request ``handle`` answers in-process.

    Its date windows are 365 days, so a long range is one request paged in hundreds: paging is
    what these servers test (the default 29-day windows have their own tests, test_variants.py).
    """
    kw.setdefault("window_days", 365)
    return Client(
        mode="api-key",
        api_key="k",
        base_url="https://tm.test/v2",
        transport=httpx.MockTransport(handle),
        progress=False,
        **kw,
    )


def frame_from(server: ClampingServer):
    """``daily-ohlcv`` over RANGE, paged by the sync client against ``server``."""
    with mock_client(server.handle) as c:
        return c.frame("daily-ohlcv", **RANGE)


@pytest.mark.parametrize("last_page", [1, 2, 3])
def test_a_server_that_repeats_its_last_page_is_asked_once_more_at_most(last_page):
    server = ClampingServer(last_page)
    df = frame_from(server)
    # Each page holds 100 new days until the server clamps; then one repeated page ends it.
    assert len(df) == 100 * last_page and df["DATE"].is_unique
    assert server.requests == last_page + 1


def test_the_async_client_stops_alike():
    import asyncio

    server = ClampingServer(2)

    async def main():
        async with AsyncClient(
            mode="api-key",
            api_key="k",
            base_url="https://tm.test/v2",
            transport=httpx.MockTransport(server.ahandle),
            progress=False,
            window_days=365,
        ) as c:
            return await c.frame("daily-ohlcv", **RANGE)

    df = asyncio.run(main())
    assert len(df) == 200 and server.requests == 3


def test_an_honest_server_is_paged_to_its_short_page():
    server = ClampingServer(10)  # 350 days in pages of 100: the 4th page is short
    df = frame_from(server)
    assert len(df) == 350 and server.requests == 4
