"""The FastAPI application: ``create_app(config)`` for in-process use and for the server."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import envelope
from .catalogue import BY_PATH
from .config import SandboxConfig
from .params import QueryModel
from .routes_admin import facilitator, rpc_router, sandbox
from .routes_v2 import build_router
from .state import SandboxState

log = logging.getLogger("tm402_nb.sandbox")

DESCRIPTION = """\
A local stand-in for the Token Metrics v2 API (api.tokenmetrics.com/v2) with pay-per-call x402.

**All data is synthetic** (fixed seed, a few hundred tokens; BTC 3375, ETH 3306 and LTC 3377 carry
their real ids). Every response carries the `X-TM402-Sandbox: true` header.

* API-key mode: `x-api-key: <sandbox key>` (see `GET /sandbox`).
* x402 mode: `x-coinbase-402: true`, optional `x-payment-token: usdc|tmai`; answer the 402 challenge
  with `X-PAYMENT` (v1, default) or `PAYMENT-SIGNATURE` (v2).
* Facilitator: `/facilitator/verify`, `/facilitator/settle`, `/facilitator/supported`.
* Faucet: `POST /sandbox/faucet`; JSON-RPC: `POST /rpc`.
* Profile (which reading of the real API this server plays) and the newest day of data: `GET /sandbox`.
"""


class SandboxHeaderMiddleware:
    """Pure ASGI: tags every response as sandbox data and counts statuses (no body buffering)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_api = scope.get("path", "").startswith("/v2/")

        async def tagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-tm402-sandbox", b"true")]
                if is_api:
                    state = scope["app"].state.sandbox if "app" in scope else None
                    if state is not None:
                        state.stats.status(message["status"])
            await send(message)

        await self.app(scope, receive, tagged)


def _validation_message(request: Request, exc: RequestValidationError) -> tuple[str, str | None]:
    spec = BY_PATH.get(request.url.path)
    parts: list[str] = []
    first_param: str | None = None
    for err in exc.errors()[:5]:
        loc = [str(x) for x in err.get("loc", ())]
        param = loc[-1] if len(loc) > 1 else None
        kind = err.get("type", "")
        msg = str(err.get("msg", "invalid value"))
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        if kind == "extra_forbidden":
            text = f"Unknown parameter '{param}'"
            if spec is not None:
                allowed = spec.query.param_names() if issubclass(spec.query, QueryModel) else ("messages",)
                text += f" for {spec.path}; allowed: {', '.join(allowed)}"
        elif kind == "missing":
            text = f"Missing required parameter '{param}'"
        elif param is None:
            text = f"Invalid parameters: {msg}"
            for name in ("endDate", "startDate"):
                if name in msg:
                    param = name
                    break
        else:
            got = err.get("input")
            shown = f" (got {str(got)[:40]!r})" if isinstance(got, (str, int, float)) else ""
            text = f"Invalid value for '{param}': {msg}{shown}"
        parts.append(text)
        first_param = first_param or param
    return "; ".join(parts) or "Invalid request", first_param


def create_app(config: SandboxConfig | None = None, **overrides: Any) -> FastAPI:
    """Build a sandbox app. ``create_app(x402_version=2)`` is ``create_app(SandboxConfig(x402_version=2))``;
    ``create_app(profile="docs-2026", paging="strict")`` is ``create_app(SandboxConfig.build(...))``.

    The app owns a :class:`SandboxState` at ``app.state.sandbox``; its temporary
    database is removed at shutdown (lifespan) or by ``app.state.sandbox.close()``.
    """
    if config is None:
        config = SandboxConfig.build(**overrides)
    elif overrides:
        raise TypeError("pass either a SandboxConfig or keyword overrides, not both")
    state = SandboxState(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            state.close()

    app = FastAPI(
        title="Token Metrics API — tm402 sandbox",
        version="2-sandbox",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.sandbox = state
    app.include_router(build_router(state.profile, state.prices))
    app.include_router(sandbox)
    app.include_router(facilitator)
    app.include_router(rpc_router)
    app.add_middleware(SandboxHeaderMiddleware)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        message, param = _validation_message(request, exc)
        if param:
            return envelope.error(400, message, "invalid_parameter", param=param)
        return envelope.error(400, message, "invalid_parameter")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return envelope.error(404, f"Unknown endpoint {request.url.path[:100]}; see /docs", "not_found")
        if exc.status_code == 405:
            return envelope.error(
                405, f"Method {request.method} not allowed on {request.url.path[:100]}", "method_not_allowed"
            )
        return envelope.error(exc.status_code, str(exc.detail), "http_error")

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> Response:
        log.exception("sandbox handler failed on %s", request.url.path)
        return JSONResponse(
            {
                "success": False,
                "message": f"Internal server error: {type(exc).__name__}",
                "length": 0,
                "data": [],
                "error": "server_error",
            },
            status_code=500,
        )

    return app
