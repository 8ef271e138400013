"""Paying ``upto``: a ceiling signed within the caps, the settled amount counted, the rest given back.

The server here is a few lines in front of the reader: it offers one x402 v2 ``upto``
requirement (USDC by Permit2, naming its facilitator), checks the Permit2 signature, and
answers with a receipt whose ``amount`` the test chooses (less, none, more than the ceiling).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.toyserver import PAY_TO, serve_app
from tm402_nb.errors import BudgetExceeded, PaymentRefused
from tm402_nb.ledger import Ledger
from tm402_nb.x402 import SpendPolicy, X402Auth
from tm402_nb.x402.auth import payment_of
from tm402_nb.x402.encoding import b64json_encode
from tm402_nb.x402.messages import PaymentPayload, PaymentRequired, Permit2Authorization, SettlementResponse
from tm402_nb.x402.networks import USDC_BASE_SEPOLIA
from tm402_nb.x402.options import PaymentOptions
from tm402_nb.x402.permit2 import UPTO_PERMIT2_PROXY, recover_permit2_signer
from tm402_nb.x402.policy import usd_share
from tm402_nb.x402.wallet import Wallet

FACILITATOR = "0x1111111111111111111111111111111111111111"
OMIT = object()


def upto_requirement(ceiling: int, **extra: Any) -> dict[str, Any]:
    return {
        "scheme": "upto",
        "network": "eip155:84532",
        "amount": str(ceiling),
        "asset": USDC_BASE_SEPOLIA.address,
        "payTo": PAY_TO,
        "maxTimeoutSeconds": 60,
        "extra": {
            "name": "USDC",
            "version": "2",
            "assetTransferMethod": "permit2",
            "facilitatorAddress": FACILITATOR,
            **extra,
        },
    }


def exact_requirement(amount: int) -> dict[str, Any]:
    req = upto_requirement(amount)
    req["scheme"] = "exact"
    req["extra"] = {"name": "USDC", "version": "2"}
    return req


@dataclass
class UptoToy:
    ceiling: int = 50_000
    #: What the receipt says settled (OMIT: no amount in the receipt).
    settle: Any = 12_000
    payloads: list[PaymentPayload] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def requirement(self) -> dict[str, Any]:
        return upto_requirement(self.ceiling)

    async def data(self, request: Request) -> Response:
        header = request.headers.get("PAYMENT-SIGNATURE")
        if header is None:
            required = {"x402Version": 2, "resource": {"url": str(request.url)}, "accepts": [self.requirement()]}
            return Response("{}", 402, headers={"PAYMENT-REQUIRED": b64json_encode(required)})
        payload = PaymentPayload.decode(header)
        self.payloads.append(payload)
        auth = payload.authorization
        problems = [
            ("accepted", payload.accepted != self.requirement()),
            ("permit2", not isinstance(auth, Permit2Authorization)),
        ]
        if isinstance(auth, Permit2Authorization):
            problems += [
                ("spender", auth.spender != UPTO_PERMIT2_PROXY),
                ("facilitator", auth.facilitator != FACILITATOR),
                ("amount", auth.amount != self.ceiling),
                ("signature", recover_permit2_signer(auth, 84532, payload.signature) != auth.from_),
            ]
        bad = [name for name, failed in problems if failed]
        if bad:
            self.refused.append(",".join(bad))
            return JSONResponse({"error": bad}, 402)
        receipt: dict[str, Any] = {"success": True, "transaction": "0x" + "ab" * 32, "network": "eip155:84532"}
        receipt["payer"] = auth.from_
        if self.settle is not OMIT:
            receipt["amount"] = str(self.settle)
            if self.settle == 0:
                receipt["transaction"] = ""  # nothing moved: the SDK's zero settlement has no transaction
        return JSONResponse({"answer": "x" * 100}, headers={"PAYMENT-RESPONSE": b64json_encode(receipt)})


@pytest.fixture
def toy() -> Iterator[tuple[UptoToy, str]]:
    server = UptoToy()
    with serve_app(Starlette(routes=[Route("/data", server.data)])) as url:
        yield server, url + "/data"


@pytest.fixture
def ledger(tmp_path: Any) -> Iterator[Ledger]:
    led = Ledger(tmp_path / "ledger.sqlite3")
    yield led
    led.close()


def _auth(ledger: Ledger | None = None, **policy: Any) -> X402Auth:
    return X402Auth(Wallet.create(), SpendPolicy(**{"budget": "1.00", **policy}), ledger=ledger)


def test_an_upto_call_counts_what_settled_and_gives_back_the_rest(toy, ledger):
    server, url = toy
    auth = _auth(ledger)
    with httpx.Client(auth=auth) as client:
        response = client.get(url)
    assert response.status_code == 200
    payment = payment_of(response)
    assert payment is not None and payment.status == "settled"
    # signed: the ceiling, by Permit2, for the upto proxy and the named facilitator
    signed = server.payloads[0].authorization
    assert isinstance(signed, Permit2Authorization) and signed.amount == 50_000
    assert payment.record.scheme == "upto" and payment.record.transfer == "permit2"
    assert payment.record.nonce == signed.nonce_hex
    # counted: what settled, in the session and in the ledger alike
    assert payment.ceiling == 50_000 and payment.settled_amount == payment.amount == 12_000
    assert payment.amount_text == "0.012 USDC (of up to 0.050)"
    assert auth.policy.spent_usd() == 12_000 == ledger.spent_usd()
    row = ledger.payment(payment.id)
    assert row is not None
    assert row["status"] == "settled" and int(row["settled_amount"]) == 12_000 and int(row["amount"]) == 50_000
    assert row["discrepancy"] is None


def test_what_an_upto_call_did_not_settle_is_free_for_the_next_call(toy):
    server, url = toy
    # A budget of 0.07 holds one 0.05 ceiling at a time: the second call fits only because
    # the first settled 0.012 and gave the rest back.
    auth = _auth(budget="0.07")
    with httpx.Client(auth=auth) as client:
        assert client.get(url).status_code == 200
        assert client.get(url).status_code == 200
        assert auth.policy.spent_usd() == 24_000
        with pytest.raises(BudgetExceeded) as info:  # 0.046 left: a third 0.05 ceiling does not fit
            client.get(url)
    assert info.value.details["setting"] == "budget"
    assert "up to 0.05 USDC" in str(info.value)
    assert len(server.payloads) == 2


@pytest.mark.parametrize(
    "policy, options",
    [
        ({"max_per_call": "0.04"}, {}),
        ({"budget": "0.04"}, {}),
        ({"max_per_cell": "0.04"}, {}),
        ({}, {"max_per_call": "0.049"}),
    ],
    ids=["max_per_call", "budget", "max_per_cell", "request-cap"],
)
def test_an_upto_ceiling_over_a_cap_is_refused_before_signing(toy, ledger, policy, options):
    from tm402_nb.cells import current_cell_run

    server, url = toy
    auth = _auth(ledger, **policy)
    token = current_cell_run.set("cell-1")
    try:
        with httpx.Client(auth=auth) as client, pytest.raises(BudgetExceeded) as info:
            client.get(url, extensions=PaymentOptions(**options).extensions())
    finally:
        current_cell_run.reset(token)
    assert "up to 0.05 USDC" in str(info.value) and "nothing was signed" in info.value.hint
    assert auth.stats["signed"] == 0 and server.payloads == []
    assert ledger.payments().empty


def test_a_plan_reserves_upto_ceilings_and_max_cost_caps_them(toy):
    _, url = toy
    auth = _auth()
    required = PaymentRequired.from_json({"x402Version": 2, "accepts": [upto_requirement(50_000)]}, source="header")
    request = httpx.Request("GET", url)
    with pytest.raises(BudgetExceeded) as info:
        auth.reserve(required, 3, httpx.Request("GET", url, extensions=PaymentOptions(max_cost="0.10").extensions()))
    assert info.value.details["setting"] == "max_cost"
    with auth.reserve(required, 3, request) as plan:
        assert plan.total == 150_000 and auth.policy.held_usd() == 150_000
        with httpx.Client(auth=auth) as client:
            client.get(url, extensions=PaymentOptions(reservation=plan).extensions())
        # the ceiling came off the plan; what did not settle went back to the session at once
        assert plan.remaining == 100_000 and plan.given_back == 38_000
        assert "0.038 USD not settled (upto) given back" in repr(plan)
        assert auth.policy.spent_usd() == 12_000
    assert auth.policy.held_usd() == 0


def test_a_receipt_over_the_ceiling_is_a_discrepancy_that_counts_the_ceiling(toy, ledger):
    server, url = toy
    server.settle = 60_000
    auth = _auth(ledger)
    with httpx.Client(auth=auth) as client, pytest.warns(RuntimeWarning, match="over the signed ceiling"):
        response = client.get(url)
    payment = payment_of(response)
    assert payment is not None and payment.status == "settled"
    assert payment.amount == 50_000 and payment.settled_amount is None
    assert "over the ceiling" in (payment.discrepancy or "")
    assert auth.policy.spent_usd() == 50_000 == ledger.spent_usd()
    row = ledger.payment(payment.id)
    assert row is not None and row["settled_amount"] is None and "60000" in row["discrepancy"]


def test_a_receipt_without_an_amount_counts_the_ceiling(toy, ledger):
    server, url = toy
    server.settle = OMIT
    auth = _auth(ledger)
    with httpx.Client(auth=auth) as client, warnings.catch_warnings():
        warnings.simplefilter("error")
        response = client.get(url)
    payment = payment_of(response)
    assert payment is not None and payment.status == "settled" and payment.discrepancy is None
    assert payment.amount == 50_000 and payment.amount_text == "0.05 USDC (of up to 0.05)"
    assert auth.policy.spent_usd() == 50_000 == ledger.spent_usd()


def test_a_zero_settlement_has_no_transaction_and_costs_nothing_once_its_permit_expires(toy, ledger, monkeypatch):
    server, url = toy
    server.settle = 0
    auth = _auth(ledger)
    with httpx.Client(auth=auth) as client:
        response = client.get(url)
    payment = payment_of(response)
    assert payment is not None and payment.status == "settled" and payment.tx is None
    # Its Permit2 nonce is unused: the ceiling can still be settled until the deadline, so it counts till then.
    assert auth.policy.spent_usd() == 50_000 == ledger.spent_usd()
    import tm402_nb.ledger.store as store

    monkeypatch.setattr(store.time, "time", lambda: payment.record.valid_before + 31.0)
    assert ledger.spent_usd() == 0
    assert SettlementResponse.from_json({"success": True, "transaction": "", "network": "x", "amount": "0"}).amount == 0


# -- choosing among offers ------------------------------------------------------------------------------


def _required(*accepts: dict[str, Any]) -> PaymentRequired:
    return PaymentRequired.from_json({"x402Version": 2, "accepts": list(accepts)}, source="header")


def test_exact_wins_a_tie_and_upto_wins_when_its_ceiling_is_lower():
    policy = SpendPolicy()
    tie = _required(upto_requirement(17_000), exact_requirement(17_000))
    assert policy.select(tie).requirements.scheme == "exact"
    assert policy.select(tie, schemes=("upto", "exact")).requirements.scheme == "upto"
    assert SpendPolicy(schemes=("upto", "exact")).select(tie).requirements.scheme == "upto"
    cheaper = _required(exact_requirement(17_000), upto_requirement(16_000))
    assert policy.select(cheaper).requirements.scheme == "upto"
    # the caller can rule upto out (for the request, or for the whole policy)
    assert policy.select(cheaper, schemes=("exact",)).requirements.scheme == "exact"
    assert SpendPolicy(schemes=["exact"]).select(cheaper).requirements.scheme == "exact"
    with pytest.raises(PaymentRefused, match="this policy pays exact"):
        SpendPolicy(schemes=["exact"]).select(_required(upto_requirement(1)))


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"extra": {"assetTransferMethod": "permit2"}}, "must name its facilitator"),
        ({"extra": {"facilitatorAddress": FACILITATOR, "assetTransferMethod": "eip3009"}}, "paid by Permit2"),
    ],
)
def test_an_upto_offer_that_cannot_be_signed_is_refused(change, reason):
    with pytest.raises(PaymentRefused, match=reason):
        SpendPolicy().select(_required({**upto_requirement(1), **change}))


def test_upto_is_v2_only():
    v1 = {**upto_requirement(1), "network": "base-sepolia", "maxAmountRequired": "1", "resource": "http://x"}
    required = PaymentRequired.from_json({"x402Version": 1, "accepts": [v1]}, source="body")
    with pytest.raises(PaymentRefused, match="v2 only"):
        SpendPolicy().select(required)


def test_schemes_must_be_known():
    from tm402_nb.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="schemes"):
        SpendPolicy(schemes=("exact", "batch-settlement"))


# -- the accounting, for any ceilings and settlements ---------------------------------------------------

calls = st.lists(
    st.tuples(st.integers(min_value=1, max_value=10**6), st.integers(min_value=0, max_value=2 * 10**6)),
    min_size=1,
    max_size=8,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(calls=calls, planned=st.booleans())
def test_spent_is_what_settled_and_the_rest_goes_back_exactly(calls, planned):
    """For any ceilings and receipts: spent == Σ settled (a receipt over the ceiling counts the
    ceiling) <= Σ ceilings; each call gives back exactly its ceiling less what settled; nothing
    goes negative; a plan's hold plus what is spent never exceeds what it reserved."""
    policy = SpendPolicy(max_per_call=None, budget="100")
    offers = [policy.select(_required(upto_requirement(ceiling))) for ceiling, _ in calls]
    plan = policy.reserve(offers[0], len(calls)) if planned and len({o.amount for o in offers}) == 1 else None
    expected = 0
    for offer, (ceiling, claimed) in zip(offers, calls, strict=True):
        before = policy.spent_usd()
        policy.authorize(offer, reservation=plan)
        scopes = policy.commit(offer, reservation=plan)
        assert policy.spent_usd() == before + ceiling  # the whole ceiling, while it may settle
        settled = min(claimed, ceiling)
        back = policy.settle_upto(offer, claimed, scopes, reservation=plan)
        assert back == ceiling - settled >= 0  # USDC: a micro-dollar per atomic unit
        assert policy.spent_usd() == before + settled >= 0
        expected += settled
        if plan is not None:
            assert plan.remaining >= 0 and plan.remaining + policy.spent_usd() <= plan.total
    assert policy.spent_usd() == expected <= sum(c for c, _ in calls)
    assert all(v >= 0 for v in policy.spent().values())
    if plan is not None:
        assert plan.given_back == sum(c - min(a, c) for c, a in calls)
        plan.close()
    assert policy.held_usd() == 0


@given(
    usd=st.integers(min_value=0, max_value=10**9), ceiling=st.integers(min_value=1, max_value=10**24), data=st.data()
)
def test_the_usd_share_of_a_settlement_never_undercounts(usd, ceiling, data):
    settled = data.draw(st.integers(min_value=0, max_value=ceiling))
    share = usd_share(usd, settled, ceiling)
    assert 0 <= share <= usd
    assert share * ceiling >= usd * settled  # rounded up
    assert (share - 1) * ceiling < usd * settled or share == 0
