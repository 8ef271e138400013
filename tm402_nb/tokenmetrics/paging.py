"""Paging one planned request: which page to ask for next, when to stop, and the rows collected.

The executors only send; :class:`Pages` decides, so the sync and async clients page
alike. Paging stops at a short page, at ``max_pages``, after the latest page of a
history asked without dates, as soon as every requested token has its one row
(asking for the next page would sign a payment for nothing), or at a page that adds
no row not seen before: a server that clamps ``page`` repeats its last page forever,
and every repeat would be paid.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .catalogue import Endpoint
from .plan import PlannedRequest, to_wire

__all__ = ["Fetched", "Pages", "page_wire", "unique_rows"]


@dataclass
class Fetched:
    """What paging one planned request gave: its rows, and why it has none when the API found no data."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    empty_reason: str | None = None


def page_wire(planned: PlannedRequest, page: int | None = None) -> dict[str, str]:
    """Wire parameters of one page of ``planned`` (the exact query the API sees)."""
    ep = planned.endpoint
    if not ep.paged:
        return planned.wire
    page = page if page is not None else int(planned.params.get("page", 1))
    size = int(planned.params.get(ep.limit_param, ep.page_size))
    return to_wire({**planned.params, "page": page, ep.limit_param: size})


class Pages:
    """The pages of one planned request, one at a time::

    pages = Pages(planned, max_pages)
    while (wire := pages.next()) is not None:
        pages.add(send(wire)["data"])        # or pages.not_found(reason)
    pages.fetched
    """

    def __init__(self, planned: PlannedRequest, max_pages: int | None) -> None:
        self.planned = planned
        self.max_pages = max_pages
        self.fetched = Fetched()
        self._page = int(planned.params.get("page", 1))
        self._pages = 0
        self._done = False
        self._seen: set[tuple[Any, ...]] = set()

    def next(self) -> dict[str, str] | None:
        """The wire parameters of the next page to ask for, or None when paging is over."""
        return None if self._done else page_wire(self.planned, self._page)

    def add(self, data: list[dict[str, Any]]) -> None:
        """Take a page's rows (each key once: de-duplicated while paging, not after)."""
        fresh = [row for row in data if self._first_time(row)]
        self.fetched.rows.extend(fresh)
        self._pages += 1
        self._done = self._over(data) or (bool(data) and not fresh)
        self._page += 1

    def _first_time(self, row: dict[str, Any]) -> bool:
        key = _row_key(self.planned.endpoint, row)
        if key is None:
            return True  # a row without its key columns cannot be told apart: keep it
        if key in self._seen:
            return False
        self._seen.add(key)
        return True

    def not_found(self, reason: str) -> None:
        """The API found no data for this page: paging is over."""
        self.fetched.empty_reason = reason
        self._done = True

    def _over(self, data: list[dict[str, Any]]) -> bool:
        planned, ep, max_pages = self.planned, self.planned.endpoint, self.max_pages
        size = int(planned.params.get(ep.limit_param, ep.page_size))
        # One row per token: once every requested id has its row the answer is complete,
        # even when that filled the page.
        expected = len(planned.params.get("token_id", [])) if ep.key == ("TOKEN_ID",) else 0
        return bool(
            planned.single_page
            or (planned.latest_only and not max_pages)
            or not ep.paged
            or len(data) < size
            or (max_pages and self._pages >= max_pages)
            or (expected and len(self.fetched.rows) >= expected)
        )


def unique_rows(endpoint: Endpoint, fetched: Iterable[Fetched]) -> list[dict[str, Any]]:
    """All rows in request order, each ``endpoint.key`` once (pages and windows may overlap at their edges)."""
    rows: list[dict[str, Any]] = []
    seen: set[tuple[Any, ...]] = set()
    for f in fetched:
        for row in f.rows:
            key = _row_key(endpoint, row)
            if key is not None:
                if key in seen:
                    continue
                seen.add(key)
            rows.append(row)
    return rows


def _row_key(endpoint: Endpoint, row: dict[str, Any]) -> tuple[Any, ...] | None:
    """The row's ``endpoint.key`` values, or None when it lacks one of them."""
    return tuple(row.get(k) for k in endpoint.key) if all(k in row for k in endpoint.key) else None
