"""Row keys in whichever case or spelling the API serves → the catalogue's field names, without pandas.

The API's field names drift (``live-api-2026.md`` fact 4): mid-2025 answers are UPPER case
(``TOKEN_ID``, ``TM_TRADER_GRADE``), the current trading-signals docs and one community report of
``/v2/tokens`` are lower case (``token_id``, ``token_symbol``, ``market_cap``, ``tm_grade``), v3 is
lower case throughout, and a few fields have older names (``SYMBOL``). :func:`canonical_rows`
maps every row to one spelling *once, at the edge*: the client calls it on each page as it arrives,
so paging's de-duplication keys, symbol resolution, gap detection and the frames all read the
catalogue's names and none of them carries its own list of spellings.

The rules (also in :mod:`.frames`, which applies them again to rows handed to it directly):

* every top-level key is upper-cased (``token_id`` → ``TOKEN_ID``);
* known aliases (``SYMBOL`` → ``TOKEN_SYMBOL``, ``TM_GRADE_24H_PCT_CHANGE`` and v3's
  ``TM_GRADE_24_H_PCT_CHANGE`` → ``TM_GRADE_24h_PCT_CHANGE``, ...) take the catalogue's spelling;
* a row without the endpoint's date column but with another (``DATE``/``TIMESTAMP``/``DATETIME``)
  has it renamed;
* older names of a nested column and of its item list become the current ones;
* when two keys of a row map to one name, the one already spelled that way wins and the other
  keeps its own (trading-signals rows carry both ``TM_LINK`` and a lower-case ``tm_link``).

Rows already in the catalogue's spelling pass through as the same objects (nothing is copied).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any

from .catalogue import DATE_COLUMNS, Endpoint

__all__ = ["canonical_rows"]

#: Field-name variants seen across API versions → the v2 spelling.
_KEY_ALIASES = {
    "SYMBOL": "TOKEN_SYMBOL",
    "TM_GRADE_24H_PCT_CHANGE": "TM_GRADE_24h_PCT_CHANGE",
    # v3 spells the number apart from its unit (``tm_grade_24_h_pct_change``).
    "TM_GRADE_24_H_PCT_CHANGE": "TM_GRADE_24h_PCT_CHANGE",
    "TM_TRADER_GRADE_24_H_CHANGE": "TM_TRADER_GRADE_24H_CHANGE",
}


def _upper(key: Any) -> Any:
    return key.upper() if isinstance(key, str) else key


def _claim_rank(key: Any, target: Any) -> tuple[bool, bool, bool, str]:
    """Which of several keys mapping to ``target`` gets the name (lowest wins): the key already spelled
    that way, then an upper-case one, then the plain upper-casing of the target (not an alias), then by
    name. The others keep their names."""
    upper = _upper(key)
    return (key != target, upper != key, _KEY_ALIASES.get(upper, upper) != target and upper != target, str(key))


def _renames(endpoint: Endpoint, keys: Iterable[Any]) -> dict[Any, Any]:
    """Renames for one key set: {source key: canonical key}, only for keys that change."""
    keys = list(keys)
    shape = endpoint.nested_shape
    target: dict[Any, Any] = {}
    for k in keys:
        u = _upper(k)
        u = _KEY_ALIASES.get(u, u)
        if shape is not None and u in shape.old_names:
            u = endpoint.nested
        target[k] = u
    dc = endpoint.date_column
    if dc in DATE_COLUMNS and dc not in target.values():
        alt = next((a for a in DATE_COLUMNS if a != dc and a in target.values()), None)
        if alt is not None:
            for k, t in target.items():
                if t == alt:
                    target[k] = dc
    by_target: dict[Any, list[Any]] = {}
    for k, t in target.items():
        by_target.setdefault(t, []).append(k)
    final: dict[Any, Any] = {}
    for t, sources in by_target.items():
        if len(sources) == 1:
            final[sources[0]] = t
            continue

        winner = min(sources, key=functools.partial(_claim_rank, target=t))
        for k in sources:
            final[k] = t if k is winner else k
    names = list(final.values())
    if len(set(names)) != len(names):  # pathological key sets: rename nothing that would collide
        seen: set[Any] = set()
        for k in keys:
            if final[k] in seen:
                final[k] = k
            seen.add(final[k])
    return {k: t for k, t in final.items() if k != t}


def _current_list_key(value: Any, list_keys: tuple[str, ...]) -> Any:
    """An older spelling of the item list's key → the current one, ``list_keys[0]`` (a new dict; the
    input is untouched): price-prediction's ``scenario_prediction`` → ``price_prediction``."""
    if not isinstance(value, Mapping):
        return value
    lower = {str(k).lower(): k for k in value}
    if list_keys[0] in lower:
        return value
    old = next((lower[k] for k in list_keys[1:] if k in lower), None)
    if old is None:
        return value
    return {(list_keys[0] if k == old else k): v for k, v in value.items()}


def _normalize(endpoint: Endpoint, rows: Iterable[Mapping[str, Any]], *, copy: bool) -> list[dict[str, Any]]:
    renames_by_keys: dict[tuple[Any, ...], dict[Any, Any]] = {}
    out: list[dict[str, Any]] = []
    append = out.append
    col = endpoint.nested
    list_keys = endpoint.nested_shape.list_keys if endpoint.nested_shape else ()
    renames_list_key = col is not None and len(list_keys) > 1
    last_keys: tuple[Any, ...] | None = None
    renames: dict[Any, Any] = {}
    for row in rows:
        if not isinstance(row, Mapping):
            raise TypeError(f"{endpoint.name}: rows must be dicts, got {type(row).__name__}")
        keys = tuple(row)
        if keys != last_keys:
            known = renames_by_keys.get(keys)
            renames = known if known is not None else renames_by_keys.setdefault(keys, _renames(endpoint, keys))
            last_keys = keys
        new: dict[str, Any]
        if renames:
            new = {renames.get(k, k): v for k, v in row.items()}
        elif copy or not isinstance(row, dict):
            new = dict(row)
        else:
            new = row
        if renames_list_key and col in new:
            fixed = _current_list_key(new[col], list_keys)
            if fixed is not new[col]:
                new = dict(new) if new is row else new
                new[col] = fixed
        append(new)
    return out


def canonical_rows(endpoint: Endpoint, rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` with their keys in the catalogue's spelling; rows that need no change are returned as is."""
    return _normalize(endpoint, rows, copy=False)
