"""x402 wire messages, protocol v1 and v2.

v1: requirements in the 402 JSON body, client header ``X-PAYMENT``, receipt
``X-PAYMENT-RESPONSE``, network names like ``base-sepolia``, ``maxAmountRequired``.
v2: requirements in the ``PAYMENT-REQUIRED`` header, client header
``PAYMENT-SIGNATURE`` whose ``accepted`` echoes the chosen requirement exactly,
receipt ``PAYMENT-RESPONSE``, CAIP-2 networks, ``amount``.

Every parsed message keeps the raw JSON it came from: a v2 server compares the
echoed ``accepted`` with its own requirement key by key, so we send back what
we received, never a re-serialised model.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import X402ProtocolError
from .encoding import MAX_MESSAGE_BYTES, b64json_decode, b64json_encode, json_object

__all__ = [
    "PAYMENT_REQUIRED",
    "PAYMENT_RESPONSE",
    "PAYMENT_SIGNATURE",
    "X_PAYMENT",
    "X_PAYMENT_RESPONSE",
    "Authorization",
    "PaymentPayload",
    "PaymentRequired",
    "PaymentRequirements",
    "SettlementResponse",
    "build_payment_payload",
    "parse_challenge",
    "read_receipt",
]

X_PAYMENT = "X-PAYMENT"
X_PAYMENT_RESPONSE = "X-PAYMENT-RESPONSE"
PAYMENT_REQUIRED = "PAYMENT-REQUIRED"
PAYMENT_SIGNATURE = "PAYMENT-SIGNATURE"
PAYMENT_RESPONSE = "PAYMENT-RESPONSE"

_UINT_RE = re.compile(r"^[0-9]{1,78}$")
_NONCE_RE = re.compile(r"^0x[0-9a-fA-F]{64}$")
_ADDR_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")
_SIG_RE = re.compile(r"^0x(?:[0-9a-fA-F]{2})+$")


def _uint(value: Any, what: str) -> int:
    """A non-negative integer sent as a decimal string (or, leniently, a JSON int)."""
    if isinstance(value, bool):
        raise X402ProtocolError(f"{what} must be a decimal string, got a boolean")
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, str) and _UINT_RE.match(value):
        return int(value)
    raise X402ProtocolError(f"{what} must be a non-negative decimal string, got {str(value)[:40]!r}")


def _str(d: Mapping[str, Any], key: str, what: str) -> str:
    value = d.get(key)
    if not isinstance(value, str) or not value:
        raise X402ProtocolError(f"{what}: '{key}' is missing or not a string")
    return value


@dataclass(frozen=True)
class PaymentRequirements:
    """One entry of ``accepts[]``: what the server will take for this resource."""

    x402_version: int
    scheme: str
    network: str
    amount: int
    asset: str
    pay_to: str
    max_timeout_seconds: int
    extra: dict[str, Any] | None
    raw: dict[str, Any] = field(repr=False, compare=False)
    resource: str | None = None
    description: str | None = None
    mime_type: str | None = None

    @classmethod
    def from_json(cls, d: Any, version: int) -> PaymentRequirements:
        if not isinstance(d, dict):
            raise X402ProtocolError(f"payment requirement must be an object, got {type(d).__name__}")
        what = "payment requirement"
        amount_key = "maxAmountRequired" if version == 1 else "amount"
        if amount_key not in d:
            raise X402ProtocolError(f"{what}: '{amount_key}' is missing (x402 v{version})")
        timeout = d.get("maxTimeoutSeconds")
        if isinstance(timeout, float) and timeout.is_integer():
            timeout = int(timeout)
        if isinstance(timeout, bool) or not isinstance(timeout, int):
            raise X402ProtocolError(f"{what}: 'maxTimeoutSeconds' must be an integer, got {str(timeout)[:40]!r}")
        extra = d.get("extra")
        if extra is not None and not isinstance(extra, dict):
            raise X402ProtocolError(f"{what}: 'extra' must be an object")

        def opt(key: str) -> str | None:
            v = d.get(key)
            return v if isinstance(v, str) else None

        return cls(
            x402_version=version,
            scheme=_str(d, "scheme", what),
            network=_str(d, "network", what),
            amount=_uint(d[amount_key], f"{what}: '{amount_key}'"),
            asset=_str(d, "asset", what),
            pay_to=_str(d, "payTo", what),
            max_timeout_seconds=timeout,
            extra=extra,
            raw=d,
            resource=opt("resource"),
            description=opt("description"),
            mime_type=opt("mimeType"),
        )

    def to_json(self) -> dict[str, Any]:
        """The requirement exactly as the server sent it."""
        return self.raw

    @property
    def eip712_name(self) -> str | None:
        v = (self.extra or {}).get("name")
        return v if isinstance(v, str) and v else None

    @property
    def eip712_version(self) -> str | None:
        v = (self.extra or {}).get("version")
        return v if isinstance(v, str) and v else None


@dataclass(frozen=True)
class PaymentRequired:
    """A decoded 402 challenge."""

    x402_version: int
    accepts: tuple[PaymentRequirements, ...]
    error: str | None = None
    resource: dict[str, Any] | None = None
    extensions: dict[str, Any] | None = None
    #: Entries of ``accepts`` we could not parse, as (index, reason).
    rejected: tuple[tuple[int, str], ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    #: Where it came from: "header" (v2) or "body" (v1).
    source: str = "body"

    @classmethod
    def from_json(cls, d: dict[str, Any], *, source: str) -> PaymentRequired:
        version = d.get("x402Version")
        if isinstance(version, bool) or version not in (1, 2):
            raise X402ProtocolError(f"unsupported x402Version {str(version)[:20]!r} in the 402 challenge")
        accepts_raw = d.get("accepts")
        if not isinstance(accepts_raw, list):
            raise X402ProtocolError(
                "402 challenge has no 'accepts' list", hint="the server sent no payment requirements"
            )
        accepts: list[PaymentRequirements] = []
        rejected: list[tuple[int, str]] = []
        for i, entry in enumerate(accepts_raw[:64]):
            try:
                accepts.append(PaymentRequirements.from_json(entry, version))
            except X402ProtocolError as exc:
                rejected.append((i, exc.message))
        if not accepts:
            why = "; ".join(r for _, r in rejected[:3]) or "the list is empty"
            raise X402ProtocolError(f"402 challenge has no parseable payment requirements ({why})")
        resource = d.get("resource") if isinstance(d.get("resource"), dict) else None
        extensions = d.get("extensions") if isinstance(d.get("extensions"), dict) else None
        error = d.get("error") if isinstance(d.get("error"), str) else None
        return cls(version, tuple(accepts), error, resource, extensions, tuple(rejected), d, source)

    def to_json(self) -> dict[str, Any]:
        return self.raw

    def encode(self) -> str:
        return b64json_encode(self.raw)

    @property
    def resource_url(self) -> str | None:
        if self.resource and isinstance(self.resource.get("url"), str):
            return self.resource["url"]
        for req in self.accepts:
            if req.resource:
                return req.resource
        return None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    # httpx.Headers is case-insensitive; plain dicts (tests, other clients) may not be.
    value = headers.get(name)
    if value is None:
        lname = name.lower()
        for k, v in headers.items():
            if k.lower() == lname:
                return v
    return value


def parse_challenge(headers: Mapping[str, str], body: bytes | str | None) -> PaymentRequired:
    """Decode a 402 response into a :class:`PaymentRequired`.

    The ``PAYMENT-REQUIRED`` header wins when present (a server offering both
    speaks v2, and we never fall back to v1 then); otherwise a v1 JSON body.
    A v2 object only in the body is refused, as the reference clients do.
    """
    header = _header(headers, PAYMENT_REQUIRED)
    if header is not None:
        # The limit is on the header as sent: a 20 KB header is refused even though it decodes to ~15 KB.
        if len(header) > MAX_MESSAGE_BYTES:
            raise X402ProtocolError(
                f"PAYMENT-REQUIRED header is {len(header)} bytes, over the 16 KB limit",
                hint="refusing an oversized challenge",
            )
        return PaymentRequired.from_json(b64json_decode(header, what="PAYMENT-REQUIRED header"), source="header")
    if body is None or len(body) == 0:
        raise X402ProtocolError("402 response carries no payment requirements (no PAYMENT-REQUIRED header, empty body)")
    if isinstance(body, str):
        body = body.encode()
    d = json_object(body, what="402 body")
    version = d.get("x402Version")
    if version == 1 and not isinstance(version, bool):
        return PaymentRequired.from_json(d, source="body")
    if version == 2 and not isinstance(version, bool):
        raise X402ProtocolError(
            "402 body holds an x402 v2 challenge but no PAYMENT-REQUIRED header",
            hint="v2 servers must send requirements in the PAYMENT-REQUIRED header",
        )
    raise X402ProtocolError("402 response carries no x402 payment requirements")


@dataclass(frozen=True)
class Authorization:
    """EIP-3009 ``TransferWithAuthorization`` message fields."""

    from_: str
    to: str
    value: int
    valid_after: int
    valid_before: int
    nonce: str  # 0x + 64 hex

    def to_json(self) -> dict[str, str]:
        # Decimal strings on the wire: JSON numbers lose precision past 2**53.
        return {
            "from": self.from_,
            "to": self.to,
            "value": str(self.value),
            "validAfter": str(self.valid_after),
            "validBefore": str(self.valid_before),
            "nonce": self.nonce,
        }

    @classmethod
    def from_json(cls, d: Any) -> Authorization:
        if not isinstance(d, dict):
            raise X402ProtocolError("authorization must be an object")
        what = "authorization"
        frm, to = _str(d, "from", what), _str(d, "to", what)
        for key, v in (("from", frm), ("to", to)):
            if not _ADDR_RE.match(v):
                raise X402ProtocolError(f"{what}: '{key}' is not an address")
        nonce = _str(d, "nonce", what)
        if not _NONCE_RE.match(nonce):
            raise X402ProtocolError(f"{what}: 'nonce' must be 0x followed by 64 hex digits")
        return cls(
            frm,
            to,
            _uint(d.get("value"), f"{what}: 'value'"),
            _uint(d.get("validAfter"), f"{what}: 'validAfter'"),
            _uint(d.get("validBefore"), f"{what}: 'validBefore'"),
            nonce,
        )


@dataclass(frozen=True)
class Permit2Authorization:
    """Permit2 ``PermitWitnessTransferFrom`` fields, as x402 sends them (``permit2Authorization``).

    ``spender`` is the x402 Permit2 proxy, which only ever transfers to ``to`` (the witness).
    ``facilitator`` is set for ``upto`` only: its witness also names the one facilitator
    allowed to settle. The nonce is a uint256, sent as a decimal string.
    """

    from_: str
    token: str
    amount: int
    spender: str
    nonce: int
    deadline: int
    to: str
    valid_after: int
    facilitator: str | None = None

    @property
    def value(self) -> int:
        """The most this authorization can move (``exact``: what it moves)."""
        return self.amount

    @property
    def valid_before(self) -> int:
        """After this (the deadline) Permit2 refuses the transfer: it can never settle."""
        return self.deadline

    @property
    def nonce_hex(self) -> str:
        """The nonce as 0x + 64 hex digits (how the ledger and replay keys name every nonce)."""
        return "0x" + self.nonce.to_bytes(32, "big").hex()

    def to_json(self) -> dict[str, Any]:
        witness: dict[str, str] = {"to": self.to}
        if self.facilitator is not None:
            witness["facilitator"] = self.facilitator
        witness["validAfter"] = str(self.valid_after)
        return {
            "from": self.from_,
            "permitted": {"token": self.token, "amount": str(self.amount)},
            "spender": self.spender,
            "nonce": str(self.nonce),
            "deadline": str(self.deadline),
            "witness": witness,
        }

    @classmethod
    def from_json(cls, d: Any) -> Permit2Authorization:
        what = "permit2Authorization"
        if not isinstance(d, dict):
            raise X402ProtocolError(f"{what} must be an object")
        permitted, witness = d.get("permitted"), d.get("witness")
        if not isinstance(permitted, dict) or not isinstance(witness, dict):
            raise X402ProtocolError(f"{what}: 'permitted' and 'witness' must be objects")
        frm, spender = _str(d, "from", what), _str(d, "spender", what)
        token, to = _str(permitted, "token", f"{what}.permitted"), _str(witness, "to", f"{what}.witness")
        facilitator = witness.get("facilitator")
        if facilitator is not None and not isinstance(facilitator, str):
            raise X402ProtocolError(f"{what}.witness: 'facilitator' must be a string")
        for key, v in (("from", frm), ("spender", spender), ("token", token), ("to", to), ("facilitator", facilitator)):
            if v is not None and not _ADDR_RE.match(v):
                raise X402ProtocolError(f"{what}: '{key}' is not an address")
        return cls(
            frm,
            token,
            _uint(permitted.get("amount"), f"{what}: 'permitted.amount'"),
            spender,
            _uint(d.get("nonce"), f"{what}: 'nonce'"),
            _uint(d.get("deadline"), f"{what}: 'deadline'"),
            to,
            _uint(witness.get("validAfter"), f"{what}: 'witness.validAfter'"),
            facilitator,
        )


@dataclass(frozen=True)
class PaymentPayload:
    """What the client sends: the signed authorization plus scheme/network (v1)
    or the echoed requirement (v2)."""

    x402_version: int
    scheme: str
    network: str
    signature: str
    authorization: Authorization | Permit2Authorization
    accepted: dict[str, Any] | None = None
    resource: dict[str, Any] | None = None
    extensions: dict[str, Any] | None = None

    @property
    def header_name(self) -> str:
        return PAYMENT_SIGNATURE if self.x402_version >= 2 else X_PAYMENT

    def to_json(self) -> dict[str, Any]:
        key = "permit2Authorization" if isinstance(self.authorization, Permit2Authorization) else "authorization"
        inner = {"signature": self.signature, key: self.authorization.to_json()}
        if self.x402_version == 1:
            return {"x402Version": 1, "scheme": self.scheme, "network": self.network, "payload": inner}
        out: dict[str, Any] = {"x402Version": self.x402_version}
        if self.resource is not None:
            out["resource"] = self.resource
        out["accepted"] = self.accepted
        out["payload"] = inner
        if self.extensions is not None:
            out["extensions"] = self.extensions
        return out

    def encode(self) -> str:
        return b64json_encode(self.to_json())

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> PaymentPayload:
        version = d.get("x402Version")
        if isinstance(version, bool) or version not in (1, 2):
            raise X402ProtocolError(f"unsupported x402Version {str(version)[:20]!r} in payment payload")
        payload = d.get("payload")
        if not isinstance(payload, dict):
            raise X402ProtocolError("payment payload: 'payload' is missing or not an object")
        signature = payload.get("signature")
        if not isinstance(signature, str) or not _SIG_RE.match(signature) or len(signature) > 2 + 2 * 4096:
            raise X402ProtocolError("payment payload: 'signature' must be 0x-prefixed hex")
        auth: Authorization | Permit2Authorization
        if "permit2Authorization" in payload:
            auth = Permit2Authorization.from_json(payload["permit2Authorization"])
        else:
            auth = Authorization.from_json(payload.get("authorization"))
        if version == 1:
            return cls(1, _str(d, "scheme", "payment payload"), _str(d, "network", "payment payload"), signature, auth)
        accepted = d.get("accepted")
        if not isinstance(accepted, dict):
            raise X402ProtocolError("payment payload: v2 requires 'accepted' (the chosen requirement)")
        scheme, network = accepted.get("scheme"), accepted.get("network")
        if not isinstance(scheme, str) or not isinstance(network, str):
            raise X402ProtocolError("payment payload: 'accepted' lacks scheme or network")
        resource = d.get("resource") if isinstance(d.get("resource"), dict) else None
        extensions = d.get("extensions") if isinstance(d.get("extensions"), dict) else None
        return cls(version, scheme, network, signature, auth, accepted, resource, extensions)

    @classmethod
    def decode(cls, value: str | bytes) -> PaymentPayload:
        return cls.from_json(b64json_decode(value, what="payment header"))


def build_payment_payload(
    required: PaymentRequired,
    requirements: PaymentRequirements,
    authorization: Authorization | Permit2Authorization,
    signature: str,
    *,
    extensions: dict[str, Any] | None = None,
) -> PaymentPayload:
    """Assemble the payload for ``requirements`` chosen from ``required``; v2 echoes the
    challenge's ``extensions`` unless others (e.g. with a payment-identifier) are given."""
    if requirements.x402_version == 1:
        return PaymentPayload(1, requirements.scheme, requirements.network, signature, authorization)
    return PaymentPayload(
        requirements.x402_version,
        requirements.scheme,
        requirements.network,
        signature,
        authorization,
        accepted=requirements.raw,
        resource=required.resource,
        extensions=required.extensions if extensions is None else extensions,
    )


