"""The ``/v2/*`` data endpoints: auth, limits, faults and the paywall around the builders.

(No ``from __future__ import annotations`` here: FastAPI reads the per-endpoint
query models from the handler annotations at runtime.)
"""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from starlette.responses import JSONResponse, Response

from . import envelope
from .catalogue import ENDPOINTS, TMAI, EndpointSpec
from .datasets import InvalidQuery
from .envelope import Envelope, ErrorEnvelope
from .params import RangeTooLong, TmaiBody, lenient, limit_range
from .pricing import PriceList
from .profiles import DATE_RANGE_MAX_DAYS, SandboxProfile
from .state import SandboxState

MISSING_AUTH = (
    "Missing authentication. Send x-api-key: <your key> for API-key access, or x-coinbase-402: true to pay "
    "per call with x402 (optionally x-payment-token: usdc or tmai). Do not send both."
)


@dataclass(frozen=True)
class AuthHeaders:
    api_key: str | None
    coinbase_402: str | None
    payment_token: str | None


def auth_headers(
    x_api_key: Annotated[str | None, Header(alias="x-api-key", description="API key (API-key mode).")] = None,
    api_key: Annotated[str | None, Header(alias="api_key", description="Legacy spelling of x-api-key.")] = None,
    x_coinbase_402: Annotated[
        str | None, Header(alias="x-coinbase-402", description="`true` to pay per call with x402 (no API key).")
    ] = None,
    x_payment_token: Annotated[
        str | None, Header(alias="x-payment-token", description="`usdc` (default) or `tmai` (10% cheaper).")
    ] = None,
    x_payment: Annotated[str | None, Header(alias="X-PAYMENT", description="x402 v1 payment (base64 JSON).")] = None,
    payment_signature: Annotated[
        str | None, Header(alias="PAYMENT-SIGNATURE", description="x402 v2 payment (base64 JSON).")
    ] = None,
) -> AuthHeaders:
    # The paywall reads the payment headers from the request itself; they are parameters here only
    # so that /docs lists them.
    del x_payment, payment_signature
    return AuthHeaders(x_api_key if x_api_key is not None else api_key, x_coinbase_402, x_payment_token)


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _state(request: Request) -> SandboxState:
    return request.app.state.sandbox


async def serve_endpoint(
    request: Request,
    spec: EndpointSpec,
    q: Any,
    auth: AuthHeaders,
    answer: Callable[[], dict[str, Any]] | None = None,
) -> Response:
    """Auth, limits, faults and the paywall around one endpoint's answer: its rows from the data
    service (``q``), or ``answer()``'s whole body (the AI agent answers text, not rows)."""
    st = _state(request)
    path = spec.path
    st.stats.request(path)
    faults = st.faults
    if faults.faults.latency_ms:
        await asyncio.sleep(faults.latency_s)
    if faults.take_429():
        st.stats.count("rate_limited")
        secs = faults.faults.retry_after_s
        return envelope.error(
            429,
            f"Too many requests (sandbox fault): retry after {secs} s",
            "rate_limited",
            headers={"Retry-After": str(secs)},
        )

    # Auth: exactly one of x-api-key and x-coinbase-402.
    if auth.api_key is not None and auth.coinbase_402 is not None:
        return envelope.error(
            400,
            "Send either x-api-key or x-coinbase-402: true, not both (x402 mode takes no API key)",
            "conflicting_auth",
        )
    mode: str
    if auth.api_key is not None:
        if auth.api_key != st.config.api_key:
            return envelope.error(401, "Invalid API key", "invalid_api_key")
        mode, limit_key = "api-key", f"key:{auth.api_key}"
    elif auth.coinbase_402 is not None:
        if auth.coinbase_402.strip().lower() != "true":
            return envelope.error(
                400, f"x-coinbase-402 must be 'true', got {auth.coinbase_402[:20]!r}", "invalid_header"
            )
        mode = "x402"
        limit_key = f"ip:{_client(request)}"
    else:
        return envelope.error(401, MISSING_AUTH, "missing_auth")

    token = (auth.payment_token or "usdc").strip().lower()
    if mode == "x402" and token not in st.assets:
        return envelope.error(
            400, f"x-payment-token must be 'usdc' or 'tmai', got {(auth.payment_token or '')[:20]!r}", "invalid_header"
        )
    if mode == "x402":
        payer = _payer_hint(request, st)
        if payer:
            limit_key = f"payer:{payer}"
    wait = st.limiter.check(limit_key)
    if wait:
        st.stats.count("rate_limited")
        return envelope.error(
            429,
            f"Rate limit exceeded for {limit_key.split(':', 1)[0]}: retry after {wait} s",
            "rate_limited",
            headers={"Retry-After": str(wait)},
        )
    if q is not None and spec.name in ("price", "hourly-trading-signals") and not q.has_token_filter:
        return envelope.error(
            400,
            "Missing required parameter 'token_id' (or symbol / token_name)",
            "missing_parameter",
            param="token_id",
        )
    profile = st.profile
    try:
        q = q if q is None else limit_range(q, profile.date_range, st.market.calendar.anchor, DATE_RANGE_MAX_DAYS)
    except RangeTooLong as exc:
        return envelope.error(400, exc.message, "invalid_parameter", param="startDate")
    lowercase = spec.name in profile.lowercase_endpoints

    async def produce() -> Response:
        if faults.take_5xx():
            st.stats.count("errors_5xx")
            return envelope.error(500, "Internal server error (sandbox fault)", "server_error")
        try:
            if answer is not None:
                return JSONResponse(answer())
            rows = getattr(st.data, spec.builder)(q)
        except InvalidQuery as exc:
            return envelope.error(400, exc.message, "invalid_parameter", param=exc.param)
        if not rows:
            return envelope.not_found()
        return envelope.ok(rows, lowercase=lowercase)

    if mode == "x402" and not st.prices.free(spec.name):
        return await st.paywall.charge(request, spec, token, _client(request), produce)
    return await produce()


