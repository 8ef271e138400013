"""Client and AsyncClient for the Token Metrics v2 API, in x402, API-key and sandbox modes.

``get()`` returns one envelope, ``frame()`` a typed DataFrame (pages, batches,
windows, cache and cost accounting included), ``quote()`` the price from the
402 challenge without paying, and ``request()`` pays any x402 URL under the
same policy and ledger.

The twins are thin I/O executors: they send, sleep and gather. Every decision is
made once, in the modules they share: :mod:`.plan` (which requests answer a
call), :mod:`.paging`, :mod:`.retry`, :mod:`.answers` (answers → errors),
:mod:`.fields` (any key case → the catalogue's names, as each page arrives),
:mod:`.gaps` (a date window that came back short), :mod:`.cache`,
:mod:`.accounting`, :mod:`.symbols`, :mod:`.quote` and :mod:`.frames`. A call's
own choices (asset, per-call cap, refresh, page limit, progress hook) travel down
it as one immutable :class:`CallOptions`; nothing on the shared client changes for
one call, so one client serves concurrent calls.

The server decides what is paid, not the catalogue: an endpoint listed as free is
priced by the same unpaid probe as any multi-call plan (when it answers unpaid,
that answer is the plan's first page), so symbol lookups the server charges for
are quoted and reserved like everything else. A ``/v3`` base URL is refused.

Retries: 429 honours ``Retry-After`` (else exponential backoff with jitter),
bounded; 5xx and network errors are retried only when no payment went out. A
paid hop is never re-signed: the payment layer replays the same header, and an
unresolved payment surfaces as :class:`PaymentOutcomeUnknown`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import re
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from ..errors import ConfigurationError, NotConfirmed, TM402Error
from ..ledger import Ledger
from ..money import AmountLike, to_atomic
from ..x402.auth import X402Auth
from ..x402.messages import PaymentRequired, parse_challenge
from ..x402.policy import usd_text
from ..x402.transport import AsyncPaymentReplayTransport, PaymentReplayTransport
from .accounting import CallAccounting, payment_of_error
from .agent import AgentAnswer, agent_body, agent_reply
from .answers import interpret
from .cache import ResponseCache, cache_owner
from .catalogue import AGENT, SYMBOL_LOOKUP, SYMBOL_RANKING, Endpoint
from .cost import Cost, CostTracker
from .errors import DataNotFound, PlanExceeded, data_not_found
from .gaps import GapWarning, find_gaps, gap_message
from .headers import request_headers, shared_headers
from .modes import Mode
from .options import CallOptions, ProgressHook, payment_token
from .paging import Fetched, Pages, page_wire, unique_rows
from .plan import Plan, PlannedRequest, ValidatedCall, plan_call, to_wire, validate_and_split_symbols
from .progress import progress_for
from .quote import Quote, quote_from
from .retry import RetryPolicy, wait_after_network_error, wait_before_retry
from .symbols import SYMBOL_MAX_AGE, LedgerSymbols, SymbolResolver

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["DEFAULT_BASE_URL", "AsyncClient", "Client", "GapWarning", "MoreRowsWarning", "Quote", "RetryPolicy"]

DEFAULT_BASE_URL = "https://api.tokenmetrics.com/v2"
DEFAULT_TIMEOUT = 30.0
#: What frame() does when the API has no rows: raise DataNotFound, or return an empty frame.
ON_EMPTY = ("raise", "empty")

_T = TypeVar("_T")


class MoreRowsWarning(UserWarning):
    """A frame holds the first pages only (the plan's page limit); the API has more rows."""


class _ClientCore:
    """What both twins share and none of their I/O: configuration, the per-call request pieces,
    what follows an answer (accounting, interpreting, caching) and building frames and quotes."""

    _http: httpx.Client | httpx.AsyncClient

    def __init__(
        self,
        *,
        mode: Mode | str = Mode.X402,
        base_url: str = DEFAULT_BASE_URL,
        auth: X402Auth | None = None,
        api_key: str | None = None,
        pay_with: str = "usdc",
        ledger: Ledger | None = None,
        cache: bool = True,
        cost: CostTracker | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_concurrency: int = 4,
        progress: bool = True,
        session_id: str | None = None,
        on_empty: str = "raise",
        symbol_overrides: Mapping[str, int] | None = None,
        window_days: int | None = None,
        confirm_above: AmountLike | Decimal | None = None,
        confirm: Callable[[Quote], bool] | None = None,
        symbol_max_age: float | None = SYMBOL_MAX_AGE,
    ) -> None:
        try:
            self.mode = Mode(mode)
        except ValueError:
            raise ConfigurationError(f"mode must be one of {', '.join(Mode)}, got {mode!r}") from None
        if self.mode.pays and api_key:
            raise ConfigurationError(
                "an API key was given in x402 mode",
                hint="x402 mode pays per call and must not send x-api-key; use mode='api-key' for a key",
            )
        if self.mode.pays and auth is None:
            raise ConfigurationError("x402 mode needs an X402Auth (a wallet and a spend policy)")
        if not self.mode.pays and not api_key:
            raise ConfigurationError("API-key mode needs an API key", hint="set $TM_API_KEY or pass api_key=")
        if on_empty not in ON_EMPTY:
            raise ConfigurationError("on_empty must be 'raise' or 'empty'")
        _refuse_v3(base_url)
        if window_days is not None and (
            isinstance(window_days, bool) or not isinstance(window_days, int) or window_days < 1
        ):
            raise ConfigurationError(f"window_days must be a whole number of days ≥ 1, got {window_days!r}")
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self._api_key = api_key
        #: The asset calls pay in unless they say otherwise (``pay_with=``).
        self.pay_with = payment_token(pay_with)
        self.ledger = ledger
        self.cost = cost or CostTracker()
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self.max_concurrency = max(1, int(max_concurrency))
        self.progress = progress
        self.session_id = session_id
        self.on_empty = on_empty
        self.window_days = window_days
        #: Plans above this many micro-dollars are put to ``confirm`` before anything is paid.
        self.confirm_above: int | None = (
            None if confirm_above is None else to_atomic(confirm_above, 6, what="confirm_above")
        )
        #: Asked ``confirm(quote)`` about such a plan: True pays, False refuses. None: refuse.
        self.confirm = confirm
        #: Client-wide default for ``on_progress(done, total, stage)``; a call's own ``on_progress=`` wins.
        self.on_progress: ProgressHook | None = None
        self._accounting = CallAccounting(self.cost, ledger, mode=self.mode, session_id=session_id)
        self._cache = ResponseCache(
            ledger if cache else None, self.base_url, cache_owner(self.mode, self.base_url, auth, api_key)
        )
        # Resolved symbols outlive the session in the ledger (per server, for ``symbol_max_age``
        # seconds), unless there is no ledger, caching is off, or the age is None/0.
        store = LedgerSymbols(ledger, self.base_url, symbol_max_age) if ledger and cache and symbol_max_age else None
        self._symbols = SymbolResolver(symbol_overrides, store=store)

    # -- configuration ------------------------------------------------------------------
    @property
    def headers(self) -> dict[str, str]:
        """Headers every request carries (a call's ``x-payment-token`` travels on its own requests)."""
        return shared_headers(self.mode, self._api_key)

    @property
    def symbol_overrides(self) -> dict[str, int]:
        """Upper-case symbol → token id, used before any lookup (editable)."""
        return self._symbols.overrides

    def url_for(self, endpoint: Endpoint) -> str:
        return self.base_url + endpoint.path

    # -- one request's pieces -----------------------------------------------------------
    def _build(
        self,
        http: httpx.Client | httpx.AsyncClient,
        method: str,
        url: str,
        options: CallOptions,
        *,
        headers: Mapping[str, str] | None = None,
        extensions: Mapping[str, Any] | None = None,
        **kw: Any,
    ) -> httpx.Request:
        """A request carrying this call's asset and payment options (a caller's own headers win)."""
        merged = httpx.Headers(request_headers(self.mode, options.pay_with or self.pay_with))
        merged.update(headers or {})
        payment = options.payment(self.pay_with).extensions() if self.mode.pays else {}
        return http.build_request(method, url, headers=merged, extensions={**payment, **(extensions or {})}, **kw)

    # -- what follows an answer (shared by the sync and async executors) ------------------
    def _cached_page(self, endpoint: Endpoint, wire: dict[str, str], options: CallOptions) -> dict[str, Any] | None:
        if options.refresh:
            return None
        envelope = self._cache.get(endpoint, wire)
        if envelope is not None:
            self._accounting.record(endpoint, self.url_for(endpoint), wire, None, 0.0, cached=True)
        return envelope

    def _page_answer(
        self,
        endpoint: Endpoint,
        url: str,
        wire: dict[str, str],
        response: httpx.Response,
        started: float,
        options: CallOptions,
    ) -> dict[str, Any]:
        """Account for a page's answer, interpret it, cache it; the envelope."""
        self._accounting.record(endpoint, url, wire, response, time.perf_counter() - started)
        envelope = interpret(endpoint, response, mode=self.mode, retries=self.retry.attempts)
        self._cache.put(endpoint, wire, response.content, options.ttl)
        return envelope

    def _page_failed(self, endpoint: Endpoint, url: str, wire: dict[str, str], exc: TM402Error, started: float) -> None:
        elapsed = time.perf_counter() - started
        self._accounting.record(endpoint, url, wire, None, elapsed, error=str(exc), payment=payment_of_error(exc))

    def _probe_answer(
        self,
        endpoint: Endpoint,
        url: str,
        wire: dict[str, str],
        response: httpx.Response,
        started: float,
        options: CallOptions,
    ) -> tuple[PaymentRequired | None, dict[str, Any] | None]:
        """An unpaid answer: its challenge (remembered, so the next paid call is warm), or, when
        the endpoint answered unpaid, its envelope (cached: it is data, and it was not paid for)."""
        self._accounting.record(endpoint, url, wire, response, time.perf_counter() - started)
        if response.status_code != 402:
            envelope = interpret(endpoint, response, mode=self.mode, retries=self.retry.attempts)
            self._cache.put(endpoint, wire, response.content, options.ttl)
            return None, envelope
        required = parse_challenge(response.headers, response.content)
        if self.auth is not None:
            # The very request the call will send, so the payment layer finds this challenge for it.
            self.auth.remember(self._build(self._http, "GET", url, options, params=wire), required)
        return required, None

    # -- the plan, its price and its reservation -----------------------------------------
    def _plan(self, endpoint: Endpoint, params: dict[str, Any], options: CallOptions) -> Plan:
        return plan_call(endpoint, params, window_days=self.window_days, max_pages=options.max_pages)

    def _first_request(self, plan: Plan, options: CallOptions) -> httpx.Request:
        """The plan's first request as it will be sent (its challenge prices the plan)."""
        url = self.url_for(plan.endpoint)
        return self._build(self._http, "GET", url, options, params=page_wire(plan.requests[0]))

    def _prices(self, plan: Plan, options: CallOptions) -> bool:
        """Whether ``plan`` may pay, and so is priced and reserved before it runs. An endpoint the
        catalogue lists as free is priced too: the server may charge for it (its unpaid probe is
        then its first page, and costs no extra request)."""
        if self.auth is None or not plan.requests:
            return False
        if plan.calls == 1 and self.confirm_above is None:
            # One payment at most: its own checks under the lock hold every cap (and max_cost)
            # exactly as a reservation would, with no extra round trip.
            return False
        if options.refresh or not plan.exact:
            return True
        # Every request one page, each fresh in the cache: nothing will be paid.
        return any(self._cache.get(plan.endpoint, page_wire(r)) is None for r in plan.requests)

    def _hold(
        self, plan: Plan, params: dict[str, Any], required: PaymentRequired | None, options: CallOptions
    ) -> CallOptions:
        """Reserve the whole plan against every cap (and ask, above ``confirm_above``); the
        options its requests carry, so each payment draws on the reservation."""
        if required is None or self.auth is None:
            return options
        reservation = self.auth.reserve(required, plan.calls, self._first_request(plan, options))
        try:
            if self.confirm_above is not None and reservation.total > self.confirm_above:
                quote = self._quote(plan, params, required, options)
                if self.confirm is None:
                    raise NotConfirmed(
                        f"{plan.endpoint.name} would pay up to {quote.total_text} for {plan.calls} call(s), above "
                        f"confirm_above ({usd_text(self.confirm_above)}), and there is no one to ask",
                        hint="raise confirm_above, or run it where it can ask (a notebook or terminal); nothing was paid",
                        asked_atomic=reservation.total,
                    )
                if not self.confirm(quote):
                    raise NotConfirmed(
                        f"declined: {plan.endpoint.name}, {plan.calls} call(s), up to {quote.total_text}",
                        hint="nothing was paid",
                        asked_atomic=reservation.total,
                    )
        except BaseException:
            reservation.close()
            raise
        return replace(options, reservation=reservation)

    def _frame(
        self,
        plan: Plan,
        fetched: list[Fetched],
        params: dict[str, Any],
        cost: Cost,
        *,
        lowercase: bool,
        tidy: bool,
        warn_more: bool = True,
        on_empty: str | None = None,
    ) -> pd.DataFrame:
        """The call's frame; ``warn_more``: say (MoreRowsWarning) when the plan's default page
        limit left rows behind (a page limit the caller chose is not warned about); ``on_empty``:
        this call's choice when there are no rows (None: the client's)."""
        from .frames import to_frame  # pandas loads on the first frame, not on import

        endpoint = plan.endpoint
        rows = unique_rows(endpoint, fetched)
        exceeded = [f for f in fetched if f.exceeded]
        if not rows and not exceeded and (on_empty or self.on_empty) == "raise":
            raise data_not_found(endpoint.name, next((f.empty_reason for f in fetched if f.empty_reason), "no rows"))
        frame = to_frame(endpoint, rows, lowercase=lowercase, tidy=tidy)
        more = any(f.more for f in fetched)
        gaps = find_gaps(plan.requests, fetched)
        frame.attrs["tm402"] = {
            "endpoint": endpoint.name,
            "params": to_wire(params),
            "mode": str(self.mode),
            "planned_calls": plan.calls,
            "more": more,
            "gaps": [g.as_dict() for g in gaps],
            **cost.as_attrs(),
        }
        if gaps:
            window = self.window_days or endpoint.window_days
            warnings.warn(gap_message(endpoint.name, gaps, window_days=window), GapWarning, stacklevel=3)
        if exceeded:
            raise PlanExceeded(
                f"{endpoint.name}: the server has more rows than the plan allows for "
                f"({sum(len(f.rows) for f in exceeded)} rows in {sum(f.pages for f in exceeded)} page(s) where "
                f"the catalogue expects at most {sum(r.rows or 0 for r in plan.requests if r.rows)}); "
                "paging stopped at the plan's bound and nothing more was paid",
                hint="the rows fetched are on the error's .partial; pass max_pages=N to allow more pages",
                partial=frame,
            )
        if more and warn_more:
            warnings.warn(
                f"{endpoint.name}: {len(rows)} rows from the first {plan.calls} page(s); more rows may exist "
                "(max_pages=N, or --pages N in a notebook, fetches more: each page is a call)",
                MoreRowsWarning,
                stacklevel=3,  # the line that called frame()
            )
        return frame

    def _quote(
        self,
        plan: Plan,
        params: dict[str, Any],
        required: PaymentRequired | None,
        options: CallOptions,
        *,
        lookups: int = 0,
        lookup_prices: tuple[tuple[PaymentRequired, int], ...] = (),
    ) -> Quote:
        policy = self.auth.policy if self.auth is not None else None
        return quote_from(
            plan.endpoint,
            to_wire(params),
            plan,
            required,
            mode=self.mode,
            policy=policy,
            pay_with=options.pay_with or self.pay_with,
            lookups=lookups,
            lookup_prices=lookup_prices,
            ledger=self.auth.ledger if self.auth is not None else None,
        )

    def _stand_in_quote_params(self, call: ValidatedCall) -> tuple[dict[str, Any], dict[str, Any], dict[str, int]]:
        """For a quote whose symbol lookups would be paid: the call's parameters with a stand-in id per
        unresolved symbol (its plan has as many ids as the real one at most), the parameters as the
        quote shows them (with the symbols), and symbol → id (stand-ins negative)."""
        stand_ins = self._symbols.placeholders(self._symbols.wanted(call.symbols))
        params = call.with_token_ids(stand_ins.values())
        shown = {**call.params, "symbol": list(stand_ins)}
        return params, shown, stand_ins

    def _lookup_plan(self, missing: list[str]) -> Plan:
        return Plan(SYMBOL_LOOKUP, tuple(self._symbols.lookups(missing)))

    def _ranking_plan(self) -> Plan:
        return Plan(SYMBOL_RANKING, (self._symbols.ranking(),))

    def _agent_request(self, question: str) -> tuple[Endpoint, str, dict[str, Any]]:
        """The agent's endpoint, URL and body for ``question`` (ParamError before anything is sent)."""
        return AGENT, self.url_for(AGENT), agent_body(question)

    def _agent_answer(
        self, ep: Endpoint, url: str, body: dict[str, Any], response: httpx.Response, started: float, cost: Cost
    ) -> AgentAnswer:
        """Account for the agent's answer and read it (a typed error when it is not one)."""
        self._accounting.record(ep, url, _agent_params(body), response, time.perf_counter() - started)
        text, thread = agent_reply(ep, response, mode=self.mode, retries=self.retry.attempts)
        question = body["messages"][-1]["user"]
        return AgentAnswer(question, text, thread, {"endpoint": ep.name, "mode": str(self.mode), **cost.as_attrs()})

    def _lookups_needed(self, call: ValidatedCall) -> int:
        """How many symbol lookups resolving ``call`` needs now (none once remembered)."""
        if not call.symbols:
            return 0
        missing = self._symbols.missing(self._symbols.wanted(call.symbols))
        return len(self._symbols.lookups(missing)) if missing else 0


class Client(_ClientCore):
    """Synchronous client. Thread-safe; batches run on a small thread pool.

    >>> import tm402_nb as tm                                   # doctest: +SKIP
    >>> s = tm.connect(mode="sandbox")                           # doctest: +SKIP
    >>> s.client.frame("tm-grade", symbol=["BTC", "ETH"])        # doctest: +SKIP
    """

    _http: httpx.Client

    def __init__(self, *, transport: httpx.BaseTransport | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self._http = httpx.Client(
            auth=self.auth,
            timeout=self.timeout,
            headers=self.headers,
            transport=PaymentReplayTransport(transport) if self.auth is not None else transport,
            limits=httpx.Limits(max_connections=max(10, self.max_concurrency * 2)),
        )
        #: Unpaid requests (quotes read the price from the challenge).
        self._bare = httpx.Client(timeout=self.timeout, headers=self.headers, transport=transport)

    # -- the public calls ------------------------------------------------------------------
    def get(
        self,
        endpoint: str | Endpoint,
        *,
        refresh: bool = False,
        pay_with: str | None = None,
        max_per_call: AmountLike | Decimal | None = None,
        **params: Any,
    ) -> dict[str, Any]:
        """One request (no paging): the API's envelope ``{success, message, length, data}``.

        ``pay_with`` ("usdc"/"tmai") and ``max_per_call`` (USD) apply to this call only.
        """
        options = CallOptions(pay_with=pay_with, max_per_call=max_per_call, refresh=refresh)
        call = validate_and_split_symbols(endpoint, params)
        params, _ = self._token_params(call, options)
        return self._get_page(call.endpoint, to_wire(params), options)

    def frame(
        self,
        endpoint: str | Endpoint,
        *,
        refresh: bool = False,
        lowercase: bool = False,
        tidy: bool = True,
        ttl: float | None = None,
        max_pages: int | None = None,
        pay_with: str | None = None,
        max_per_call: AmountLike | Decimal | None = None,
        max_cost: AmountLike | Decimal | None = None,
        on_progress: ProgressHook | None = None,
        on_empty: str | None = None,
        **params: Any,
    ) -> pd.DataFrame:
        """A typed DataFrame for ``endpoint`` (all pages, batches and windows of its plan).

        The plan is priced and reserved against every cap before the first payment, and the
        run never pays past it. ``df.attrs["tm402"]`` holds the endpoint, params, calls made,
        paid/cached counts, amounts per asset and receipts. ``refresh``, ``ttl``, ``max_pages``,
        ``pay_with``, ``max_per_call`` (USD per payment), ``max_cost`` (USD for the whole call),
        ``on_progress(done, total, stage)`` and ``on_empty`` ("raise" DataNotFound or return an
        "empty" frame when there are no rows) apply to this call only.
        """
        options = CallOptions(
            pay_with=pay_with,
            max_per_call=max_per_call,
            max_cost=max_cost,
            refresh=refresh,
            ttl=ttl,
            max_pages=max_pages,
            on_progress=on_progress,
        )
        if on_empty is not None and on_empty not in ON_EMPTY:
            raise ConfigurationError("on_empty must be 'raise' or 'empty'")
        call = validate_and_split_symbols(endpoint, params)
        ep = call.endpoint
        with self.cost.tally(ep.name) as cost:
            params, spent = self._token_params(call, options)
            run = options.after_spending(spent)  # what the symbol lookups paid comes off max_cost
            plan = self._plan(ep, params, run)
            run = self._reserve(plan, params, run)
            try:
                fetched = self._fetch_all(list(plan.requests), run)
            finally:
                if run.reservation is not None:
                    run.reservation.close()  # what the plan did not use goes back
            return self._frame(
                plan,
                fetched,
                params,
                cost,
                lowercase=lowercase,
                tidy=tidy,
                warn_more=options.max_pages is None,
                on_empty=on_empty,
            )

    def quote(
        self, endpoint: str | Endpoint, *, pay_with: str | None = None, max_pages: int | None = None, **params: Any
    ) -> Quote:
        """What ``frame(endpoint, **params)`` would pay at most (its plan, priced), paying nothing."""
        options = CallOptions(pay_with=pay_with, max_pages=max_pages)
        call = validate_and_split_symbols(endpoint, params)
        lookups = self._lookups_needed(call)
        lookup_prices: tuple[tuple[PaymentRequired, int], ...] = ()
        stand_ins: dict[str, int] = {}
        try:
            params, _ = self._token_params(call, options, quoting=True)
            shown = params
        except _PaidLookups as paid:  # resolving the symbols would pay: priced, not paid
            params, shown, stand_ins = self._stand_in_quote_params(call)
            lookup_prices = ((paid.required, paid.plan.calls), *self._ranking_price(paid.plan, options))
        plan = self._plan(call.endpoint, params, options)
        required = None
        if self.mode.pays:
            required = self._challenge(call.endpoint, _probe_wire(page_wire(plan.requests[0]), stand_ins), options)
        return self._quote(plan, shown, required, options, lookups=lookups, lookup_prices=lookup_prices)

    def request(
        self,
        method: str,
        url: str,
        *,
        pay_with: str | None = None,
        max_per_call: AmountLike | Decimal | None = None,
        **kw: Any,
    ) -> httpx.Response:
        """Any HTTP request (``kw`` as for httpx), paying x402 challenges under the same policy and ledger."""
        options = CallOptions(pay_with=pay_with, max_per_call=max_per_call)
        started = time.perf_counter()
        response = self._send(method, url, options, **kw)
        self._accounting.record(None, url, None, response, time.perf_counter() - started)
        return response

    def resolve_symbols(self, symbols: Iterable[str] | str) -> dict[str, int]:
        """Symbols → token ids (highest market cap among same-symbol tokens, overridable); remembered."""
        return self._resolve(symbols, CallOptions())[0]

    def ask(
        self, question: str, *, pay_with: str | None = None, max_cost: AmountLike | Decimal | None = None
    ) -> AgentAnswer:
        """Ask TMAI, the AI agent (``POST /v2/tmai``): one paid call, under every cap and ``max_cost`` (USD)."""
        options = CallOptions(pay_with=pay_with, max_cost=max_cost)
        ep, url, body = self._agent_request(question)
        with self.cost.tally(ep.name) as cost:
            started = time.perf_counter()
            try:
                response = self._send("POST", url, options, json=body)
            except TM402Error as exc:
                self._page_failed(ep, url, _agent_params(body), exc, started)
                raise
            return self._agent_answer(ep, url, body, response, started, cost)

    def close(self) -> None:
        """Close the connections."""
        self._http.close()
        self._bare.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client(mode={self.mode}, base_url={self.base_url})"

    # -- I/O ---------------------------------------------------------------------------------
    def _send(self, method: str, url: str, options: CallOptions, *, unpaid: bool = False, **kw: Any) -> httpx.Response:
        """One request with bounded retries (decided in :mod:`.retry`); ``unpaid``: on the client
        that never pays (a probe), so no retry can concern a payment."""
        http, auth = (self._bare, None) if unpaid else (self._http, self.auth)
        for attempt in range(self.retry.attempts + 1):
            # A fresh request each attempt: nothing from a previous attempt (a payment
            # header, a consumed stream) can leak into the next.
            request = self._build(http, method, url, options, **kw)
            try:
                response = http.send(request)
            except httpx.TransportError as exc:
                time.sleep(wait_after_network_error(self.retry, auth, request, exc, attempt))
                continue
            wait = wait_before_retry(self.retry, auth, response, attempt)
            if wait is None:
                return response
            response.close()
            time.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _get_page(self, endpoint: Endpoint, wire: dict[str, str], options: CallOptions) -> dict[str, Any]:
        answer = options.answer_for(endpoint.name, wire)  # the probe that priced the plan found it free
        if answer is not None:
            return answer
        cached = self._cached_page(endpoint, wire, options)
        if cached is not None:
            return cached
        url = self.url_for(endpoint)
        started = time.perf_counter()
        try:
            response = self._send("GET", url, options, params=wire)
        except TM402Error as exc:
            self._page_failed(endpoint, url, wire, exc, started)
            raise
        return self._page_answer(endpoint, url, wire, response, started, options)

    def _fetch(self, planned: PlannedRequest, options: CallOptions) -> Fetched:
        """Every page of one planned request."""
        pages = Pages(planned)
        while (wire := pages.next()) is not None:
            try:
                pages.add(self._get_page(planned.endpoint, wire, options)["data"])
            except DataNotFound as exc:
                pages.not_found(exc.details.get("reason") or exc.message)
        return pages.fetched

    def _fetch_all(self, plans: list[PlannedRequest], options: CallOptions) -> list[Fetched]:
        """Every planned request, ``max_concurrency`` at a time; results in request order."""
        bar = progress_for(len(plans), enabled=self.progress, hook=options.on_progress or self.on_progress)
        try:
            if len(plans) == 1:
                return [self._fetch(plans[0], options)]
            results = []
            with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(plans))) as pool:
                futures = [pool.submit(_in_this_context(self._fetch), p, options) for p in plans]
                for f in futures:  # request order, whatever finished first
                    results.append(f.result())
                    if bar is not None:
                        bar.update(1)
            return results
        finally:
            if bar is not None:
                bar.close()

    def _token_params(
        self, call: ValidatedCall, options: CallOptions, *, quoting: bool = False
    ) -> tuple[dict[str, Any], int]:
        """The call's parameters with its symbols resolved to token ids, and the micro-dollars
        the lookups paid (``quoting``: nothing is paid; _PaidLookups when it would be)."""
        if not call.symbols:
            return call.params, 0
        ids, spent = self._resolve(call.symbols, options, quoting=quoting)
        return call.with_token_ids(ids.values()), spent

    def _resolve(
        self, symbols: Iterable[str] | str, options: CallOptions, *, quoting: bool = False
    ) -> tuple[dict[str, int], int]:
        resolver = self._symbols
        wanted = resolver.wanted(symbols)
        missing = resolver.missing(wanted)
        spent = 0
        if missing:
            lookup = options.for_lookup()
            fetched, paid = self._fetch_plan(self._lookup_plan(missing), lookup, quoting=quoting)
            spent += paid
            rows = [row for f in fetched for row in f.rows]
            if resolver.needs_ranking(rows, missing):
                ranking, paid = self._fetch_plan(self._ranking_plan(), lookup.after_spending(spent), quoting=quoting)
                spent += paid
                resolver.learn_ranking(ranking[0].rows)
            resolver.learn(missing, rows)
        return resolver.ids(wanted), spent

    def _fetch_plan(self, plan: Plan, options: CallOptions, *, quoting: bool = False) -> tuple[list[Fetched], int]:
        """Every request of a symbol-lookup ``plan``, reserved first if the server charges for it,
        and the micro-dollars it paid. ``quoting``: pays nothing, raises _PaidLookups if it would."""
        if quoting and self.auth is not None:
            required = self.auth.challenge_for(self._first_request(plan, options))
            wire = page_wire(plan.requests[0])
            envelope = None
            if required is None:
                with contextlib.suppress(DataNotFound):
                    required, envelope = self._probe(plan.endpoint, wire, options)
            if required is not None:
                raise _PaidLookups(plan, required)
            options = _never_pays(options, plan, wire, envelope)
            return self._fetch_all(list(plan.requests), options), 0
        run = self._reserve(plan, {}, options)
        try:
            return self._fetch_all(list(plan.requests), run), _used(run)
        finally:
            if run.reservation is not None:
                run.reservation.close()

    def _ranking_price(self, paid: Plan, options: CallOptions) -> tuple[tuple[PaymentRequired, int], ...]:
        """For a quote whose lookups are paid: the market-cap ranking's price too, when it may be needed."""
        if paid.endpoint is not SYMBOL_LOOKUP or self._symbols.ranked or self.auth is None:
            return ()
        ranking = self._ranking_plan()
        required = self.auth.challenge_for(self._first_request(ranking, options))
        if required is None:
            with contextlib.suppress(DataNotFound):
                required = self._challenge(ranking.endpoint, page_wire(ranking.requests[0]), options)
        return ((required, ranking.calls),) if required is not None else ()

    def _probe(
        self, endpoint: Endpoint, wire: dict[str, str], options: CallOptions
    ) -> tuple[PaymentRequired | None, dict[str, Any] | None]:
        """One unpaid request: its 402 challenge, or its answer when the endpoint answered unpaid."""
        url = self.url_for(endpoint)
        started = time.perf_counter()
        response = self._send("GET", url, options, unpaid=True, params=wire)
        return self._probe_answer(endpoint, url, wire, response, started, options)

    def _challenge(self, endpoint: Endpoint, wire: dict[str, str], options: CallOptions) -> PaymentRequired | None:
        """The 402 challenge for a request, fetched unpaid; None for a free answer."""
        return self._probe(endpoint, wire, options)[0]

    def _reserve(self, plan: Plan, params: dict[str, Any], options: CallOptions) -> CallOptions:
        """Price the plan (from a remembered challenge, else one unpaid probe whose challenge
        the first payment then reuses, or whose free answer is the plan's first page) and
        reserve it; the options its requests carry."""
        if self.auth is None or not self._prices(plan, options):
            return options
        required = self.auth.challenge_for(self._first_request(plan, options))
        if required is None:
            wire = page_wire(plan.requests[0])
            try:
                required, envelope = self._probe(plan.endpoint, wire, options)
            except DataNotFound:
                required = envelope = None  # nothing there to price: its pages are refused unpaid, or capped one by one
            if envelope is not None:
                return options.with_answer(plan.endpoint.name, wire, envelope)
        return self._hold(plan, params, required, options)