@dataclass(frozen=True)
class SettlementResponse:
    """The receipt a server returns after settling (or failing to settle)."""

    success: bool
    transaction: str
    network: str
    payer: str | None = None
    error_reason: str | None = None
    #: What actually settled, in atomic units (``upto``: at most the signed ceiling); None when not said.
    amount: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> SettlementResponse:
        success = d.get("success")
        if not isinstance(success, bool):
            raise X402ProtocolError("settlement response: 'success' must be true or false")
        tx = d.get("transaction", "")
        if not isinstance(tx, str):
            raise X402ProtocolError("settlement response: 'transaction' must be a string")
        amount = d.get("amount")
        amount = _uint(amount, "settlement response: 'amount'") if amount is not None else None
        # An upto payment settled at zero moves nothing: success without a transaction (as the SDK answers).
        if success and not tx and amount != 0:
            raise X402ProtocolError("settlement response claims success without a transaction")
        network = d.get("network", "")
        if not isinstance(network, str):
            raise X402ProtocolError("settlement response: 'network' must be a string")
        payer = d.get("payer") if isinstance(d.get("payer"), str) else None
        reason = d.get("errorReason") if isinstance(d.get("errorReason"), str) else None
        return cls(success, tx, network, payer, reason, amount, d)

    @classmethod
    def decode(cls, value: str | bytes) -> SettlementResponse:
        return cls.from_json(b64json_decode(value, what="settlement receipt header"))

    def to_json(self) -> dict[str, Any]:
        if self.raw:
            return self.raw
        out: dict[str, Any] = {"success": self.success, "transaction": self.transaction, "network": self.network}
        if self.payer is not None:
            out["payer"] = self.payer
        if self.error_reason is not None:
            out["errorReason"] = self.error_reason
        if self.amount is not None:
            out["amount"] = str(self.amount)
        return out

    def encode(self) -> str:
        return b64json_encode(self.to_json())


def read_receipt(headers: Mapping[str, str]) -> SettlementResponse | None:
    """The decoded settlement receipt (``PAYMENT-RESPONSE``, else ``X-PAYMENT-RESPONSE``), or None.

    Raises X402ProtocolError when a receipt header is present but malformed.
    """
    for name in (PAYMENT_RESPONSE, X_PAYMENT_RESPONSE):
        value = _header(headers, name)
        if value is not None:
            return SettlementResponse.decode(value)
    return None
