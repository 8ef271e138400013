"""API rows → typed pandas DataFrames.

Two steps, both usable alone:

:func:`normalize_rows`
    Makes rows from any flavour of the API look like the catalogue's v2 rows,
    without touching the input. Field-name variants seen in the wild (reference
    §4, §8) are mapped to one spelling:

    * every top-level key is upper-cased, so v3-style ``token_id`` / ``date`` /
      ``tm_grade`` become ``TOKEN_ID`` / ``DATE`` / ``TM_GRADE``;
    * ``SYMBOL`` → ``TOKEN_SYMBOL`` (older ai-reports, some guides);
    * ``TM_GRADE_24H_PCT_CHANGE`` → ``TM_GRADE_24h_PCT_CHANGE`` (the API's own
      mixed case is kept); ``TM_TRADER_GRADE_24_H_CHANGE`` (v3) →
      ``TM_TRADER_GRADE_24H_CHANGE``;
    * ``DATE`` / ``TIMESTAMP`` / ``DATETIME``: when a row lacks the endpoint's
      ``date_column`` but has one of the others, that one is renamed to the
      ``date_column`` (daily endpoints get ``DATE``, hourly ``TIMESTAMP``);
    * price-prediction: the old ``SCENARIO_PREDICTION`` (inner list
      ``scenario_prediction``) and ``SCENARIO_ANALYSIS`` become
      ``PRICE_PREDICTION`` (inner list ``price_prediction``);
    * ai-reports: old (``TRADER_REPORT``, ``FUNDAMENTAL_REPORT``,
      ``TECHNOLOGY_REPORT``) and new (``INVESTMENT_ANALYSIS_POINTER``,
      ``INVESTMENT_ANALYSIS``, ``DEEP_DIVE``, ``CODE_REVIEW``) report columns
      are both kept as served; both shapes get ``TOKEN_SYMBOL``.

    When two keys of one row map to the same name, the one already spelled that
    way wins and the other keeps its original name (the trading-signals rows
    carry both ``TM_LINK`` and a lower-case ``tm_link`` slug: both survive).
    Key sets are planned once per distinct set, not once per row.

:func:`to_frame`
    * dates — the endpoint's ``date_column`` and every ``DATE``/``TIMESTAMP``/
      ``DATETIME`` column are parsed to tz-aware UTC (ISO strings such as
      ``"2025-04-10T00:00:00.000Z"`` or ``"2023-10-10"``, datetimes, or epoch
      numbers); unparseable entries there become ``NaT``. Other date-like
      columns (``*_DATE``, ``*_AT``, ``*_TIME``, ``*_TIMESTAMP``, ``*_DATETIME``,
      e.g. ``MOONSHOT_AT``, ``LEVEL_DATE``, ``PREDICTED_DATE``) are parsed only
      when every non-missing value parses (an all-missing one becomes ``NaT``);
      otherwise they are left as served.
      The datetime unit is pandas' own default for parsed strings (``us`` on
      pandas 3, ``ns`` on pandas 2).
    * numbers — a column becomes numeric only when every non-missing value is a
      number or a numeric-looking string; missing markers (``None``, NaN, ``""``,
      ``"null"``, ``"none"``, ``"nan"``, ``"n/a"``, ``"na"``, ``"-"``, ``"--"``)
      become NaN. A column with any other text (``"Strong Buy"``,
      ``"Momentum Surging"``) is never coerced, even if the catalogue lists it
      as numeric. Name/symbol/link-like columns (``TOKEN_NAME``,
      ``TOKEN_SYMBOL``, ``*_NAME``, ``*_LINK``, ...) are never inferred numeric.
      ``TOKEN_ID`` and ``ID`` are nullable ``Int64`` when all values are whole
      numbers. Booleans and list/dict values (``EXCHANGE_LIST``,
      ``CATEGORY_LIST``, ``CONTRACT_ADDRESS``, ``TOP_GAINERS_ICONS``) stay as
      served (object).
    * order — known columns first, in :func:`frame_columns` order, then any
      others as first seen. Rows are sorted oldest → newest by the date column
      (stable; ties by the endpoint's other key columns; ``NaT`` last) with a
      fresh ``RangeIndex``; without a date column the API's order is kept.
      When ``endpoint.index`` is set and that column is present, complete and
      unique, the frame is indexed by it instead.
    * nested endpoints with ``tidy=True`` become long frames, one row per
      nested item (a parent whose list is empty or missing keeps one row with
      the item columns missing, as :meth:`pandas.DataFrame.explode` does):

      ``resistance-support`` — ``TOKEN_ID, TOKEN_NAME, TOKEN_SYMBOL, DATE,
      LEVEL_DATE, LEVEL`` (item ``date`` → ``LEVEL_DATE``, ``level`` →
      ``LEVEL``, any other item key ``k`` → ``LEVEL_<K>``).

      ``correlation`` — ``TOKEN_ID, TOKEN_NAME, TOKEN_SYMBOL, DATE,
      CORRELATED_TOKEN, CORRELATION`` (item ``token`` → ``CORRELATED_TOKEN``,
      ``correlation`` → ``CORRELATION``, other ``k`` → ``CORRELATED_<K>``).

      ``price-prediction`` — one row per scenario: ``TOKEN_ID, TOKEN_NAME,
      TOKEN_SYMBOL, DATE``, then the prediction's own fields ``TOKEN_MCAP,
      TOTAL_MCAP, CATEGORY_NAME, CURRENT_PRICE, PREDICTED_DATE,
      SIMILAR_TOKENS_INFO, AVG_PAST_PERFORMANCE, SELF_PAST_PERFORMANCE``, then
      the scenario's ``SCENARIO, TOTAL_MCAP_SCENARIO, PRICE_BEAR, PRICE_BASE,
      PRICE_MOON, ROI_BEAR, ROI_BASE, ROI_MOON, MCAP_BEAR, MCAP_BASE, MCAP_MOON,
      FDV_BEAR, FDV_BASE, FDV_MOON`` (item keys lose their ``predicted_``
      prefix and are upper-cased: ``predicted_price_bear`` → ``PRICE_BEAR``).
      A prediction field or scenario key that would clash with a parent column
      is prefixed ``PREDICTION_`` / ``SCENARIO_``.

      With ``tidy=False`` the nested column is kept as served (the same list /
      dict objects as the input rows).
    * ``lowercase=True`` renames columns (and the index name) to lower
      snake_case: lower-case, runs of non-alphanumerics become ``_``, and
      leading number tokens move to the end — ``TOKEN_ID`` → ``token_id``,
      ``TM_GRADE_24h_PCT_CHANGE`` → ``tm_grade_24h_pct_change``,
      ``24H_VOLUME`` → ``volume_24h``; a name that is only number tokens gets
      ``change_`` in front: ``24H`` → ``change_24h``, ``7D`` → ``change_7d``,
      ``1M`` → ``change_1m``. A name that would repeat an earlier one gets
      ``_2``, ``_3``, ... (trading-signals: ``tm_link`` is the API's slug,
      ``tm_link_2`` its ``TM_LINK`` URL).
    * no rows → an empty frame with :func:`frame_columns` as columns (all of them,
      ``endpoint.index`` included: an empty frame keeps its ``RangeIndex``) and
      their dtypes (UTC datetimes, ``Int64`` ids, float64 numbers, ``str`` text,
      object lists).
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, Literal

import numpy as np
import pandas as pd
from pandas.api import types as pdt

from .catalogue import DATE_COLUMNS, ENDPOINTS, TOKEN_IDENTIFIERS, Endpoint, NestedShape, get_endpoint
from .fields import _normalize, _upper

__all__ = ["frame_columns", "lower_name", "normalize_rows", "to_frame"]

# ------------------------------------------------------------------------------------------------
# Field knowledge (reference §4)

_NON_ALNUM = re.compile(r"[^0-9A-Za-z]+")
_DATE_SUFFIXES = ("_DATE", "_AT", "_TIME", "_TIMESTAMP", "_DATETIME")
_ID_COLUMNS = frozenset({"TOKEN_ID", "ID"})
#: Numeric in rows of older API versions, though no endpoint of the catalogue lists it.
_NUMERIC_ELSEWHERE = frozenset({"TA_GRADE"})


def _numeric_everywhere() -> frozenset[str]:
    """Columns numeric whatever endpoint they turn up in (dtypes of empty frames, all-missing columns).

    A column some endpoint declares numeric, unless another serves it as text: TM_GRADE_SIGNAL is a
    number in market-metrics but a label such as "bullish" in tm-grade.
    """
    numeric = {c for e in ENDPOINTS for c in (*e.numeric, *(e.nested_shape.numeric if e.nested_shape else ()))}
    text = {c for e in ENDPOINTS for c in e.fields if c not in e.numeric}
    return frozenset((numeric - text) | _NUMERIC_ELSEWHERE)


#: Known numeric fields beyond each endpoint's ``numeric``.
_NUMERIC_HINTS = _numeric_everywhere()
#: Fields whose values are lists or dicts: object dtype, never inferred.
_OBJECT_FIELDS = frozenset(c for e in ENDPOINTS for c in (*e.list_fields, *((e.nested,) if e.nested else ())))
_TEXT_FIELDS = frozenset(
    {
        "TOKEN_NAME",
        "TOKEN_SYMBOL",
        "SYMBOL",
        "NAME",
        "TICKER",
        "COIN",
        "CG_ID",
        "ICON",
        "SLUG",
        "CORRELATED_TOKEN",
        "MOMENTUM",
        "INVESTMENT_ANALYSIS",
        "DEEP_DIVE",
        "CODE_REVIEW",
    }
)
_TEXT_SUFFIXES = (
    "_NAME",
    "_SYMBOL",
    "_LINK",
    "_URL",
    "_WEBSITE",
    "_TWITTER",
    "_CLASS",
    "_REPORT",
    "_STR",
    "_LABEL",
    "_SUMMARY",
    "_ADDRESS",
    "_SLUG",
    "_POINTER",
    "_ICON",
    "_ICONS",
)
_MISSING_TOKENS = frozenset({"", "null", "none", "nan", "n/a", "na", "-", "--"})

TimeUnit = Literal["s", "ms", "us", "ns"]

#: pandas' own unit for datetimes parsed from strings ("us" on pandas 3, "ns" on pandas 2).
_UNIT: TimeUnit = getattr(
    pd.to_datetime(pd.Series(["2020-01-01T00:00:00.000Z"]), utc=True, format="ISO8601").dtype, "unit", "ns"
)
_DT_DTYPE = pd.DatetimeTZDtype(unit=_UNIT, tz="UTC")


# ------------------------------------------------------------------------------------------------
# Nested endpoints


class _Nest:
    """A nested column's explode rules (:class:`NestedShape`, from the catalogue) at work."""

    def __init__(self, column: str, shape: NestedShape | None) -> None:
        self.column = column
        # Without a shape: item keys k become <COLUMN>_<K>, plain items <COLUMN>.
        self.shape = shape or NestedShape(
            items=(), item_prefix=column + "_", conflict_prefix=column + "_", scalar_name=column
        )
        self._items = dict(self.shape.items)
        self._names: dict[Any, str] = {}

    def item_name(self, key: Any) -> str:
        name = self._names.get(key)
        if name is None:
            k = str(key).strip().lower()
            name = self._items.get(k)
            if name is None:
                strip = self.shape.strip
                if strip and k.startswith(strip):
                    k = k[len(strip) :]
                name = self.shape.item_prefix + _NON_ALNUM.sub("_", k).strip("_").upper()
            if len(self._names) > 4096:
                self._names.clear()
            self._names[key] = name
        return name

    def split(self, value: Any) -> tuple[dict[str, Any], list[Any], bool]:
        """(head fields, items, recognised) of one nested value."""
        if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
            try:
                value = json.loads(value)
            except ValueError:
                return {}, [], False
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return {}, [], True
        if isinstance(value, Mapping):
            list_keys = self.shape.list_keys
            if not list_keys:
                return {}, [value], True
            head: dict[str, Any] = {}
            items: list[Any] = []
            found = False
            for k, v in value.items():
                lk = str(k).lower()
                if not found and lk in list_keys and (v is None or isinstance(v, (list, tuple))):
                    items = list(v or ())
                    found = True
                else:
                    head[_NON_ALNUM.sub("_", str(k)).strip("_").upper()] = v
            return head, items, True
        if isinstance(value, (list, tuple)):
            return {}, list(value), True
        return {}, [], False