class AsyncClient(_ClientCore):
    """Asynchronous client over ``httpx.AsyncClient``; batches run concurrently up to ``max_concurrency``.

    >>> import tm402_nb as tm                                          # doctest: +SKIP
    >>> async with tm.connect(mode="sandbox").async_client() as c:      # doctest: +SKIP
    ...     df = await c.frame("tm-grade", symbol=["BTC", "ETH"])
    """

    _http: httpx.AsyncClient

    def __init__(self, *, transport: httpx.AsyncBaseTransport | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self._http = httpx.AsyncClient(
            auth=self.auth,
            timeout=self.timeout,
            headers=self.headers,
            transport=AsyncPaymentReplayTransport(transport) if self.auth is not None else transport,
            limits=httpx.Limits(max_connections=max(10, self.max_concurrency * 2)),
        )
        #: Unpaid requests (quotes read the price from the challenge).
        self._bare = httpx.AsyncClient(timeout=self.timeout, headers=self.headers, transport=transport)

    # -- the public calls ------------------------------------------------------------------
    async def get(
        self,
        endpoint: str | Endpoint,
        *,
        refresh: bool = False,
        pay_with: str | None = None,
        max_per_call: AmountLike | Decimal | None = None,
        **params: Any,
    ) -> dict[str, Any]:
        """One request (no paging): the API's envelope ``{success, message, length, data}``.

        ``pay_with`` ("usdc"/"tmai") and ``max_per_call`` (USD) apply to this call only.
        """
        options = CallOptions(pay_with=pay_with, max_per_call=max_per_call, refresh=refresh)
        call = validate_and_split_symbols(endpoint, params)
        params, _ = await self._token_params(call, options)
        return await self._get_page(call.endpoint, to_wire(params), options)

    async def frame(
        self,
        endpoint: str | Endpoint,
        *,
        refresh: bool = False,
        lowercase: bool = False,
        tidy: bool = True,
        ttl: float | None = None,
        max_pages: int | None = None,
        pay_with: str | None = None,
        max_per_call: AmountLike | Decimal | None = None,
        max_cost: AmountLike | Decimal | None = None,
        on_progress: ProgressHook | None = None,
        on_empty: str | None = None,
        **params: Any,
    ) -> pd.DataFrame:
        """A typed DataFrame for ``endpoint`` (all pages, batches and windows of its plan).

        The plan is priced and reserved against every cap before the first payment, and the
        run never pays past it. ``df.attrs["tm402"]`` holds the endpoint, params, calls made,
        paid/cached counts, amounts per asset and receipts. ``refresh``, ``ttl``, ``max_pages``,
        ``pay_with``, ``max_per_call`` (USD per payment), ``max_cost`` (USD for the whole call),
        ``on_progress(done, total, stage)`` and ``on_empty`` ("raise" DataNotFound or return an
        "empty" frame when there are no rows) apply to this call only.
        """
        options = CallOptions(
            pay_with=pay_with,
            max_per_call=max_per_call,
            max_cost=max_cost,
            refresh=refresh,
            ttl=ttl,
            max_pages=max_pages,
            on_progress=on_progress,
        )
        if on_empty is not None and on_empty not in ON_EMPTY:
            raise ConfigurationError("on_empty must be 'raise' or 'empty'")
        call = validate_and_split_symbols(endpoint, params)
        ep = call.endpoint
        with self.cost.tally(ep.name) as cost:
            params, spent = await self._token_params(call, options)
            run = options.after_spending(spent)  # what the symbol lookups paid comes off max_cost
            plan = self._plan(ep, params, run)
            run = await self._reserve(plan, params, run)
            try:
                fetched = await self._fetch_all(list(plan.requests), run)
            finally:
                if run.reservation is not None:
                    run.reservation.close()  # what the plan did not use goes back
            return self._frame(
                plan,
                fetched,
                params,
                cost,
                lowercase=lowercase,
                tidy=tidy,
                warn_more=options.max_pages is None,
                on_empty=on_empty,
            )

    async def quote(
        self, endpoint: str | Endpoint, *, pay_with: str | None = None, max_pages: int | None = None, **params: Any
    ) -> Quote:
        """What ``frame(endpoint, **params)`` would pay at most (its plan, priced), paying nothing."""
        options = CallOptions(pay_with=pay_with, max_pages=max_pages)
        call = validate_and_split_symbols(endpoint, params)
        lookups = self._lookups_needed(call)
        lookup_prices: tuple[tuple[PaymentRequired, int], ...] = ()
        stand_ins: dict[str, int] = {}
        try:
            params, _ = await self._token_params(call, options, quoting=True)
            shown = params
        except _PaidLookups as paid:  # resolving the symbols would pay: priced, not paid
            params, shown, stand_ins = self._stand_in_quote_params(call)
            lookup_prices = ((paid.required, paid.plan.calls), *await self._ranking_price(paid.plan, options))
        plan = self._plan(call.endpoint, params, options)
        required = None
        if self.mode.pays:
            wire = _probe_wire(page_wire(plan.requests[0]), stand_ins)
            required = await self._challenge(call.endpoint, wire, options)
        return self._quote(plan, shown, required, options, lookups=lookups, lookup_prices=lookup_prices)

    async def request(
        self,
        method: str,
        url: str,
        *,
        pay_with: str | None = None,
        max_per_call: AmountLike | Decimal | None = None,
        **kw: Any,
    ) -> httpx.Response:
        """Any HTTP request (``kw`` as for httpx), paying x402 challenges under the same policy and ledger."""
        options = CallOptions(pay_with=pay_with, max_per_call=max_per_call)
        started = time.perf_counter()
        response = await self._send(method, url, options, **kw)
        self._accounting.record(None, url, None, response, time.perf_counter() - started)
        return response

    async def resolve_symbols(self, symbols: Iterable[str] | str) -> dict[str, int]:
        """Symbols → token ids (highest market cap among same-symbol tokens, overridable); remembered."""
        return (await self._resolve(symbols, CallOptions()))[0]

    async def ask(
        self, question: str, *, pay_with: str | None = None, max_cost: AmountLike | Decimal | None = None
    ) -> AgentAnswer:
        """Ask TMAI, the AI agent (``POST /v2/tmai``): one paid call, under every cap and ``max_cost`` (USD)."""
        options = CallOptions(pay_with=pay_with, max_cost=max_cost)
        ep, url, body = self._agent_request(question)
        with self.cost.tally(ep.name) as cost:
            started = time.perf_counter()
            try:
                response = await self._send("POST", url, options, json=body)
            except TM402Error as exc:
                self._page_failed(ep, url, _agent_params(body), exc, started)
                raise
            return self._agent_answer(ep, url, body, response, started, cost)

    async def aclose(self) -> None:
        """Close the connections."""
        await self._http.aclose()
        await self._bare.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"AsyncClient(mode={self.mode}, base_url={self.base_url})"

    # -- I/O ---------------------------------------------------------------------------------
    async def _send(
        self, method: str, url: str, options: CallOptions, *, unpaid: bool = False, **kw: Any
    ) -> httpx.Response:
        """One request with bounded retries (decided in :mod:`.retry`); ``unpaid``: on the client
        that never pays (a probe), so no retry can concern a payment."""
        http, auth = (self._bare, None) if unpaid else (self._http, self.auth)
        for attempt in range(self.retry.attempts + 1):
            # A fresh request each attempt: nothing from a previous attempt (a payment
            # header, a consumed stream) can leak into the next.
            request = self._build(http, method, url, options, **kw)
            try:
                response = await http.send(request)
            except httpx.TransportError as exc:
                await asyncio.sleep(wait_after_network_error(self.retry, auth, request, exc, attempt))
                continue
            wait = wait_before_retry(self.retry, auth, response, attempt)
            if wait is None:
                return response
            await response.aclose()
            await asyncio.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _get_page(self, endpoint: Endpoint, wire: dict[str, str], options: CallOptions) -> dict[str, Any]:
        answer = options.answer_for(endpoint.name, wire)  # the probe that priced the plan found it free
        if answer is not None:
            return answer
        cached = self._cached_page(endpoint, wire, options)
        if cached is not None:
            return cached
        url = self.url_for(endpoint)
        started = time.perf_counter()
        try:
            response = await self._send("GET", url, options, params=wire)
        except TM402Error as exc:
            self._page_failed(endpoint, url, wire, exc, started)
            raise
        return self._page_answer(endpoint, url, wire, response, started, options)

    async def _fetch(self, planned: PlannedRequest, options: CallOptions) -> Fetched:
        """Every page of one planned request."""
        pages = Pages(planned)
        while (wire := pages.next()) is not None:
            try:
                pages.add((await self._get_page(planned.endpoint, wire, options))["data"])
            except DataNotFound as exc:
                pages.not_found(exc.details.get("reason") or exc.message)
        return pages.fetched

    async def _fetch_all(self, plans: list[PlannedRequest], options: CallOptions) -> list[Fetched]:
        """Every planned request, ``max_concurrency`` at a time; results in request order."""
        bar = progress_for(len(plans), enabled=self.progress, hook=options.on_progress or self.on_progress)
        gate = asyncio.Semaphore(self.max_concurrency)

        async def one(planned: PlannedRequest) -> Fetched:
            async with gate:
                fetched = await self._fetch(planned, options)
            if bar is not None:
                bar.update(1)
            return fetched

        try:
            return list(await asyncio.gather(*(one(p) for p in plans)))
        finally:
            if bar is not None:
                bar.close()

    async def _token_params(
        self, call: ValidatedCall, options: CallOptions, *, quoting: bool = False
    ) -> tuple[dict[str, Any], int]:
        """The call's parameters with its symbols resolved to token ids, and the micro-dollars
        the lookups paid (``quoting``: nothing is paid; _PaidLookups when it would be)."""
        if not call.symbols:
            return call.params, 0
        ids, spent = await self._resolve(call.symbols, options, quoting=quoting)
        return call.with_token_ids(ids.values()), spent

    async def _resolve(
        self, symbols: Iterable[str] | str, options: CallOptions, *, quoting: bool = False
    ) -> tuple[dict[str, int], int]:
        resolver = self._symbols
        wanted = resolver.wanted(symbols)
        missing = resolver.missing(wanted)
        spent = 0
        if missing:
            lookup = options.for_lookup()
            fetched, paid = await self._fetch_plan(self._lookup_plan(missing), lookup, quoting=quoting)
            spent += paid
            rows = [row for f in fetched for row in f.rows]
            if resolver.needs_ranking(rows, missing):
                ranking, paid = await self._fetch_plan(
                    self._ranking_plan(), lookup.after_spending(spent), quoting=quoting
                )
                spent += paid
                resolver.learn_ranking(ranking[0].rows)
            resolver.learn(missing, rows)
        return resolver.ids(wanted), spent

    async def _fetch_plan(
        self, plan: Plan, options: CallOptions, *, quoting: bool = False
    ) -> tuple[list[Fetched], int]:
        """Every request of a symbol-lookup ``plan``, reserved first if the server charges for it,
        and the micro-dollars it paid. ``quoting``: pays nothing, raises _PaidLookups if it would."""
        if quoting and self.auth is not None:
            required = self.auth.challenge_for(self._first_request(plan, options))
            wire = page_wire(plan.requests[0])
            envelope = None
            if required is None:
                with contextlib.suppress(DataNotFound):
                    required, envelope = await self._probe(plan.endpoint, wire, options)
            if required is not None:
                raise _PaidLookups(plan, required)
            options = _never_pays(options, plan, wire, envelope)
            return await self._fetch_all(list(plan.requests), options), 0
        run = await self._reserve(plan, {}, options)
        try:
            return await self._fetch_all(list(plan.requests), run), _used(run)
        finally:
            if run.reservation is not None:
                run.reservation.close()

    async def _ranking_price(self, paid: Plan, options: CallOptions) -> tuple[tuple[PaymentRequired, int], ...]:
        """For a quote whose lookups are paid: the market-cap ranking's price too, when it may be needed."""
        if paid.endpoint is not SYMBOL_LOOKUP or self._symbols.ranked or self.auth is None:
            return ()
        ranking = self._ranking_plan()
        required = self.auth.challenge_for(self._first_request(ranking, options))
        if required is None:
            with contextlib.suppress(DataNotFound):
                required = await self._challenge(ranking.endpoint, page_wire(ranking.requests[0]), options)
        return ((required, ranking.calls),) if required is not None else ()

    async def _probe(
        self, endpoint: Endpoint, wire: dict[str, str], options: CallOptions
    ) -> tuple[PaymentRequired | None, dict[str, Any] | None]:
        """One unpaid request: its 402 challenge, or its answer when the endpoint answered unpaid."""
        url = self.url_for(endpoint)
        started = time.perf_counter()
        response = await self._send("GET", url, options, unpaid=True, params=wire)
        return self._probe_answer(endpoint, url, wire, response, started, options)

    async def _challenge(
        self, endpoint: Endpoint, wire: dict[str, str], options: CallOptions
    ) -> PaymentRequired | None:
        """The 402 challenge for a request, fetched unpaid; None for a free answer."""
        return (await self._probe(endpoint, wire, options))[0]

    async def _reserve(self, plan: Plan, params: dict[str, Any], options: CallOptions) -> CallOptions:
        """Price the plan (from a remembered challenge, else one unpaid probe whose challenge
        the first payment then reuses, or whose free answer is the plan's first page) and
        reserve it; the options its requests carry."""
        if self.auth is None or not self._prices(plan, options):
            return options
        required = self.auth.challenge_for(self._first_request(plan, options))
        if required is None:
            wire = page_wire(plan.requests[0])
            try:
                required, envelope = await self._probe(plan.endpoint, wire, options)
            except DataNotFound:
                required = envelope = None  # nothing there to price: its pages are refused unpaid, or capped one by one
            if envelope is not None:
                return options.with_answer(plan.endpoint.name, wire, envelope)
        return self._hold(plan, params, required, options)


def _agent_params(body: dict[str, Any]) -> dict[str, str]:
    """What the ledger's call row records of an agent request: the question, shortened."""
    return {"question": str(body["messages"][-1]["user"])[:200]}


class _PaidLookups(Exception):
    """A quote's symbol lookups would pay: ``required`` prices ``plan``."""

    def __init__(self, plan: Plan, required: PaymentRequired) -> None:
        super().__init__(plan.endpoint.name)
        self.plan = plan
        self.required = required


def _never_pays(options: CallOptions, plan: Plan, wire: dict[str, str], envelope: dict[str, Any] | None) -> CallOptions:
    """A quote's options for a lookup the server answered unpaid: its first answer in hand, and a
    per-call cap of zero, so a page that unexpectedly asks for payment is refused, never paid."""
    options = replace(options, max_per_call=0, max_cost=None)
    return options.with_answer(plan.endpoint.name, wire, envelope) if envelope is not None else options


def _used(options: CallOptions) -> int:
    """Micro-dollars the plan run with ``options`` drew on its reservation."""
    r = options.reservation
    return 0 if r is None else r.total - r.remaining


def _probe_wire(wire: dict[str, str], stand_ins: dict[str, int]) -> dict[str, str]:
    """``wire`` with the stand-in ids of a quote (negative) sent as the symbols they stand for."""
    standing = {str(i): symbol for symbol, i in stand_ins.items() if i < 0}
    if not standing or "token_id" not in wire:
        return wire
    ids = wire["token_id"].split(",")
    out = {k: v for k, v in wire.items() if k != "token_id"}
    real = [i for i in ids if i not in standing]
    if real:
        out["token_id"] = ",".join(real)
    out["symbol"] = ",".join(standing[i] for i in ids if i in standing)
    return out


_V3 = re.compile(r"(^|/)v3(/|$)", re.IGNORECASE)


def _refuse_v3(base_url: str) -> None:
    """A ``/v3`` root is refused: v3 takes other parameter names, and v2 ones sent there would be
    ignored or misread without an error (a silently wrong answer is worse than none)."""
    try:
        path = httpx.URL(base_url).path
    except httpx.InvalidURL:
        raise ConfigurationError(f"base_url is not a URL: {base_url!r}") from None
    if _V3.search(path):
        raise ConfigurationError(
            f"base_url {base_url!r} is the Token Metrics v3 API, which this client does not speak: v3 takes "
            "snake_case parameters (start_date, end_date, ...) and serves other fields",
            hint=f"use the v2 API, base_url={DEFAULT_BASE_URL!r} (the default); nothing was sent",
        )


def _in_this_context(fn: Callable[..., _T]) -> Callable[..., _T]:
    """``fn`` run in a copy of the caller's context: pool threads then see the notebook cell id
    (their ledger rows name the cell)."""
    ctx = contextvars.copy_context()

    def run(*args: Any) -> _T:
        return ctx.copy().run(fn, *args)

    return run
