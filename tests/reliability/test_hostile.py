"""Hostile servers and hostile clients, driven by hypothesis.

Hostile server: random challenges (amounts, networks incl. mainnet and unknown
ones, assets incl. unknown ones and TMAI, payees incl. non-addresses, timeouts
incl. 0/negative/huge, ``extra`` present/missing/wrong, schemes, v1 and v2
shapes, several offers, payee switches mid-session) go to ``SpendPolicy.select``
and, end to end, through ``X402Auth`` to a tiny loopback server that serves
them. Whatever is selected or signed must satisfy the policy, checked by an
oracle written here independently of the policy code. A 20 KB challenge is
refused before signing.

Hostile client: hypothesis mutates a valid payment (amount, payee, payer,
nonce, signature bytes, validity window, network, asset, scheme, x402Version,
missing fields) and posts it to the sandbox facilitator (``/verify`` and
``/settle``) and to a paid endpoint: none is accepted, no balance moves, and
the unmutated payment still buys exactly one answer afterwards. Payments the
payer signed on wrong terms are refused too. Twenty parallel copies of one
payment through the async client's transport are served exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.reliability.helpers import FAST_RETRY
from tests.toyserver import ToyConfig, ToyX402, serve_app
from tm402_nb.errors import PaymentRefused, TM402Error, X402ProtocolError
from tm402_nb.ledger import Ledger
from tm402_nb.sandbox import SandboxServer, serve
from tm402_nb.sandbox.assets import SANDBOX_TMAI_BASE_SEPOLIA
from tm402_nb.tokenmetrics.client import AsyncClient
from tm402_nb.x402 import SpendPolicy, Wallet, X402Auth
from tm402_nb.x402.eip3009 import Eip712Domain, sign_authorization, transfer_digest
from tm402_nb.x402.encoding import b64json_encode
from tm402_nb.x402.messages import (
    Authorization,
    PaymentPayload,
    PaymentRequired,
    PaymentRequirements,
    SettlementResponse,
    build_payment_payload,
    parse_challenge,
    read_receipt,
)
from tm402_nb.x402.networks import TMAI_BASE, USDC_BASE, USDC_BASE_SEPOLIA

PAYEE_A = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"
PAYEE_B = "0x4444444444444444444444444444444444444444"
UNKNOWN_TOKEN = "0x9999999999999999999999999999999999999999"
TMAI_SANDBOX = SANDBOX_TMAI_BASE_SEPOLIA.address
ORIGIN = "http://hostile.test:80"
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

HYPO = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


# =============================================================================================
# Hostile server: random challenges
# =============================================================================================

addresses = st.one_of(
    st.sampled_from([PAYEE_A, PAYEE_B, PAYEE_A.lower(), "0x" + "00" * 20]),
    st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex()),
)
payees = st.one_of(addresses, st.sampled_from(["not-an-address", "0x1234", "", PAYEE_A[:-1], PAYEE_A + "00"]))
assets = st.sampled_from(
    [
        USDC_BASE_SEPOLIA.address,
        USDC_BASE_SEPOLIA.address.lower(),
        USDC_BASE.address,
        TMAI_BASE.address,
        TMAI_SANDBOX,
        UNKNOWN_TOKEN,
        "USDC",
        "not-an-address",
        "",
    ]
)
v1_networks = st.sampled_from(
    ["base-sepolia", "base", "Base-Sepolia", "eip155:84532", "ethereum", "polygon", "", "eip155:8453", "solana-devnet"]
)
v2_networks = st.sampled_from(
    [
        "eip155:84532",
        "eip155:8453",
        "eip155:1",
        "eip155:999999",
        "base-sepolia",
        "base",
        "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1",
    ]
)
amounts = st.one_of(
    st.integers(0, 120_000),
    st.integers(0, 2**256 + 10),
    st.sampled_from([17_000, 100_000, 100_001, 50_000, 10**18, 5 * 10**18, 5 * 10**18 + 1]),
).map(str) | st.sampled_from([-1, 1.5, "1e6", "0x10", "", None, True, 17_000])
timeouts = st.one_of(
    st.sampled_from([0, -1, 1, 5, 60, 300, 301, 86_400, 86_401, 10**12, 2**63]),
    st.integers(-100, 200_000),
    st.sampled_from(["60", 60.5, None, True]),
)
MISSING = object()
extras = st.sampled_from(
    [
        MISSING,
        None,
        {"name": "USDC", "version": "2"},
        {"name": "USD Coin", "version": "2"},
        {"name": "Token Metrics AI", "version": "1"},
        {},
        {"name": "Evil"},
        {"name": "", "version": ""},
        "USDC",
    ]
)
schemes = st.sampled_from(["exact"] * 6 + ["upto", "EXACT", ""])


#: A plausible offer per token: (chain id, address, decimals-scaled sane amounts, its EIP-712 extra).
PLAUSIBLE = [
    (84532, USDC_BASE_SEPOLIA.address, st.integers(0, 120_000), {"name": "USDC", "version": "2"}),
    (84532, TMAI_SANDBOX, st.integers(0, 6 * 10**18), {"name": "Token Metrics AI", "version": "1"}),
    (8453, USDC_BASE.address, st.integers(0, 120_000), {"name": "USD Coin", "version": "2"}),
    (8453, TMAI_BASE.address, st.integers(0, 6 * 10**18), {"name": "Token Metrics AI", "version": "1"}),
]


FIELDS = ("scheme", "network", "amount", "amount-key", "asset", "payTo", "timeout", "extra")


@st.composite
def requirement(draw: Any, version: int) -> dict[str, Any]:
    """A plausible offer with up to three hostile fields (none at all, often: then the caps,
    the budget and the pinned payee are what must hold)."""
    chain, token, sane_amount, sane_extra = draw(st.sampled_from(PLAUSIBLE[:2] * 3 + PLAUSIBLE[2:]))
    hostile = draw(st.sets(st.sampled_from(FIELDS), max_size=3))
    net_name = {84532: ("base-sepolia", "eip155:84532"), 8453: ("base", "eip155:8453")}[chain][version - 1]

    def pick(name: str, sane: st.SearchStrategy, bad: st.SearchStrategy) -> Any:
        return draw(bad if name in hostile else sane)

    req: dict[str, Any] = {"scheme": pick("scheme", st.just("exact"), schemes)}
    req["network"] = pick("network", st.just(net_name), v1_networks if version == 1 else v2_networks)
    amount_key = "maxAmountRequired" if version == 1 else "amount"
    if "amount-key" in hostile:  # the other version's amount key
        amount_key = "amount" if version == 1 else "maxAmountRequired"
    req[amount_key] = pick("amount", sane_amount.map(str), amounts)
    req["asset"] = pick("asset", st.just(token), assets)
    req["payTo"] = pick("payTo", st.sampled_from([PAYEE_A, PAYEE_B]), payees)
    req["maxTimeoutSeconds"] = pick("timeout", st.sampled_from([60, 300, 3600]), timeouts)
    extra = pick("extra", st.sampled_from([sane_extra, MISSING]), extras)
    if extra is not MISSING:
        req["extra"] = extra
    if version == 1:
        req.update(resource="http://hostile.test/data", description="d", mimeType="application/json")
    return req


@st.composite
def challenge(draw: Any) -> dict[str, Any]:
    version = draw(st.sampled_from([1, 2]))
    accepts = draw(st.lists(requirement(version), min_size=1, max_size=3))
    ch: dict[str, Any] = {"x402Version": version, "error": "payment required", "accepts": accepts}
    if version == 2:
        ch["resource"] = {"url": "http://hostile.test/data"}
    return ch


#: A session: the same server sends several challenges in a row (payee switches, price changes...).
sessions = st.lists(challenge(), min_size=1, max_size=6)


@dataclass(frozen=True)
class Variant:
    """A policy and what it allows, restated independently for the oracle."""

    name: str
    kwargs: dict[str, Any]
    #: (chain id, lower-case token address) -> (per-call cap, budget) in atomic units
    assets: dict[tuple[int, str], tuple[int, int]]
    max_timeout: int = 86_400
    payees: frozenset[str] | None = None  # an explicit allow-list (then no pinning)
    #: (per-call cap, budget) in micro-dollars: every asset counts against them at its USD value.
    usd: tuple[int, int] = (100_000, 300_000)
    #: Micro-dollars per whole TMAI (the policy's usd_rates), if any.
    tmai_rate: int | None = None

    def policy(self) -> SpendPolicy:
        return SpendPolicy(**self.kwargs)


USDC_SEP = (84532, USDC_BASE_SEPOLIA.address.lower())
VARIANTS = [
    Variant(
        "default", dict(max_per_call="0.10", budget="0.25"), {USDC_SEP: (100_000, 250_000)}, usd=(100_000, 250_000)
    ),
    Variant(
        "payees",
        dict(max_per_call="0.05", budget="0.20", payees=[PAYEE_A, PAYEE_B]),
        {USDC_SEP: (50_000, 200_000)},
        payees=frozenset({PAYEE_A.lower(), PAYEE_B.lower()}),
        usd=(50_000, 200_000),
    ),
    Variant(
        "mainnet",
        dict(max_per_call="0.10", budget="0.30", network="base"),
        {(8453, USDC_BASE.address.lower()): (100_000, 300_000)},
    ),
    Variant(
        "tmai",
        dict(
            max_per_call="0.10",
            budget="0.30",
            pay_with="tmai",
            extra_assets=[SANDBOX_TMAI_BASE_SEPOLIA],
            asset_limits={"TMAI": {"max_per_call": "5", "budget": "12"}},
            usd_rates={"TMAI": "0.02"},
        ),
        {USDC_SEP: (100_000, 300_000), (84532, TMAI_SANDBOX.lower()): (5 * 10**18, 12 * 10**18)},
        tmai_rate=20_000,
    ),
    Variant(
        "short-timeout",
        dict(max_per_call="0.10", budget="0.30", max_timeout_seconds=300),
        {USDC_SEP: (100_000, 300_000)},
        max_timeout=300,
    ),
]
CHAINS = {"base-sepolia": 84532, "eip155:84532": 84532, "base": 8453, "eip155:8453": 8453}
CAIP2 = {84532: "eip155:84532", 8453: "eip155:8453"}
KNOWN_DOMAIN = {USDC_SEP, (8453, USDC_BASE.address.lower()), (84532, TMAI_SANDBOX.lower())}


def _is_address(value: Any) -> bool:
    return (
        isinstance(value, str)
        and len(value) == 42
        and value[:2] == "0x"
        and all(c in "0123456789abcdefABCDEF" for c in value[2:])
    )


def static_violation(v: Variant, req: PaymentRequirements) -> str | None:
    """Why paying ``req`` would break the policy regardless of history (None: it would not)."""
    if req.scheme != "exact":
        return "scheme"
    chain = CHAINS.get(req.network.strip().lower())
    if chain is None or (req.x402_version == 2 and req.network != CAIP2[chain]):
        return "network"
    if not _is_address(req.asset) or (chain, req.asset.lower()) not in v.assets:
        return "asset"
    if not (req.eip712_name and req.eip712_version) and (chain, req.asset.lower()) not in KNOWN_DOMAIN:
        return "domain"
    if not 1 <= req.max_timeout_seconds <= v.max_timeout:
        return "timeout"
    if not _is_address(req.pay_to) or (v.payees is not None and req.pay_to.lower() not in v.payees):
        return "payee"
    if req.amount > v.assets[(chain, req.asset.lower())][0]:
        return "per-call cap"
    return None


@dataclass
class SessionOracle:
    """The oracle's view of a session: what was committed, and the pinned payee."""

    spent: dict[tuple[int, str], int] = field(default_factory=dict)
    pinned: str | None = None

    spent_usd: int = 0

    def violation(self, v: Variant, req: PaymentRequirements, required: PaymentRequired) -> str | None:
        why = static_violation(v, req)
        if why:
            return why
        key = (CHAINS[req.network.strip().lower()], req.asset.lower())
        if req.amount > v.assets[key][1] - self.spent.get(key, 0):
            return "asset budget"
        usd = usd_value(v, req, required, self.pinned)
        if usd is None:
            return "cannot be valued in USD"
        per_call, budget = v.usd
        if usd > per_call:
            return "per-call cap (USD)"
        if usd > budget - self.spent_usd:
            return "budget (USD)"
        if v.payees is None and self.pinned is not None and req.pay_to.lower() != self.pinned:
            return "pinned payee"
        return None

    def commit(self, v: Variant, req: PaymentRequirements, required: PaymentRequired) -> None:
        key = (CHAINS[req.network.strip().lower()], req.asset.lower())
        self.spent[key] = self.spent.get(key, 0) + req.amount
        self.spent_usd += usd_value(v, req, required, self.pinned) or 0
        self.pinned = self.pinned or req.pay_to.lower()


