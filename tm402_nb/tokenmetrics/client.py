"""Client and AsyncClient for the Token Metrics v2 API, in x402, API-key and sandbox modes.

``get()`` returns one envelope, ``frame()`` a typed DataFrame (pages, batches,
windows, cache and cost accounting included), ``quote()`` the price from the
402 challenge without paying, and ``request()`` pays any x402 URL under the
same policy and ledger.

Retries: 429 honours ``Retry-After`` (else exponential backoff with jitter),
bounded; 5xx and network errors are retried only when no payment went out. A
paid hop is never re-signed: the payment layer replays the same header, and an
unresolved payment surfaces as :class:`PaymentOutcomeUnknown`.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from ..errors import ConfigurationError, PaymentRefused, TM402Error, X402ProtocolError
from ..ledger import CallRecord, Ledger
from ..x402.auth import X402Auth, payment_of
from ..x402.messages import PaymentRequired, parse_challenge
from ..x402.money import format_amount
from ..x402.transport import AsyncPaymentReplayTransport, PaymentReplayTransport
from .catalogue import SYMBOL_LOOKUP, SYMBOL_RANKING, Endpoint, get_endpoint
from .cost import CallCost, Cost, CostTracker, current_cell_id
from .errors import APIError, DataNotFound, ParamError, RateLimited, UnknownSymbol
from .plan import PlannedRequest, cache_key, plan_requests, to_wire, validate_params
from .retry import RetryPolicy, wait_after_network_error, wait_before_retry

__all__ = ["DEFAULT_BASE_URL", "AsyncClient", "Client", "Quote", "RetryPolicy"]

DEFAULT_BASE_URL = "https://api.tokenmetrics.com/v2"
DEFAULT_TIMEOUT = 30.0
MODES = ("x402", "api-key", "sandbox")


@dataclass(frozen=True)
class Quote:
    """What a request would cost, read from the 402 challenge; nothing paid."""

    endpoint: str
    params: dict[str, str]
    calls: int
    per_call: int = 0
    asset: str | None = None
    decimals: int = 6
    network: str | None = None
    pay_to: str | None = None
    offers: tuple[str, ...] = ()
    refused: str | None = None
    mode: str = "x402"

    @property
    def free(self) -> bool:
        return self.per_call == 0

    @property
    def total(self) -> int:
        return self.per_call * self.calls

    @property
    def total_text(self) -> str:
        return format_amount(self.total, self.decimals, self.asset or "USDC")

    def __repr__(self) -> str:
        if self.mode == "api-key":
            return f"<Quote {self.endpoint}: {self.calls} call(s), API-key mode: no payment>"
        if self.free:
            return f"<Quote {self.endpoint}: {self.calls} call(s), free>"
        each = format_amount(self.per_call, self.decimals, self.asset or "")
        s = f"<Quote {self.endpoint}: {self.calls} call(s) × {each} = {self.total_text} on {self.network}"
        if self.refused:
            s += f"; would be refused: {self.refused}"
        return s + ">"


@dataclass
class _Fetched:
    rows: list[dict[str, Any]] = field(default_factory=list)
    empty_reason: str | None = None


class _ClientBase:
    """Everything but the I/O: configuration, validation, planning, interpreting answers, frames."""

    def __init__(
        self,
        *,
        mode: str = "x402",
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
    ) -> None:
        if mode not in MODES:
            raise ConfigurationError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if mode in ("x402", "sandbox") and api_key:
            raise ConfigurationError(
                "an API key was given in x402 mode",
                hint="x402 mode pays per call and must not send x-api-key; use mode='api-key' for a key",
            )
        if mode in ("x402", "sandbox") and auth is None:
            raise ConfigurationError("x402 mode needs an X402Auth (a wallet and a spend policy)")
        if mode == "api-key" and not api_key:
            raise ConfigurationError("API-key mode needs an API key", hint="set $TM_API_KEY or pass api_key=")
        if on_empty not in ("raise", "empty"):
            raise ConfigurationError("on_empty must be 'raise' or 'empty'")
        self.mode = mode
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self._api_key = api_key
        self.pay_with = pay_with.lower()
        self.ledger = ledger
        self.cache_enabled = cache and ledger is not None
        self.cost = cost or CostTracker()
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self.max_concurrency = max(1, int(max_concurrency))
        self.progress = progress
        self.session_id = session_id
        self.on_empty = on_empty
        self.window_days = window_days
        self.symbol_overrides: dict[str, int] = {k.upper(): int(v) for k, v in (symbol_overrides or {}).items()}
        #: Called as on_progress(done, total, label) for multi-request work; tqdm when None.
        self.on_progress: Callable[[int, int, str], None] | None = None
        self._symbols: dict[str, int] = {}
        self._symbols_lock = threading.Lock()
        self._rank: dict[int, int] | None = None

    # -- request pieces ----------------------------------------------------------
    @property
    def headers(self) -> dict[str, str]:
        h = {"accept": "application/json", "user-agent": "tm402-nb/0.1"}
        if self.mode == "api-key":
            h["x-api-key"] = self._api_key or ""
        else:
            h["x-coinbase-402"] = "true"
            h["x-payment-token"] = self.pay_with
        return h

    @contextmanager
    def paying_with(self, asset: str | None) -> Iterator[None]:
        """Pay in ``asset`` ("usdc" or "tmai") for the calls inside the block."""
        if asset is None or self.mode == "api-key" or asset.lower() == self.pay_with:
            yield
            return
        asset = asset.lower()
        if asset not in ("usdc", "tmai"):
            raise ConfigurationError(f"pay-with must be usdc or tmai, got {asset!r}")
        previous, policy_previous = self.pay_with, self.auth.policy.pay_with
        self.pay_with = self.auth.policy.pay_with = asset
        self._set_header("x-payment-token", asset)
        try:
            yield
        finally:
            self.pay_with, self.auth.policy.pay_with = previous, policy_previous
            self._set_header("x-payment-token", previous)

    def _set_header(self, name: str, value: str) -> None:
        for http in (getattr(self, "_http", None), getattr(self, "_bare", None)):
            if http is not None:
                http.headers[name] = value

    @property
    def cache_scope(self) -> str:
        """Cached answers are private to a mode, a server and a payer (or key)."""
        import hashlib

        who = (
            self.auth.wallet.address
            if self.auth is not None
            else hashlib.sha256((self._api_key or "").encode()).hexdigest()[:16]
        )
        return f"{self.mode}|{self.base_url}|{who}"

    def url_for(self, endpoint: Endpoint) -> str:
        return self.base_url + endpoint.path

    def _prepare(
        self, endpoint: str | Endpoint, params: Mapping[str, Any]
    ) -> tuple[Endpoint, dict[str, Any], list[str]]:
        ep = get_endpoint(endpoint)
        clean = validate_params(ep, params)
        symbols = clean.pop("symbol", None) if ep.token_keyed else None
        return ep, clean, symbols or []

    @staticmethod
    def _page_wire(planned: PlannedRequest, page: int | None = None) -> dict[str, str]:
        """Wire parameters of one page of ``planned`` (the exact query the API sees)."""
        ep = planned.endpoint
        if not ep.paged:
            return planned.wire
        page = page if page is not None else int(planned.params.get("page", 1))
        size = int(planned.params.get(ep.limit_param, ep.page_size))
        return to_wire({**planned.params, "page": page, ep.limit_param: size})

    # -- retry decisions (the executors only send and sleep) ----------------------------
    def _after_transport_error(self, request: httpx.Request, exc: httpx.TransportError, attempt: int) -> float:
        return wait_after_network_error(self.retry, self.auth, request, exc, attempt)

    def _retry_wait(self, response: httpx.Response, attempt: int) -> float | None:
        return wait_before_retry(self.retry, self.auth, response, attempt)

    @staticmethod
    def _page_done(planned: PlannedRequest, data: list[Any], rows: int, pages: int, max_pages: int | None) -> bool:
        """Whether paging ``planned`` is over after a page of ``data`` (``rows`` collected so far)."""
        ep = planned.endpoint
        size = int(planned.params.get(ep.limit_param, ep.page_size))
        # One row per token: once every requested id has its row the answer is complete,
        # even when that filled the page (asking for the next page would sign a payment
        # for nothing).
        expected = len(planned.params.get("token_id", [])) if ep.key == ("TOKEN_ID",) else 0
        return bool(
            planned.single_page
            or (planned.latest_only and not max_pages)
            or not ep.paged
            or len(data) < size
            or (max_pages and pages >= max_pages)
            or (expected and rows >= expected)
        )

    # -- interpreting answers ------------------------------------------------------
    def _interpret(self, endpoint: Endpoint, response: httpx.Response) -> dict[str, Any]:
        """The envelope of a final response, or a typed error."""
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        message = body.get("message") if isinstance(body, dict) and isinstance(body.get("message"), str) else None
        if status == 200 and isinstance(body, dict):
            if body.get("success") is False:
                if message and "not found" in message.lower():
                    raise DataNotFound(f"{endpoint.name}: {message}", status=status, body=body)
                raise APIError(f"{endpoint.name}: {message or 'the API reported failure'}", status=status, body=body)
            if not isinstance(body.get("data"), list):
                raise APIError(f"{endpoint.name}: the answer has no data list", status=status, body=body)
            return body
        if status == 404 and message and "not found" in message.lower() and "endpoint" not in message.lower():
            raise DataNotFound(f"{endpoint.name}: {message}", status=status, body=body)
        if status == 400:
            raise ParamError(f"{endpoint.name}: the API refused the request: {message or response.text[:200]}")
        if status == 401:
            hint = (
                "check $TM_API_KEY and your plan"
                if self.mode == "api-key"
                else "x402 calls must send x-coinbase-402: true (the client does)"
            )
            raise APIError(
                f"{endpoint.name}: not authorized: {message or ''}".rstrip(": "), status=status, body=body, hint=hint
            )
        if status == 402:
            raise APIError(
                f"{endpoint.name}: payment required",
                status=status,
                body=body,
                hint="API-key mode does not pay; use x402 or sandbox mode" if self.mode == "api-key" else None,
            )
        if status == 429:
            raise RateLimited(
                f"{endpoint.name}: rate limited (429) after {self.retry.attempts} retries",
                status=status,
                body=body,
                hint="wait a minute, or lower max_concurrency",
            )
        raise APIError(f"{endpoint.name}: HTTP {status}: {message or response.reason_phrase}", status=status, body=body)

    # -- accounting ------------------------------------------------------------------
    def _account(
        self,
        endpoint: Endpoint | None,
        url: str,
        params: dict[str, str] | None,
        response: httpx.Response | None,
        elapsed: float,
        *,
        cached: bool = False,
        error: str | None = None,
        payment: Any = None,
    ) -> CallCost:
        # A call that raised may still have signed (failed) or sent (unknown) a payment:
        # the error carries it, so the footer and the scope never show such a call as free.
        pay = payment_of(response) if response is not None else payment
        call = CallCost(
            endpoint=endpoint.name if endpoint else None,
            url=url,
            params=params,
            status=response.status_code if response is not None else None,
            cached=cached,
            paid=pay is not None and pay.status in ("settled", "unknown", "pending"),
            amount=pay.amount if pay else 0,
            asset=pay.offer.asset.symbol if pay else None,
            decimals=pay.offer.asset.decimals if pay else 6,
            network=pay.offer.network.v1_name if pay else None,
            tx=pay.tx if pay else None,
            payment_status=pay.status if pay else None,
            payment_id=pay.id if pay else None,
            elapsed_ms=elapsed * 1000,
        )
        if self.ledger is not None:
            self.ledger.record_call(
                CallRecord(
                    url=url,
                    endpoint=call.endpoint,
                    params=params,
                    status_code=call.status,
                    bytes=len(response.content) if response is not None and hasattr(response, "_content") else 0,
                    elapsed_ms=call.elapsed_ms,
                    cache_hit=cached,
                    paid=call.paid,
                    payment_id=call.payment_id,
                    session_id=self.session_id,
                    mode=self.mode,
                    cell_id=current_cell_id.get(),
                    error=error,
                )
            )
        self.cost.record(call)
        return call

    def _cache_lookup(self, endpoint: Endpoint, wire: dict[str, str], refresh: bool) -> dict[str, Any] | None:
        if not self.cache_enabled or refresh:
            return None
        import json

        hit = self.ledger.cache_get(cache_key(self.base_url, endpoint, wire), self.cache_scope)
        if hit is None:
            return None
        self._account(endpoint, self.url_for(endpoint), wire, None, 0.0, cached=True)
        return json.loads(hit[1])

    def _cache_store(
        self, endpoint: Endpoint, wire: dict[str, str], response: httpx.Response, ttl: float | None
    ) -> None:
        if self.cache_enabled:
            self.ledger.cache_put(
                cache_key(self.base_url, endpoint, wire),
                self.cache_scope,
                response.content,
                ttl=endpoint.ttl if ttl is None else ttl,
                endpoint=endpoint.name,
            )

    # -- symbols ------------------------------------------------------------------------
    def _pick(self, symbol: str, candidates: list[dict[str, Any]]) -> int:
        """Deterministic choice among tokens sharing a symbol: highest market cap, then rank, then lowest id."""

        def mcap(row: dict[str, Any]) -> float:
            for k in ("MARKET_CAP", "market_cap", "MARKETCAP"):
                try:
                    return float(row[k])
                except (KeyError, TypeError, ValueError):
                    continue
            return -1.0

        rank = self._rank or {}
        best = sorted(candidates, key=lambda r: (-mcap(r), rank.get(int(r["TOKEN_ID"]), 10**9), int(r["TOKEN_ID"])))
        return int(best[0]["TOKEN_ID"])

    def _resolved(self, symbols: list[str]) -> tuple[dict[str, int], list[str]]:
        out, missing = {}, []
        with self._symbols_lock:
            for s in symbols:
                key = s.upper()
                if key in self.symbol_overrides:
                    out[key] = self.symbol_overrides[key]
                elif key in self._symbols:
                    out[key] = self._symbols[key]
                else:
                    missing.append(key)
        return out, list(dict.fromkeys(missing))

    def _learn_symbols(self, wanted: list[str], rows: list[dict[str, Any]]) -> None:
        by_symbol: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            sym = row.get("TOKEN_SYMBOL") or row.get("SYMBOL") or row.get("token_symbol")
            if isinstance(sym, str) and row.get("TOKEN_ID") is not None:
                by_symbol.setdefault(sym.upper(), []).append(row)
        with self._symbols_lock:
            for sym in wanted:
                if by_symbol.get(sym):
                    self._symbols[sym] = self._pick(sym, by_symbol[sym])

    def _ids_for(self, symbols: list[str], resolved: dict[str, int]) -> list[int]:
        unknown = [s.upper() for s in symbols if s.upper() not in resolved]
        if unknown:
            raise UnknownSymbol(
                f"unknown symbol{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}",
                hint="check the spelling, or pass token_id=… (see s.client.frame('tokens', symbol=…))",
            )
        return list(dict.fromkeys(resolved[s.upper()] for s in symbols))

    def _needs_rank(self, rows: list[dict[str, Any]], wanted: list[str]) -> bool:
        if self._rank is not None:
            return False
        counts: dict[str, int] = {}
        for row in rows:
            sym = str(row.get("TOKEN_SYMBOL") or row.get("SYMBOL") or "").upper()
            counts[sym] = counts.get(sym, 0) + 1
        return any(counts.get(s, 0) > 1 for s in wanted) and not any("MARKET_CAP" in r for r in rows)

    # -- what follows an answer (shared by the sync and async executors) ------------------
    def _page_answer(
        self,
        endpoint: Endpoint,
        url: str,
        wire: dict[str, str],
        response: httpx.Response,
        started: float,
        ttl: float | None,
    ) -> dict[str, Any]:
        """Account for a page's answer, interpret it, cache it; the envelope."""
        self._account(endpoint, url, wire, response, time.perf_counter() - started)
        envelope = self._interpret(endpoint, response)
        self._cache_store(endpoint, wire, response, ttl)
        return envelope

    def _page_failed(self, endpoint: Endpoint, url: str, wire: dict[str, str], exc: TM402Error, started: float) -> None:
        self._account(
            endpoint,
            url,
            wire,
            None,
            time.perf_counter() - started,
            error=str(exc),
            payment=getattr(exc, "payment", None),
        )

    def _challenge_answer(
        self, endpoint: Endpoint, url: str, wire: dict[str, str], response: httpx.Response, started: float
    ) -> PaymentRequired | None:
        """The challenge in an unpaid answer (remembered, so the next paid call is warm); None if free."""
        self._account(endpoint, url, wire, response, time.perf_counter() - started)
        if response.status_code != 402:
            self._interpret(endpoint, response)
            return None
        required = parse_challenge(response.headers, response.content)
        if self.auth is not None:
            self.auth.remember(self._http.build_request("GET", url, params=wire), required)
        return required

    def _check_batch_against(self, required: PaymentRequired | None, plans: list[PlannedRequest]) -> None:
        if required is not None:
            self.auth.policy.check_batch(self.auth.policy.select(required), len(plans))

    @staticmethod
    def _wanted(symbols: list[str] | str) -> list[str]:
        wanted = [s.strip().upper() for s in ([symbols] if isinstance(symbols, str) else symbols) if s and s.strip()]
        if not wanted:
            raise ParamError("symbol is empty", hint="give at least one symbol, e.g. BTC")
        return wanted

    def _set_rank(self, rows: list[dict[str, Any]]) -> None:
        self._rank = {int(r["TOKEN_ID"]): i for i, r in enumerate(rows) if r.get("TOKEN_ID") is not None}

    @staticmethod
    def _with_ids(clean: dict[str, Any], ids: Any) -> None:
        """Add resolved token ids to the request's ids, once each, in order."""
        clean["token_id"] = list(dict.fromkeys([*clean.get("token_id", []), *ids]))

    # -- frames ----------------------------------------------------------------------------
    def _frame(
        self,
        endpoint: Endpoint,
        fetched: list[_Fetched],
        params: dict[str, Any],
        cost: Cost,
        lowercase: bool,
        tidy: bool,
    ):
        from .frames import to_frame

        rows: list[dict[str, Any]] = []
        seen: set[tuple[Any, ...]] = set()
        for f in fetched:
            for row in f.rows:
                key = tuple(row.get(k) for k in endpoint.key) if all(k in row for k in endpoint.key) else None
                if key is not None:
                    if key in seen:
                        continue
                    seen.add(key)
                rows.append(row)
        if not rows and self.on_empty == "raise":
            reason = next((f.empty_reason for f in fetched if f.empty_reason), "no rows")
            raise DataNotFound(f"{endpoint.name}: {reason}", hint="pass on_empty='empty' to get an empty frame instead")
        frame = to_frame(endpoint, rows, lowercase=lowercase, tidy=tidy)
        frame.attrs["tm402"] = {
            "endpoint": endpoint.name,
            "params": to_wire(params),
            "mode": self.mode,
            **cost.as_attrs(),
        }
        return frame

    def _quote_from(
        self, endpoint: Endpoint, wire: dict[str, str], calls: int, required: PaymentRequired | None
    ) -> Quote:
        if self.mode == "api-key":
            return Quote(endpoint.name, wire, calls, mode="api-key")
        if required is None:
            return Quote(endpoint.name, wire, calls, mode=self.mode)
        offers = tuple(f"{r.amount} of {r.asset} on {r.network}" for r in required.accepts)
        try:
            offer = self.auth.policy.select(required)
        except PaymentRefused as exc:
            from ..x402.networks import find_asset, get_network

            first = required.accepts[0]
            try:
                known = find_asset(get_network(first.network), first.asset, self.auth.policy.extra_assets)
            except X402ProtocolError:
                known = None
            return Quote(
                endpoint.name,
                wire,
                calls,
                first.amount,
                known.symbol if known else first.asset[:10],
                known.decimals if known else 6,
                first.network,
                first.pay_to,
                offers,
                refused=exc.message,
                mode=self.mode,
            )
        return Quote(
            endpoint.name,
            wire,
            calls,
            offer.amount,
            offer.asset.symbol,
            offer.asset.decimals,
            offer.network.v1_name,
            offer.requirements.pay_to,
            offers,
            mode=self.mode,
        )


