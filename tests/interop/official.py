"""A resource server built on the official x402 SDK's FastAPI middleware, and a
facilitator written for the tests (signature, amount, payee, window, nonce).

Used by the interop tests and the benchmarks; it reaches nothing outside 127.0.0.1.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tests.toyserver import serve_app
from tm402_nb.errors import X402ProtocolError
from tm402_nb.x402.eip3009 import Eip712Domain, recover_signer
from tm402_nb.x402.messages import PaymentPayload, PaymentRequirements
from tm402_nb.x402.networks import get_network

PAYEE = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"


class TestFacilitator:
    """Just enough facilitator for a local x402 server: checks what a real one checks."""

    def __init__(self) -> None:
        self.used: set[str] = set()
        self.settled: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.app = FastAPI()
        self.app.get("/supported")(self.supported)
        self.app.post("/verify")(self.verify)
        self.app.post("/settle")(self.settle)

    async def supported(self) -> dict[str, Any]:
        return {
            "kinds": [
                {"x402Version": 2, "scheme": "exact", "network": "eip155:84532"},
                {"x402Version": 1, "scheme": "exact", "network": "base-sepolia"},
            ],
            "extensions": [],
            "signers": {"eip155:*": [PAYEE]},
        }

    def _check(self, body: dict[str, Any]) -> tuple[str | None, str | None, PaymentPayload | None]:
        try:
            payload = PaymentPayload.from_json(body["paymentPayload"])
            req = PaymentRequirements.from_json(body["paymentRequirements"], int(body.get("x402Version", 2)))
        except (X402ProtocolError, KeyError, TypeError, ValueError):
            return "invalid_payload", None, None
        auth = payload.authorization
        net = get_network(req.network)
        if auth.to.lower() != req.pay_to.lower():
            return "invalid_exact_evm_payload_recipient_mismatch", auth.from_, payload
        if auth.value != req.amount:
            return "invalid_exact_evm_payload_authorization_value_mismatch", auth.from_, payload
        now = time.time()
        if auth.valid_before < now + 6:
            return "invalid_exact_evm_payload_authorization_valid_before", auth.from_, payload
        if auth.valid_after > now:
            return "invalid_exact_evm_payload_authorization_valid_after", auth.from_, payload
        domain = Eip712Domain(req.eip712_name or "USDC", req.eip712_version or "2", net.chain_id, req.asset)
        try:
            if recover_signer(auth, domain, payload.signature).lower() != auth.from_.lower():
                return "invalid_exact_evm_payload_signature", auth.from_, payload
        except X402ProtocolError:
            return "invalid_exact_evm_payload_signature", auth.from_, payload
        if auth.nonce in self.used:
            return "invalid_exact_evm_nonce_already_used", auth.from_, payload
        return None, auth.from_, payload

    async def verify(self, request: Request) -> JSONResponse:
        reason, payer, _ = self._check(await request.json())
        out: dict[str, Any] = {"isValid": reason is None, "payer": payer}
        if reason:
            out["invalidReason"] = reason
        return JSONResponse(out)

    async def settle(self, request: Request) -> JSONResponse:
        body = await request.json()
        with self.lock:
            reason, payer, payload = self._check(body)
            network = body.get("paymentRequirements", {}).get("network", "")
            if reason is not None:
                return JSONResponse(
                    {"success": False, "errorReason": reason, "transaction": "", "network": network, "payer": payer}
                )
            self.used.add(payload.authorization.nonce)
            tx = "0x" + payload.authorization.nonce[2:]
            self.settled.append({"tx": tx, "payer": payer, "amount": payload.authorization.value})
        return JSONResponse({"success": True, "transaction": tx, "network": network, "payer": payer})


def official_resource_app(facilitator_url: str, price: str = "$0.01") -> tuple[FastAPI, Counter]:
    """FastAPI app with the official SDK middleware protecting GET /weather (v2, Base Sepolia).

    GET /forecast and GET /report declare the payment-identifier extension as the SDK does
    (``declare_payment_identifier_extension()``). The SDK's middleware validates the echo but keeps
    no cache of its own (its docs leave "your idempotency store" to the server), so /report adds
    the store the spec describes, built from the SDK's helpers: looked up before the payment
    middleware verifies, bound to the exact payload, the answer kept with its PAYMENT-RESPONSE.
    """
    import hashlib

    from starlette.responses import Response
    from x402 import x402ResourceServer
    from x402.extensions.payment_identifier import PAYMENT_IDENTIFIER, declare_payment_identifier_extension
    from x402.extensions.payment_identifier import extract_payment_identifier as sdk_payment_identifier
    from x402.http import FacilitatorConfig, HTTPFacilitatorClient
    from x402.http.middleware.fastapi import PaymentMiddlewareASGI
    from x402.http.types import PaymentOption, RouteConfig
    from x402.http.utils import decode_payment_signature_header
    from x402.mechanisms.evm.exact.server import ExactEvmScheme as ExactEvmServerScheme

    server = x402ResourceServer(HTTPFacilitatorClient(FacilitatorConfig(url=facilitator_url)))
    server.register("eip155:84532", ExactEvmServerScheme())
    option = PaymentOption(scheme="exact", pay_to=PAYEE, price=price, network="eip155:84532")
    with_id = {PAYMENT_IDENTIFIER: declare_payment_identifier_extension()}
    routes = {
        "GET /weather": RouteConfig(accepts=option, description="weather", mime_type="application/json"),
        "GET /forecast": RouteConfig(
            accepts=option, description="forecast", mime_type="application/json", extensions=with_id
        ),
        "GET /report": RouteConfig(
            accepts=option, description="report", mime_type="application/json", extensions=with_id
        ),
    }
    counts: Counter = Counter()
    app = FastAPI()
    #: /report's idempotency store: (payer, id) -> (payload fingerprint, status, body, headers or None while running).
    answers: dict[tuple[str, str], tuple[str, int, bytes, dict[str, str]] | None] = {}
    app.state.answers = answers

    @app.get("/forecast")
    async def forecast() -> dict[str, Any]:
        return {"forecast": ["rain", "sun"]}

    @app.get("/report")
    async def report() -> dict[str, Any]:
        counts["report_handler"] += 1
        return {"report": {"n": counts["report_handler"]}}

    @app.get("/weather")
    async def weather() -> dict[str, Any]:
        return {"report": {"weather": "sunny", "temperature": 70}}

    @app.get("/free")
    async def free() -> dict[str, Any]:
        return {"ok": True}

    app.add_middleware(PaymentMiddlewareASGI, routes=routes, server=server)

    @app.middleware("http")
    async def idempotency(request: Request, call_next):  # outside the payment middleware: before verify
        header = request.headers.get("payment-signature")
        if request.url.path != "/report" or not header:
            return await call_next(request)
        payload = decode_payment_signature_header(header)
        pid = sdk_payment_identifier(payload)
        if pid is None:
            return await call_next(request)
        key = (str(payload.payload.get("authorization", {}).get("from", "")).lower(), pid)
        fingerprint = hashlib.sha256(header.encode()).hexdigest()
        if key in answers:
            kept = answers[key]
            if kept is None:
                return JSONResponse({"error": "in progress"}, status_code=503)
            if kept[0] != fingerprint:
                counts["report_conflicts"] += 1
                return JSONResponse({"error": "payment-identifier reused with another payload"}, status_code=409)
            counts["report_cached"] += 1
            return Response(kept[2], status_code=kept[1], headers=kept[3])
        answers[key] = None
        response = await call_next(request)
        body = b"".join([chunk async for chunk in response.body_iterator])
        headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
        if response.status_code == 200:
            answers[key] = (fingerprint, response.status_code, body, headers)
        else:
            del answers[key]
        return Response(body, status_code=response.status_code, headers=headers)

    @app.middleware("http")
    async def count(request: Request, call_next):  # outermost: sees every request
        counts["requests"] += 1
        if request.headers.get("payment-signature"):
            counts["paid_requests"] += 1
        return await call_next(request)

    return app, counts


@contextmanager
def official_stack(price: str = "$0.01") -> Iterator[tuple[str, Counter, TestFacilitator]]:
    """Start the test facilitator and the official-SDK resource server; yield (url, counts, facilitator)."""
    fac = TestFacilitator()
    with ExitStack() as stack:
        fac_url = stack.enter_context(serve_app(fac.app))
        app, counts = official_resource_app(fac_url, price)
        url = stack.enter_context(serve_app(app))
        yield url, counts, fac
