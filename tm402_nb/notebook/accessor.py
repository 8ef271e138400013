"""``df.tm``: join Token Metrics columns onto your own frames, price it first, plot, read the cost.

Importing this module registers the accessor (``import tm402_nb`` does it for you)::

    coins.tm.enrich("tm-grade", on="symbol")   # a new frame with the TM columns joined
    coins.tm.grades()                          # the same, shortcut
    coins.tm.quote("tm-grade")                 # what that would cost; nothing paid
    frame.tm.plot()                            # the chart that fits a toolkit frame
    frame.tm.cost                              # 3 calls (1 paid, 2 cached) · 0.017 USDC

The accessor is **stateless**: pandas 3 builds a new one on every ``df.tm``
access, so nothing is ever stored on it. Money, wallet, cache and ledger live in
the session (:func:`tm402_nb.session`), results in the frames returned. Every
method returns a new frame and **never mutates** the one it was called on.

Only pandas is imported here; the client, the catalogue and the session load on
the first call that needs them, so importing ``tm402_nb`` stays cheap.
"""

from __future__ import annotations

import copy
import html
import numbers
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..errors import ConfigurationError
from ..tokenmetrics.catalogue import TOKEN_IDENTIFIERS, TOKEN_PARAMS

if TYPE_CHECKING:  # pragma: no cover
    from ..session import Session
    from ..tokenmetrics.catalogue import Endpoint
    from ..tokenmetrics.client import Client, Quote

__all__ = ["IDENTIFIERS", "FrameCost", "TMAccessor"]

#: Columns that identify a token in every token-keyed answer. They are added once, never suffixed.
IDENTIFIERS = TOKEN_IDENTIFIERS

_BY = ("symbol", "token_id")
_HOW = ("left", "inner")
_TOKEN_PARAMS = TOKEN_PARAMS
#: Column names that usually hold symbols or ids, for the "did you mean on=..." hint.
_KEY_NAMES = (
    "symbol",
    "symbols",
    "ticker",
    "tickers",
    "token_symbol",
    "coin",
    "asset",
    "token",
    "token_id",
    "tokenid",
    "id",
)


def _fmt_names(names: Iterable[Any], limit: int = 12) -> str:
    names = [str(n) for n in names]
    if len(names) > limit:
        return ", ".join(names[:limit]) + f", … ({len(names)} in all)"
    return ", ".join(names) if names else "(none)"


class UnknownSymbolsWarning(UserWarning):
    """Some rows' symbols match no token: they keep their rows, with empty TM columns."""


@dataclass(frozen=True)
class _Plan:
    """A validated enrichment: what to fetch and how each row finds its token. No I/O done yet."""

    endpoint: Endpoint
    on: str
    by: str
    #: Per row (positionally): the normalized key (upper-case symbol or int id), None when missing.
    keys: tuple[Any, ...]
    #: The distinct normalized keys, in first-seen order.
    unique: tuple[Any, ...]
    params: dict[str, Any] = field(default_factory=dict)