class Client(_ClientBase):
    """Synchronous client. Thread-safe; batches run on a small thread pool.

    >>> import tm402_nb as tm                                   # doctest: +SKIP
    >>> s = tm.connect(mode="sandbox")                           # doctest: +SKIP
    >>> s.client.frame("tm-grade", symbol=["BTC", "ETH"])        # doctest: +SKIP
    """

    def __init__(self, *, transport: httpx.BaseTransport | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self._http = httpx.Client(
            auth=self.auth,
            timeout=self.timeout,
            headers=self.headers,
            transport=PaymentReplayTransport(transport) if self.auth is not None else transport,
            limits=httpx.Limits(max_connections=max(10, self.max_concurrency * 2)),
        )
        self._bare = httpx.Client(timeout=self.timeout, headers=self.headers, transport=transport)

    # -- one request with retries --------------------------------------------------
    def _send(self, method: str, url: str, *, params: Mapping[str, str] | None = None, **kw: Any) -> httpx.Response:
        for attempt in range(self.retry.attempts + 1):
            # A fresh request each attempt: nothing from a previous attempt (a payment
            # header, a consumed stream) can leak into the next.
            request = self._http.build_request(method, url, params=params, **kw)
            try:
                response = self._http.send(request)
            except httpx.TransportError as exc:
                time.sleep(self._after_transport_error(request, exc, attempt))
                continue
            wait = self._retry_wait(response, attempt)
            if wait is None:
                return response
            response.close()
            time.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _get_page(
        self, endpoint: Endpoint, wire: dict[str, str], *, refresh: bool, ttl: float | None
    ) -> dict[str, Any]:
        cached = self._cache_lookup(endpoint, wire, refresh)
        if cached is not None:
            return cached
        url = self.url_for(endpoint)
        started = time.perf_counter()
        try:
            response = self._send("GET", url, params=wire)
        except TM402Error as exc:
            self._page_failed(endpoint, url, wire, exc, started)
            raise
        return self._page_answer(endpoint, url, wire, response, started, ttl)

    def get(self, endpoint: str | Endpoint, *, refresh: bool = False, **params: Any) -> dict[str, Any]:
        """One request (no paging): the API's envelope ``{success, message, length, data}``."""
        ep, clean, symbols = self._prepare(endpoint, params)
        if symbols:
            self._with_ids(clean, self.resolve_symbols(symbols).values())
        return self._get_page(ep, to_wire(clean), refresh=refresh, ttl=None)

    def _run(self, planned: PlannedRequest, refresh: bool, ttl: float | None, max_pages: int | None) -> _Fetched:
        ep = planned.endpoint
        out = _Fetched()
        page = int(planned.params.get("page", 1))
        pages = 0
        while True:
            wire = self._page_wire(planned, page)
            try:
                data = (self._get_page(ep, wire, refresh=refresh, ttl=ttl))["data"]
            except DataNotFound as exc:
                out.empty_reason = exc.message
                break
            out.rows.extend(data)
            pages += 1
            if self._page_done(planned, data, len(out.rows), pages, max_pages):
                break
            page += 1
        return out

    def _execute(
        self, plans: list[PlannedRequest], refresh: bool, ttl: float | None, max_pages: int | None
    ) -> list[_Fetched]:
        bar = self._progress(len(plans))
        try:
            if len(plans) == 1:
                results = [self._run(plans[0], refresh, ttl, max_pages)]
            else:
                with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(plans))) as pool:
                    futures = [pool.submit(_with_cell(self._run), p, refresh, ttl, max_pages) for p in plans]
                    results = []
                    for f in futures:  # request order, whatever finished first
                        results.append(f.result())
                        if bar is not None:
                            bar.update(1)
        finally:
            if bar is not None:
                bar.close()
        return results

    def _progress(self, n: int):
        if not self.progress or n < 3:
            return None
        if self.on_progress is not None:
            return _HookProgress(self.on_progress, n)
        from tqdm.auto import tqdm

        return tqdm(total=n, desc="tm402", unit="call", leave=False)

    def resolve_symbols(self, symbols: list[str] | str) -> dict[str, int]:
        """Symbols → token ids (highest market cap among same-symbol tokens, overridable); cached."""
        wanted = self._wanted(symbols)
        resolved, missing = self._resolved(wanted)
        if missing:
            fetched = self._execute(plan_requests(SYMBOL_LOOKUP, {"symbol": missing}), False, None, None)
            rows = [r for f in fetched for r in f.rows]
            if self._needs_rank(rows, missing):
                self._load_rank()
            self._learn_symbols(missing, rows)
            resolved, _ = self._resolved(wanted)
        self._ids_for(wanted, resolved)  # raises UnknownSymbol naming the misses
        return {s: resolved[s] for s in wanted}

    def _load_rank(self) -> None:
        self._set_rank(self._run(PlannedRequest(SYMBOL_RANKING, {}, False), False, None, 2).rows)

    def frame(
        self,
        endpoint: str | Endpoint,
        *,
        refresh: bool = False,
        lowercase: bool = False,
        tidy: bool = True,
        ttl: float | None = None,
        max_pages: int | None = None,
        **params: Any,
    ):
        """A typed DataFrame for ``endpoint`` (all pages, batches and windows).

        ``df.attrs["tm402"]`` holds the endpoint, params, calls made, paid/cached counts,
        amounts per asset and receipts.
        """
        ep, clean, symbols = self._prepare(endpoint, params)
        with self.cost.scope(ep.name) as cost:
            if symbols:
                self._with_ids(clean, self.resolve_symbols(symbols).values())
            plans = plan_requests(ep, clean, window_days=self.window_days)
            if len(plans) > 1 and self.auth is not None and not ep.free:
                self._check_batch(ep, plans)
            fetched = self._execute(plans, refresh, ttl, max_pages)
            return self._frame(ep, fetched, clean, cost, lowercase, tidy)

    def _challenge(self, endpoint: Endpoint, wire: dict[str, str]) -> PaymentRequired | None:
        """The 402 challenge for a request, fetched unpaid; None for a free answer."""
        url = self.url_for(endpoint)
        started = time.perf_counter()
        response = self._bare.get(url, params=wire)
        return self._challenge_answer(endpoint, url, wire, response, started)

    def _check_batch(self, endpoint: Endpoint, plans: list[PlannedRequest]) -> None:
        try:
            required = self._challenge(endpoint, self._page_wire(plans[0]))
        except (DataNotFound, X402ProtocolError):
            return
        self._check_batch_against(required, plans)

    def quote(self, endpoint: str | Endpoint, **params: Any) -> Quote:
        """What ``frame(endpoint, **params)`` would cost (at least; one call per page), paying nothing."""
        ep, clean, symbols = self._prepare(endpoint, params)
        if symbols:
            self._with_ids(clean, self.resolve_symbols(symbols).values())
        plans = plan_requests(ep, clean, window_days=self.window_days)
        required = None if self.mode == "api-key" else self._challenge(ep, self._page_wire(plans[0]))
        return self._quote_from(ep, to_wire(clean), len(plans), required)

    def request(self, method: str, url: str, **kw: Any) -> httpx.Response:
        """Any HTTP request, paying x402 challenges under the same policy and ledger."""
        started = time.perf_counter()
        response = self._send(method, url, **kw)
        self._account(None, url, None, response, time.perf_counter() - started)
        return response

    def close(self) -> None:
        self._http.close()
        self._bare.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client(mode={self.mode}, base_url={self.base_url})"


