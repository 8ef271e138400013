"""Sandbox profiles (issue 13): every switch value of reference/live-api-2026.md, over raw HTTP.

Each switch value is played by a real server and checked on the wire (status codes, keys) and on
the sandbox's own books (settlements, stats): the toolkit's client is not used, so these test
the sandbox alone. Then the two presets, validation, the data anchor and the command line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from sandbox_helpers import X402, fresh_wallet, get_challenge, headers_for, key_headers, offer, sign, snapshot

from tm402_nb.errors import ConfigurationError
from tm402_nb.sandbox import (
    ENDPOINTS,
    FIXED_ANCHOR,
    PROFILES,
    SWITCHES,
    SandboxConfig,
    SandboxProfile,
    SandboxServer,
    default_anchor,
    serve,
)
from tm402_nb.sandbox.cli import banner, build_parser, cli_main, config_from_args
from tm402_nb.sandbox.config import facilitator_address
from tm402_nb.sandbox.pricing import upto_charge
from tm402_nb.sandbox.profiles import DATE_RANGE_MAX_DAYS, resolve_profile
from tm402_nb.x402.messages import PaymentRequired, build_payment_payload, parse_challenge, read_receipt
from tm402_nb.x402.networks import TMAI_BASE, USDC_BASE, USDC_BASE_SEPOLIA
from tm402_nb.x402.permit2 import PERMIT2_ADDRESS, sign_permit2
from tm402_nb.x402.wallet import Wallet

#: Parameters that make every endpoint answer rows (the ones that require a filter get one).
PARAMS: dict[str, dict[str, Any]] = {
    "price": {"token_id": "3375"},
    "hourly-trading-signals": {"token_id": "3375"},
    "indices-holdings": {"id": 1},
    "indices-performance": {"id": 1},
}
#: The fields of the current trading-signals guide, in its order.
DOCS_SIGNAL_FIELDS = [
    "token_id",
    "token_name",
    "token_symbol",
    "slug",
    "date",
    "trading_signal",
    "token_signal_str",
    "token_trend",
    "token_trend_str",
    "trading_signals_returns",
    "holding_returns",
    "app_link",
    "tm_grade",
    "fundamental_grade",
]
NO_SUCH_TOKEN = {"token_id": "999999"}  # valid, finds nothing: 404 "Data not found"


Start = Callable[..., SandboxServer]


@pytest.fixture(scope="module")
def start() -> Iterator[Start]:
    """``start(**serve_kwargs)``: a running server for those arguments, one per module for each."""
    running: dict[str, SandboxServer] = {}

    def get(**kwargs: Any) -> SandboxServer:
        key = repr(sorted(kwargs.items(), key=lambda kv: kv[0]))
        if key not in running:
            running[key] = serve(fund=False, rate_limit=0, **kwargs)
        return running[key]

    yield get
    for server in running.values():
        server.stop()


@pytest.fixture(scope="module")
def classic(start: Start) -> SandboxServer:
    return start()


@pytest.fixture(scope="module")
def docs(start: Start) -> SandboxServer:
    return start(profile="docs-2026")


def http(server: SandboxServer) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=10)


def rows(server: SandboxServer, path: str, **params: Any) -> list[dict[str, Any]]:
    with http(server) as c:
        r = c.get(path, params=params, headers=key_headers(server))
    assert r.status_code == 200, r.text
    return r.json()["data"]


def pay(server: SandboxServer, path: str, params: dict[str, Any], *, token: str = "usdc") -> httpx.Response:
    """Challenge, sign (with a freshly funded wallet) and send: the paid answer."""
    wallet = fresh_wallet(server)
    with http(server) as c:
        required = get_challenge(c, path, params, token=token)
        payload = sign(wallet, required, pay_with=token)
        headers = headers_for(payload)
        if token != "usdc":
            headers["x-payment-token"] = token
        return c.get(path, params=params, headers=headers)


# -- the presets -------------------------------------------------------------------------------------------


def test_presets_are_the_reference_table_columns() -> None:
    assert PROFILES["classic"].switches() == {
        "x402_version": 1,
        "network": "base-sepolia",
        "offers": "both",
        "field_case": "upper",
        "date_range": "none",
        "free_endpoints": "free",
        "paging": "strict",
        "empty_answer": "free",
        "tmai_transfer": "eip3009",
        "agent_scheme": "exact",
        "payment_identifier": "on",
        "gas_sponsoring": "off",
        "data_dates": "yesterday",
        "anchor": None,
    }
    assert PROFILES["docs-2026"].switches() == {
        "x402_version": 1,
        "network": "base",
        "offers": "requested",
        "field_case": "docs",
        "date_range": "truncate",
        "free_endpoints": "paid",
        "paging": "lenient",
        "empty_answer": "free",
        "tmai_transfer": "eip3009",  # the table says Permit2: a v1 preset keeps EIP-3009 (flip the switch)
        "agent_scheme": "exact",
        "payment_identifier": "on",
        "gas_sponsoring": "off",
        "data_dates": "yesterday",
        "anchor": None,
    }
    assert SandboxProfile() == PROFILES["classic"]  # every switch's default is classic's
    assert [s.values[0] for s in SWITCHES.values()] == [getattr(SandboxProfile(), n) for n in SWITCHES]


def test_the_classic_preset_is_the_default_and_reports_itself(classic: SandboxServer) -> None:
    info = httpx.get(classic.url + "/sandbox").json()
    assert info["profile"] == {
        "name": "classic",
        "preset": "classic",
        "changed": {},
        "switches": PROFILES["classic"].switches(),
    }
    assert info["anchor_date"] == classic.config.anchor_date.isoformat()
    assert classic.profile.label == "classic" and classic.network == "base-sepolia" and classic.x402_version == 1


def test_the_docs_2026_preset_reports_itself(docs: SandboxServer) -> None:
    info = httpx.get(docs.url + "/sandbox").json()
    assert info["profile"]["name"] == "docs-2026" and info["profile"]["changed"] == {}
    assert info["profile"]["switches"] == PROFILES["docs-2026"].switches()
    assert info["network"] == "base" and info["chain_id"] == 8453
    assert {e["path"]: e["tier"] for e in info["endpoints"]}["/v2/tokens"] == 1
    openapi = httpx.get(docs.url + "/openapi.json").json()  # the /docs page, with the lenient query models
    assert "tier 1" in openapi["paths"]["/v2/tokens"]["get"]["description"]
    assert {p["name"] for p in openapi["paths"]["/v2/tm-grade"]["get"]["parameters"]} >= {"limit", "page", "symbol"}


def test_a_preset_with_switches_flipped(start: Start) -> None:
    server = start(profile="docs-2026", field_case="lower", x402_version=2)
    assert server.profile.label == "docs-2026 with x402_version=2, field_case=lower"
    info = httpx.get(server.url + "/sandbox").json()["profile"]
    assert info["preset"] == "docs-2026" and info["changed"] == {"x402_version": 2, "field_case": "lower"}
    # The same profile given as an object, or built from classic switch by switch.
    same = PROFILES["classic"].with_(**{k: v for k, v in PROFILES["docs-2026"].switches().items() if k != "anchor"})
    assert same.with_(field_case="lower", x402_version=2).switches() == server.profile.switches()
    assert resolve_profile(server.profile) is server.profile


# -- challenge: x402 v1 or v2 -----------------------------------------------------------------------------


def test_challenge_v1_is_in_the_body(classic: SandboxServer) -> None:
    r = httpx.get(classic.api_url + "/tm-grade", params={"symbol": "BTC"}, headers=X402)
    assert r.status_code == 402 and "payment-required" not in r.headers
    assert r.json()["x402Version"] == 1 and len(r.json()["accepts"]) == 2


def test_challenge_v2_is_in_the_header_and_pays(start: Start) -> None:
    server = start(profile="docs-2026", x402_version=2)
    r = httpx.get(server.api_url + "/tm-grade", params={"symbol": "BTC"}, headers=X402)
    assert r.status_code == 402 and r.json() == {} and "payment-required" in r.headers
    paid = pay(server, "/v2/tm-grade", {"symbol": "BTC"})
    assert paid.status_code == 200 and "payment-response" in paid.headers
    assert server.settlements()[-1]["x402_version"] == 2 and server.settlements()[-1]["network"] == "eip155:8453"


# -- network: base-sepolia or base ---------------------------------------------------------------------------


def _chain_id(server: SandboxServer) -> int:
    r = httpx.post(server.rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []})
    return int(r.json()["result"], 16)


def test_network_base_sepolia(classic: SandboxServer) -> None:
    with http(classic) as c:
        usdc = get_challenge(c, "/v2/tm-grade", {"symbol": "BTC"}).accepts[0]
    assert usdc.network == "base-sepolia" and usdc.asset == USDC_BASE_SEPOLIA.address
    assert usdc.eip712_name == "USDC" and _chain_id(classic) == 84532


def test_network_base_is_mainnet_usdc_on_chain_8453(docs: SandboxServer) -> None:
    with http(docs) as c:
        usdc = get_challenge(c, "/v2/tm-grade", {"symbol": "BTC"}).accepts[0]
    assert usdc.network == "base" and usdc.asset == USDC_BASE.address
    assert (usdc.eip712_name, usdc.eip712_version) == ("USD Coin", "2")
    assert _chain_id(docs) == 8453
    # A payment signed under mainnet USDC's domain (chain 8453) verifies and settles.
    r = pay(docs, "/v2/tm-grade", {"symbol": "BTC"})
    assert r.status_code == 200
    assert read_receipt(r.headers).network == "base"
    assert docs.settlements()[-1]["asset"] == USDC_BASE.address


# -- offers: both assets or only the requested one -----------------------------------------------------------


def test_offers_both_assets_the_requested_one_first(classic: SandboxServer) -> None:
    with http(classic) as c:
        assert [a.eip712_name for a in get_challenge(c, "/v2/tm-grade", {"symbol": "BTC"}).accepts] == [
            "USDC",
            "Token Metrics AI",
        ]
        tmai_first = get_challenge(c, "/v2/tm-grade", {"symbol": "BTC"}, token="tmai").accepts
    assert [a.eip712_name for a in tmai_first] == ["Token Metrics AI", "USDC"]


def test_offers_only_the_requested_asset(docs: SandboxServer) -> None:
    with http(docs) as c:
        (usdc,) = get_challenge(c, "/v2/tm-grade", {"symbol": "BTC"}).accepts
        (tmai,) = get_challenge(c, "/v2/tm-grade", {"symbol": "BTC"}, token="tmai").accepts
    assert usdc.asset == USDC_BASE.address and tmai.asset.lower() == TMAI_BASE.address.lower()
    before = len(docs.settlements())
    r = pay(docs, "/v2/tm-grade", {"symbol": "BTC"}, token="tmai")
    assert r.status_code == 200
    assert len(docs.settlements()) == before + 1 and docs.settlements()[-1]["asset"] == tmai.asset


# -- field case: UPPER, docs (trading-signals and tokens), lower, or a list -------------------------------------


def test_field_case_upper(classic: SandboxServer) -> None:
    token = rows(classic, "/v2/tokens", symbol="BTC")[0]
    assert all(k.isupper() for k in token) and token["TOKEN_ID"] == 3375
    signal = rows(classic, "/v2/trading-signals", token_id=3375, limit=1)[0]
    assert {"TOKEN_ID", "DATE", "TRADING_SIGNAL", "TM_TRADER_GRADE", "TM_INVESTOR_GRADE"} <= set(signal)


def test_field_case_docs_lowercases_trading_signals_and_tokens_only(docs: SandboxServer) -> None:
    token = rows(docs, "/v2/tokens", symbol="BTC")[0]
    assert token["token_id"] == 3375 and all(k.islower() for k in token)
    signal = rows(docs, "/v2/trading-signals", token_id=3375, limit=1)[0]
    assert list(signal) == DOCS_SIGNAL_FIELDS  # the guide's fields: no trader or investor grade
    assert signal["token_signal_str"] in ("bullish", "bearish", "neutral") and signal["token_trend_str"] in (
        "up",
        "down",
    )
    assert signal["slug"] == "bitcoin" and 0 < signal["tm_grade"] < 100 and 0 < signal["fundamental_grade"] < 100
    grade = rows(docs, "/v2/tm-grade", token_id=3375)[0]
    assert "TM_GRADE" in grade and "tm_grade" not in grade  # endpoints the docs do not name stay UPPER


def test_field_case_lower_is_every_endpoint(start: Start) -> None:
    server = start(field_case="lower")
    for spec in ENDPOINTS:
        row = rows(server, spec.path, **PARAMS.get(spec.name, {}))[0]
        assert all(k == k.lower() for k in row), (spec.name, list(row))
    assert list(rows(server, "/v2/trading-signals", token_id=3375, limit=1)[0]) == DOCS_SIGNAL_FIELDS
    assert rows(server, "/v2/daily-ohlcv", token_id=3375, limit=1)[0]["close"] > 0


def test_field_case_names_endpoints(start: Start) -> None:
    server = start(field_case="tm-grade, /v2/daily-ohlcv")
    assert server.profile.field_case == "daily-ohlcv,tm-grade"
    assert "tm_grade" in rows(server, "/v2/tm-grade", token_id=3375)[0]
    assert "close" in rows(server, "/v2/daily-ohlcv", token_id=3375, limit=1)[0]
    assert "TOKEN_ID" in rows(server, "/v2/tokens", symbol="BTC")[0]
    assert "TM_TRADER_GRADE" in rows(server, "/v2/trading-signals", token_id=3375, limit=1)[0]


# -- date-range limit: none, error, truncate --------------------------------------------------------------------


def _window(server: SandboxServer, days: int, end_back: int = 0) -> dict[str, str]:
    end = server.config.anchor_date - timedelta(days=end_back)
    return {"startDate": str(end - timedelta(days=days - 1)), "endDate": str(end)}


def test_date_range_none_serves_the_whole_range(classic: SandboxServer) -> None:
    got = rows(classic, "/v2/daily-ohlcv", token_id=3375, limit=100, **_window(classic, 100))
    assert len(got) == 100


def test_date_range_error_is_a_400_before_any_challenge(start: Start) -> None:
    server = start(date_range="error")
    assert len(rows(server, "/v2/daily-ohlcv", token_id=3375, limit=100, **_window(server, 29))) == 29
    with http(server) as c:
        r = c.get("/v2/daily-ohlcv", params={"token_id": 3375, **_window(server, 30)}, headers=key_headers(server))
        assert r.status_code == 400
        body = r.json()
        assert body["success"] is False and body["param"] == "startDate"
        assert "Date range too large" in body["message"] and "30 days" in body["message"]
        assert f"maximum is {DATE_RANGE_MAX_DAYS} days" in body["message"]
        # A start date alone runs to the newest data: the same limit.
        start_only = {"token_id": 3375, "startDate": str(server.config.anchor_date - timedelta(days=40))}
        assert c.get("/v2/trading-signals", params=start_only, headers=key_headers(server)).status_code == 400
        # In x402 mode it is refused before a challenge: nothing to pay for.
        server.reset_stats()
        paid = c.get("/v2/daily-ohlcv", params={"token_id": 3375, **_window(server, 365)}, headers=X402)
        assert paid.status_code == 400 and server.stats()["challenges"] == 0
        # No startDate: the latest rows, not a range.
        assert c.get("/v2/daily-ohlcv", params={"token_id": 3375}, headers=key_headers(server)).status_code == 200


def test_date_range_truncate_keeps_the_last_29_days(docs: SandboxServer) -> None:
    got = rows(docs, "/v2/daily-ohlcv", token_id=3375, limit=100, startDate="2025-01-01", endDate="2025-03-31")
    assert len(got) == DATE_RANGE_MAX_DAYS
    assert got[0]["DATE"].startswith("2025-03-31") and got[-1]["DATE"].startswith("2025-03-03")
    # Without an end date it ends at the newest data; hourly series are cut the same way.
    recent = rows(docs, "/v2/daily-ohlcv", token_id=3375, limit=100, startDate="2026-01-01")
    assert len(recent) == 29 and recent[0]["DATE"].startswith(str(docs.config.anchor_date))
    last_page = rows(docs, "/v2/hourly-ohlcv", token_id=3375, limit=100, page=7, **_window(docs, 60))
    first_day = docs.config.anchor_date - timedelta(days=28)
    assert len(last_page) == 29 * 24 - 600 and last_page[-1]["TIMESTAMP"] == f"{first_day}T00:00:00.000Z"
    # A truncated answer is an ordinary paid answer (nothing says it was cut).
    r = pay(docs, "/v2/daily-ohlcv", {"token_id": 3375, "startDate": "2025-01-01", "endDate": "2025-03-31"})
    assert r.status_code == 200 and r.json()["length"] == 29 and r.json()["message"] == "Data fetched successfully"


# -- "free" endpoints: free or paid ------------------------------------------------------------------------------


def test_free_endpoints_are_free(classic: SandboxServer) -> None:
    before = len(classic.settlements())
    for path in ("/v2/tokens", "/v2/price", "/v2/top-market-cap-tokens"):
        r = httpx.get(
            classic.url + path, params={"token_id": 3375} if path != "/v2/top-market-cap-tokens" else {}, headers=X402
        )
        assert r.status_code == 200, (path, r.text)
    assert len(classic.settlements()) == before


def test_free_endpoints_paid_at_tier_1(docs: SandboxServer) -> None:
    for path, params in (
        ("/v2/tokens", {"symbol": "BTC"}),
        ("/v2/price", {"token_id": 3375}),
        ("/v2/top-market-cap-tokens", {"top_k": 5}),
    ):
        with http(docs) as c:
            (usdc,) = get_challenge(c, path, params).accepts
        assert usdc.amount == 17_000  # $0.017
        before = len(docs.settlements())
        r = pay(docs, path, params)
        assert r.status_code == 200 and r.json()["length"] >= 1
        assert len(docs.settlements()) == before + 1
        assert docs.settlements()[-1]["path"] == path and docs.settlements()[-1]["amount"] == "17000"


# -- paging: strict or lenient ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params, param",
    [
        ({"page": 0}, "page"),
        ({"limit": 101}, "limit"),
        ({"limit": 1000, "page": 0}, "limit"),
        ({"foo": "bar"}, "foo"),
    ],
)
def test_paging_strict_refuses(classic: SandboxServer, params: dict[str, Any], param: str) -> None:
    r = httpx.get(classic.api_url + "/tm-grade", params=params, headers=key_headers(classic))
    assert r.status_code == 400 and r.json()["param"] == param, r.text
    top = httpx.get(classic.api_url + "/top-market-cap-tokens", params={"top_k": 101}, headers=key_headers(classic))
    assert top.status_code == 400


def test_paging_lenient(docs: SandboxServer) -> None:
    first = rows(docs, "/v2/tm-grade", limit=10)
    assert rows(docs, "/v2/tm-grade", limit=10, page=0) == first == rows(docs, "/v2/tm-grade", limit=10, page=1)
    assert len(rows(docs, "/v2/tm-grade", limit=1000, page=0)) == 100  # the official Python SDK's call
    assert len(rows(docs, "/v2/top-market-cap-tokens", top_k=500)) == 100
    assert rows(docs, "/v2/tm-grade", limit=10, foo="bar", expand="all") == first  # unknown parameters ignored
    r = httpx.get(docs.api_url + "/tm-grade", params={"limit": "lots"}, headers=key_headers(docs))
    assert r.status_code == 400  # lenient, not careless


# -- empty answer: 404 not charged, or charged -----------------------------------------------------------------


def _pay_for_nothing(server: SandboxServer) -> tuple[httpx.Response, dict[str, Any], dict[str, Any], str]:
    wallet = fresh_wallet(server)
    before = snapshot(server, wallet.address)
    with http(server) as c:
        required = get_challenge(c, "/v2/daily-ohlcv", NO_SUCH_TOKEN)
        r = c.get("/v2/daily-ohlcv", params=NO_SUCH_TOKEN, headers=headers_for(sign(wallet, required)))
    return r, before, snapshot(server, wallet.address), wallet.address


def test_empty_answer_404_not_charged(classic: SandboxServer) -> None:
    r, before, after, _ = _pay_for_nothing(classic)
    assert r.status_code == 404 and r.json()["message"] == "Data not found"
    assert "x-payment-response" not in r.headers
    assert after == before  # nothing settled, nothing moved


def test_empty_answer_404_charged(start: Start) -> None:
    server = start(empty_answer="charged")
    r, before, after, payer = _pay_for_nothing(server)
    assert r.status_code == 404 and r.json()["message"] == "Data not found"
    receipt = read_receipt(r.headers)
    assert receipt is not None and receipt.success
    assert after["settlements"] == before["settlements"] + 1
    assert after[(payer, "usdc")] == before[(payer, "usdc")] - 17_000
    assert server.settlements()[-1]["path"] == "/v2/daily-ohlcv"
    # A request that is refused (400) is still never charged.
    with http(server) as c:
        assert c.get("/v2/daily-ohlcv", params={"token_id": "x"}, headers=X402).status_code == 400


# -- TMAI transfer ------------------------------------------------------------------------------------------------


def test_tmai_transfer_eip3009(classic: SandboxServer) -> None:
    assert httpx.get(classic.url + "/sandbox").json()["assets"]["tmai"]["transfer"] == "eip3009"
    r = pay(classic, "/v2/tm-grade", {"symbol": "BTC"}, token="tmai")
    assert r.status_code == 200 and classic.settlements()[-1]["amount"] == "1530000000000000000"


@pytest.mark.parametrize("version", [1, 2])
def test_tmai_transfer_permit2(version: int) -> None:
    """TMAI offers say Permit2; a payer who approved the Permit2 contract pays, one who did not is
    refused permit2_allowance_required (412 in v2, as the exact-EVM spec says; 402 in v1)."""
    with serve(tmai_transfer="permit2", x402_version=version) as server:
        assert httpx.get(server.url + "/sandbox").json()["assets"]["tmai"]["transfer"] == "permit2"
        params = {"symbol": "BTC"}
        with http(server) as c:
            required = get_challenge(c, "/v2/tm-grade", params, token="tmai")
            tmai = next(r for r in required.accepts if r.asset == server.state.asset("tmai").address)
            usdc = next(r for r in required.accepts if r.asset == server.state.asset("usdc").address)
            assert tmai.extra == {"assetTransferMethod": "permit2"}
            assert usdc.extra == {"name": "USDC", "version": "2"}  # USDC stays EIP-3009
            for approved, status in ((False, 412 if version == 2 else 402), (True, 200)):
                wallet = fresh_wallet(server, approve_permit2=approved)
                payload = sign(wallet, required, pay_with="tmai")
                r = c.get("/v2/tm-grade", params=params, headers={**headers_for(payload), "x-payment-token": "tmai"})
                assert r.status_code == status, r.text
                if not approved:
                    assert parse_challenge(r.headers, r.content).error == "permit2_allowance_required"
        assert [s["amount"] for s in server.settlements()] == ["1530000000000000000"]
        # The throwaway wallet serve() funds has approved Permit2 already: it pays out of the box.
        assert server.state.chain.allowance(tmai.asset, server.wallet.address, PERMIT2_ADDRESS) == 2**256 - 1


# -- agent scheme: exact or upto ------------------------------------------------------------------------------------

QUESTION = {"messages": [{"user": "Which tokens look strongest this week?"}]}


def _agent_challenge(server: SandboxServer, token: str | None = None) -> tuple[PaymentRequired, httpx.Response]:
    headers = {**X402, **({"x-payment-token": token} if token else {})}
    r = httpx.post(server.api_url + "/tmai", json=QUESTION, headers=headers)
    assert r.status_code == 402, r.text
    return parse_challenge(r.headers, r.content), r


def test_agent_scheme_exact_prices_the_agent_at_its_tier(start: Start) -> None:
    server = start(x402_version=2)
    required, _ = _agent_challenge(server)
    assert {r.scheme for r in required.accepts} == {"exact"}
    assert offer(required).amount == 68_000


@pytest.mark.parametrize("token, asset", [("usdc", "usdc"), ("tmai", "tmai")])
def test_agent_scheme_upto_settles_the_answers_share_of_the_ceiling(start: Start, token: str, asset: str) -> None:
    server = start(x402_version=2, agent_scheme="upto")
    required, _ = _agent_challenge(server, token)
    req = required.accepts[0]
    assert req.scheme == "upto" and {r.scheme for r in required.accepts} == {"upto"}
    assert req.extra is not None and req.extra["assetTransferMethod"] == "permit2"
    assert req.extra["facilitatorAddress"] == facilitator_address(server.config.seed)
    ceiling = req.amount
    assert ceiling == (68_000 if asset == "usdc" else 6_120_000_000_000_000_000)  # the tier price
    wallet = Wallet.create()
    server.fund(wallet.address, asset, "10000", approve_permit2=True)
    before = snapshot(server, wallet.address)
    permit, signature = sign_permit2(wallet, req)
    payload = build_payment_payload(required, req, permit, signature)
    r = httpx.post(server.api_url + "/tmai", json=QUESTION, headers={**headers_for(payload), "x-payment-token": token})
    assert r.status_code == 200 and r.json()["answer"]
    receipt = read_receipt(r.headers)
    assert receipt is not None and receipt.success and receipt.amount is not None
    # The answer's share of the ceiling, by the bytes delivered: less than the ceiling, and what moved.
    assert receipt.amount == upto_charge(ceiling, len(r.content)) and 0 < receipt.amount < ceiling
    after = snapshot(server, wallet.address)
    assert after[(wallet.address, asset)] == before[(wallet.address, asset)] - receipt.amount
    assert after[(server.pay_to, asset)] == before[(server.pay_to, asset)] + receipt.amount
    settled = server.settlements()[-1]
    assert settled["tx"] == receipt.transaction and int(settled["amount"]) == receipt.amount
    assert settled["path"] == "/v2/tmai"
    # Data endpoints keep their exact price.
    grade = parse_challenge(*_raw_challenge(server, "/v2/tm-grade"))
    assert {r.scheme for r in grade.accepts} == {"exact"}


def _raw_challenge(server: SandboxServer, path: str) -> tuple[httpx.Headers, bytes]:
    r = httpx.get(server.api_url + path.removeprefix("/v2"), params={"symbol": "BTC"}, headers=X402)
    return r.headers, r.content


def test_the_upto_charge_is_a_share_never_over_the_ceiling() -> None:
    assert upto_charge(68_000, 0) == 0
    assert upto_charge(68_000, 1024) == 17_000
    assert upto_charge(68_000, 1) == 17  # rounded up: a byte still costs something
    assert upto_charge(68_000, 4096) == upto_charge(68_000, 10**6) == 68_000


def test_agent_scheme_upto_needs_x402_v2() -> None:
    with pytest.raises(ConfigurationError, match="needs x402 v2") as e:
        SandboxProfile(agent_scheme="upto")
    assert "x402_version=2" in (e.value.hint or "")
    assert SandboxProfile(agent_scheme="upto", x402_version=2).label == "classic with x402_version=2, agent_scheme=upto"
    # given as separate settings, the profile sees them together
    assert SandboxConfig.build("classic", x402_version=2, agent_scheme="upto").profile.agent_scheme == "upto"


# -- data dates: yesterday (UTC) or fixed -------------------------------------------------------------------------


def test_data_dates_yesterday_is_deterministic_for_the_day(start: Start) -> None:
    a, b = start(), start(seed=402, rate_burst=41)  # two servers, the same seed
    if a.config.anchor_date != b.config.anchor_date:
        pytest.skip("midnight (UTC) passed between the two starts")
    assert a.config.anchor_date in (default_anchor(), default_anchor() - timedelta(days=1))
    for path, params in (
        ("/v2/daily-ohlcv", {"symbol": "ETH", "limit": 30}),
        ("/v2/tm-grade", {"limit": 20}),
        ("/v2/hourly-ohlcv", {"token_id": 3377, "limit": 30}),
    ):
        assert rows(a, path, **params) == rows(b, path, **params)
    newest = rows(a, "/v2/daily-ohlcv", token_id=3375, limit=1)[0]["DATE"]
    assert newest == f"{a.config.anchor_date}T00:00:00.000Z"
    # "Last week" has data: seven days ending yesterday.
    week = rows(a, "/v2/daily-ohlcv", token_id=3375, **_window(a, 7))
    assert len(week) == 7
    # The data are a function of (seed, day) alone: pinning that same day gives the same rows.
    pinned = start(anchor=a.config.anchor_date)
    assert pinned.profile.data_dates == "fixed"
    assert rows(pinned, "/v2/daily-ohlcv", symbol="ETH", limit=30) == rows(a, "/v2/daily-ohlcv", symbol="ETH", limit=30)


def test_data_dates_fixed(start: Start) -> None:
    fixed = start(data_dates="fixed")
    assert fixed.config.anchor_date == FIXED_ANCHOR == date(2026, 10, 31)
    assert rows(fixed, "/v2/daily-ohlcv", token_id=3375, limit=1)[0]["DATE"] == "2026-10-31T00:00:00.000Z"
    info = httpx.get(fixed.url + "/sandbox").json()
    assert info["anchor_date"] == "2026-10-31" and info["profile"]["changed"] == {
        "data_dates": "fixed",
        "anchor": "2026-10-31",
    }
    pinned = start(anchor="2025-04-10")
    row = rows(pinned, "/v2/daily-ohlcv", token_id=3375, limit=1)[0]
    assert row["DATE"] == "2025-04-10T00:00:00.000Z" and row["CLOSE"] == 96849.0  # BTC's anchor-day price
    assert pinned.profile.label == "classic with data_dates=fixed, anchor=2025-04-10"


# -- validation ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "switch, bad",
    [
        ("x402_version", 3),
        ("x402_version", True),
        ("network", "solana"),
        ("offers", "all"),
        ("date_range", "30"),
        ("free_endpoints", "maybe"),
        ("paging", "loose"),
        ("empty_answer", "refunded"),
        ("data_dates", "today"),
        ("offers", ["both"]),
    ],
)
def test_a_bad_switch_value_names_the_valid_ones(switch: str, bad: Any) -> None:
    with pytest.raises(ConfigurationError) as e:
        SandboxProfile(**{switch: bad})
    valid = SWITCHES[switch].choices()
    assert f"{switch} must be one of {valid}" in str(e.value) and repr(bad) in str(e.value)
    with pytest.raises(ValueError, match=switch):
        serve(fund=False, **{switch: bad})


def test_switch_values_are_normalised() -> None:
    p = SandboxProfile(x402_version="v2", network="eip155:8453", paging=" Lenient ", field_case="TM-GRADE,tokens")  # type: ignore[arg-type]
    assert (p.x402_version, p.network, p.paging, p.field_case) == (2, "base", "lenient", "tm-grade,tokens")


def test_other_validation_errors() -> None:
    with pytest.raises(ConfigurationError, match="field_case must be one of 'upper', 'docs', 'lower' or a comma list"):
        SandboxProfile(field_case="tokens,nope")
    with pytest.raises(ConfigurationError, match="unknown sandbox switch fieldcase") as e:
        PROFILES["classic"].with_(fieldcase="lower")
    assert "field_case" in str(e.value)
    with pytest.raises(ConfigurationError, match="unknown sandbox option prot"):
        serve(fund=False, prot=8402)
    with pytest.raises(ConfigurationError, match="unknown sandbox profile 'docs-2025'") as e:
        serve(fund=False, profile="docs-2025")
    assert "classic, docs-2026" in str(e.value)
    with pytest.raises(ConfigurationError, match="pins the data"):
        SandboxProfile(anchor=date(2025, 1, 1))
    with pytest.raises(ConfigurationError, match="too early"):
        SandboxConfig(anchor=date(2019, 2, 1))
    with pytest.raises(ConfigurationError, match="YYYY-MM-DD"):
        PROFILES["classic"].with_(anchor="31/10/2026")


def test_with_keeps_anchor_and_data_dates_consistent() -> None:
    pinned = PROFILES["classic"].with_(anchor="2025-04-10")
    assert (pinned.data_dates, pinned.anchor) == ("fixed", date(2025, 4, 10))
    assert pinned.with_(data_dates="yesterday").anchor is None
    assert PROFILES["classic"].with_(data_dates="fixed").anchor == FIXED_ANCHOR
    assert pinned.with_(data_dates="fixed").anchor == date(2025, 4, 10)
    assert pinned.anchor_date() == date(2025, 4, 10)
    assert PROFILES["classic"].anchor_date(date(2026, 3, 1)) == date(2026, 2, 28)


def test_config_keeps_the_existing_arguments_as_switches() -> None:
    config = SandboxConfig(x402_version=2, network="base")
    assert config.profile.label == "classic with x402_version=2, network=base"
    assert (config.x402_version, config.network, config.anchor) == (2, "base", None)
    built = SandboxConfig.build("docs-2026", seed=7, paging="strict", anchor="2025-04-10")
    assert built.seed == 7 and built.profile.changes() == {
        "paging": "strict",
        "data_dates": "fixed",
        "anchor": "2025-04-10",
    }
    assert built.anchor_date == date(2025, 4, 10)


# -- the command line --------------------------------------------------------------------------------------------


def test_cli_profile_and_switch_flags() -> None:
    args = build_parser().parse_args(
        ["--profile", "docs-2026", "--field-case", "lower", "--x402-version", "2", "--anchor", "2025-04-10"]
    )
    config = config_from_args(args)
    assert config.profile.changes() == {
        "x402_version": 2,
        "field_case": "lower",
        "data_dates": "fixed",
        "anchor": "2025-04-10",
    }
    assert config.network == "base" and config.anchor_date == date(2025, 4, 10)
    text = banner(config, "http://127.0.0.1:8402", "0x" + "11" * 20, {})
    assert "Profile     docs-2026 with x402_version=2, field_case=lower, data_dates=fixed, anchor=2025-04-10" in text
    assert "newest day 2025-04-10 (pinned)" in text
    every = build_parser().parse_args(
        [f"{s.flag}={s.values[-1]}" for s in SWITCHES.values()] + ["--data-dates", "fixed"]
    )
    assert config_from_args(every).profile.switches() == {
        **{name: s.values[-1] for name, s in SWITCHES.items()},
        "anchor": "2026-10-31",
    }
    assert config_from_args(build_parser().parse_args([])).profile == PROFILES["classic"]


def test_cli_help_lists_the_switches(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli_main(["--help"])
    out = capsys.readouterr().out
    assert "--profile NAME" in out and "classic, docs-2026" in out
    for switch in SWITCHES.values():
        assert switch.flag in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--date-range", "bogus"], "date_range must be one of 'none', 'error', 'truncate'"),
        (["--tmai-transfer", "erc7710"], "tmai_transfer must be one of 'eip3009', 'permit2'"),
        (["--profile", "nope"], "unknown sandbox profile 'nope'"),
        (["--anchor", "yesterday"], "YYYY-MM-DD"),
    ],
)
def test_cli_refuses_bad_values(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    assert cli_main(argv) == 2
    assert message in capsys.readouterr().err


# -- connect(mode="sandbox", sandbox_options=...) ------------------------------------------------------------------


def test_connect_passes_the_profile_to_the_embedded_sandbox() -> None:
    import tm402_nb as tm

    with tm.connect(mode="sandbox", sandbox_options={"profile": "docs-2026", "field_case": "lower"}) as s:
        assert s.sandbox is not None and s.sandbox.profile.label == "docs-2026 with field_case=lower"
        assert s.network == "base"  # the profile's network, unless connect names one
    with tm.connect(mode="sandbox", x402_version=2, sandbox_options={"profile": "docs-2026"}) as s:
        assert s.sandbox is not None and s.sandbox.x402_version == 2 and s.network == "base"
    with tm.connect(mode="sandbox", network="base-sepolia", sandbox_options={"profile": "docs-2026"}) as s:
        assert s.sandbox is not None and s.sandbox.network == s.network == "base-sepolia"


def test_cli_tmai_transfer_permit2_says_how_to_approve() -> None:
    config = config_from_args(build_parser().parse_args(["--tmai-transfer", "permit2"]))
    assert config.profile.tmai_transfer == "permit2"
    assert config.profile.label == "classic with tmai_transfer=permit2"
    text = banner(config, "http://127.0.0.1:8402", "0x" + "11" * 20, {})
    assert 'TMAI is paid by Permit2: add "approve_permit2": true' in text
    classic = config_from_args(build_parser().parse_args([]))
    assert "approve_permit2" not in banner(classic, "http://127.0.0.1:8402", "0x" + "11" * 20, {})
