"""Transports that re-send a *paid* request after a transport error, with the same header.

``X402Auth`` cannot see transport errors (httpx does not throw them into the
auth flow), so the bounded replay lives one level down. Because the request
is re-sent byte for byte, the payment header (and its nonce) is the same: the
server can settle it at most once, whatever happens to the connection.
Unpaid requests are not retried here; that is the caller's retry policy.
"""

from __future__ import annotations

import httpx

from .messages import PAYMENT_SIGNATURE, X_PAYMENT

#: Errors after which the request may or may not have reached the server.
REPLAYABLE_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
#: ``response.extensions`` key: how many times the paid request was replayed.
EXT_REPLAYS = "tm402_replays"


def _is_paid(request: httpx.Request) -> bool:
    return PAYMENT_SIGNATURE in request.headers or X_PAYMENT in request.headers


class PaymentReplayTransport(httpx.BaseTransport):
    """Wrap a transport; replay paid requests up to ``attempts`` more times."""

    def __init__(self, transport: httpx.BaseTransport | None = None, *, attempts: int = 2) -> None:
        self.transport = transport if transport is not None else httpx.HTTPTransport()
        self.attempts = max(0, int(attempts))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not _is_paid(request):
            return self.transport.handle_request(request)
        for attempt in range(self.attempts + 1):
            response = None
            try:
                response = self.transport.handle_request(request)
                # Buffer the paid answer here, so a connection cut mid-body is
                # seen (and replayed) before the caller believes it has data.
                response.read()
                response.extensions = {**response.extensions, EXT_REPLAYS: attempt}
                return response
            except REPLAYABLE_ERRORS:
                if response is not None:
                    response.close()
                if attempt == self.attempts:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        self.transport.close()


class AsyncPaymentReplayTransport(httpx.AsyncBaseTransport):
    """Async twin of :class:`PaymentReplayTransport`."""

    def __init__(self, transport: httpx.AsyncBaseTransport | None = None, *, attempts: int = 2) -> None:
        self.transport = transport if transport is not None else httpx.AsyncHTTPTransport()
        self.attempts = max(0, int(attempts))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not _is_paid(request):
            return await self.transport.handle_async_request(request)
        for attempt in range(self.attempts + 1):
            response = None
            try:
                response = await self.transport.handle_async_request(request)
                await response.aread()
                response.extensions = {**response.extensions, EXT_REPLAYS: attempt}
                return response
            except REPLAYABLE_ERRORS:
                if response is not None:
                    await response.aclose()
                if attempt == self.attempts:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def aclose(self) -> None:
        await self.transport.aclose()