STABLE = {USDC_SEP, (8453, USDC_BASE.address.lower())}


def usd_value(v: Variant, req: PaymentRequirements, required: PaymentRequired, pinned: str | None = None) -> int | None:
    """Micro-dollars paying ``req`` counts as: a USDC amount at par; TMAI at the highest of the
    challenge's payable USDC prices and the variant's own rate; None when neither exists."""
    key = (CHAINS[req.network.strip().lower()], req.asset.lower())
    if key in STABLE:
        return req.amount
    if req.amount == 0:
        return 0
    # Only a USDC price the policy would itself pay anchors it: same network, allowed terms, the same payee.
    values = [
        r.amount
        for r in required.accepts
        if static_violation(v, r) in (None, "per-call cap")
        and (CHAINS[r.network.strip().lower()], r.asset.lower()) in STABLE
        and CHAINS[r.network.strip().lower()] == key[0]
        and (v.payees is not None or pinned is None or r.pay_to.lower() == pinned)
    ]
    if v.tmai_rate is not None:
        values.append(-(-req.amount * v.tmai_rate // 10**18))
    return max(values) if values else None


def _parse(ch: dict[str, Any]) -> PaymentRequired | None:
    try:
        return PaymentRequired.from_json(copy.deepcopy(ch), source="header" if ch["x402Version"] == 2 else "body")
    except X402ProtocolError:
        return None


@settings(max_examples=500, **HYPO)
@given(variant=st.sampled_from(VARIANTS), session=sessions)
def test_policy_only_selects_what_it_allows(variant, session):
    policy = variant.policy()
    oracle = SessionOracle()
    for ch in session:
        required = _parse(ch)
        if required is None:
            continue
        try:
            offer = policy.select(required, origin=ORIGIN)
        except PaymentRefused:
            # Not over-strict either: a lone offer the oracle allows must be selectable.
            if len(required.accepts) == 1:
                assert oracle.violation(variant, required.accepts[0], required) is not None, (
                    "an allowed offer was refused"
                )
            continue
        assert any(offer.requirements is r for r in required.accepts), "selected an offer the server did not make"
        assert oracle.violation(variant, offer.requirements, required) is None, oracle.violation(
            variant, offer.requirements, required
        )
        policy.commit(offer, ORIGIN)
        oracle.commit(variant, offer.requirements, required)
        event(f"selected ({variant.name})")
    for key, (_, budget) in variant.assets.items():
        assert oracle.spent.get(key, 0) <= budget


# -- end to end: X402Auth against a tiny server serving the hypothesis challenges -----------------


class CountingWallet(Wallet):
    """A wallet that counts every digest it signs (nothing can be signed behind the counter)."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.signed = 0

    def sign_digest(self, digest: bytes) -> bytes:
        self.signed += 1
        return super().sign_digest(digest)


class HostileServer:
    """Serves whatever challenge it is given; takes any payment that matches one of its offers."""

    def __init__(self) -> None:
        self.challenge: dict[str, Any] = {}
        self.lock = threading.Lock()
        self.app = Starlette(routes=[Route("/data", self.data)])

    def _challenge_response(self) -> Response:
        ch = self.challenge
        if ch["x402Version"] == 1:
            return Response(json.dumps(ch), status_code=402, media_type="application/json")
        return Response(
            "{}", status_code=402, media_type="application/json", headers={"PAYMENT-REQUIRED": b64json_encode(ch)}
        )

    async def data(self, request: Request) -> Response:
        with self.lock:
            ch = self.challenge
        version = ch["x402Version"]
        value = request.headers.get("X-PAYMENT" if version == 1 else "PAYMENT-SIGNATURE")
        if value is None:
            return self._challenge_response()
        try:
            payload = PaymentPayload.decode(value)
        except X402ProtocolError:
            return self._challenge_response()
        auth = payload.authorization
        for entry in ch["accepts"]:
            if version == 2:
                match = payload.accepted == entry
            else:
                match = (
                    payload.network == entry.get("network")
                    and auth.to == entry.get("payTo")
                    and str(auth.value) == str(entry.get("maxAmountRequired"))
                )
            if match and payload.x402_version == version:
                receipt = SettlementResponse(True, "0x" + auth.nonce[2:], str(entry.get("network")), auth.from_)
                name = "X-PAYMENT-RESPONSE" if version == 1 else "PAYMENT-RESPONSE"
                return JSONResponse({"ok": True}, headers={name: receipt.encode()})
        return self._challenge_response()


@pytest.fixture(scope="module")
def hostile() -> Iterator[tuple[HostileServer, str]]:
    server = HostileServer()
    with serve_app(server.app) as url:
        yield server, url


@settings(max_examples=250, **HYPO)
@given(variant=st.sampled_from(VARIANTS), session=sessions, warm=st.booleans())
def test_nothing_outside_the_policy_is_ever_signed(hostile, variant, session, warm):
    server, url = hostile
    wallet = CountingWallet.create()
    events: list[Any] = []
    auth = X402Auth(wallet, variant.policy(), warm=warm, listeners=[events.append])
    served: list[dict[str, Any]] = []
    with httpx.Client(auth=auth, timeout=10) as http:
        for ch in session:
            server.challenge = ch
            served.extend(ch["accepts"])
            try:
                r = http.get(url + "/data")
                assert r.status_code in (200, 402)
            except TM402Error:
                pass  # refused, unparseable or failed: all fine, as long as nothing bad was signed
    signed = [e.payment for e in events if e.kind == "signed"]
    event(f"signed {min(len(signed), 3)}{'+' if len(signed) >= 3 else ''}")
    assert wallet.signed == auth.stats["signed"] == len(signed), "something was signed outside the payment flow"
    oracle = SessionOracle()
    for p in signed:
        req = p.offer.requirements
        assert any(req.raw == s for s in served), "signed for terms no server offered"
        why = static_violation(variant, req)
        assert why is None, f"signed a payment the policy forbids ({why}): {req.raw}"
        if variant.payees is None:
            oracle.pinned = oracle.pinned or req.pay_to.lower()
            assert req.pay_to.lower() == oracle.pinned, "signed for a second payee on the same server"
        # The authorization signs exactly the offer's terms.
        a = p.payload.authorization
        assert (a.value, a.to.lower(), a.from_) == (req.amount, req.pay_to.lower(), wallet.address)
        assert 0 < a.valid_before - a.valid_after <= req.max_timeout_seconds + 600
    # The budget: what may still be spent (everything but payments the server refused) fits.
    for key, (_, budget) in variant.assets.items():
        live = sum(
            p.amount
            for p in signed
            if p.status != "failed"
            and (CHAINS[p.offer.requirements.network.strip().lower()], p.offer.requirements.asset.lower()) == key
        )
        assert live <= budget


def test_payee_switch_within_an_explicit_allow_list(hostile):
    """Regression: the refusal says "pass payees=[...] to allow several"; doing so now allows them."""
    server, url = hostile
    req = {
        "scheme": "exact",
        "network": "base-sepolia",
        "maxAmountRequired": "17000",
        "asset": USDC_BASE_SEPOLIA.address,
        "maxTimeoutSeconds": 60,
        "extra": {"name": "USDC", "version": "2"},
    }
    pinned = X402Auth(Wallet.create(), SpendPolicy(), warm=False)
    listed = X402Auth(Wallet.create(), SpendPolicy(payees=[PAYEE_A, PAYEE_B]), warm=False)
    refusals: list[tuple[X402Auth, str]] = []
    for auth in (pinned, listed):
        with httpx.Client(auth=auth, timeout=10) as http:
            for payee in (PAYEE_A, PAYEE_B):
                server.challenge = {"x402Version": 1, "accepts": [dict(req, payTo=payee)]}
                try:
                    http.get(url + "/data")
                except PaymentRefused as exc:
                    refusals.append((auth, str(exc)))
    assert [a for a, _ in refusals] == [pinned]
    assert "payee changed" in refusals[0][1] and "payees=[...]" in refusals[0][1]
    assert pinned.stats["signed"] == 1 and listed.stats["signed"] == 2


# -- a 20 KB challenge --------------------------------------------------------------------------


def _valid_requirement(version: int, pad: int) -> dict[str, Any]:
    req: dict[str, Any] = {
        "scheme": "exact",
        "network": "base-sepolia" if version == 1 else "eip155:84532",
        "asset": USDC_BASE_SEPOLIA.address,
        "payTo": PAYEE_A,
        "maxTimeoutSeconds": 60,
        "extra": {"name": "USDC", "version": "2", "padding": "x" * pad},
    }
    req["maxAmountRequired" if version == 1 else "amount"] = "17000"
    return req


def _padded_challenge(version: int, target: int) -> tuple[dict[str, Any], int]:
    """A valid, affordable challenge whose wire form (v1 body, v2 header) is ``target`` bytes long."""
    pad = 0
    for _ in range(40):  # converges in a few steps; bounded anyway
        ch = {"x402Version": version, "accepts": [_valid_requirement(version, pad)]}
        size = len(json.dumps(ch)) if version == 1 else len(b64json_encode(ch))
        if abs(size - target) <= 4:
            return ch, size
        pad += (target - size) * 3 // 4 if version == 2 else target - size
    raise AssertionError("could not size the challenge")


@pytest.mark.parametrize("version", [1, 2], ids=["v1-body", "v2-header"])
def test_twenty_kb_challenge_is_refused_before_signing(hostile, version):
    server, url = hostile
    ch, size = _padded_challenge(version, 20 * 1024)
    assert 20 * 1024 - 4 <= size <= 20 * 1024 + 4
    # Decoded, the v2 challenge is only ~15 KB: the limit applies to what is on the wire.
    wallet = CountingWallet.create()
    auth = X402Auth(wallet, SpendPolicy())
    server.challenge = ch
    with httpx.Client(auth=auth, timeout=10) as http, pytest.raises(X402ProtocolError, match="16 KB"):
        http.get(url + "/data")
    assert wallet.signed == 0 and auth.stats["signed"] == 0
    # Just under the limit, the same challenge is paid normally: the limit is not over-broad.
    server.challenge, size = _padded_challenge(version, 16 * 1024 - 100)
    with httpx.Client(auth=auth, timeout=10) as http:
        assert http.get(url + "/data").status_code == 200
    assert wallet.signed == 1


def test_twenty_kb_challenge_from_the_toy_server_is_refused(wallet, ledger):
    """The same through the suite's toy server (a different server stack), with a ledger: no row either."""
    ch, _ = _padded_challenge(2, 20 * 1024)
    toy = ToyX402(ToyConfig(version=2))
    toy.config.header_override = b64json_encode(ch)
    auth = X402Auth(wallet, ledger=ledger)
    with serve_app(toy.app) as url, httpx.Client(auth=auth) as http, pytest.raises(X402ProtocolError):
        http.get(url + "/data")
    assert auth.stats["signed"] == 0 and toy.counts["paid_attempts"] == 0 and ledger.payments().empty


# =============================================================================================
# Hostile client: mutated payments against the sandbox
# =============================================================================================

PATH = "/v2/tm-grade"
PARAMS = {"token_id": "3375"}
X402 = {"x-coinbase-402": "true"}


@dataclass
class Valid:
    """One valid payment for PATH and the requirement it answers, as JSON."""

    sb: SandboxServer
    wallet: Wallet
    payload: dict[str, Any]
    requirement: dict[str, Any]
    header: str

    @property
    def version(self) -> int:
        return self.sb.x402_version


def _valid_payment(sb: SandboxServer, wallet: Wallet) -> Valid:
    with httpx.Client(base_url=sb.url, timeout=10) as c:
        r = c.get(PATH, params=PARAMS, headers=X402)
    required = parse_challenge(r.headers, r.content)
    req = next(q for q in required.accepts if q.eip712_name in ("USDC", "USD Coin"))
    auth, sig = sign_authorization(wallet, req)
    payload = build_payment_payload(required, req, auth, sig)
    return Valid(sb, wallet, payload.to_json(), req.raw, payload.header_name)


@pytest.fixture(params=[1, 2], ids=["v1", "v2"])
def victim(request) -> Iterator[Valid]:
    """A fresh sandbox and one valid payment for it (unused: each test spends it once at the end).

    A long window (600 s), so the payment outlives the whole hypothesis run.
    """
    with serve(
        x402_version=request.param, fund=False, rate_limit=100_000, rate_burst=100_000, max_timeout_seconds=600
    ) as sb:
        wallet = Wallet.create()
        sb.fund(wallet.address, "usdc", "5")
        yield _valid_payment(sb, wallet)


def _mutate_signature(sig: str, how: str, i: int, mask: int, v_new: int, cut: int, tail: bytes, junk: str) -> str:
    try:
        raw = bytearray.fromhex(sig[2:]) if sig.startswith("0x") else None
    except ValueError:
        raw = None
    if raw is None or (len(raw) != 65 and how in ("byte", "v", "high-s-same-v")):
        return sig + "00" if how != "junk" else "0xZZ"  # an earlier mutation broke it already: keep it broken
    if how == "byte":  # flip bits of r or s
        raw[i] ^= mask
    elif how == "v":
        # v 27/28 and 0/1 are two spellings of one recovery id: only a value that is not the same one.
        raw[64] = v_new if v_new not in (raw[64], raw[64] - 27) else (raw[64] ^ 1)
    elif how == "truncate":
        raw = raw[:cut]
    elif how == "extend":
        raw += tail
    elif how == "zero":
        raw = bytearray(65)
    elif how == "high-s-same-v":  # s -> n - s without flipping v: recovers another key
        s = int.from_bytes(raw[32:64], "big")
        raw[32:64] = (SECP256K1_N - s).to_bytes(32, "big")
    else:
        return {"not-hex": "0xZZ", "empty": "", "bare": "0x", "no-prefix": sig[2:], "odd": sig + "0"}[junk]
    return "0x" + raw.hex()


@st.composite
def mutation(draw: Any, version: int) -> tuple[str, Any]:
    """One (kind, edit): ``edit(payload, requirement)`` changes the JSON in place; ``kind`` names the field."""
    kinds = [
        "value",
        "to",
        "from",
        "nonce",
        "signature",
        "validAfter",
        "validBefore",
        "network",
        "asset",
        "scheme",
        "x402Version",
        "drop",
    ]
    if version == 2:
        kinds.append("accepted-echo")
    kind = draw(st.sampled_from(kinds))

    def auth_of(p: dict[str, Any]) -> dict[str, Any]:
        return p["payload"]["authorization"]

    if kind in ("value", "validAfter", "validBefore"):
        delta = draw(st.one_of(st.integers(-(10**6), 10**6), st.sampled_from([-1, 1, 600, -600, 3600])))
        absolute = draw(st.one_of(st.none(), st.integers(0, 2**256 - 1), st.sampled_from([0, 2**256 - 1])))

        def edit(p, r, kind=kind, delta=delta, absolute=absolute):
            old = int(auth_of(p)[kind])
            new = absolute if absolute is not None else max(0, old + delta)
            auth_of(p)[kind] = str(new if new != old else old + 1)

        return kind, edit
    if kind in ("to", "from"):
        other = draw(addresses)

        def edit(p, r, kind=kind, other=other):
            a = auth_of(p)
            if other.lower() == a[kind].lower():
                other = PAYEE_B if a[kind].lower() != PAYEE_B.lower() else PAYEE_A
            a[kind] = other

        return kind, edit
    if kind == "nonce":
        other = "0x" + draw(st.binary(min_size=32, max_size=32)).hex()

        def edit(p, r, other=other):
            a = auth_of(p)
            a["nonce"] = other if other != a["nonce"] else "0x" + "ab" * 32

        return kind, edit
    if kind == "signature":
        args = dict(
            how=draw(st.sampled_from(["byte", "v", "truncate", "extend", "zero", "high-s-same-v", "junk"])),
            i=draw(st.integers(0, 63)),
            mask=draw(st.integers(1, 255)),
            v_new=draw(st.integers(0, 255)),
            cut=draw(st.integers(0, 64)),
            tail=draw(st.binary(min_size=1, max_size=8)),
            junk=draw(st.sampled_from(["not-hex", "empty", "bare", "no-prefix", "odd"])),
        )

        def edit(p, r, args=args):
            p["payload"]["signature"] = _mutate_signature(p["payload"]["signature"], **args)

        return f"signature/{args['how']}", edit
    if kind == "network":
        # A different chain or an unknown name (case and v1/CAIP-2 spellings of one chain are that chain).
        other = draw(
            st.sampled_from(
                [
                    "base",
                    "eip155:8453",
                    "ethereum",
                    "eip155:1",
                    "polygon",
                    "",
                    "base-mainnet",
                    "eip155:999999",
                    "solana-devnet",
                ]
            )
        )

        def edit(p, r, other=other):
            if version == 1:
                p["network"] = other
            else:
                p["accepted"]["network"] = other

        return kind, edit
    if kind == "asset":
        other = draw(st.sampled_from([TMAI_SANDBOX, UNKNOWN_TOKEN, USDC_BASE.address, "USDC", "0x12"]))

        def edit(p, r, other=other):
            r["asset"] = other  # the claim: "this pays in another token"
            if version == 2:
                p["accepted"]["asset"] = other

        return kind, edit
    if kind == "scheme":
        other = draw(st.sampled_from(["upto", "EXACT", "", "exact ", "permit2"]))

        def edit(p, r, other=other):
            if version == 1:
                p["scheme"] = other
            else:
                p["accepted"]["scheme"] = other

        return kind, edit
    if kind == "x402Version":
        other = draw(
            st.sampled_from([0, 1, 2, 3, -1, "1", "2", None, True, False, 2.5, 1.0, 2.0]).filter(
                lambda x: isinstance(x, bool) or not isinstance(x, (int, float)) or x != version
            )
        )

        def edit(p, r, other=other):
            p["x402Version"] = other

        return kind, edit
    if kind == "drop":
        where = draw(
            st.sampled_from(
                ["signature", "authorization", "payload", "from", "to", "value", "validAfter", "validBefore", "nonce"]
                + (["accepted"] if version == 2 else ["scheme", "network"])
            )
        )

        def edit(p, r, where=where):
            if where in ("signature", "authorization"):
                del p["payload"][where]
            elif where in ("payload", "accepted", "scheme", "network"):
                del p[where]
            else:
                del auth_of(p)[where]

        return f"drop/{where}", edit
    # accepted-echo (v2): the echo no longer matches this endpoint's requirement (the paid endpoint checks it)
    field_ = draw(st.sampled_from(["amount", "payTo", "maxTimeoutSeconds", "extra"]))

    def edit(p, r, field_=field_):
        p["accepted"][field_] = {"amount": "1", "payTo": PAYEE_B, "maxTimeoutSeconds": 1, "extra": {"name": "Evil"}}[
            field_
        ]

    return f"accepted/{field_}", edit


def _facilitator_accepts(c: httpx.Client, valid: Valid, payload: dict, req: dict) -> list[str]:
    body = {"x402Version": valid.version, "paymentPayload": payload, "paymentRequirements": req}
    problems = []
    r = c.post("/facilitator/verify", json=body)
    if r.status_code == 200 and r.json().get("isValid") is True:
        problems.append("verify said valid")
    r = c.post("/facilitator/settle", json=body)
    if r.status_code == 200 and r.json().get("success") is True:
        problems.append("settle succeeded")
    return problems


def _endpoint_accepts(c: httpx.Client, valid: Valid, payload: dict) -> list[str]:
    r = c.get(PATH, params=PARAMS, headers={**X402, valid.header: b64json_encode(payload)})
    problems = []
    if r.status_code == 200:
        problems.append("the paid endpoint served it")
    try:
        receipt = read_receipt(r.headers)
    except X402ProtocolError:
        receipt = None
    if receipt is not None and receipt.success:
        problems.append("a successful receipt")
    if r.status_code not in (400, 402):
        problems.append(f"HTTP {r.status_code}")
    return problems


def _balances(valid: Valid) -> tuple[int, int, int]:
    sb = valid.sb
    return (sb.balance(valid.wallet.address, "usdc"), sb.balance(sb.pay_to, "usdc"), len(sb.settlements()))


def _canonical(payload: dict[str, Any]) -> str:
    """The payload with its signature in one spelling (v 27/28, low s): equal means the same payment."""
    p = copy.deepcopy(payload)
    sig = p.get("payload", {}).get("signature") if isinstance(p.get("payload"), dict) else None
    if isinstance(sig, str) and sig.startswith("0x") and len(sig) == 132:
        try:
            raw = bytearray.fromhex(sig[2:])
        except ValueError:
            raw = None
        if raw is not None:
            v = raw[64] + 27 if raw[64] in (0, 1) else raw[64]
            s = int.from_bytes(raw[32:64], "big")
            if v in (27, 28) and s > SECP256K1_N // 2:
                raw[32:64], v = (SECP256K1_N - s).to_bytes(32, "big"), 55 - v
            raw[64] = v
            p["payload"]["signature"] = "0x" + raw.hex()
    return json.dumps(p, sort_keys=True)


def _mutated_examples(victim: Valid, data: Any) -> None:
    edits = data.draw(st.lists(mutation(victim.version), min_size=1, max_size=3), label="mutations")
    payload, req = copy.deepcopy(victim.payload), copy.deepcopy(victim.requirement)
    for _, edit in edits:
        with contextlib.suppress(KeyError):  # an earlier mutation dropped the field this one edits
            edit(payload, req)
    # Two mutations can cancel out (v 27 -> 28 -> 0 is the original recovery id again): compare meanings.
    same_payload = _canonical(payload) == _canonical(victim.payload)
    assume(not (same_payload and req == victim.requirement))
    # `accepted` is an echo the resource server compares with its own terms; a facilitator (the
    # reference one too) checks only its scheme and network, and verifies the signed authorization
    # against the requirements it is given. An echo-only change is therefore a paid-endpoint case.
    # Edits can also cancel out around an echo change (the same signature byte flipped twice):
    # what is left is then the echo alone, whatever the list of edits says.
    signed_same = _canonical({**payload, "accepted": None}) == _canonical({**victim.payload, "accepted": None})
    echo_only = all(kind.startswith("accepted/") for kind, _ in edits) or (signed_same and req == victim.requirement)
    before = _balances(victim)
    with httpx.Client(base_url=victim.sb.url, timeout=10) as c:
        problems = [] if echo_only else _facilitator_accepts(c, victim, payload, req)
        if not same_payload:
            problems += _endpoint_accepts(c, victim, payload)
    assert not problems, f"{[k for k, _ in edits]}: {problems}"
    assert _balances(victim) == before, "a refused payment moved money"


def _spend_once(valid: Valid) -> None:
    """The unmutated payment buys exactly one answer, and its replay is refused."""
    before = _balances(valid)
    header = {**X402, valid.header: b64json_encode(valid.payload)}
    with httpx.Client(base_url=valid.sb.url, timeout=10) as c:
        first = c.get(PATH, params=PARAMS, headers=header)
        second = c.get(PATH, params=PARAMS, headers=header)
    assert first.status_code == 200 and read_receipt(first.headers).success
    assert second.status_code == 402
    price = int(valid.requirement["maxAmountRequired" if valid.version == 1 else "amount"])
    assert _balances(valid) == (before[0] - price, before[1] + price, before[2] + 1)


@pytest.mark.slow
def test_mutated_payments_are_never_accepted(victim):
    @settings(max_examples=200, **HYPO)
    @given(data=st.data())
    def mutated(data):
        _mutated_examples(victim, data)

    mutated()
    _spend_once(victim)  # no mutation consumed its nonce or moved money


@pytest.mark.slow
def test_payer_signed_wrong_terms_are_refused(victim):
    """The payer's own valid signature over the wrong amount, payee or window: still refused."""
    req = PaymentRequirements.from_json(victim.requirement, victim.version)

    @settings(max_examples=80, **HYPO)
    @given(data=st.data())
    def wrong_terms(data):
        now = int(time.time())
        value = data.draw(st.sampled_from([req.amount, req.amount - 1, req.amount + 1, 0, 10**6, 2**255]))
        to = data.draw(st.sampled_from([req.pay_to, PAYEE_B, victim.wallet.address]))
        window = data.draw(st.sampled_from(["ok", "expired", "expiring", "not-yet"]))
        assume(value != req.amount or to != req.pay_to or window != "ok")
        after, before = {
            "ok": (now - 600, now + 300),
            "expired": (now - 3600, now - 60),
            "expiring": (now - 600, now + 2),
            "not-yet": (now + 120, now + 600),
        }[window]
        nonce = "0x" + data.draw(st.binary(min_size=32, max_size=32)).hex()
        auth = Authorization(victim.wallet.address, to, value, after, before, nonce)
        domain = Eip712Domain(req.eip712_name or "USDC", req.eip712_version or "2", 84532, req.asset)
        payload = copy.deepcopy(victim.payload)
        payload["payload"] = {
            "signature": "0x" + victim.wallet.sign_digest(transfer_digest(auth, domain)).hex(),
            "authorization": auth.to_json(),
        }
        balances = _balances(victim)
        with httpx.Client(base_url=victim.sb.url, timeout=10) as c:
            problems = _facilitator_accepts(c, victim, payload, victim.requirement) + _endpoint_accepts(
                c, victim, payload
            )
        assert not problems, f"value={value} to={to} window={window}: {problems}"
        assert _balances(victim) == balances

    wrong_terms()
    _spend_once(victim)


def test_equivalent_signature_spellings_settle_at_most_once(victim):
    """v 27/28 vs 0/1, and (s, v) vs (n - s, flipped v), sign the same authorization: one nonce, one charge."""
    sig = bytearray.fromhex(victim.payload["payload"]["signature"][2:])
    v_low = sig[:64] + bytes([sig[64] - 27])
    s = int.from_bytes(sig[32:64], "big")
    high_s = sig[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - sig[64]])
    before = _balances(victim)
    served = 0
    with httpx.Client(base_url=victim.sb.url, timeout=10) as c:
        for raw in (bytes(v_low), bytes(high_s), bytes(sig)):
            p = copy.deepcopy(victim.payload)
            p["payload"]["signature"] = "0x" + raw.hex()
            r = c.get(PATH, params=PARAMS, headers={**X402, victim.header: b64json_encode(p)})
            served += r.status_code == 200
    price = int(victim.requirement["maxAmountRequired" if victim.version == 1 else "amount"])
    assert served <= 1
    assert _balances(victim) == (before[0] - price * served, before[1] + price * served, before[2] + served)


@pytest.mark.parametrize(
    "field_, value",
    [
        ("maxTimeoutSeconds", 1),
        ("maxTimeoutSeconds", "600"),
        ("extra", {"name": "Evil", "version": "2"}),
        ("extra", None),
    ],
)
def test_v2_echo_must_match_the_offer(field_, value):
    """Regression (sandbox paywall): like the reference server, a v2 `accepted` echo must carry the
    offer's maxTimeoutSeconds and its `extra` (name, version); it used to be served anyway."""
    with serve(x402_version=2, fund=False, max_timeout_seconds=600) as sb:
        wallet = Wallet.create()
        sb.fund(wallet.address, "usdc", "5")
        valid = _valid_payment(sb, wallet)
        bad = copy.deepcopy(valid.payload)
        bad["accepted"][field_] = value
        before = _balances(valid)
        with httpx.Client(base_url=sb.url, timeout=10) as c:
            r = c.get(PATH, params=PARAMS, headers={**X402, valid.header: b64json_encode(bad)})
            assert r.status_code == 402, r.text
            required = parse_challenge(r.headers, r.content)
            assert required.error == "invalid_payment_requirements"
            assert _balances(valid) == before
        _spend_once(valid)  # the same authorization with the true echo is still good


# -- replay in parallel, through the async client's own transport ---------------------------------


@pytest.mark.parametrize("version", [1, 2], ids=["v1", "v2"])
def test_parallel_replay_through_the_async_client_is_served_once(tmp_path, version):
    with serve(x402_version=version, fund=False, rate_limit=100_000, rate_burst=100_000) as sb:
        wallet = Wallet.create()
        sb.fund(wallet.address, "usdc", "5")
        valid = _valid_payment(sb, wallet)
        ledger = Ledger(tmp_path / "l.sqlite3")
        auth = X402Auth(wallet, SpendPolicy(budget="1"), ledger=ledger)
        before = _balances(valid)

        async def burst() -> list[httpx.Response]:
            async with AsyncClient(
                mode="sandbox",
                base_url=sb.api_url,
                auth=auth,
                ledger=ledger,
                retry=FAST_RETRY,
                progress=False,
                max_concurrency=20,
            ) as client:
                http = client._http  # auth + payment-replay transport + pool, exactly as the client sends
                headers = {valid.header: b64json_encode(valid.payload)}
                return await asyncio.wait_for(
                    asyncio.gather(
                        *(http.get(sb.api_url + "/tm-grade", params=PARAMS, headers=headers) for _ in range(20))
                    ),
                    60,
                )

        responses = asyncio.run(burst())
        after = _balances(valid)
        ledger.close()
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] + [402] * 19, codes
    price = int(valid.requirement["maxAmountRequired" if version == 1 else "amount"])
    assert after == (before[0] - price, before[1] + price, before[2] + 1)
    # The caller's header went through untouched: the client signed nothing of its own for the 19 refusals.
    assert auth.stats["signed"] == 0