class AsyncClient(_ClientBase):
    """Asynchronous client over ``httpx.AsyncClient``; batches run concurrently up to ``max_concurrency``."""

    def __init__(self, *, transport: httpx.AsyncBaseTransport | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self._http = httpx.AsyncClient(
            auth=self.auth,
            timeout=self.timeout,
            headers=self.headers,
            transport=AsyncPaymentReplayTransport(transport) if self.auth is not None else transport,
            limits=httpx.Limits(max_connections=max(10, self.max_concurrency * 2)),
        )
        self._bare = httpx.AsyncClient(timeout=self.timeout, headers=self.headers, transport=transport)

    async def _send(
        self, method: str, url: str, *, params: Mapping[str, str] | None = None, **kw: Any
    ) -> httpx.Response:
        for attempt in range(self.retry.attempts + 1):
            # A fresh request each attempt: nothing from a previous attempt (a payment
            # header, a consumed stream) can leak into the next.
            request = self._http.build_request(method, url, params=params, **kw)
            try:
                response = await self._http.send(request)
            except httpx.TransportError as exc:
                await asyncio.sleep(self._after_transport_error(request, exc, attempt))
                continue
            wait = self._retry_wait(response, attempt)
            if wait is None:
                return response
            await response.aclose()
            await asyncio.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _get_page(
        self, endpoint: Endpoint, wire: dict[str, str], *, refresh: bool, ttl: float | None
    ) -> dict[str, Any]:
        cached = self._cache_lookup(endpoint, wire, refresh)
        if cached is not None:
            return cached
        url = self.url_for(endpoint)
        started = time.perf_counter()
        try:
            response = await self._send("GET", url, params=wire)
        except TM402Error as exc:
            self._page_failed(endpoint, url, wire, exc, started)
            raise
        return self._page_answer(endpoint, url, wire, response, started, ttl)

    async def get(self, endpoint: str | Endpoint, *, refresh: bool = False, **params: Any) -> dict[str, Any]:
        ep, clean, symbols = self._prepare(endpoint, params)
        if symbols:
            self._with_ids(clean, (await self.resolve_symbols(symbols)).values())
        return await self._get_page(ep, to_wire(clean), refresh=refresh, ttl=None)

    async def _run(self, planned: PlannedRequest, refresh: bool, ttl: float | None, max_pages: int | None) -> _Fetched:
        ep = planned.endpoint
        out = _Fetched()
        page = int(planned.params.get("page", 1))
        pages = 0
        while True:
            wire = self._page_wire(planned, page)
            try:
                data = (await self._get_page(ep, wire, refresh=refresh, ttl=ttl))["data"]
            except DataNotFound as exc:
                out.empty_reason = exc.message
                break
            out.rows.extend(data)
            pages += 1
            if self._page_done(planned, data, len(out.rows), pages, max_pages):
                break
            page += 1
        return out

    async def _execute(
        self, plans: list[PlannedRequest], refresh: bool, ttl: float | None, max_pages: int | None
    ) -> list[_Fetched]:
        gate = asyncio.Semaphore(self.max_concurrency)

        async def one(p: PlannedRequest) -> _Fetched:
            async with gate:
                return await self._run(p, refresh, ttl, max_pages)

        return list(await asyncio.gather(*(one(p) for p in plans)))

    async def resolve_symbols(self, symbols: list[str] | str) -> dict[str, int]:
        wanted = self._wanted(symbols)
        resolved, missing = self._resolved(wanted)
        if missing:
            fetched = await self._execute(plan_requests(SYMBOL_LOOKUP, {"symbol": missing}), False, None, None)
            rows = [r for f in fetched for r in f.rows]
            if self._needs_rank(rows, missing):
                self._set_rank((await self._run(PlannedRequest(SYMBOL_RANKING, {}, False), False, None, 2)).rows)
            self._learn_symbols(missing, rows)
            resolved, _ = self._resolved(wanted)
        self._ids_for(wanted, resolved)
        return {s: resolved[s] for s in wanted}

    async def frame(
        self,
        endpoint: str | Endpoint,
        *,
        refresh: bool = False,
        lowercase: bool = False,
        tidy: bool = True,
        ttl: float | None = None,
        max_pages: int | None = None,
        **params: Any,
    ):
        ep, clean, symbols = self._prepare(endpoint, params)
        with self.cost.scope(ep.name) as cost:
            if symbols:
                self._with_ids(clean, (await self.resolve_symbols(symbols)).values())
            plans = plan_requests(ep, clean, window_days=self.window_days)
            if len(plans) > 1 and self.auth is not None and not ep.free:
                await self._check_batch(ep, plans)
            fetched = await self._execute(plans, refresh, ttl, max_pages)
            return self._frame(ep, fetched, clean, cost, lowercase, tidy)

    async def _challenge(self, endpoint: Endpoint, wire: dict[str, str]) -> PaymentRequired | None:
        url = self.url_for(endpoint)
        started = time.perf_counter()
        response = await self._bare.get(url, params=wire)
        return self._challenge_answer(endpoint, url, wire, response, started)

    async def _check_batch(self, endpoint: Endpoint, plans: list[PlannedRequest]) -> None:
        try:
            required = await self._challenge(endpoint, self._page_wire(plans[0]))
        except (DataNotFound, X402ProtocolError):
            return
        self._check_batch_against(required, plans)

    async def quote(self, endpoint: str | Endpoint, **params: Any) -> Quote:
        ep, clean, symbols = self._prepare(endpoint, params)
        if symbols:
            self._with_ids(clean, (await self.resolve_symbols(symbols)).values())
        plans = plan_requests(ep, clean, window_days=self.window_days)
        required = None if self.mode == "api-key" else await self._challenge(ep, self._page_wire(plans[0]))
        return self._quote_from(ep, to_wire(clean), len(plans), required)

    async def request(self, method: str, url: str, **kw: Any) -> httpx.Response:
        started = time.perf_counter()
        response = await self._send(method, url, **kw)
        self._account(None, url, None, response, time.perf_counter() - started)
        return response

    async def aclose(self) -> None:
        await self._http.aclose()
        await self._bare.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"AsyncClient(mode={self.mode}, base_url={self.base_url})"


class _HookProgress:
    """tqdm's update/close, reported to a callback (the notebook's one-line status)."""

    def __init__(self, hook: Callable[[int, int, str], None], total: int) -> None:
        self.hook, self.total, self.done = hook, total, 0
        hook(0, total, "start")

    def update(self, n: int = 1) -> None:
        self.done += n
        self.hook(self.done, self.total, "progress")

    def close(self) -> None:
        self.hook(self.done, self.total, "done")


def _with_cell(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Carry the notebook cell id into pool threads, so their ledger rows name the cell."""
    import contextvars

    ctx = contextvars.copy_context()

    def run(*args: Any) -> Any:
        return ctx.copy().run(fn, *args)

    return run