@pd.api.extensions.register_dataframe_accessor("tm")
class TMAccessor:
    """Token Metrics on any DataFrame: ``df.tm.enrich()``, ``grades()``, ``signals()``, ``quant()``,
    ``quote()``, ``plot()`` and ``cost``.

    Stateless: pandas 3 rebuilds the accessor on every ``df.tm`` access, so ``df.tm is df.tm``
    is False and nothing can be stored on it. Methods never mutate the frame.

    >>> import pandas as pd
    >>> import tm402_nb.notebook.accessor            # importing tm402_nb does this
    >>> coins = pd.DataFrame({"symbol": ["BTC", "ETH"], "weight": [0.6, 0.4]})
    >>> coins.tm is coins.tm
    False
    >>> coins.tm.cost
    no Token Metrics calls
    >>> pd.Series([1, 2]).tm
    Traceback (most recent call last):
    ...
    AttributeError: 'Series' object has no attribute 'tm'
    """

    __slots__ = ("_obj",)

    def __init__(self, pandas_obj: Any) -> None:
        # Runs on every `df.tm`: cheap checks only, no session, no network.
        if not isinstance(pandas_obj, pd.DataFrame):
            raise AttributeError(f"df.tm works on a pandas DataFrame, not {type(pandas_obj).__name__}")
        self._obj = pandas_obj

    # ------------------------------------------------------------------------------------------
    # enrich
    # ------------------------------------------------------------------------------------------
    def enrich(
        self,
        endpoint: str = "tm-grade",
        on: str = "symbol",
        columns: str | Iterable[str] | None = None,
        *,
        by: str | None = None,
        how: str = "left",
        suffix: str | None = None,
        refresh: bool = False,
        errors: str = "warn",
        session: Session | Client | None = None,
        **params: Any,
    ) -> pd.DataFrame:
        """A copy of the frame with ``endpoint``'s columns joined on, one row per input row.

        A symbol that matches no token keeps its row with empty TM columns and is named once
        in an :class:`UnknownSymbolsWarning` (``how="inner"`` drops such rows);
        ``errors="raise"`` refuses the whole enrichment instead, before anything is paid.

        All the frame's tokens are fetched together: one ``client.frame()`` call with the
        distinct symbols (or ids), which the client sends in comma lists of up to 100 tokens
        (so 100 distinct tokens cost one paid call, 250 three; for endpoints with one row per
        token no second page is asked for). Everything is validated before anything is paid.

        Join rules:

        * ``on`` names the column (or index level) holding each row's token; ``by`` says what
          its values are: ``"symbol"`` or ``"token_id"``. By default integers (and whole
          floats) are ids and text is symbols.
        * Symbols are matched case-insensitively and resolved to one token id each with the
          client's deterministic rule (``client.resolve_symbols``: highest market cap first);
          rows are then joined on ``TOKEN_ID``, so two tokens sharing a symbol never mix.
          Missing values (NaN, None, ``""``) in ``on`` are left unmatched.
        * ``columns=None`` adds every column of the answer. ``TOKEN_ID``, ``TOKEN_NAME`` and
          ``TOKEN_SYMBOL`` come first and are added once: not when the frame already has a
          column of that name (any case), and ``TOKEN_ID`` not when ``on`` already holds ids.
          ``columns=[...]`` adds exactly those (checked against the catalogue before paying).
        * A fetched column whose name the frame already uses gets ``suffix`` (``"_tm"``).
        * Endpoints with several rows per token (histories such as ``trading-signals``): only
          each token's **latest** row (by the endpoint's date column) is joined. Without a
          ``startDate`` the client fetches only the latest page of a history, so pass
          ``startDate=`` when a token may be missing from it. Nested endpoints
          (``correlation``, ``resistance-support``, ``price-prediction``) are fetched untidied:
          their nested column is joined as one list per token.
        * ``how="left"`` (default) keeps every row, in order, with the input's index;
          ``how="inner"`` drops rows whose token has no data.
        * ``params`` go to the endpoint (e.g. ``startDate="2025-01-01"``); the token
          parameters (``symbol``, ``token_id``, ``token_name``) come from ``on``.

        The result's ``attrs["tm402"]`` holds what the enrichment cost (calls, paid, cached,
        amount per asset, receipts), replacing any ``tm402`` entry the input carried; read it
        with ``result.tm.cost``. The input frame is never mutated.

        ``session=None`` uses the current session (:func:`tm402_nb.session`, which connects with
        the defaults on first use: the sandbox when nothing is configured); pass a Session (or
        its Client) to use another. ``refresh=True`` pays again instead of reusing cached answers.

        Bad input fails before anything is paid:

        >>> import pandas as pd
        >>> coins = pd.DataFrame({"ticker": ["BTC", "ETH"], "weight": [0.6, 0.4]})
        >>> coins.tm.enrich("tm-grade")
        Traceback (most recent call last):
        ...
        tm402_nb.errors.ConfigurationError: no column 'symbol' in the frame (columns: ticker, weight) — pass on='ticker'
        >>> coins.tm.enrich("market-metrics", on="ticker")          # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        tm402_nb.errors.ConfigurationError: market-metrics is not keyed by token, so it cannot be joined onto rows — ...
        >>> coins.tm.enrich("tm-grade", on="ticker", columns=["TM_GRAED"])
        Traceback (most recent call last):
        ...
        tm402_nb.errors.ConfigurationError: tm-grade has no column 'TM_GRAED' — did you mean TM_GRADE?

        Against a session (the sandbox here):

        >>> import tm402_nb as tm
        >>> s = tm.connect(mode="sandbox")                                           # doctest: +SKIP
        >>> graded = coins.tm.enrich("tm-grade", on="ticker", columns=["TM_GRADE"])  # doctest: +SKIP
        >>> graded                                                                   # doctest: +SKIP
          ticker  weight  TM_GRADE
        0    BTC     0.6     ...
        1    ETH     0.4     ...
        >>> graded.tm.cost                                                           # doctest: +SKIP
        4 calls (1 paid, 3 free) · 0.017 USDC · SANDBOX
        >>> list(coins.columns)                      # the input is untouched          # doctest: +SKIP
        ['ticker', 'weight']
        """
        plan = self._plan(endpoint, on, by, params)
        how = _check_how(how)
        if errors not in ("warn", "raise"):
            raise ConfigurationError(f"errors must be 'warn' or 'raise', got {errors!r}")
        suffix = _check_suffix(suffix)
        wanted = _check_columns(plan.endpoint, columns)
        client = _client_of(session)

        ep = plan.endpoint
        tidy = ep.nested is None
        with client.cost.tally(f"enrich {ep.name}") as cost:
            ids_of = self._resolve(client, plan, strict=errors == "raise")
            ids = list(dict.fromkeys(ids_of.values()))
            # The client stops paging once every id has its row: a full page of 100 tokens
            # never makes it ask (and sign) for an empty second one.
            if ids:
                fetched = client.frame(ep, token_id=ids, refresh=refresh, tidy=tidy, **plan.params)
            else:  # every symbol unknown: nothing to fetch, nothing paid
                from ..tokenmetrics.frames import to_frame

                fetched = to_frame(ep, [], tidy=tidy)
        lookup = _latest_per_token(fetched, ep)

        row_ids = pd.array([ids_of.get(k) if k is not None else None for k in plan.keys], dtype="Int64")
        added = lookup.reindex(row_ids)
        added.index = self._obj.index

        chosen = _choose_columns(list(lookup.columns), wanted, self._obj.columns, plan)
        out_names = _output_names(
            [c for c, _ in chosen], [c for c, ident in chosen if ident], self._obj.columns, suffix
        )
        parts = {}
        for (src, _), name in zip(chosen, out_names, strict=False):
            parts[name] = added[src] if src in added.columns else pd.Series(float("nan"), index=added.index)
        new = pd.DataFrame(parts, index=self._obj.index)

        out = pd.concat([self._obj.copy(deep=True), new], axis=1) if len(new.columns) else self._obj.copy(deep=True)
        matched = pd.Series(row_ids).isin(lookup.index).to_numpy(dtype=bool, na_value=False)
        if how == "inner":
            out = out[matched]
        attrs = copy.deepcopy(self._obj.attrs)
        info = dict(fetched.attrs.get("tm402") or {})
        info.update(cost.as_attrs())
        info["enrich"] = {"on": plan.on, "by": plan.by, "tokens": len(ids), "matched": int(matched.sum()), "how": how}
        attrs["tm402"] = info
        out.attrs = attrs
        return out

    # -- shortcuts --------------------------------------------------------------------------------
    def grades(self, on: str = "symbol", columns: str | Iterable[str] | None = None, **kwargs: Any) -> pd.DataFrame:
        """``enrich("tm-grade", ...)``: latest TM Grade, signal and momentum per row's token.

        >>> import pandas as pd
        >>> pd.DataFrame({"symbol": ["BTC"]}).tm.grades(columns="TM_GRADE")   # doctest: +SKIP
          symbol  TM_GRADE
        0    BTC     ...
        """
        return self.enrich("tm-grade", on=on, columns=columns, **kwargs)

    def signals(self, on: str = "symbol", columns: str | Iterable[str] | None = None, **kwargs: Any) -> pd.DataFrame:
        """``enrich("trading-signals", ...)``: each token's latest daily AI signal (history: latest row)."""
        return self.enrich("trading-signals", on=on, columns=columns, **kwargs)

    def quant(self, on: str = "symbol", columns: str | Iterable[str] | None = None, **kwargs: Any) -> pd.DataFrame:
        """``enrich("quantmetrics", ...)``: Sharpe, Sortino, drawdown, volatility, ... per row's token."""
        return self.enrich("quantmetrics", on=on, columns=columns, **kwargs)

    # -- quote ---------------------------------------------------------------------------------------
    def quote(
        self,
        endpoint: str = "tm-grade",
        on: str = "symbol",
        *,
        by: str | None = None,
        session: Session | Client | None = None,
        **params: Any,
    ) -> Quote:
        """What ``enrich(endpoint, on=on, **params)`` would cost, from the 402 challenge; nothing paid.

        The quote covers every distinct token of the frame (``calls`` is the number of paid calls
        the enrichment makes: one per 100 tokens). Symbols are resolved first (a free call).

        >>> import pandas as pd
        >>> coins = pd.DataFrame({"symbol": ["BTC", "ETH", "BTC"]})
        >>> coins.tm.quote("tm-grade")                                   # doctest: +SKIP
        <Quote tm-grade: 1 call(s) × 0.017 USDC = 0.017 USDC on base-sepolia>
        """
        plan = self._plan(endpoint, on, by, params)
        client = _client_of(session)
        ids_of = self._resolve(client, plan, strict=True)
        ids = list(dict.fromkeys(ids_of.values()))
        return client.quote(plan.endpoint, token_id=ids, **plan.params)

    # -- plot ----------------------------------------------------------------------------------------
    def plot(self, kind: str | None = None, ax: Any = None, **kwargs: Any) -> Any:
        """The chart that fits this frame's endpoint (``tm402_nb.notebook.plots.plot_frame``); returns the Axes."""
        from .plots import plot_frame

        return plot_frame(self._obj, kind=kind, ax=ax, **kwargs)

    # -- cost ----------------------------------------------------------------------------------------
    @property
    def cost(self) -> FrameCost:
        """What the frame cost, from ``attrs["tm402"]`` (``no Token Metrics calls`` when absent).

        >>> import pandas as pd
        >>> df = pd.DataFrame({"x": [1]})
        >>> df.attrs["tm402"] = {"endpoint": "tm-grade", "calls": 3, "paid": 1, "cached": 2,
        ...                      "amount": {"USDC": "0.017"}, "receipts": ["0xabc"], "mode": "x402"}
        >>> df.tm.cost
        3 calls (1 paid, 2 cached) · 0.017 USDC
        >>> df.tm.cost.paid, df.tm.cost.receipts
        (1, ('0xabc',))
        """
        return FrameCost.from_attrs(self._obj.attrs.get("tm402"))

    # ------------------------------------------------------------------------------------------
    # internals (no state: everything is derived from self._obj and the arguments)
    # ------------------------------------------------------------------------------------------
    def _plan(self, endpoint: str, on: str, by: str | None, params: Mapping[str, Any]) -> _Plan:
        from ..tokenmetrics.catalogue import ENDPOINTS, get_endpoint
        from ..tokenmetrics.plan import PARAM_ALIASES, validate_params

        ep = get_endpoint(endpoint)  # UnknownEndpoint with the closest names
        if not ep.token_keyed:
            keyed = [e.name for e in ENDPOINTS if e.token_keyed]
            raise ConfigurationError(
                f"{ep.name} is not keyed by token, so it cannot be joined onto rows",
                hint=f"token-keyed endpoints: {', '.join(keyed)}; fetch {ep.name} with s.client.frame()",
            )
        for name in params:
            canonical = PARAM_ALIASES.get(name, PARAM_ALIASES.get(name.lower(), name))
            if canonical in _TOKEN_PARAMS:
                raise ConfigurationError(
                    f"{name}= is not an enrich parameter: the tokens come from the {on!r} column",
                    hint="pass on=<column> (and by='symbol' or by='token_id')",
                )
        clean = validate_params(ep, params)  # ParamError before anything is sent

        values = self._key_values(on)
        if by is not None and by not in _BY:
            raise ConfigurationError(f"by must be 'symbol' or 'token_id', got {by!r}")
        raw = values.to_numpy(dtype=object)  # NaN, None, pd.NA and NaT all count as missing (_missing)
        try:
            present = list(dict.fromkeys(v for v in raw if not _missing(v)))
        except TypeError:
            raise ConfigurationError(
                f"column {on!r} holds lists or other unhashable values",
                hint="one symbol or token id per row: df.explode(...) first",
            ) from None
        if not present:
            raise ConfigurationError(f"column {on!r} has no values to look up", hint="it is empty or all missing")
        by = by or _infer_by(values, present, on)
        norm = {v: (_as_id(v, on) if by == "token_id" else _as_symbol(v, on)) for v in present}
        keys = tuple(None if _missing(v) else norm[v] for v in raw)
        unique = tuple(dict.fromkeys(norm.values()))
        return _Plan(ep, on, by, keys, unique, clean)

    def _key_values(self, on: str) -> pd.Series:
        obj = self._obj
        if isinstance(obj.columns, pd.MultiIndex):
            raise ConfigurationError(
                "df.tm needs flat column names, this frame has a column MultiIndex",
                hint="flatten them first, e.g. df.columns = ['_'.join(map(str, c)) for c in df.columns]",
            )
        try:
            hash(on)
        except TypeError:
            raise ConfigurationError(f"on must be one column name, got {type(on).__name__}") from None
        if on in obj.columns:
            values = obj[on]
            if isinstance(values, pd.DataFrame):
                raise ConfigurationError(
                    f"the frame has {values.shape[1]} columns named {on!r}", hint="rename them so `on` names one column"
                )
            return values
        if on in [n for n in obj.index.names if n is not None]:
            return pd.Series(obj.index.get_level_values(on), index=obj.index)
        raise ConfigurationError(
            f"no column {on!r} in the frame (columns: {_fmt_names(obj.columns)})", hint=_on_hint(obj)
        )

    @staticmethod
    def _resolve(client: Client, plan: _Plan, *, strict: bool) -> dict[Any, int]:
        """Normalized key → token id, through the client's resolver. A symbol that matches no token
        is left out and named once in a warning; ``strict``: UnknownSymbol instead."""
        from ..tokenmetrics.errors import UnknownSymbol  # the client side loads on a call, not on import

        if plan.by == "token_id":
            return {k: k for k in plan.unique}
        try:
            found = client.resolve_symbols(list(plan.unique))
        except UnknownSymbol as exc:
            unknown = set(exc.details.get("symbols") or ())
            if strict or not unknown:
                raise
            known = [k for k in plan.unique if k not in unknown]
            # Everything is learned by now: resolving the others asks nothing more.
            found = client.resolve_symbols(known) if known else {}
            warnings.warn(
                f"{len(unknown)} symbol{'s' if len(unknown) > 1 else ''} match no token and keep their rows with "
                f"empty {plan.endpoint.name} columns: {', '.join(sorted(unknown))} (how='inner' drops those rows; "
                "errors='raise' refuses instead)",
                UnknownSymbolsWarning,
                stacklevel=4,
            )
        return {k: int(found[k]) for k in plan.unique if k in found}