@functools.lru_cache(maxsize=64)
def _nest(column: str, shape: NestedShape | None) -> _Nest:
    return _Nest(column, shape)


def _explode(endpoint: Endpoint, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    col = endpoint.nested
    assert col is not None
    nest = _nest(col, endpoint.nested_shape)
    shape = nest.shape
    out: list[dict[str, Any]] = []
    for row in rows:
        parent = {k: v for k, v in row.items() if k != col}
        head, items, ok = nest.split(row.get(col))
        if not ok:  # not a shape we know: keep the value rather than lose it
            parent[col] = row.get(col)
        for k, v in head.items():
            parent[k if k not in parent else shape.head_conflict_prefix + k] = v
        if not items:
            out.append(parent)
            continue
        for item in items:
            rec = dict(parent)
            if isinstance(item, Mapping):
                for k, v in item.items():
                    name = nest.item_name(k)
                    if name in parent:
                        name = shape.conflict_prefix + name
                    rec[name] = v
            else:
                scalar = shape.scalar_name
                rec[scalar if scalar not in parent else shape.conflict_prefix + scalar] = item
            out.append(rec)
    return out


# ------------------------------------------------------------------------------------------------
# normalize_rows


def normalize_rows(endpoint: Endpoint | str, rows: list[dict]) -> list[dict]:
    """Rows with the API's field-name variants mapped to the catalogue's v2 spelling (see the module doc).

    Returns new top-level dicts in the same order; the input rows (and their nested values) are not mutated.
    """
    return _normalize(get_endpoint(endpoint), rows, copy=True)


# ------------------------------------------------------------------------------------------------
# frame_columns


def _tidy_columns(endpoint: Endpoint, fields: tuple[str, ...]) -> tuple[str, ...]:
    shape = endpoint.nested_shape
    parent = tuple(c for c in fields if c != endpoint.nested)
    first = (*TOKEN_IDENTIFIERS, "DATE")
    order = [c for c in first if c in parent] + [c for c in parent if c not in first]
    if shape is None:
        return tuple(order) + (endpoint.nested or "",)
    return (*order, *shape.head_columns, *shape.item_columns)


def frame_columns(endpoint: Endpoint | str, *, tidy: bool = True) -> tuple[str, ...]:
    """Columns a frame of this endpoint is expected to have (v2 spelling; best effort from the reference).

    For nested endpoints the tidy (exploded) columns unless ``tidy=False``. Always includes the endpoint's
    ``date_column`` and, for token-keyed endpoints, ``TOKEN_ID``.
    """
    ep = get_endpoint(endpoint)
    fields = list(ep.fields)
    if not fields:
        fields = [*(TOKEN_IDENTIFIERS if ep.token_keyed else ()), *ep.key, *ep.numeric]
    if ep.token_keyed and "TOKEN_ID" not in fields:
        fields.insert(0, "TOKEN_ID")
    if ep.date_column and ep.date_column not in fields:
        pos = max((fields.index(c) + 1 for c in TOKEN_IDENTIFIERS if c in fields), default=0)
        fields.insert(pos, ep.date_column)
    for c in ep.numeric:
        if c not in fields and c not in ep.variant_fields:
            fields.append(c)
    fields = list(dict.fromkeys(fields))
    if ep.nested and tidy:
        return _tidy_columns(ep, tuple(fields))
    return tuple(fields)


# ------------------------------------------------------------------------------------------------
# Typing


def _is_primary_date(name: Any, endpoint: Endpoint) -> bool:
    return name == endpoint.date_column or _upper(name) in DATE_COLUMNS


def _is_date_like(name: Any) -> bool:
    return isinstance(name, str) and name.upper().endswith(_DATE_SUFFIXES)


def _is_text_name(name: Any) -> bool:
    u = _upper(name)
    return isinstance(u, str) and (u in _TEXT_FIELDS or u.endswith(_TEXT_SUFFIXES))


def _is_missing(v: Any) -> bool:
    if v is None or v is pd.NaT or v is pd.NA:
        return True
    if isinstance(v, float):
        return v != v
    if isinstance(v, str):
        return v.strip().lower() in _MISSING_TOKENS
    return False


def _first_present(values: np.ndarray) -> Any:
    for v in values:
        if not _is_missing(v):
            return v
    return None


def _only_missing_lost(original: pd.Series, result: pd.Series) -> bool:
    """True when every entry that became NA in ``result`` was already a missing marker in ``original``."""
    lost = result.isna().to_numpy()
    if not lost.any():
        return True
    vals = original.to_numpy(dtype=object)[lost]
    return all(_is_missing(v) for v in vals)


def _numeric(s: pd.Series, declared: bool) -> pd.Series:
    dtype = s.dtype
    if pdt.is_bool_dtype(dtype):
        return s
    if pdt.is_numeric_dtype(dtype):
        return s
    if isinstance(dtype, pd.DatetimeTZDtype) or pdt.is_datetime64_any_dtype(dtype):
        return s
    values = s.to_numpy(dtype=object)
    first = _first_present(values)
    if first is None:
        return pd.Series(np.nan, index=s.index, dtype="float64") if declared and len(s) else s
    if isinstance(first, (bool, np.bool_, Mapping, list, tuple, set, bytes, datetime, date)):
        return s
    if isinstance(first, str):
        try:
            float(first.strip())
        except ValueError:
            return s
    elif not isinstance(first, (int, float, np.number)):
        return s
    try:
        res = pd.to_numeric(s, errors="coerce")
    except (TypeError, ValueError, OverflowError):
        return s
    if not pdt.is_numeric_dtype(res.dtype) or pdt.is_bool_dtype(res.dtype):
        return s
    if not _only_missing_lost(s, res):
        return s
    # Booleans mixed into numbers would silently become 0/1: keep such columns as served.
    if any(isinstance(v, (bool, np.bool_)) for v in values):
        return s
    return res


def _ids(s: pd.Series) -> pd.Series:
    if isinstance(s.dtype, pd.Int64Dtype):
        return s
    res = s if pdt.is_numeric_dtype(s.dtype) and not pdt.is_bool_dtype(s.dtype) else _numeric(s, True)
    if not pdt.is_numeric_dtype(res.dtype) or pdt.is_bool_dtype(res.dtype):
        return s
    if pdt.is_float_dtype(res.dtype):
        arr = res.to_numpy(dtype="float64", na_value=np.nan)
        ok = arr[~np.isnan(arr)]
        if len(ok) and not (np.all(np.abs(ok) < 2.0**63) and np.all(ok == np.floor(ok))):
            return res  # fractions, infinities or beyond int64: keep the floats
    try:
        return res.astype("Int64")
    except (TypeError, ValueError, OverflowError):
        return res


def _epoch_unit(values: pd.Series) -> TimeUnit:
    m = float(np.nanmax(np.abs(values.to_numpy(dtype="float64")))) if values.notna().any() else 0.0
    return "ns" if m >= 1e17 else "us" if m >= 1e14 else "ms" if m >= 1e11 else "s"


def _as_utc(res: pd.Series) -> pd.Series:
    res = res.dt.tz_localize("UTC") if res.dt.tz is None else res.dt.tz_convert("UTC")
    return res.astype(_DT_DTYPE) if res.dtype != _DT_DTYPE else res


_DATEISH = (str, datetime, date, np.datetime64)


def _numberish(v: str) -> bool:
    try:
        float(v.strip())
    except ValueError:
        return False
    return True


def _dates(s: pd.Series, primary: bool) -> pd.Series:
    """``s`` as UTC datetimes. A primary column always converts (garbage → NaT); another only when all parses."""
    dtype = s.dtype
    try:
        if pdt.is_datetime64_any_dtype(dtype):
            return _as_utc(s)
        if pdt.is_bool_dtype(dtype):
            return pd.Series(pd.NaT, index=s.index, dtype=_DT_DTYPE) if primary else s
        if pdt.is_numeric_dtype(dtype):
            if not primary:
                return s
            return _as_utc(pd.to_datetime(s, unit=_epoch_unit(s), utc=True, errors="coerce"))
        values = s.to_numpy(dtype=object)
        first = _first_present(values)
        if first is None:
            return pd.Series(pd.NaT, index=s.index, dtype=_DT_DTYPE)  # all missing: still a date column
        if isinstance(first, str) and _numberish(first):
            # Numbers written as strings are not dates; a primary column reads them as epoch numbers.
            if not primary:
                return s
            nums = _numeric(s, True)
            if pdt.is_numeric_dtype(nums.dtype):
                return _as_utc(pd.to_datetime(nums, unit=_epoch_unit(nums), utc=True, errors="coerce"))
        if not isinstance(first, _DATEISH) and not primary:
            return s
        target = s
        if pdt.is_object_dtype(dtype) and not all(isinstance(v, _DATEISH) or _is_missing(v) for v in values):
            if not primary:
                return s
            # Numbers, lists... mixed into a date column: those entries become NaT.
            target = pd.Series([v if isinstance(v, _DATEISH) else None for v in values], index=s.index, dtype=object)
    except (TypeError, ValueError, OverflowError):
        return s
    res: pd.Series | None = None
    for fmt in ("ISO8601", "mixed") if primary else ("ISO8601",):
        try:
            res = pd.to_datetime(target, utc=True, format=fmt, errors="coerce")
        except (TypeError, ValueError, OverflowError):
            res = None
            continue
        if _only_missing_lost(target, res):
            return _as_utc(res)
    if not primary:
        return s
    if res is None:
        return pd.Series(pd.NaT, index=s.index, dtype=_DT_DTYPE)
    return _as_utc(res)


def _declared_numeric(endpoint: Endpoint) -> frozenset[str]:
    """Upper-cased names of the columns known to be numeric for this endpoint."""
    nested = endpoint.nested_shape.numeric if endpoint.nested_shape else ()
    return frozenset(c.upper() for c in (*_NUMERIC_HINTS, *endpoint.numeric, *nested))


def _is_object_field(upper: Any, endpoint: Endpoint) -> bool:
    return upper in _OBJECT_FIELDS or upper in endpoint.list_fields or upper == endpoint.nested


def _type_frame(df: pd.DataFrame, endpoint: Endpoint) -> pd.DataFrame:
    declared = _declared_numeric(endpoint)
    new: dict[Any, pd.Series] = {}
    for name in df.columns:
        s = df[name]
        u = _upper(name)
        if u in _ID_COLUMNS:
            t = _ids(s)
        elif _is_primary_date(name, endpoint):
            t = _dates(s, True)
        elif u in declared:  # before the date-like names: ALL_TIME is a return, not a time
            t = _numeric(s, True)
        elif _is_date_like(name):
            t = _dates(s, False)
        elif _is_object_field(u, endpoint) or _is_text_name(name):
            t = s
        else:
            t = _numeric(s, u in declared)
        if t is not s:
            new[name] = t
    if new:
        df = df.assign(**new) if all(isinstance(k, str) for k in new) else _replace(df, new)
    return df


def _replace(df: pd.DataFrame, new: dict[Any, pd.Series]) -> pd.DataFrame:
    df = df.copy()
    for k, v in new.items():
        df[k] = v
    return df


def _empty_dtype(name: str, endpoint: Endpoint) -> Any:
    u = name.upper()
    if u in _ID_COLUMNS:
        return "Int64"
    if _is_primary_date(name, endpoint):
        return _DT_DTYPE
    if _is_object_field(u, endpoint):
        return object
    if u in _declared_numeric(endpoint):
        return "float64"
    if _is_date_like(name):
        return _DT_DTYPE
    return "str"


def _empty_frame(endpoint: Endpoint, tidy: bool) -> pd.DataFrame:
    cols = frame_columns(endpoint, tidy=tidy)
    return pd.DataFrame({c: pd.Series([], dtype=_empty_dtype(c, endpoint)) for c in cols})


# ------------------------------------------------------------------------------------------------
# Order, sort, index, names


def _order(df: pd.DataFrame, expected: tuple[str, ...]) -> pd.DataFrame:
    cols = list(df.columns)
    present = set(cols)
    head = [c for c in expected if c in present]
    if not head:
        return df
    taken = set(head)
    rest = [c for c in cols if c not in taken]
    order = head + rest
    return df if order == cols else df[order]


def _sortable(s: pd.Series) -> bool:
    if pdt.is_bool_dtype(s.dtype):
        return True
    if pdt.is_numeric_dtype(s.dtype) or pdt.is_datetime64_any_dtype(s.dtype):
        return True
    return all(isinstance(v, str) for v in s.dropna().to_numpy(dtype=object))


def _sort(df: pd.DataFrame, endpoint: Endpoint) -> pd.DataFrame:
    date_col = (
        endpoint.date_column
        if endpoint.date_column in df.columns
        else next((c for c in DATE_COLUMNS if c in df.columns), None)
    )
    if date_col is None or not pdt.is_datetime64_any_dtype(df[date_col].dtype) or len(df) < 2:
        return df.reset_index(drop=True) if not isinstance(df.index, pd.RangeIndex) else df
    by = [date_col] + [k for k in endpoint.key if k != date_col and k in df.columns and _sortable(df[k])]
    try:
        out = df.sort_values(by, kind="stable", na_position="last")
    except (TypeError, ValueError):
        out = df.sort_values(date_col, kind="stable", na_position="last")
    return out.reset_index(drop=True)


def _index(df: pd.DataFrame, endpoint: Endpoint) -> pd.DataFrame:
    col = endpoint.index
    if not col or col not in df.columns:
        return df
    s = df[col]
    try:
        if s.isna().any() or not s.is_unique:
            return df
    except TypeError:  # unhashable values
        return df
    return df.set_index(col)


def lower_name(name: Any) -> str:
    """The lower snake_case alias of a column name (``24H`` → ``change_24h``, ``24H_VOLUME`` → ``volume_24h``)."""
    n = _NON_ALNUM.sub("_", str(name)).strip("_").lower()
    if not n:
        return "column"
    if n[0].isdigit():
        parts = n.split("_")
        lead: list[str] = []
        while parts and parts[0][:1].isdigit():
            lead.append(parts.pop(0))
        n = "_".join(parts + lead) if parts else "change_" + "_".join(lead)
    return n


def _lowercase(df: pd.DataFrame) -> pd.DataFrame:
    names: dict[Any, str] = {}
    used: set[str] = set()
    if df.index.name is not None:
        used.add(lower_name(df.index.name))
    for c in df.columns:
        base = lower_name(c)
        n, i = base, 1
        while n in used:
            i += 1
            n = f"{base}_{i}"
        used.add(n)
        names[c] = n
    out = df.rename(columns=names)
    if df.index.name is not None:
        out.index = out.index.rename(lower_name(df.index.name))
    return out


# ------------------------------------------------------------------------------------------------
# to_frame


def to_frame(endpoint: Endpoint | str, rows: list[dict], *, lowercase: bool = False, tidy: bool = True) -> pd.DataFrame:
    """A typed DataFrame of one endpoint's rows (see the module doc for every rule).

    ``tidy`` explodes nested endpoints into long frames; ``lowercase`` gives lower snake_case column names.
    The input rows are never mutated.
    """
    ep = get_endpoint(endpoint)
    norm = _normalize(ep, rows, copy=False)
    nested = bool(ep.nested) and tidy
    if nested and norm:
        norm = _explode(ep, norm)
    if not norm:
        df = _empty_frame(ep, tidy)  # every expected column stays a column (no index on an empty frame)
    else:
        df = _type_frame(pd.DataFrame(norm), ep)
        df = _order(df, (*frame_columns(ep, tidy=tidy), *ep.variant_fields))
        df = _sort(df, ep)
        df = _index(df, ep)
    if lowercase:
        df = _lowercase(df)
    return df