def _payer_hint(request: Request, st: SandboxState) -> str | None:
    """The payer named in the payment header, if it decodes (used only to key the rate limit)."""
    from .paywall import decode_payment

    raw = request.headers.get(st.paywall.header)
    if not raw:
        return None
    payload, _ = decode_payment(raw)
    return payload.authorization.from_.lower() if payload else None


def _make_handler(spec: EndpointSpec, profile: SandboxProfile) -> Callable[..., Awaitable[Response]]:
    model = spec.query if profile.paging == "strict" else lenient(spec.query)

    async def handler(
        request: Request,
        q: Annotated[model, Query()],  # type: ignore[valid-type]
        auth: Annotated[AuthHeaders, Depends(auth_headers)],
    ) -> Response:
        return await serve_endpoint(request, spec, q, auth)

    handler.__name__ = "get_" + spec.name.replace("-", "_")
    return handler


def _price_note(spec: EndpointSpec, prices: PriceList) -> str:
    if prices.free(spec.name):
        return "Free (no payment in x402 mode)."
    return f"x402 price: tier {prices.tier(spec.name)}, ${prices.usd(spec.name)} in USDC (TMAI 10% cheaper)."


def build_router(profile: SandboxProfile, prices: PriceList) -> APIRouter:
    """The /v2 routes as ``profile`` plays them (its paging decides the query models)."""
    router = APIRouter(prefix="/v2", tags=["Token Metrics v2 (sandbox data)"])
    errors: dict[int | str, dict[str, Any]] = {
        400: {"model": ErrorEnvelope, "description": "Bad parameter or header (the message names it)"},
        401: {"model": ErrorEnvelope, "description": "No or wrong authentication"},
        402: {"description": "x402 payment required (v1: JSON body; v2: PAYMENT-REQUIRED header)"},
        404: {"model": Envelope, "description": "Data not found"},
        429: {"model": ErrorEnvelope, "description": "Rate limited (Retry-After)"},
    }
    for spec in ENDPOINTS:
        router.add_api_route(
            f"/{spec.name}",
            _make_handler(spec, profile),
            methods=["GET"],
            summary=spec.summary,
            description=f"{spec.summary}\n\n{_price_note(spec, prices)}",
            response_model=None,
            responses={200: {"model": Envelope, "description": "Data fetched successfully"}, **errors},
        )

    async def ask_tmai(
        request: Request, body: TmaiBody, auth: Annotated[AuthHeaders, Depends(auth_headers)]
    ) -> Response:
        # Validated before the paywall (as a bad query is): a malformed question is never charged.
        if body.question is None:
            return envelope.error(
                400, "messages needs at least one {'user': '...'} turn", "invalid_parameter", param="messages"
            )
        return await serve_endpoint(request, TMAI, None, auth, answer=lambda: _state(request).data.tmai_answer(body))

    router.add_api_route(
        "/tmai",
        ask_tmai,
        methods=["POST"],
        summary=TMAI.summary,
        description=f"{TMAI.summary}\n\n{_price_note(TMAI, prices)}",
        response_model=None,
        responses={200: {"description": "The agent's answer and the conversation thread"}, **errors},
    )
    return router
