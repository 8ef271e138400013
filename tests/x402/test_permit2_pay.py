"""X402Auth pays ``exact`` offers whose ``extra.assetTransferMethod`` is ``permit2``.

Against the sandbox playing Permit2 TMAI (v1 and v2): the payment, its ledger row and its nonce
on chain; the allowance read before signing (and cached, so warm calls stay one round trip); the
server's ``permit2_allowance_required`` when there is no chain to read. Against a hand-made
server: every offer this client must not sign (wrong spender or token, absurd deadline, unknown
transfer method), each refused with nothing signed and nothing in the ledger.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.toyserver import serve_app
from tm402_nb.errors import PaymentOutcomeUnknown, PaymentRefused, Permit2AllowanceRequired
from tm402_nb.ledger import Ledger
from tm402_nb.sandbox import SandboxServer, serve
from tm402_nb.sandbox.assets import SANDBOX_TMAI_BASE_SEPOLIA
from tm402_nb.status import PaymentStatus
from tm402_nb.x402 import SpendPolicy, X402Auth, paying_client
from tm402_nb.x402.chain import ChainReader
from tm402_nb.x402.encoding import b64json_encode
from tm402_nb.x402.messages import PaymentPayload, Permit2Authorization
from tm402_nb.x402.networks import USDC_BASE_SEPOLIA
from tm402_nb.x402.permit2 import EXACT_PERMIT2_PROXY, PERMIT2_ADDRESS
from tm402_nb.x402.wallet import Wallet

PATH, PARAMS = "/v2/tm-grade", {"symbol": "BTC"}
PRICE = 1_530_000_000_000_000_000  # tm-grade in TMAI
TMAI = {"x-coinbase-402": "true", "x-payment-token": "tmai"}


class CountingReader(ChainReader):
    """A ChainReader that counts its allowance reads."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.allowance_reads = 0

    def allowance(self, token: str, owner: str, spender: str) -> int:
        self.allowance_reads += 1
        return super().allowance(token, owner, spender)


@pytest.fixture(scope="module", params=[1, 2], ids=["v1", "v2"])
def sbp(request: pytest.FixtureRequest) -> Iterator[SandboxServer]:
    # payment_identifier off: a lost answer's replay is then refused as a used nonce (the path these
    # tests follow); with it on, a v2 sandbox answers the identical replay from its cache instead.
    with serve(x402_version=request.param, tmai_transfer="permit2", payment_identifier="off") as server:
        yield server


def policy() -> SpendPolicy:
    return SpendPolicy(pay_with="tmai", extra_assets=(SANDBOX_TMAI_BASE_SEPOLIA,), usd_rates={"TMAI": "0.01"})


def funded(sbp: SandboxServer, *, approve: bool) -> Wallet:
    w = Wallet.create()
    sbp.fund(w.address, "tmai", "100", approve_permit2=approve)
    return w


def paths(sbp: SandboxServer) -> dict[str, int]:
    return dict(sbp.stats()["paths"].get(PATH, {}))


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: after.get(k, 0) - before.get(k, 0) for k in ("challenges", "payment_headers", "paid")}


def test_pays_a_permit2_offer_and_records_it(sbp: SandboxServer, ledger: Ledger) -> None:
    wallet = funded(sbp, approve=True)
    reader = ChainReader(sbp.rpc_url)
    auth = X402Auth(wallet, policy(), ledger=ledger, chain=reader)
    with paying_client(wallet, auth=auth) as client:
        r = client.get(sbp.api_url + "/tm-grade", params=PARAMS, headers=TMAI)
    assert r.status_code == 200, r.text
    [row] = ledger.payment_rows()
    assert (row["status"], row["transfer"], row["asset_symbol"]) == ("settled", "permit2", "TMAI")
    assert int(row["amount"]) == PRICE
    nonce = row["nonce"]
    assert nonce.startswith("0x") and len(nonce) == 66
    assert reader.permit2_nonce_used(wallet.address, int(nonce, 16))
    [settled] = sbp.settlements(wallet.address)
    assert settled["nonce"] == nonce and settled["tx"] == row["tx"]
    assert sbp.balance(wallet.address, "tmai") == 100 * 10**18 - PRICE


def test_warm_calls_are_one_round_trip_and_read_the_allowance_once(sbp: SandboxServer, ledger: Ledger) -> None:
    wallet = funded(sbp, approve=True)
    reader = CountingReader(sbp.rpc_url)
    auth = X402Auth(wallet, policy(), ledger=ledger, chain=reader)
    before = paths(sbp)
    with paying_client(wallet, auth=auth) as client:
        for _ in range(4):
            assert client.get(sbp.api_url + "/tm-grade", params=PARAMS, headers=TMAI).status_code == 200
    assert delta(paths(sbp), before) == {"challenges": 1, "payment_headers": 4, "paid": 4}
    assert (auth.stats["warm_hits"], reader.allowance_reads) == (3, 1)
    assert [r["transfer"] for r in ledger.payment_rows()] == ["permit2"] * 4


