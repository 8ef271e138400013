"""A small hand-written x402 server for the payment-layer tests.

It speaks v1 (requirements in the 402 body, ``X-PAYMENT``) or v2
(``PAYMENT-REQUIRED`` / ``PAYMENT-SIGNATURE``), checks what a facilitator
checks (signature, amount, payee, asset, network, window, nonce), counts every
request it sees, and can be told to send any challenge at all (hostile tests).
Independent of the sandbox on purpose: the payment layer is tested against a
server whose every line is in front of the test reader.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tm402_nb.errors import X402ProtocolError
from tm402_nb.x402.eip3009 import Eip712Domain, recover_signer
from tm402_nb.x402.encoding import b64json_encode
from tm402_nb.x402.messages import PaymentPayload, SettlementResponse
from tm402_nb.x402.networks import USDC_BASE_SEPOLIA, get_network

PAY_TO = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"


@dataclass
class ToyConfig:
    version: int = 1
    amount: int = 17_000
    network: str = "base-sepolia"
    asset: str = USDC_BASE_SEPOLIA.address
    pay_to: str = PAY_TO
    timeout: int = 60
    extra: dict[str, Any] | None = field(default_factory=lambda: {"name": "USDC", "version": "2"})
    #: Replace the whole challenge (dict for v1 body / v2 header, or raw text).
    challenge_override: Any = None
    #: Raw value for the PAYMENT-REQUIRED header (v2), bypassing encoding.
    header_override: str | None = None
    #: Extra offers appended to accepts.
    more_offers: list[dict[str, Any]] = field(default_factory=list)
    settle_fails: str | None = None  # errorReason to fail settlement with
    receipt_override: str | None = None  # raw receipt header value
    balance: int = 10**12
    drop_next_paid: int = 0  # close the connection after settling, N times
    slow_next_paid: float = 0.0  # answer this many seconds late after settling (once)
    clock_skew: float = 0.0  # the facilitator's clock runs this many seconds ahead
    error_500_next_paid: int = 0  # answer 500 before settling (nonce left unused), N times


class ToyX402:
    def __init__(self, config: ToyConfig | None = None) -> None:
        self.config = config or ToyConfig()
        self.counts: Counter[str] = Counter()
        self.used_nonces: set[str] = set()
        self.settlements: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.on_paid: Any = None  # called with the decoded payload before verification
        self._starlette = Starlette(routes=[Route("/data", self.data), Route("/free", self.free)])

    async def app(self, scope: dict, receive: Any, send: Any) -> None:
        """ASGI entry: can cut the connection mid-body after settling (a lost answer)."""
        if scope["type"] != "http":
            return await self._starlette(scope, receive, send)
        state: dict[str, bool] = {}
        scope.setdefault("state", {})["toy"] = state

        async def cutting_send(message: dict) -> None:
            if not state.get("drop"):
                return await send(message)
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message["headers"] if k.lower() != b"content-length"]
                return await send({**message, "headers": [*headers, (b"content-length", b"100000")]})
            if message["type"] == "http.response.body":
                await send({"type": "http.response.body", "body": message.get("body", b"")[:5], "more_body": True})
                raise ConnectionAbortedError("toy server cut the connection after settling")

        await self._starlette(scope, receive, cutting_send)

    # -- challenge -----------------------------------------------------------------
    def requirement(self) -> dict[str, Any]:
        c = self.config
        net = get_network(c.network)
        req: dict[str, Any] = {"scheme": "exact"}
        if c.version == 1:
            req.update(
                network=net.v1_name,
                maxAmountRequired=str(c.amount),
                resource="http://toy/data",
                description="toy data",
                mimeType="application/json",
            )
        else:
            req.update(network=net.caip2, amount=str(c.amount))
        req.update(asset=c.asset, payTo=c.pay_to, maxTimeoutSeconds=c.timeout)
        if c.extra is not None:
            req["extra"] = c.extra
        return req

    def challenge(self, error: str) -> Response:
        c = self.config
        if c.version == 1:
            body = (
                c.challenge_override
                if c.challenge_override is not None
                else {"x402Version": 1, "error": error, "accepts": [self.requirement(), *c.more_offers]}
            )
            text = body if isinstance(body, str) else json.dumps(body)
            return Response(text, status_code=402, media_type="application/json")
        obj = (
            c.challenge_override
            if c.challenge_override is not None
            else {
                "x402Version": 2,
                "error": error,
                "resource": {"url": "http://toy/data"},
                "accepts": [self.requirement(), *c.more_offers],
                "extensions": {},
            }
        )
        header = c.header_override or b64json_encode(obj)
        return Response("{}", status_code=402, media_type="application/json", headers={"PAYMENT-REQUIRED": header})

    # -- verification ---------------------------------------------------------------
    def verify(self, payload: PaymentPayload) -> str | None:
        c = self.config
        net = get_network(c.network)
        if payload.x402_version != c.version:
            return "invalid_x402_version"
        if payload.scheme != "exact":
            return "unsupported_scheme"
        if get_network(payload.network).caip2 != net.caip2:
            return "network_mismatch"
        if c.version == 2 and payload.accepted != self.requirement():
            return "invalid_payment_requirements"
        auth = payload.authorization
        if auth.to.lower() != c.pay_to.lower():
            return "invalid_exact_evm_payload_recipient_mismatch"
        if auth.value != c.amount:
            return "invalid_exact_evm_payload_authorization_value_mismatch"
        now = time.time() + c.clock_skew
        if auth.valid_before < now + 6:
            return "invalid_exact_evm_payload_authorization_valid_before"
        if auth.valid_after > now:
            return "invalid_exact_evm_payload_authorization_valid_after"
        extra = c.extra or {"name": "USDC", "version": "2"}
        domain = Eip712Domain(extra["name"], extra["version"], net.chain_id, c.asset)
        try:
            signer = recover_signer(auth, domain, payload.signature)
        except X402ProtocolError:
            return "invalid_exact_evm_payload_signature"
        if signer.lower() != auth.from_.lower():
            return "invalid_exact_evm_payload_signature"
        if auth.nonce in self.used_nonces:
            return "invalid_exact_evm_nonce_already_used"
        if c.balance < auth.value:
            return "insufficient_funds"
        return None

    # -- routes --------------------------------------------------------------------------
    async def free(self, request: Request) -> Response:
        self.counts["free"] += 1
        return JSONResponse({"ok": True})

    async def data(self, request: Request) -> Response:
        c = self.config
        self.counts["requests"] += 1
        header_name = "X-PAYMENT" if c.version == 1 else "PAYMENT-SIGNATURE"
        value = request.headers.get(header_name)
        if value is None:
            self.counts["unpaid"] += 1
            return self.challenge(f"{header_name} header is required")
        self.counts["paid_attempts"] += 1
        try:
            payload = PaymentPayload.decode(value)
        except X402ProtocolError as exc:
            return JSONResponse({"error": exc.message}, status_code=400)
        if self.on_paid is not None:
            self.on_paid(payload)
        with self.lock:
            reason = self.verify(payload)
            if reason is None:
                self.used_nonces.add(payload.authorization.nonce)
        net = get_network(c.network)
        net_name = net.v1_name if c.version == 1 else net.caip2
        receipt_header = "X-PAYMENT-RESPONSE" if c.version == 1 else "PAYMENT-RESPONSE"
        if reason is None and c.error_500_next_paid > 0:
            c.error_500_next_paid -= 1
            with self.lock:
                self.used_nonces.discard(payload.authorization.nonce)  # not settled: released
            return JSONResponse({"error": "handler failed"}, status_code=500)
        if reason is not None:
            self.counts["rejected"] += 1
            resp = self.challenge(reason)
            return resp
        if c.settle_fails:
            self.counts["settle_failed"] += 1
            failed = SettlementResponse(False, "", net_name, payload.authorization.from_, c.settle_fails)
            return Response(
                "{}", status_code=402, media_type="application/json", headers={receipt_header: failed.encode()}
            )
        tx = "0x" + payload.authorization.nonce[2:]
        with self.lock:
            c.balance -= payload.authorization.value
            self.settlements.append(
                {
                    "nonce": payload.authorization.nonce,
                    "amount": payload.authorization.value,
                    "payer": payload.authorization.from_,
                    "tx": tx,
                }
            )
        self.counts["settled"] += 1
        if c.drop_next_paid > 0:
            c.drop_next_paid -= 1
            request.scope["state"]["toy"]["drop"] = True
        if c.slow_next_paid:
            delay, c.slow_next_paid = c.slow_next_paid, 0.0
            await asyncio.sleep(delay)  # a deliberately slow answer, past the client's timeout
        ok = SettlementResponse(True, tx, net_name, payload.authorization.from_)
        header = c.receipt_override if c.receipt_override is not None else ok.encode()
        return JSONResponse({"data": [1, 2, 3], "paid": True}, headers={receipt_header: header})


class _ThreadServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    def install_signal_handlers(self) -> None:  # pragma: no cover - not on the main thread
        pass

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        self.ready.set()


@contextmanager
def serve_app(app: Any) -> Iterator[str]:
    """Run an ASGI app on 127.0.0.1 (random port) in a thread; yield its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="critical", lifespan="off", interface="asgi3")
    server = _ThreadServer(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    if not server.ready.wait(timeout=20) or not server.started:
        server.should_exit = True
        raise RuntimeError("test server did not start")
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
