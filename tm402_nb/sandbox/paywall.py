"""The x402 paywall in front of priced endpoints.

Order, as the reference servers do it: read the payment header; verify it
(in-process facilitator, nonce reserved atomically) BEFORE the handler runs;
run the handler; settle only if it answered < 400 (or, under the profile switch
``empty_answer="charged"``, a 404 "Data not found" too); a settlement failure
answers 402 with a failed receipt and withholds the body. Paid answers carry the
receipt header and ``Cache-Control: private, no-store``.

TMAI is offered by EIP-3009 or, under the profile switch ``tmai_transfer="permit2"``, by
Permit2 (``extra.assetTransferMethod: "permit2"``; TMAI has no EIP-712 domain of its own
then, as the published token has none). A Permit2 payment whose payer has not approved
the Permit2 contract is refused ``permit2_allowance_required`` with HTTP 412 in v2 (as
the exact-EVM spec says) and 402 in v1 (which has no such status).

The challenge lists both assets, the requested one first (``offers="both"``), or
only the one ``x-payment-token`` asked for (``offers="requested"``).

Under the profile switch ``agent_scheme="upto"`` (x402 v2) the TMAI agent
(``POST /v2/tmai``) is offered ``upto``: its tier price is the ceiling, paid by Permit2
(``extra.assetTransferMethod: "permit2"``) and bound to this sandbox's facilitator
(``extra.facilitatorAddress``); once the handler has answered, the facilitator settles
the answer's share of the ceiling (:func:`~.pricing.upto_charge`, by the bytes delivered)
and the receipt says how much in ``amount``.

v1 (default, as Token Metrics serves it): requirements in the 402 JSON body,
payment in ``X-PAYMENT``, receipt in ``X-PAYMENT-RESPONSE``. v2: requirements
in the ``PAYMENT-REQUIRED`` header (body ``{}``), payment in
``PAYMENT-SIGNATURE``, receipt in ``PAYMENT-RESPONSE``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from ..errors import X402ProtocolError
from ..x402.eip3009 import transfer_digest
from ..x402.encoding import MAX_MESSAGE_BYTES, b64json_decode, b64json_encode
from ..x402.identifier import PAYMENT_ID_MAX_LENGTH, PAYMENT_ID_MIN_LENGTH, PAYMENT_IDENTIFIER, identifier_of
from ..x402.messages import (
    PAYMENT_REQUIRED,
    PAYMENT_RESPONSE,
    PAYMENT_SIGNATURE,
    X_PAYMENT,
    X_PAYMENT_RESPONSE,
    Authorization,
    PaymentPayload,
    PaymentRequirements,
)
from ..x402.wallet import recover_address
from . import facilitator as F
from . import permit2_verify as P2
from .assets import PayAsset
from .catalogue import EndpointSpec
from .faults import FaultState
from .pricing import PriceList, upto_charge
from .sponsoring import KEY as SPONSORING_KEY
from .sponsoring import declaration as sponsoring_declaration
from .stats import Stats

PAID_CACHE_CONTROL = "private, no-store"
#: A real payment header is under 1 KB; anything over 16 KB is refused unread.
MAX_PAYMENT_HEADER = MAX_MESSAGE_BYTES
#: How many answers the payment-identifier cache keeps (oldest dropped first).
IDENTIFIER_CACHE_SIZE = 10_000
#: The 409 reason for an id already bound to another payload.
IDENTIFIER_CONFLICT = "payment_identifier_conflict"


def identifier_declaration() -> dict[str, Any]:
    """The ``payment-identifier`` declaration a v2 challenge carries (optional ids, the spec's schema)."""
    return {
        "info": {"required": False},
        "schema": {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {
                "required": {"type": "boolean"},
                "id": {
                    "type": "string",
                    "minLength": PAYMENT_ID_MIN_LENGTH,
                    "maxLength": PAYMENT_ID_MAX_LENGTH,
                    "pattern": "^[a-zA-Z0-9_-]+$",
                },
            },
            "required": ["required"],
        },
    }


@dataclass
class _Answer:
    """One payment-identifier entry: the payload it is bound to and, once sent, the answer."""

    fingerprint: str
    status: int | None = None
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class PaywallOffer:
    """One entry of the paywall's ``accepts`` for an endpoint: an asset and its requirement.

    The server's side of an offer; the paying client's choice among them is its own ``Offer``.
    """

    asset: PayAsset
    json: dict[str, Any]  # the requirement exactly as sent in `accepts`

    def requirements(self, version: int) -> PaymentRequirements:
        return PaymentRequirements.from_json(self.json, version)


class DroppedResponse(Response):
    """Sends the status line and headers, then ends without a body: the server closes the connection.

    Uvicorn closes the transport when an app returns without completing its
    response, so the client sees a transport error (httpx: ``RemoteProtocolError``)
    after the payment has already settled.
    """

    def __init__(self) -> None:
        super().__init__(b"", status_code=200, media_type="application/json")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"success": true, "data": [', "more_body": True})


class Paywall:
    def __init__(
        self,
        *,
        version: int,
        network_name: str,
        assets: dict[str, PayAsset],
        prices: PriceList,
        offer_all: bool,
        charge_empty: bool,
        pay_to: str,
        max_timeout_seconds: int,
        facilitator: F.Facilitator,
        faults: FaultState,
        stats: Stats,
        tmai_transfer: str = "eip3009",
        agent_scheme: str = "exact",
        identifiers: bool = False,
        gas_sponsoring: bool = False,
    ) -> None:
        self.version = version
        #: Advertise erc20ApprovalGasSponsoring (v2, in challenges with a Permit2 offer).
        self.gas_sponsoring = gas_sponsoring and version >= 2
        #: Advertise payment-identifier (v2 only) and answer an identical payload from the cache.
        self.identifiers = identifiers and version >= 2
        self._answers: OrderedDict[tuple[str, str], _Answer] = OrderedDict()
        self._answers_lock = threading.Lock()
        self.network_name = network_name
        self.assets = assets
        self.prices = prices
        #: List every asset in a challenge (else only the requested one).
        self.offer_all = offer_all
        #: Settle a paid request that found no data (404) instead of releasing its payment.
        self.charge_empty = charge_empty
        self.pay_to = pay_to
        self.max_timeout_seconds = max_timeout_seconds
        self.facilitator = facilitator
        self.faults = faults
        self.stats = stats
        #: How TMAI offers ask to be paid: "eip3009" or "permit2".
        self.tmai_transfer = tmai_transfer
        #: The scheme the TMAI agent is offered in: "exact" (its tier price) or "upto" (that price as a ceiling).
        self.agent_scheme = agent_scheme

    @property
    def header(self) -> str:
        return X_PAYMENT if self.version == 1 else PAYMENT_SIGNATURE

    @property
    def other_header(self) -> str:
        return PAYMENT_SIGNATURE if self.version == 1 else X_PAYMENT

    @property
    def receipt_header(self) -> str:
        return X_PAYMENT_RESPONSE if self.version == 1 else PAYMENT_RESPONSE

    # -- challenge --------------------------------------------------------------------------
    def extra(self, asset: PayAsset) -> dict[str, str]:
        """An offer's ``extra``: the token's EIP-712 domain, or Permit2's transfer method for TMAI."""
        if asset.key == "tmai" and self.tmai_transfer == "permit2":
            return {"assetTransferMethod": "permit2"}
        return asset.extra

    def offers(self, spec: EndpointSpec, url: str, preferred: str) -> list[PaywallOffer]:
        keys = [preferred] + ([k for k in ("usdc", "tmai") if k != preferred] if self.offer_all else [])
        out = []
        for key in keys:
            a = self.assets[key]
            amount = str(self.prices.atomic(spec.name, key, a.decimals))
            if self.version == 1:
                req = {
                    "scheme": "exact",
                    "network": self.network_name,
                    "maxAmountRequired": amount,
                    "resource": url,
                    "description": self.description(spec),
                    "mimeType": "application/json",
                    "payTo": self.pay_to,
                    "maxTimeoutSeconds": self.max_timeout_seconds,
                    "asset": a.address,
                    "extra": self.extra(a),
                }
            else:
                req = {
                    "scheme": "exact",
                    "network": self.network_name,
                    "amount": amount,
                    "asset": a.address,
                    "payTo": self.pay_to,
                    "maxTimeoutSeconds": self.max_timeout_seconds,
                    "extra": self.extra(a),
                }
            out.append(PaywallOffer(a, self._as_upto(req) if self.upto(spec) else req))
        return out

    def upto(self, spec: EndpointSpec) -> bool:
        """Whether ``spec`` is offered ``upto`` (the TMAI agent under ``agent_scheme="upto"``)."""
        return spec.name == "tmai" and self.agent_scheme == "upto"

    def _as_upto(self, req: dict[str, Any]) -> dict[str, Any]:
        """An offer as ``upto``: its price becomes the ceiling, paid by Permit2 and settled only by
        this sandbox's facilitator (the SDK's upto server adds the same two ``extra`` keys)."""
        extra = {
            **req["extra"],
            "assetTransferMethod": "permit2",
            "facilitatorAddress": self.facilitator.signer_address,
        }
        return {**req, "scheme": "upto", "extra": extra}

    def extensions(self, offers: list[PaywallOffer]) -> dict[str, Any]:
        """A v2 challenge's ``extensions``: payment-identifier, and the approval's gas sponsoring
        when an offer is paid by Permit2 (the SDK declares it per route, for Permit2 routes)."""
        out: dict[str, Any] = {PAYMENT_IDENTIFIER: identifier_declaration()} if self.identifiers else {}
        if self.gas_sponsoring and any(o.json["extra"].get("assetTransferMethod") == "permit2" for o in offers):
            out[SPONSORING_KEY] = sponsoring_declaration()
        return out

    @staticmethod
    def description(spec: EndpointSpec) -> str:
        return f"Token Metrics {spec.path} (sandbox): {spec.summary}"

    def challenge(
        self,
        spec: EndpointSpec,
        url: str,
        preferred: str,
        *,
        error: str | None = None,
        message: str | None = None,
        headers: dict[str, str] | None = None,
        allow_faults: bool = True,
        status: int = 402,
    ) -> Response:
        offers = self.offers(spec, url, preferred)
        default_error = f"{self.header} header is required"
        body: dict[str, Any]
        hdrs = {"Cache-Control": "no-store", **(headers or {})}
        malformed = allow_faults and self.faults.take_malformed_challenge()
        oversized = allow_faults and not malformed and self.faults.take_oversized_challenge()
        if oversized:
            # ~20 KB of challenge JSON in total (over the 16 KB clients are told to accept).
            pad = "x" * (20 * 1024 // len(offers))
            offers = [PaywallOffer(o.asset, {**o.json, "extra": {**o.json["extra"], "padding": pad}}) for o in offers]
        if self.version == 1:
            body = {"x402Version": 1, "error": error or default_error, "accepts": [o.json for o in offers]}
            if message:
                body["message"] = message
            if malformed:
                text = json.dumps(body)
                return Response(text[: len(text) // 2], status_code=402, media_type="application/json", headers=hdrs)
            return JSONResponse(body, status_code=402, headers=hdrs)
        required = {
            "x402Version": 2,
            "error": error or default_error,
            "resource": {"url": url, "description": self.description(spec), "mimeType": "application/json"},
            "accepts": [o.json for o in offers],
            "extensions": self.extensions(offers),
        }
        hdrs[PAYMENT_REQUIRED] = "%%not-base64{" if malformed else b64json_encode(required)
        body = {} if error is None else {"error": error, "message": message or error}
        return JSONResponse(body, status_code=status, headers=hdrs)

    # -- payment -----------------------------------------------------------------------------
    def _select(
        self, payload: PaymentPayload, offers: list[PaywallOffer], request_path: str
    ) -> tuple[PaywallOffer | None, str | None, str | None]:
        """Pick the offer a payment is for: (offer, refusal reason, message)."""
        auth = payload.authorization
        if self.version == 2:
            acc = payload.accepted or {}
            asset = acc.get("asset")
            offer = next(
                (o for o in offers if isinstance(asset, str) and o.asset.address.lower() == asset.lower()), None
            )
            if offer is None:
                return (
                    None,
                    F.INVALID_REQUIREMENTS,
                    f"accepted.asset {str(asset)[:42]} is not offered for {request_path}",
                )
            mine = offer.json
            if acc.get("scheme") != mine["scheme"]:
                return (
                    None,
                    F.UNSUPPORTED_SCHEME,
                    f"accepted.scheme {str(acc.get('scheme'))[:30]!r} is not {mine['scheme']!r}",
                )
            if acc.get("network") != mine["network"]:
                return None, F.NETWORK_MISMATCH, f"accepted.network {acc.get('network')!r} is not {mine['network']}"
            if str(acc.get("payTo", "")).lower() != mine["payTo"].lower():
                return None, F.RECIPIENT_MISMATCH, f"accepted.payTo {str(acc.get('payTo'))[:42]} is not {mine['payTo']}"
            if str(acc.get("amount")) != mine["amount"]:
                return (
                    None,
                    F.VALUE_MISMATCH,
                    (
                        f"accepted.amount {str(acc.get('amount'))[:40]} is not the price of {request_path} "
                        f"({mine['amount']}): a payment for another endpoint or price"
                    ),
                )
            # As the reference server matches `accepted`: every core term, and this offer's `extra` as a subset.
            if acc.get("maxTimeoutSeconds") != mine["maxTimeoutSeconds"]:
                return (
                    None,
                    F.INVALID_REQUIREMENTS,
                    (
                        f"accepted.maxTimeoutSeconds {str(acc.get('maxTimeoutSeconds'))[:20]} is not {mine['maxTimeoutSeconds']}"
                    ),
                )
            extra = acc.get("extra")
            acc_extra: dict[str, Any] = extra if isinstance(extra, dict) else {}
            if any(acc_extra.get(k) != v for k, v in (mine.get("extra") or {}).items()):
                return None, F.INVALID_REQUIREMENTS, "accepted.extra does not echo this offer's extra (name, version)"
            res = payload.resource
            if isinstance(res, dict) and isinstance(res.get("url"), str):
                paid_path = urlsplit(res["url"]).path
                if paid_path and paid_path != request_path:
                    return None, F.INVALID_REQUIREMENTS, f"payment was made for {paid_path[:80]}, not {request_path}"
            return offer, None, None
        # v1: the payload names no asset; the amount (or, failing that, the signature's domain) tells.
        for o in offers:
            if int(o.json["maxAmountRequired"]) == auth.value:
                return o, None, None
        for o in offers:
            if not isinstance(auth, Authorization):
                break  # v1 carries EIP-3009 only
            try:
                digest = transfer_digest(auth, self.facilitator.domain(o.asset))
                sig = bytes.fromhex(payload.signature[2:])
                if len(sig) == 65 and recover_address(digest, sig).lower() == auth.from_.lower():
                    return o, None, None
            except (X402ProtocolError, ValueError):
                continue
        return offers[0], None, None

    async def charge(
        self,
        request: Request,
        spec: EndpointSpec,
        preferred: str,
        client: str,
        produce: Callable[[], Awaitable[Response]],
    ) -> Response:
        """Run ``produce`` behind the paywall and return the response to send."""
        path = request.url.path
        url = str(request.url)
        raw = request.headers.get(self.header)
        if raw is None:
            if request.headers.get(self.other_header) is not None:
                self.stats.payment_header(path, client)
                self.stats.count("refused", path)
                return self.challenge(
                    spec,
                    url,
                    preferred,
                    error=F.INVALID_VERSION,
                    allow_faults=False,
                    message=(
                        f"this server speaks x402 v{self.version}: send the payment in the {self.header} header "
                        f"(got {self.other_header}, the x402 v{3 - self.version} header)"
                    ),
                )
            self.stats.challenge(path, client)
            return self.challenge(spec, url, preferred)
        self.stats.payment_header(path, client)
        payload, problem = decode_payment(raw)
        if payload is None:
            self.stats.count("refused", path)
            return invalid_payment_response(problem or "payment header is malformed")
        offers = self.offers(spec, url, preferred)
        ident = identifier_of({"extensions": payload.extensions}) if self.identifiers else None
        if ident is None:
            return await self._charge(request, spec, preferred, payload, offers, produce, None)
        # payment-identifier: looked up before verifying (a resend of a settled payment no longer
        # verifies), bound to the exact payload, so anyone else's payload with this id is a 409.
        key = (payload.authorization.from_.lower(), ident)
        fingerprint = hashlib.sha256(
            json.dumps(b64json_decode(raw, what="payment header"), sort_keys=True, separators=(",", ":")).encode()
        ).hexdigest()
        with self._answers_lock:
            entry = self._answers.get(key)
            if entry is None:
                self._answers[key] = _Answer(fingerprint)
                while len(self._answers) > IDENTIFIER_CACHE_SIZE:
                    self._answers.popitem(last=False)
        if entry is not None:
            self.stats.count("identifier_hits", path)
            if entry.fingerprint != fingerprint:
                return JSONResponse(
                    {
                        "error": IDENTIFIER_CONFLICT,
                        "message": f"payment-identifier {ident} was already used with another payment payload",
                    },
                    status_code=409,
                )
            if entry.status is None:
                return JSONResponse(
                    {"error": "payment_identifier_in_progress", "message": "the original request is still running"},
                    status_code=503,
                    headers={"Retry-After": "1"},
                )
            self.stats.count("identifier_replays", path)
            return Response(entry.body, status_code=entry.status, headers=dict(entry.headers))
        keep = False
        try:
            response = await self._charge(request, spec, preferred, payload, offers, produce, key)
            with self._answers_lock:
                kept = self._answers.get(key)
                keep = kept is not None and kept.status is not None
            return response
        finally:
            if not keep:  # not answered with data: the id is free again (its nonce was released too)
                with self._answers_lock:
                    self._answers.pop(key, None)

    async def _charge(
        self,
        request: Request,
        spec: EndpointSpec,
        preferred: str,
        payload: PaymentPayload,
        offers: list[PaywallOffer],
        produce: Callable[[], Awaitable[Response]],
        answer_key: tuple[str, str] | None,
    ) -> Response:
        path = request.url.path
        url = str(request.url)
        if payload.x402_version != self.version:
            self.stats.count("refused", path)
            return self.challenge(
                spec,
                url,
                preferred,
                error=F.INVALID_VERSION,
                allow_faults=False,
                message=f"payment is x402 v{payload.x402_version}; this server speaks v{self.version}",
            )
        offer, reason, message = self._select(payload, offers, path)
        if offer is None:
            self.stats.count("refused", path)
            return self.challenge(spec, url, preferred, error=reason, message=message, allow_faults=False)
        req = offer.requirements(self.version)
        # A payload answered settlement_pending holds its nonce in the broadcast: not verified
        # again, its settle reconciles with that transfer.
        reconciling = self.facilitator.pending_tx(payload) is not None
        verdict = F.VerifyResult(True, payload.authorization.from_) if reconciling else None
        verdict = verdict or self.facilitator.verify(payload, req, reserve=True)
        if not verdict.is_valid:
            self.stats.count("refused", path)
            allowance = verdict.invalid_reason == P2.ALLOWANCE_REQUIRED and self.version == 2
            return self.challenge(
                spec,
                url,
                preferred,
                error=verdict.invalid_reason,
                message=verdict.message,
                allow_faults=False,
                status=412 if allowance else 402,  # Precondition Failed: approve Permit2, then retry
            )
        # Verified and the nonce is ours: run the handler.
        try:
            response = await produce()
        except BaseException:
            if not reconciling:
                self.facilitator.release(payload, req)
            raise
        if response.status_code >= 400 and not (self.charge_empty and response.status_code == 404):
            if not reconciling:
                self.facilitator.release(payload, req)
            return response
        return await self._settle(request, spec, url, preferred, payload, req, response, answer_key)

    async def _settle(
        self,
        request: Request,
        spec: EndpointSpec,
        url: str,
        preferred: str,
        payload: PaymentPayload,
        req: PaymentRequirements,
        response: Response,
        answer_key: tuple[str, str] | None = None,
    ) -> Response:
        path = request.url.path
        network = self.facilitator.network_name(self.version)
        payer = payload.authorization.from_
        # upto: what the answer cost, at most the ceiling; exact: what was signed (None).
        amount = upto_charge(req.amount, len(getattr(response, "body", b""))) if self.upto(spec) else None
        result: F.SettleResult
        if self.faults.take_settle_failure():
            result = F.SettleResult(
                False, "", network, payer, self.faults.faults.settle_failure_reason, "settlement failed (sandbox fault)"
            )
        elif self.faults.take_slow_settle():
            await asyncio.sleep(self.faults.faults.slow_settle_ms / 1000.0)
            result = self.facilitator.settle(
                payload,
                req,
                reserved=True,
                path=path,
                chain_time=payload.authorization.valid_before + 1,
                amount=amount,
            )
        elif self.faults.take_settle_pending():
            reads = self.faults.faults.settle_pending_reads
            result = self.facilitator.settle(
                payload, req, reserved=True, path=path, pending=True, confirm_reads=reads, amount=amount
            )
            if result.error_reason == F.SETTLEMENT_PENDING:
                # As the reference server: one immediate settle retry, which reconciles with the broadcast.
                result = self.facilitator.settle(payload, req, reserved=True, path=path, amount=amount)
        else:
            result = self.facilitator.settle(payload, req, reserved=True, path=path, amount=amount)
        receipt = result.receipt().encode()
        if not result.success and result.error_reason == F.SETTLEMENT_PENDING:
            # Broadcast, not confirmed: the nonce stays with the broadcast; the body is withheld.
            self.stats.count("settlements_pending", path)
            headers = {self.receipt_header: receipt, "Cache-Control": "no-store"}
            return JSONResponse(
                {"error": result.error_reason, "message": result.message, "transaction": result.transaction},
                status_code=402,
                headers=headers,
            )
        if not result.success:
            self.facilitator.release(payload, req)
            self.stats.count("settle_failures", path)
            headers = {self.receipt_header: receipt}
            if self.version == 1:
                return self.challenge(
                    spec,
                    url,
                    preferred,
                    error=result.error_reason,
                    message=result.message,
                    headers=headers,
                    allow_faults=False,
                )
            return JSONResponse(
                {"error": result.error_reason, "message": result.message},
                status_code=402,
                headers={**headers, "Cache-Control": "no-store"},
            )
        self.stats.count("settlements")
        self.stats.count("paid", path)
        response.headers[self.receipt_header] = receipt
        response.headers["Cache-Control"] = PAID_CACHE_CONTROL
        response.headers["Access-Control-Expose-Headers"] = self.receipt_header
        if answer_key is not None:
            self._keep_answer(answer_key, response)
        if self.faults.take_drop():
            self.stats.count("dropped")
            return DroppedResponse()
        return response

    def _keep_answer(self, key: tuple[str, str], response: Response) -> None:
        """Store the answer as sent, receipt header included (the client reconciles from it)."""
        body = getattr(response, "body", None)
        if not isinstance(body, bytes):
            return
        headers = tuple((k, v) for k, v in response.headers.items() if k.lower() != "content-length")
        with self._answers_lock:
            entry = self._answers.get(key)
            if entry is not None:
                entry.status, entry.body, entry.headers = response.status_code, body, headers


def decode_payment(raw: str) -> tuple[PaymentPayload | None, str | None]:
    """Decode a payment header; (None, why) when it is not a well-formed payment."""
    if len(raw) > MAX_PAYMENT_HEADER:
        return None, f"payment header is {len(raw)} bytes, over the {MAX_PAYMENT_HEADER // 1024} KB limit"
    try:
        return PaymentPayload.decode(raw), None
    except X402ProtocolError as exc:
        return None, exc.message


def invalid_payment_response(message: str) -> JSONResponse:
    """400 for a payment header that is not a payment at all (garbage, wrong shape, too big)."""
    return JSONResponse(
        {
            "success": False,
            "message": f"Invalid payment header: {message}",
            "length": 0,
            "data": [],
            "error": F.INVALID_PAYLOAD,
        },
        status_code=400,
    )