def test_refused_before_signing_when_the_chain_shows_no_allowance(sbp: SandboxServer, ledger: Ledger) -> None:
    wallet = funded(sbp, approve=False)
    auth = X402Auth(wallet, policy(), ledger=ledger, chain=ChainReader(sbp.rpc_url))
    before = paths(sbp)
    with paying_client(wallet, auth=auth) as client, pytest.raises(Permit2AllowanceRequired) as info:
        client.get(sbp.api_url + "/tm-grade", params=PARAMS, headers=TMAI)
    err = info.value
    assert isinstance(err, PaymentRefused) and err.reason == "permit2_allowance_required"
    assert "permit2_allowance_required" in err.message and PERMIT2_ADDRESS in err.message
    assert 's.approve_permit2("tmai", N)' in err.hint and "%tm approve tmai N" in err.hint
    assert "approve_permit2" in err.hint and "nothing was signed" in err.hint
    assert auth.stats["signed"] == 0 and ledger.payment_rows() == []
    assert delta(paths(sbp), before) == {"challenges": 1, "payment_headers": 0, "paid": 0}


def test_a_finite_allowance_is_drawn_down_then_read_again(sbp: SandboxServer, ledger: Ledger) -> None:
    """The cached allowance shrinks with each payment signed: once it cannot cover the next, the
    chain is read again, and an allowance used up refuses before signing."""
    wallet = funded(sbp, approve=False)
    sbp.state.chain.approve(sbp.state.asset("tmai").address, wallet.address, PERMIT2_ADDRESS, 2 * PRICE)
    reader = CountingReader(sbp.rpc_url)
    auth = X402Auth(wallet, policy(), ledger=ledger, chain=reader)
    with paying_client(wallet, auth=auth) as client:
        for _ in range(2):
            assert client.get(sbp.api_url + "/tm-grade", params=PARAMS, headers=TMAI).status_code == 200
        with pytest.raises(Permit2AllowanceRequired, match=r"allowance is 0\.00 TMAI"):
            client.get(sbp.api_url + "/tm-grade", params=PARAMS, headers=TMAI)
    assert reader.allowance_reads == 2 and auth.stats["signed"] == 2
    assert [r["status"] for r in ledger.payment_rows()] == ["settled", "settled"]


@pytest.mark.parametrize("with_chain", [False, True], ids=["no-chain", "stale-cache"])
def test_the_servers_refusal_is_the_same_error_and_never_retried(
    sbp: SandboxServer, ledger: Ledger, with_chain: bool
) -> None:
    """No chain to read (or an allowance revoked since it was read): the payment is signed, the
    server answers permit2_allowance_required (412 in v2, 402 in v1); the row is failed, nothing
    settles, nothing more is signed, and the cached allowance is forgotten."""
    wallet = funded(sbp, approve=True)
    reader = CountingReader(sbp.rpc_url) if with_chain else None
    auth = X402Auth(wallet, policy(), ledger=ledger, chain=reader)
    url = sbp.api_url + "/tm-grade"
    with paying_client(wallet, auth=auth) as client:
        assert client.get(url, params=PARAMS, headers=TMAI).status_code == 200  # learns the price (and allowance)
        sbp.state.chain.approve(sbp.state.asset("tmai").address, wallet.address, PERMIT2_ADDRESS, 0)  # revoked
        before = paths(sbp)
        with pytest.raises(Permit2AllowanceRequired) as info:
            client.get(url, params=PARAMS, headers=TMAI)  # warm: signed against the remembered challenge
        assert delta(paths(sbp), before) == {"challenges": 0, "payment_headers": 1, "paid": 0}
        assert "signed but never settled" in info.value.hint
        assert info.value.payment.status == PaymentStatus.FAILED  # type: ignore[attr-defined]
        rows = ledger.payment_rows()
        assert [(r["status"], r["error"]) for r in rows] == [
            ("settled", None),
            ("failed", "permit2_allowance_required"),
        ]
        assert auth.stats["signed"] == 2 and len(sbp.settlements(wallet.address)) == 1
        if reader is not None:
            # The stale reading was dropped: the next call reads the chain and refuses before signing.
            reads = reader.allowance_reads
            with pytest.raises(Permit2AllowanceRequired, match="nothing was signed"):
                client.get(url, params=PARAMS, headers=TMAI)
            assert reader.allowance_reads == reads + 1 and auth.stats["signed"] == 2


