"""``s.doctor()``, ``%tm doctor`` and ``tm402-nb doctor``: a preflight that pays nothing.

Against the sandbox every check passes; against small local servers each failure the issue names
is found and comes with its fix: a challenge with another payee, price or network, a server whose
``Date`` is ten minutes off, an RPC on the wrong chain. Nothing is ever signed (the wallet's signer
raises if called), no payment header reaches a server, and the real API is never contacted.
"""

from __future__ import annotations

import email.utils
import json
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.toyserver import PAY_TO, ToyConfig, ToyX402
from tm402_nb.cli import main
from tm402_nb.errors import PaymentRefused, TM402Error
from tm402_nb.sandbox import serve
from tm402_nb.session.core import Session
from tm402_nb.session.doctor import WIDTH, DoctorReport, Status
from tm402_nb.status import PaymentStatus
from tm402_nb.x402 import SpendPolicy, Wallet, X402Auth
from tm402_nb.x402.networks import USDC_BASE
from tm402_nb.x402.recorder import PaymentRecord

OTHER_PAYEE = "0x1111111111111111111111111111111111111111"
#: The wallet's signer, for the one test that makes a real payment to show what the doctor predicted.
REAL_SIGN = Wallet.sign_digest


# -- guards: nothing signed, the real API never contacted ---------------------------------------------------------
@pytest.fixture(autouse=True)
def no_signing(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The wallet's only signer raises: a doctor that signed anything fails the test."""
    calls: list[bytes] = []

    def refuse(self: Wallet, digest: bytes) -> bytes:
        calls.append(digest)
        raise AssertionError("the doctor signed something")

    monkeypatch.setattr(Wallet, "sign_digest", refuse)
    return calls


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> list[httpx.Request]:
    """Every request these tests make goes to 127.0.0.1; none carries a payment header."""
    seen: list[httpx.Request] = []
    original = httpx.HTTPTransport.handle_request

    def guarded(self: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
        assert request.url.host == "127.0.0.1", f"a test contacted {request.url.host}"
        seen.append(request)
        return original(self, request)

    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", guarded)
    return seen


def _unpaid(requests: list[httpx.Request]) -> None:
    for request in requests:
        for header in ("x-payment", "payment-signature"):
            assert header not in request.headers, f"{request.url} carried {header}"


# -- small servers ------------------------------------------------------------------------------------------------
class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # pragma: no cover - not on the main thread
        pass


@contextmanager
def serving(app: Any, *, date_header: bool = True) -> Iterator[str]:
    """An ASGI app on 127.0.0.1 (random port); ``date_header=False`` leaves the Date header to the app."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_level="critical",
        lifespan="off",
        interface="asgi3",
        date_header=date_header,
    )
    server = _Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started, "test server did not start"
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def skewed(app: Any, seconds: float) -> Any:
    """``app`` whose answers carry a Date header ``seconds`` off this machine's clock."""

    async def wrapped(scope: dict, receive: Any, send: Any) -> None:
        async def dated(message: dict) -> None:
            if message["type"] == "http.response.start":
                stamp = email.utils.formatdate(time.time() + seconds, usegmt=True).encode()
                message = {**message, "headers": [*message.get("headers", []), (b"date", stamp)]}
            await send(message)

        await app(scope, receive, dated)

    return wrapped


def rpc_stub(chain_id: int) -> tuple[Starlette, list[str]]:
    """A JSON-RPC node that answers eth_chainId with ``chain_id`` and every balance with 0."""
    methods: list[str] = []

    async def rpc(request: Request) -> Response:
        body = await request.json()
        methods.append(body["method"])
        result = hex(chain_id) if body["method"] == "eth_chainId" else "0x0"
        return JSONResponse({"jsonrpc": "2.0", "id": body.get("id"), "result": result})

    return Starlette(routes=[Route("/", rpc, methods=["POST"])]), methods


def tm_like(*, tokens_paid: bool, lowercase: bool) -> tuple[Starlette, list[str]]:
    """A Token Metrics look-alike as the 2026 docs read: Base mainnet, one asset offered, maybe paid /tokens."""
    paths: list[str] = []
    requirement = {
        "scheme": "exact",
        "network": "base",
        "maxAmountRequired": "17000",
        "resource": "https://api.example/v2/tm-grade",
        "description": "TM Grade",
        "mimeType": "application/json",
        "payTo": OTHER_PAYEE,
        "maxTimeoutSeconds": 300,
        "asset": USDC_BASE.address,
        "extra": {"name": "USD Coin", "version": "2"},
        "outputSchema": {"input": {"type": "http", "method": "GET"}},
    }

    def challenge() -> Response:
        return JSONResponse({"x402Version": 1, "error": "X-PAYMENT header is required", "accepts": [requirement]}, 402)

    async def grade(request: Request) -> Response:
        paths.append(request.url.path)
        return challenge()

    async def tokens(request: Request) -> Response:
        paths.append(request.url.path)
        if tokens_paid:
            return challenge()
        row = {"TOKEN_ID": 3375, "TOKEN_NAME": "Bitcoin", "TOKEN_SYMBOL": "BTC"}
        if lowercase:
            row = {k.lower(): v for k, v in row.items()}
        return JSONResponse({"success": True, "message": "ok", "length": 1, "data": [row]})

    routes = [Route("/v2/tm-grade", grade), Route("/v2/tokens", tokens)]
    return Starlette(routes=routes), paths


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Any]:
    """A sandbox to point x402 and api-key sessions at (an API that is not embedded in the session)."""
    with serve() as server:
        yield server


def x402_session(base_url: str, **options: Any) -> Session:
    options.setdefault("wallet", Wallet.create())
    options.setdefault("network", "base-sepolia")
    return Session("x402", base_url=base_url, progress=False, **options)


def rendered(report: DoctorReport) -> str:
    """The report renders in every form: text within 100 columns, escaped HTML, a frame, JSON."""
    text = report.text()
    assert all(len(line) <= WIDTH for line in text.splitlines()), text
    assert str(report) == repr(report) == text
    page = report._repr_html_()
    assert "var(--jp-" in page and "<script" not in page
    frame = report.to_frame()
    assert list(frame.columns) == ["check", "status", "found", "fix"] and len(frame) == len(report.checks)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["ok"] is report.ok and len(data["checks"]) == len(report.checks)
    for check in report.checks:
        if check.status is Status.FAIL:
            assert check.fix, f"{check.name} failed without a fix"
    return text


# -- the sandbox: every check passes ---------------------------------------------------------------------------------
@pytest.mark.parametrize("version", [1, 2])
def test_sandbox_is_all_ok_and_nothing_is_paid(version: int, offline: list[httpx.Request]) -> None:
    with Session("sandbox", x402_version=version, progress=False) as s:
        report = s.doctor()
        text = rendered(report)
        names = [c.name for c in report.checks]
        assert names == ["mode", "wallet", "clock", "rpc", "balance", "probe", "policy", "ledger", "variant"]
        assert report.ok and all(c.status is Status.OK for c in report.checks), text
        assert s.wallet.address in report["wallet"].found
        assert "84532" in report["rpc"].found
        assert "100.00 USDC" in report["balance"].found
        assert "would pay 0.017 USDC" in report["policy"].found

        challenge = report.challenge
        assert challenge is not None and challenge.x402_version == version
        assert challenge.source == ("header" if version == 2 else "body")
        usdc, tmai = challenge.offers
        assert (usdc.symbol, usdc.amount, usdc.pay_to, usdc.max_timeout_seconds) == (
            "USDC",
            17_000,
            s.sandbox.pay_to,
            60,
        )
        assert usdc.allowed and usdc.chosen and "tm-grade?token_id=3375" in (usdc.resource or "")
        assert tmai.symbol == "TMAI" and tmai.allowed and not tmai.chosen
        assert report.variant["field_case"] == "UPPER" and report.variant["free_endpoints"] == "free"
        assert report.variant["offers"] == "several assets"
        assert report.variant["closest_sandbox_profile"] == "classic"

        # Nothing paid, nothing signed, no payment header sent, nothing written to the ledger.
        assert s.ledger.payment_rows() == [] and s.ledger.call_rows() == []
        assert s.sandbox.settlements() == []
        stats = s.sandbox.stats()
        assert stats["payment_headers"] == 0 and stats["paid"] == 0 and stats["challenges"] >= 1
        assert s.spent == 0
    _unpaid(offline)


def test_the_key_never_shows() -> None:
    wallet = Wallet.create()
    key = wallet._export_key_hex()
    with Session("sandbox", wallet=wallet, progress=False) as s:
        s.sandbox.fund(wallet.address, "usdc", "5")
        report = s.doctor()
    assert key[2:] not in report.text() + report._repr_html_() + json.dumps(report.to_dict())
    assert wallet.address in report["wallet"].found


# -- another x402 server: payee, price and network differ --------------------------------------------------------------
def test_an_x402_server_on_another_network_is_refused_with_the_fix() -> None:
    toy = ToyX402(ToyConfig(network="base", asset=USDC_BASE.address, amount=250_000, pay_to=OTHER_PAYEE))
    with serving(toy.app) as url, x402_session(url) as s:
        report = s.doctor(probe=url + "/data")
    rendered(report)
    policy = report["policy"]
    assert policy.status is Status.FAIL
    assert "mainnet is not allowed" in policy.found
    assert "network='base'" in (policy.fix or "") and f"base_url='{url}'" in (policy.fix or "")
    assert report["probe"].status is Status.OK and OTHER_PAYEE in report["probe"].found
    (offer,) = report.challenge.offers if report.challenge else ()
    assert (offer.network, offer.pay_to, offer.amount, offer.price) == ("base", OTHER_PAYEE, 250_000, "0.25 USDC")
    assert not offer.allowed and "mainnet" in offer.why
    assert offer.description == "toy data" and offer.mime_type == "application/json"
    assert not report.ok
    assert toy.counts["paid_attempts"] == 0 and toy.counts["unpaid"] == 1


def test_a_price_over_the_cap_is_refused_with_the_setting_that_allows_it() -> None:
    toy = ToyX402(ToyConfig(version=2, amount=250_000, pay_to=OTHER_PAYEE))
    with serving(toy.app) as url, x402_session(url) as s:
        report = s.doctor(probe=url + "/data")
    rendered(report)
    policy = report["policy"]
    assert policy.status is Status.FAIL and "per-call cap is 0.10 USD" in policy.found
    assert "max_per_call=0.25" in (policy.fix or "")
    assert report.challenge is not None and report.challenge.source == "header"
    assert report.challenge.offers[0].network == "eip155:84532"
    # Not a Token Metrics endpoint: no field case or profile is guessed for it.
    assert "not a Token Metrics endpoint" in report["variant"].found
    assert "closest_sandbox_profile" not in report.variant
    assert toy.counts["paid_attempts"] == 0


def test_an_affordable_offer_from_another_payee_is_shown_in_full() -> None:
    toy = ToyX402(ToyConfig(amount=20_000, pay_to=OTHER_PAYEE, timeout=120))
    with serving(toy.app) as url, x402_session(url) as s:
        report = s.doctor(probe=url + "/data")
    text = rendered(report)
    assert report["policy"].status is Status.OK and OTHER_PAYEE in report["policy"].found
    assert "0.02 USDC" in report["policy"].found
    assert f"payTo {OTHER_PAYEE}" in text and "maxTimeoutSeconds 120" in text
    # No RPC: a warning with the fix, and balances are skipped rather than guessed.
    assert report["rpc"].status is Status.WARN and "TM402_RPC_URL" in (report["rpc"].fix or "")
    assert report["balance"].status is Status.SKIP
    assert report.ok  # warnings do not fail a preflight


def test_a_server_whose_challenge_is_hostile_is_escaped() -> None:
    evil = "<script>alert(1)</script>"
    body = {
        "x402Version": 1,
        "error": evil,
        "accepts": [{**ToyX402(ToyConfig()).requirement(), "description": evil, "payTo": PAY_TO}],
    }
    toy = ToyX402(ToyConfig(challenge_override=body))
    with serving(toy.app) as url, x402_session(url) as s:
        report = s.doctor(probe=url + "/data")
    page = report._repr_html_()
    assert evil not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    rendered(report)


def test_a_malformed_challenge_fails_the_probe() -> None:
    toy = ToyX402(ToyConfig(challenge_override={"x402Version": 1, "accepts": []}))
    with serving(toy.app) as url, x402_session(url) as s:
        report = s.doctor(probe=url + "/data")
    rendered(report)
    assert report["probe"].status is Status.FAIL and "no x402 client can pay" in report["probe"].found
    assert report["policy"].status is Status.SKIP


# -- the clock: ten minutes off either way ------------------------------------------------------------------------------
@pytest.mark.parametrize(("seconds", "words"), [(600, "behind"), (-600, "ahead of")])
def test_a_clock_ten_minutes_off_fails_with_the_fix(seconds: int, words: str) -> None:
    toy = ToyX402(ToyConfig())
    with serving(skewed(toy.app, seconds), date_header=False) as url, x402_session(url) as s:
        report = s.doctor(probe=url + "/data")
    rendered(report)
    clock = report["clock"]
    assert clock.status is Status.FAIL, clock
    assert f"600 s {words} the server's" in clock.found and "every payment would be refused" in clock.found
    assert "NTP" in (clock.fix or "") and "timedatectl" in (clock.fix or "")
    assert report.variant["clock_skew_seconds"] == pytest.approx(seconds, abs=3)
    assert not report.ok and toy.counts["paid_attempts"] == 0


def test_a_small_skew_warns_and_a_synced_clock_passes() -> None:
    toy = ToyX402(ToyConfig())
    with serving(skewed(toy.app, 45), date_header=False) as url, x402_session(url) as s:
        assert s.doctor(probe=url + "/data")["clock"].status is Status.WARN
    with serving(toy.app) as url, x402_session(url) as s:
        assert s.doctor(probe=url + "/data")["clock"].status is Status.OK


@pytest.mark.parametrize(("seconds", "relation"), [(600, "behind the server's"), (-900, "ahead of the server's")])
def test_what_the_doctor_says_about_the_clock_is_what_payments_meet(
    no_signing: list[bytes], monkeypatch: pytest.MonkeyPatch, seconds: int, relation: str
) -> None:
    """The server's clock ten minutes ahead (or fifteen behind): the doctor fails the clock, and a payment
    is refused before signing (the client reads the same Date header): nothing reaches the server."""
    toy = ToyX402(ToyConfig(clock_skew=seconds))
    with serving(skewed(toy.app, seconds), date_header=False) as url:
        with x402_session(url) as s:
            assert s.doctor(probe=url + "/data")["clock"].status is Status.FAIL
        assert no_signing == []
        monkeypatch.setattr(Wallet, "sign_digest", REAL_SIGN)  # a real signer, were anything signed
        auth = X402Auth(Wallet.create(), SpendPolicy())
        with httpx.Client(auth=auth) as http, pytest.raises(PaymentRefused, match=relation) as info:
            http.get(url + "/data")
        assert "sync this machine's clock" in info.value.hint and auth.stats["signed"] == 0
    assert toy.counts["rejected"] == 0 and toy.settlements == []


# -- the RPC: wrong chain, or nobody there ----------------------------------------------------------------------------
def test_an_rpc_on_the_wrong_chain_fails_with_the_fix(sandbox: Any) -> None:
    stub, methods = rpc_stub(1)
    with serving(stub) as rpc, x402_session(sandbox.api_url, rpc_url=rpc, wallet=sandbox.wallet) as s:
        report = s.doctor()
    rendered(report)
    check = report["rpc"]
    assert check.status is Status.FAIL
    assert "chain id 1," in check.found and "base-sepolia (chain id 84532)" in check.found
    assert "chain id 84532" in (check.fix or "") and "https://sepolia.base.org" in (check.fix or "")
    assert report["balance"].status is Status.SKIP  # balances of the wrong chain would mislead
    assert methods == ["eth_chainId"]
    # Everything else about the sandbox's API still checks out.
    assert report["probe"].status is Status.OK and report["policy"].status is Status.OK
    assert sandbox.settlements() == []


def test_an_rpc_on_base_mainnet_suggests_the_network_it_serves(sandbox: Any) -> None:
    stub, _ = rpc_stub(8453)
    with serving(stub) as rpc, x402_session(sandbox.api_url, rpc_url=rpc, wallet=sandbox.wallet) as s:
        check = s.doctor()["rpc"]
    assert check.status is Status.FAIL and "(Base)" in check.found
    assert "connect(network='base')" in (check.fix or "")


def test_an_rpc_that_does_not_answer_fails(sandbox: Any) -> None:
    with x402_session(sandbox.api_url, rpc_url="http://127.0.0.1:9/key-in-path", wallet=sandbox.wallet) as s:
        report = s.doctor(timeout=3)
    rendered(report)
    assert report["rpc"].status is Status.FAIL and "does not answer eth_chainId" in report["rpc"].found
    assert "key-in-path" not in report.text()  # hosted RPCs carry their key in the path


def test_balances_below_one_call_fail_and_below_the_budget_warn(sandbox: Any) -> None:
    poor = Wallet.create()
    with x402_session(sandbox.api_url, rpc_url=sandbox.rpc_url, wallet=poor) as s:
        report = s.doctor()
        assert report["balance"].status is Status.FAIL and "not enough USDC for one call" in report["balance"].found
        assert poor.address in (report["balance"].fix or "")
        sandbox.fund(poor.address, "usdc", "0.5")
        report = s.doctor()
    assert report["balance"].status is Status.WARN and "less than the 1.00 USD" in report["balance"].found
    rendered(report)


# -- api-key mode --------------------------------------------------------------------------------------------------------
def test_api_key_mode_checks_the_key_with_a_free_call(sandbox: Any) -> None:
    with Session("api-key", base_url=sandbox.api_url, api_key=sandbox.api_key, progress=False) as s:
        report = s.doctor()
    rendered(report)
    assert report.ok and [c.name for c in report.checks] == [
        "mode",
        "api key",
        "clock",
        "payments",
        "ledger",
        "variant",
    ]
    assert report["payments"].status is Status.SKIP and "do not apply" in report["payments"].found
    assert report.challenge is None and report.variant["field_case"] == "UPPER"
    assert sandbox.api_key not in report.text()

    with Session("api-key", base_url=sandbox.api_url, api_key="tm-not-a-key", progress=False) as s:
        report = s.doctor()
    assert report["api key"].status is Status.FAIL and "refused" in report["api key"].found
    assert "TM_API_KEY" in (report["api key"].fix or "")


# -- the server's variant --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("tokens_paid", "lowercase", "free", "case"),
    [(True, False, "paid", None), (False, True, "free", "lower")],
)
def test_what_it_learns_about_a_token_metrics_variant(
    tokens_paid: bool, lowercase: bool, free: str, case: str | None
) -> None:
    app, paths = tm_like(tokens_paid=tokens_paid, lowercase=lowercase)
    with serving(app) as url, x402_session(url + "/v2", network="base") as s:
        report = s.doctor()
    rendered(report)
    v = report.variant
    assert v["x402_version"] == 1 and v["offers"] == "only USDC (the asked asset)" and v["networks"] == ["base"]
    assert v["free_endpoints"] == free and v.get("field_case") == case
    assert v["resource_has_query"] is False and v["output_schema"] is True
    assert report["policy"].status is Status.OK and OTHER_PAYEE in report["policy"].found
    if tokens_paid:
        assert v["closest_sandbox_profile"] == "docs-2026" and "symbol lookups cost a call" in report["variant"].found
    assert sorted(paths) == ["/v2/tm-grade", "/v2/tokens"]