# ----------------------------------------------------------------------------------------------
# validation helpers
# ----------------------------------------------------------------------------------------------
def _missing(v: Any) -> bool:
    if v is None:
        return True
    if isinstance(v, str):
        return not v.strip()
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _is_whole(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and float(v).is_integer()


def _infer_by(values: pd.Series, present: list[Any], on: str) -> str:
    dtype = values.dtype
    if pd.api.types.is_bool_dtype(dtype):
        raise ConfigurationError(f"column {on!r} holds booleans, not symbols or token ids")
    if pd.api.types.is_numeric_dtype(dtype) or all(_is_whole(v) for v in present):
        return "token_id"
    if all(isinstance(v, str) for v in present):
        return "symbol"
    kinds = sorted({type(v).__name__ for v in present})
    raise ConfigurationError(
        f"column {on!r} mixes {', '.join(kinds)} values", hint="pass by='symbol' or by='token_id' to say what it holds"
    )


def _as_symbol(v: Any, on: str) -> str:
    if not isinstance(v, str):
        raise ConfigurationError(
            f"column {on!r} has {v!r}, which is not a symbol",
            hint="symbols are text such as BTC; pass by='token_id' for ids",
        )
    sym = v.strip().upper()
    if "," in sym or any(c.isspace() for c in sym):
        raise ConfigurationError(
            f"column {on!r} has {v!r}: one symbol per row, please",
            hint="split it into rows (df.assign(...).explode(...)) first",
        )
    return sym


def _as_id(v: Any, on: str) -> int:
    if isinstance(v, str) and v.strip().isdigit():
        v = int(v.strip())
    if _is_whole(v) and int(v) > 0:
        return int(v)
    raise ConfigurationError(
        f"column {on!r} has {v!r}, which is not a token id",
        hint="token ids are positive integers such as 3375; pass by='symbol' for symbols",
    )


def _on_hint(obj: pd.DataFrame) -> str:
    names = [c for c in obj.columns if isinstance(c, str)]
    for c in names:
        if c.lower() in _KEY_NAMES:
            return f"pass on={c!r}"
    for c in names:
        low = c.lower()
        if "symbol" in low or "ticker" in low:
            return f"pass on={c!r}"
    return "pass on=<the column holding symbols or token ids>"


def _check_how(how: str) -> str:
    if how not in _HOW:
        raise ConfigurationError(
            f"how must be 'left' or 'inner', got {how!r}", hint="left keeps every row; inner drops rows without data"
        )
    return how


def _check_suffix(suffix: str | None) -> str:
    if suffix is None:
        return "_tm"
    if not isinstance(suffix, str) or not suffix:
        raise ConfigurationError(f"suffix must be a non-empty string, got {suffix!r}")
    return suffix


def _check_columns(ep: Endpoint, columns: str | Iterable[str] | None) -> list[str] | None:
    """Requested columns, checked against the catalogue (case-insensitively) before anything is paid."""
    if columns is None:
        return None
    import difflib

    from ..tokenmetrics.frames import frame_columns

    names = [columns] if isinstance(columns, str) else list(columns)
    if not names:
        raise ConfigurationError("columns is empty", hint="pass columns=None for all of them")
    known = list(frame_columns(ep, tidy=ep.nested is None))
    lower = {k.lower() for k in known}
    for name in names:
        if not isinstance(name, str):
            raise ConfigurationError(f"column names are text, got {name!r}")
        if name.lower() not in lower:
            close = difflib.get_close_matches(name.upper(), known, n=1, cutoff=0.6)
            hint = f"did you mean {', '.join(close)}?" if close else f"{ep.name} has: {_fmt_names(known, 30)}"
            raise ConfigurationError(f"{ep.name} has no column {name!r}", hint=hint)
    return list(dict.fromkeys(names))


def _client_of(session: Any) -> Client:
    """The Client to use: the given Session's (or the Client itself), else the current session's."""
    if session is None:
        from ..session import session as current

        session = current()
    if getattr(session, "closed", False):
        raise ConfigurationError("that session is closed", hint="tm.connect() opens a new one")
    client = getattr(session, "client", session)
    from ..tokenmetrics.client import AsyncClient

    if isinstance(client, AsyncClient) or not all(hasattr(client, a) for a in ("frame", "quote", "resolve_symbols")):
        raise ConfigurationError(f"session must be a tm402_nb Session or Client, got {type(session).__name__}")
    return client


# ----------------------------------------------------------------------------------------------
# join helpers
# ----------------------------------------------------------------------------------------------
def _latest_per_token(fetched: pd.DataFrame, ep: Endpoint) -> pd.DataFrame:
    """The fetched frame with one row per TOKEN_ID (the latest by date), indexed by TOKEN_ID."""
    df = fetched
    if ("TOKEN_ID" not in df.columns and "TOKEN_ID" in (df.index.names or [])) or (
        df.index.name is not None and df.index.name not in df.columns
    ):
        df = df.reset_index()
    if "TOKEN_ID" not in df.columns:
        from ..tokenmetrics.errors import APIError

        raise APIError(f"{ep.name}: the answer has no TOKEN_ID column to join on")
    df = df[df["TOKEN_ID"].notna()]
    date = ep.date_column if ep.date_column in df.columns else None
    if df["TOKEN_ID"].duplicated().any():
        if date is not None and pd.api.types.is_datetime64_any_dtype(df[date].dtype):
            df = df.sort_values(date, kind="stable", na_position="first").drop_duplicates("TOKEN_ID", keep="last")
        else:
            df = df.drop_duplicates("TOKEN_ID", keep="first")
    out = df.set_index(df["TOKEN_ID"].astype("Int64"))
    out.index.name = "TOKEN_ID"
    return out


def _choose_columns(
    fetched: list[Any], wanted: list[str] | None, existing: pd.Index, plan: _Plan
) -> list[tuple[Any, bool]]:
    """(fetched column, is an auto-added identifier) in output order."""
    if wanted is not None:
        out = []
        for name in wanted:
            if name in fetched:
                out.append((name, False))
            else:  # the catalogue knows it in another case, or the API left it out this time
                match = [c for c in fetched if isinstance(c, str) and c.lower() == name.lower()]
                out.append((match[0] if len(match) == 1 else name, False))
        return out
    have = {c.lower() for c in existing if isinstance(c, str)}
    idents = []
    for c in IDENTIFIERS:
        if c not in fetched or c.lower() in have:
            continue
        if c == "TOKEN_ID" and plan.by == "token_id":
            continue  # `on` already holds the ids
        idents.append((c, True))
    rest = [(c, False) for c in fetched if c not in IDENTIFIERS]
    return idents + rest


def _output_names(columns: list[Any], identifiers: list[Any], existing: pd.Index, suffix: str) -> list[Any]:
    """Clashing names get ``suffix`` (``_tm``, then ``_tm_2``, ...); auto-added identifiers never clash."""
    taken = set(existing)
    out = []
    for c in columns:
        name = c
        if name in taken and c not in identifiers:
            name = f"{c}{suffix}"
            n = 2
            while name in taken:
                name = f"{c}{suffix}_{n}"
                n += 1
        taken.add(name)
        out.append(name)
    return out


# ----------------------------------------------------------------------------------------------
# cost
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FrameCost:
    """What made a frame: calls, paid vs cached, amount per asset, receipts (from ``attrs["tm402"]``).

    >>> FrameCost.from_attrs(None)
    no Token Metrics calls
    >>> c = FrameCost.from_attrs({"calls": 2, "paid": 0, "cached": 2, "mode": "sandbox"})
    >>> c
    2 calls (2 cached) · nothing paid · SANDBOX
    >>> bool(c), c.free
    (True, 0)
    """

    calls: int = 0
    paid: int = 0
    cached: int = 0
    amount: dict[str, str] = field(default_factory=dict)
    receipts: tuple[str, ...] = ()
    networks: tuple[str, ...] = ()
    endpoint: str | None = None
    mode: str | None = None
    #: What the free calls were, in the footer's words (``1 free: symbol lookup``); "" when unknown.
    free_text: str = ""

    @classmethod
    def from_attrs(cls, info: Any) -> FrameCost:
        if not isinstance(info, Mapping):
            return cls()

        def count(key: str) -> int:
            try:
                return max(0, int(info.get(key) or 0))
            except (TypeError, ValueError):
                return 0

        amount = info.get("amount") or {}
        receipts = info.get("receipts") or ()
        networks = info.get("networks") or ()
        return cls(
            calls=count("calls"),
            paid=count("paid"),
            cached=count("cached"),
            amount={str(k): str(v) for k, v in amount.items()} if isinstance(amount, Mapping) else {},
            receipts=tuple(str(r) for r in receipts) if isinstance(receipts, (list, tuple)) else (),
            networks=tuple(str(n) for n in networks) if isinstance(networks, (list, tuple)) else (),
            endpoint=info.get("endpoint") if isinstance(info.get("endpoint"), str) else None,
            mode=info.get("mode") if isinstance(info.get("mode"), str) else None,
            free_text=str(info.get("free_text") or ""),
        )

    @property
    def free(self) -> int:
        """Calls that were neither paid nor served from the cache (free endpoints, 402 quotes)."""
        return max(0, self.calls - self.paid - self.cached)

    def __bool__(self) -> bool:
        return self.calls > 0

    @property
    def from_sandbox(self) -> bool:
        """Whether the calls went to the sandbox (synthetic data, no real money)."""
        if self.mode is None:
            return False
        # Imported here: importing the accessor loads pandas and nothing heavier.
        from ..tokenmetrics.modes import Mode

        return self.mode == Mode.SANDBOX

    def amount_text(self) -> str:
        parts = [f"{v} {k}" for k, v in sorted(self.amount.items())]
        return " + ".join(parts) if parts else "nothing paid"

    def summary(self) -> str:
        """One line: ``3 calls (1 paid, 2 cached) · 0.017 USDC``."""
        if not self.calls:
            return "no Token Metrics calls"
        bits = [f"{n} {what}" for n, what in ((self.paid, "paid"), (self.cached, "cached")) if n]
        if self.free:  # the footer's words when the attrs carry them: "1 free: symbol lookup"
            bits.append(self.free_text if self.free_text.startswith(f"{self.free} free") else f"{self.free} free")
        word = "call" if self.calls == 1 else "calls"
        line = f"{self.calls} {word} ({', '.join(bits)}) · {self.amount_text()}"
        if self.from_sandbox:
            line += " · SANDBOX"
        return line

    def to_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "paid": self.paid,
            "cached": self.cached,
            "free": self.free,
            "amount": dict(self.amount),
            "receipts": list(self.receipts),
            "networks": list(self.networks),
            "endpoint": self.endpoint,
            "mode": self.mode,
        }

    def __repr__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        style = "font-family:var(--jp-code-font-family,monospace);font-size:12px"
        if not self.calls:
            return f'<div class="tm402-cost" style="{style};color:#777">no Token Metrics calls</div>'
        bits = [f"<b>{html.escape(self.summary().replace(' · SANDBOX', ''))}</b>"]
        if self.endpoint:
            bits.insert(0, f"<code>{html.escape(self.endpoint)}</code>")
        if self.receipts:
            short = ", ".join(
                f'<span title="{html.escape(r)}">{html.escape(r[:10])}…</span>' if len(r) > 12 else html.escape(r)
                for r in self.receipts
            )
            bits.append(f"tx {short}")
        if self.networks:
            bits.append(html.escape(", ".join(self.networks)))
        if self.from_sandbox:
            bits.append('<span style="background:#f0ad4e;color:#000;padding:0 4px;border-radius:3px">SANDBOX</span>')
        return f'<div class="tm402-cost" style="{style}">{" · ".join(bits)}</div>'