def test_a_lost_answer_replays_the_same_permit(sbp: SandboxServer, ledger: Ledger) -> None:
    """The answer to a Permit2 payment is lost: the replay carries the same header (same Permit2
    nonce), is refused as used (payment-identifier is off here), and the chain shows that it
    settled, once. (With payment-identifier on, v2 answers the replay from its cache.)"""
    wallet = funded(sbp, approve=True)
    auth = X402Auth(wallet, policy(), ledger=ledger, chain=ChainReader(sbp.rpc_url))
    before = paths(sbp)
    sbp.set_faults(drop_after_settle=1)
    try:
        with (
            paying_client(wallet, auth=auth, replay_attempts=2) as client,
            pytest.raises(PaymentOutcomeUnknown) as info,
        ):
            client.get(sbp.api_url + "/tm-grade", params=PARAMS, headers=TMAI)
    finally:
        sbp.set_faults()
    # Two sends of one signed payment (the replay is refused: its nonce is used), one settlement.
    assert delta(paths(sbp), before) == {"challenges": 1, "payment_headers": 2, "paid": 1}
    assert auth.stats["signed"] == 1 and "permit2_invalid_nonce" in info.value.message
    payment = info.value.payment  # type: ignore[attr-defined]
    assert isinstance(payment.payload.authorization, Permit2Authorization)
    assert len(sbp.settlements(wallet.address)) == 1
    [row] = ledger.payment_rows()
    assert (row["status"], row["transfer"]) == ("unknown", "permit2")
    assert auth.resolve(payment) == PaymentStatus.SETTLED  # decided by the Permit2 nonce bitmap
    assert ledger.payment_rows()[0]["status"] == "settled"


# -- offers this client must not sign ----------------------------------------------------------------------

TMAI_ADDR = SANDBOX_TMAI_BASE_SEPOLIA.address
PAYEE = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"


def _offer(asset: str, extra: dict[str, Any], timeout: int = 60, amount: str = "1530000000000000000") -> dict:
    return {
        "scheme": "exact",
        "network": "eip155:84532",
        "amount": amount,
        "asset": asset,
        "payTo": PAYEE,
        "maxTimeoutSeconds": timeout,
        "extra": extra,
    }


def _usdc() -> dict:
    return _offer(USDC_BASE_SEPOLIA.address, {"name": "USDC", "version": "2"}, amount="17000")


class OfferServer:
    """Answers 402 with the given offers; records any payment header it is sent."""

    def __init__(self) -> None:
        self.accepts: list[dict] = []
        self.payments: list[PaymentPayload] = []
        self.app = Starlette(routes=[Route("/data", self.data)])

    async def data(self, request: Request) -> JSONResponse:
        header = request.headers.get("PAYMENT-SIGNATURE")
        if header:
            self.payments.append(PaymentPayload.decode(header))
            return JSONResponse({"paid": True})
        required = {"x402Version": 2, "error": "pay", "resource": {"url": str(request.url)}, "accepts": self.accepts}
        return JSONResponse({}, status_code=402, headers={"PAYMENT-REQUIRED": b64json_encode(required)})


@pytest.fixture(scope="module")
def offers() -> Iterator[tuple[str, OfferServer]]:
    srv = OfferServer()
    with serve_app(srv.app) as url:
        yield url, srv


BAD_PERMIT2_OFFERS = {
    "spender": ({"assetTransferMethod": "permit2", "spender": "0x" + "66" * 20}, 60, "spender"),
    "permit2Proxy": ({"assetTransferMethod": "permit2", "permit2Proxy": "0x" + "66" * 20}, 60, "spender"),
    "token": ({"assetTransferMethod": "permit2", "token": USDC_BASE_SEPOLIA.address}, 60, "names token"),
    "no-time": ({"assetTransferMethod": "permit2"}, 0, "maxTimeoutSeconds 0"),
    "a-day": ({"assetTransferMethod": "permit2"}, 86_400, "maxTimeoutSeconds 86400 is outside 1..3600"),
    "erc7710": ({"assetTransferMethod": "erc7710"}, 60, "assetTransferMethod 'erc7710' is not supported"),
    "junk": ({"assetTransferMethod": 7}, 60, "assetTransferMethod '7' is not supported"),
}


@pytest.mark.parametrize("case", list(BAD_PERMIT2_OFFERS))
def test_bad_permit2_offers_are_refused_with_nothing_signed(
    offers: tuple[str, OfferServer], wallet: Wallet, ledger: Ledger, case: str
) -> None:
    url, srv = offers
    extra, timeout, message = BAD_PERMIT2_OFFERS[case]
    srv.accepts = [_offer(TMAI_ADDR, extra, timeout)]
    srv.payments.clear()
    auth = X402Auth(wallet, policy(), ledger=ledger)
    with paying_client(wallet, auth=auth) as client, pytest.raises(PaymentRefused) as info:
        client.get(url + "/data")
    assert "refused before signing" in info.value.message and message in info.value.message
    assert srv.payments == [] and auth.stats["signed"] == 0 and ledger.payment_rows() == []