def test_a_wrong_base_url_says_where_the_api_is() -> None:
    toy = ToyX402(ToyConfig())
    with serving(toy.app) as url, x402_session(url) as s:
        report = s.doctor()  # tm-grade on a server that has no such endpoint
    rendered(report)
    assert report["probe"].status is Status.FAIL and "HTTP 404" in report["probe"].found
    assert "https://api.tokenmetrics.com/v2" in (report["probe"].fix or "") and "probe=URL" in (
        report["probe"].fix or ""
    )


def test_a_server_that_does_not_answer() -> None:
    with x402_session("http://127.0.0.1:9") as s:
        report = s.doctor(timeout=3)
    rendered(report)
    assert report["probe"].status is Status.FAIL and "127.0.0.1:9" in (report["probe"].fix or "")
    assert report["clock"].status is Status.SKIP


# -- the ledger ------------------------------------------------------------------------------------------------------------
def test_unknown_and_reserved_payments_are_reported() -> None:
    with Session("sandbox", progress=False) as s:
        base = dict(
            asset=USDC_BASE.address,
            network="eip155:84532",
            pay_to=PAY_TO,
            payer=s.wallet.address,
            asset_symbol="USDC",
            decimals=6,
        )
        s.ledger.record_payment(
            PaymentRecord(amount=34_000, nonce="0x" + "1" * 64, valid_before=0, status=PaymentStatus.UNKNOWN, **base)
        )
        s.ledger.record_payment(
            PaymentRecord(
                amount=17_000,
                nonce="0x" + "2" * 64,
                valid_before=int(time.time()) + 120,
                status=PaymentStatus.FAILED,
                **base,
            )
        )
        report = s.doctor()
        path = str(s.ledger.path)
    rendered(report)
    ledger = report["ledger"]
    assert ledger.status is Status.WARN and path in ledger.found
    assert "1 unknown (0.034 USDC" in ledger.found and "1 reserved (0.017 USDC" in ledger.found
    assert "payments(status='unknown')" in (ledger.fix or "")


