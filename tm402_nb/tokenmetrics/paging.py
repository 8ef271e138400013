"""Paging one planned request: which page to ask for next, when to stop, and the rows collected.

The executors only send; :class:`Pages` decides, so the sync and async clients page
alike. Paging stops at a short page; at a page that adds no row not seen before (a
server that clamps ``page`` repeats its last page forever, and every repeat
would be paid); once every row the plan expects is in (asking on would sign a
payment for nothing); and at the plan's page bound, which it never passes. A
full page at that bound means more rows exist: by choice when the bound is a
page limit (``more``), against the plan when the catalogue bounds the rows
(``exceeded``; the caller stops the run with what was fetched).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .catalogue import Endpoint
from .fields import canonical_rows
from .plan import PlannedRequest, to_wire

__all__ = ["Fetched", "Pages", "page_wire", "unique_rows"]


@dataclass
class Fetched:
    """What paging one planned request gave: its rows, and what the last page said.

    ``empty_reason``: the API found no data. ``more``: the plan's page limit was reached
    on a full page, so more rows may exist (asked for by a larger ``max_pages``).
    ``exceeded``: the server filled the last page the plan allows with more rows than
    the catalogue says can exist; the run stops there rather than pay past its quote.
    """

    rows: list[dict[str, Any]] = field(default_factory=list)
    empty_reason: str | None = None
    more: bool = False
    exceeded: bool = False
    pages: int = 0


def page_wire(planned: PlannedRequest, page: int | None = None) -> dict[str, str]:
    """Wire parameters of one page of ``planned`` (the exact query the API sees)."""
    ep = planned.endpoint
    if not ep.paged:
        return planned.wire
    page = page if page is not None else int(planned.params.get("page", 1))
    size = int(planned.params.get(ep.limit_param, ep.page_size))
    return to_wire({**planned.params, "page": page, ep.limit_param: size})


class Pages:
    """The pages of one planned request, one at a time, never more than it plans::

    pages = Pages(planned)
    while (wire := pages.next()) is not None:
        pages.add(send(wire)["data"])        # or pages.not_found(reason)
    pages.fetched
    """

    def __init__(self, planned: PlannedRequest) -> None:
        self.planned = planned
        self.fetched = Fetched()
        self._page = int(planned.params.get("page", 1))
        self._done = False
        self._seen: set[tuple[Any, ...]] = set()

    def next(self) -> dict[str, str] | None:
        """The wire parameters of the next page to ask for, or None when paging is over."""
        return None if self._done else page_wire(self.planned, self._page)

    def add(self, data: list[dict[str, Any]]) -> None:
        """Take a page's rows, their keys in the catalogue's spelling whatever case the server used
        (each row key once: de-duplicated while paging, not after)."""
        fresh = [row for row in canonical_rows(self.planned.endpoint, data) if self._first_time(row)]
        self.fetched.rows.extend(fresh)
        self.fetched.pages += 1
        self._page += 1
        planned, ep = self.planned, self.planned.endpoint
        size = int(planned.params.get(ep.limit_param, ep.page_size))
        expected = planned.rows
        chosen = "page" in planned.params or ep.limit_param in planned.params
        if not ep.paged or chosen or len(data) < size or (data and not fresh):
            # The page the caller chose; a short page ends the data; a page of repeats means the server clamps.
            self._done = True
        elif expected is not None and len(self.fetched.rows) >= expected:
            # Every row the catalogue expects is here: asking on would sign a payment for nothing.
            self._done = True
            self.fetched.exceeded = len(self.fetched.rows) > expected
        elif self.fetched.pages >= planned.pages:
            self._done = True
            if planned.open_ended:
                self.fetched.more = True
            else:
                self.fetched.exceeded = True  # the plan's bound, with a full page: the server has more

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
    """The row's ``endpoint.key`` values, or None when it lacks one of them (rows reach paging
    with the catalogue's key names: :class:`Pages` makes them so)."""
    return tuple(row.get(k) for k in endpoint.key) if all(k in row for k in endpoint.key) else None