def test_an_unusable_permit2_offer_is_skipped_for_one_that_works(
    offers: tuple[str, OfferServer], wallet: Wallet, ledger: Ledger
) -> None:
    url, srv = offers
    srv.accepts = [_offer(TMAI_ADDR, {"assetTransferMethod": "erc7710"}), _usdc()]
    srv.payments.clear()
    with paying_client(wallet, policy(), ledger=ledger) as client:
        assert client.get(url + "/data").json() == {"paid": True}
    [paid] = srv.payments
    assert paid.accepted is not None and paid.accepted["asset"] == USDC_BASE_SEPOLIA.address
    assert [r["transfer"] for r in ledger.payment_rows()] == ["eip3009"]


def test_a_permit2_offer_naming_the_right_spender_and_token_is_paid(
    offers: tuple[str, OfferServer], wallet: Wallet, ledger: Ledger
) -> None:
    url, srv = offers
    extra = {"assetTransferMethod": "permit2", "spender": EXACT_PERMIT2_PROXY.lower(), "token": TMAI_ADDR}
    srv.accepts = [_offer(TMAI_ADDR, extra, timeout=3600)]
    srv.payments.clear()
    auth = X402Auth(wallet, policy(), ledger=ledger)  # no chain: the server would check the allowance
    with paying_client(wallet, auth=auth) as client:
        assert client.get(url + "/data").status_code == 200
    [paid] = srv.payments
    permit = paid.authorization
    assert isinstance(permit, Permit2Authorization)
    assert (permit.spender, permit.token, permit.amount, permit.to) == (EXACT_PERMIT2_PROXY, TMAI_ADDR, PRICE, PAYEE)
    # Signed for the policy's authorization window (300 s), not the hour the offer allows.
    assert permit.valid_after == 0 and permit.deadline <= time.time() + 301
    [row] = ledger.payment_rows()
    assert row["valid_before"] == permit.deadline and row["nonce"] == permit.nonce_hex


def test_a_clock_ahead_of_the_servers_does_not_refuse_a_permit2_offer(wallet: Wallet) -> None:
    """EIP-3009 back-dates validAfter 10 minutes, so a clock further ahead is refused before signing;
    a Permit2 witness's validAfter is 0, so the same clock pays it. A clock behind refuses both."""
    from tm402_nb.x402.messages import PaymentRequirements
    from tm402_nb.x402.policy import Offer

    pol = policy()
    auth = X402Auth(wallet, pol)
    permit2 = pol.screen(PaymentRequirements.from_json(_offer(TMAI_ADDR, {"assetTransferMethod": "permit2"}), 2))
    eip3009 = pol.screen(PaymentRequirements.from_json(_usdc(), 2))
    assert isinstance(permit2, Offer) and isinstance(eip3009, Offer)
    auth.clock_skew = -1000.0
    auth._check_clock(permit2)
    with pytest.raises(PaymentRefused, match="ahead"):
        auth._check_clock(eip3009)
    auth.clock_skew = 1000.0
    for offer in (permit2, eip3009):
        with pytest.raises(PaymentRefused, match="behind"):
            auth._check_clock(offer)


def test_forget_allowance_makes_the_next_payment_read_the_chain(sbp: SandboxServer, ledger: Ledger) -> None:
    """After a new approval (s.approve_permit2 calls forget_allowance) the cached reading is not trusted."""
    wallet = funded(sbp, approve=True)
    reader = CountingReader(sbp.rpc_url)
    auth = X402Auth(wallet, policy(), ledger=ledger, chain=reader)
    with paying_client(wallet, auth=auth) as client:
        assert client.get(sbp.api_url + "/tm-grade", params=PARAMS, headers=TMAI).status_code == 200
        auth.forget_allowance(USDC_BASE_SEPOLIA.address)  # another token: the TMAI reading stays
        assert client.get(sbp.api_url + "/tm-grade", params=PARAMS, headers=TMAI).status_code == 200
        assert reader.allowance_reads == 1
        sbp.state.chain.approve(sbp.state.asset("tmai").address, wallet.address, PERMIT2_ADDRESS, 0)
        auth.forget_allowance(sbp.state.asset("tmai").address)
        with pytest.raises(Permit2AllowanceRequired, match="nothing was signed"):
            client.get(sbp.api_url + "/tm-grade", params=PARAMS, headers=TMAI)
    assert reader.allowance_reads == 2 and auth.stats["signed"] == 2