# -- %tm doctor, through a real IPython shell ---------------------------------------------------------------------------
@pytest.fixture
def ip() -> Iterator[Any]:
    from tests.notebook.shell import make_shell

    shell = make_shell()
    shell.run_line_magic("load_ext", "tm402_nb")
    yield shell
    shell.run_line_magic("unload_ext", "tm402_nb")


def test_magic_doctor_shows_a_table(ip: Any) -> None:
    import tm402_nb as tm

    s = tm.connect(mode="sandbox", progress=False)
    try:
        report = ip.run_line_magic("tm", "doctor")
        assert isinstance(report, DoctorReport) and report.ok
        shown, _ = ip.display_formatter.format(report)
        assert "tm402-doctor" in shown["text/html"] and "✓" in shown["text/plain"]
        result = ip.run_cell("%tm doctor tm-grade")
        assert isinstance(result.result, DoctorReport) and result.result.ok
        assert s.ledger.payment_rows() == [] and s.sandbox.settlements() == []
        with pytest.raises(TM402Error, match="at most one"):
            ip.run_line_magic("tm", "doctor tm-grade extra")
    finally:
        s.close()


def test_magic_doctor_without_a_wallet_reports_it(ip: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # No session yet, so %tm doctor opens one (tm402_nb.session is the function; the module is this).
    monkeypatch.setattr(sys.modules["tm402_nb.session"], "_current", None)
    monkeypatch.setenv("TM402_MODE", "x402")  # and no key anywhere
    monkeypatch.setenv("TM402_NETWORK", "base")  # x402 names its network (issue 13): the wallet is what is missing
    report = ip.run_line_magic("tm", "doctor")
    assert isinstance(report, DoctorReport) and not report.ok
    (check,) = report.checks
    assert check.name == "wallet" and "TM402_PRIVATE_KEY" in check.found + (check.fix or "")


# -- tm402-nb doctor ------------------------------------------------------------------------------------------------------
def test_cli_json_exit_code_is_zero_when_all_is_well(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--mode", "sandbox", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is True and data["mode"] == "sandbox"
    assert {c["status"] for c in data["checks"]} == {"ok"}
    assert data["challenge"]["offers"][0]["amount_atomic"] == "17000"


def test_cli_exit_code_is_one_on_a_failure(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["doctor", "--mode", "x402", "--network", "base", "--json"]) == 1  # no key
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False and data["checks"][0]["name"] == "wallet"

    toy = ToyX402(ToyConfig(network="base", asset=USDC_BASE.address, pay_to=OTHER_PAYEE))
    monkeypatch.setenv("TM402_PRIVATE_KEY", Wallet.create()._export_key_hex())
    with serving(toy.app) as url:
        code = main(
            ["doctor", "--mode", "x402", "--network", "base-sepolia", "--base-url", url, "--probe", url + "/data"]
        )
    out = capsys.readouterr().out
    assert code == 1 and "✗ policy" in out and "network='base'" in out
    assert all(len(line) <= WIDTH for line in out.splitlines())
    assert toy.counts["paid_attempts"] == 0


def test_cli_probes_a_base_url_that_is_itself_a_paid_resource(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    toy = ToyX402(ToyConfig(amount=20_000))
    monkeypatch.setenv("TM402_PRIVATE_KEY", Wallet.create()._export_key_hex())
    with serving(toy.app) as url:
        code = main(["doctor", "--mode", "x402", "--network", "base-sepolia", "--base-url", url + "/data", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["ok"] is True
    assert data["challenge"]["url"] == url + "/data" and data["challenge"]["offers"][0]["amount_atomic"] == "20000"
    assert toy.counts["unpaid"] == 1 and toy.counts["paid_attempts"] == 0


def test_cli_refuses_a_base_url_in_sandbox_mode_as_a_failed_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--mode", "sandbox", "--base-url", "http://127.0.0.1:9", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["checks"][0]["name"] == "session" and "sandbox mode pays only" in data["checks"][0]["found"]
