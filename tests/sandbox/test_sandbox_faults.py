"""Each switchable fault, through serve(), set_faults(), the admin endpoint and the CLI flags."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from sandbox_helpers import X402, decode_header, fresh_wallet, get_challenge, headers_for, key_headers, sign, snapshot

from tm402_nb.errors import X402ProtocolError
from tm402_nb.sandbox import Faults, SandboxServer, serve
from tm402_nb.sandbox.cli import build_parser, config_from_args
from tm402_nb.x402.messages import SettlementResponse, parse_challenge, read_receipt

PATH = "/v2/trading-signals"
P = {"symbol": "ETH", "limit": 2}


@pytest.fixture(params=[1, 2], ids=["v1", "v2"])
def faulty(request: pytest.FixtureRequest) -> Iterator[SandboxServer]:
    """A fresh server per test, so fault counters never leak between tests."""
    with serve(x402_version=request.param, fund=False) as server:
        yield server


def _client(server: SandboxServer) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=10)


def test_latency(faulty: SandboxServer) -> None:
    with _client(faulty) as c:
        c.get("/v2/tokens", params={"limit": 1}, headers=key_headers(faulty))  # warm the connection
        faulty.set_faults(latency_ms=150)
        t = time.perf_counter()
        r = c.get("/v2/tokens", params={"limit": 1}, headers=key_headers(faulty))
        assert r.status_code == 200
        # A lower bound is the fault's behaviour (the answer is held back); a busy machine only adds to it.
        assert time.perf_counter() - t >= 0.15


def test_burst_429_then_normal(faulty: SandboxServer) -> None:
    faulty.set_faults(burst_429=2, retry_after_s=3)
    with _client(faulty) as c:
        codes = []
        for _ in range(3):
            r = c.get("/v2/tokens", params={"limit": 1}, headers=key_headers(faulty))
            codes.append(r.status_code)
            if r.status_code == 429:
                assert r.headers["retry-after"] == "3"
                assert r.json()["error"] == "rate_limited"
        assert codes == [429, 429, 200]
    assert faulty.stats()["faults_fired"] == {"burst_429": 2}


def test_5xx_next_releases_the_payment(faulty: SandboxServer) -> None:
    w = fresh_wallet(faulty)
    with _client(faulty) as c:
        p = sign(w, get_challenge(c, PATH, P))
        faulty.set_faults(error_5xx_next=1)
        before = snapshot(faulty, w.address)
        r = c.get(PATH, params=P, headers=headers_for(p))
        assert r.status_code == 500 and r.json()["success"] is False
        assert read_receipt(r.headers) is None
        assert snapshot(faulty, w.address) == before
        # The same signed header is still good: a retry after a 5xx pays once.
        r = c.get(PATH, params=P, headers=headers_for(p))
        assert r.status_code == 200
    assert len(faulty.settlements()) == 1


def _pattern(seed: int, n: int = 30) -> list[int]:
    with serve(seed=seed, fund=False, faults=Faults(error_5xx_rate=0.3)) as server, _client(server) as c:
        return [c.get("/v2/tokens", params={"limit": 1}, headers=key_headers(server)).status_code for _ in range(n)]


def test_5xx_rate_is_seeded() -> None:
    a, b = _pattern(7), _pattern(7)
    assert a == b
    assert 0 < a.count(500) < len(a)
    assert set(a) == {200, 500}


def test_settle_failure_withholds_the_body_and_moves_nothing(faulty: SandboxServer) -> None:
    w = fresh_wallet(faulty)
    faulty.set_faults(settle_failure=1)
    with _client(faulty) as c:
        p = sign(w, get_challenge(c, PATH, P))
        before = snapshot(faulty, w.address)
        r = c.get(PATH, params=P, headers=headers_for(p))
        assert r.status_code == 402
        assert "data" not in r.json()
        receipt = read_receipt(r.headers)
        assert receipt is not None and receipt.success is False
        assert receipt.error_reason == "unexpected_settle_error" and receipt.transaction == ""
        assert receipt.payer == w.address
        assert snapshot(faulty, w.address) == before
        # Nothing settled, so the same payment settles on the next try.
        r = c.get(PATH, params=P, headers=headers_for(p))
        assert r.status_code == 200 and read_receipt(r.headers).success
    assert faulty.stats()["settle_failures"] == 1


def test_slow_settle_runs_past_valid_before(faulty: SandboxServer) -> None:
    w = fresh_wallet(faulty)
    faulty.set_faults(slow_settle_past_valid_before=1, slow_settle_ms=200)
    with _client(faulty) as c:
        p = sign(w, get_challenge(c, PATH, P))
        before = snapshot(faulty, w.address)
        t = time.perf_counter()
        r = c.get(PATH, params=P, headers=headers_for(p))
        assert time.perf_counter() - t >= 0.2  # a lower bound: load can only lengthen it
        assert r.status_code == 402
        receipt = read_receipt(r.headers)
        assert receipt.error_reason == "invalid_exact_evm_payload_authorization_valid_before"
        assert snapshot(faulty, w.address) == before


def test_malformed_challenge(faulty: SandboxServer) -> None:
    faulty.set_faults(malformed_challenge=1)
    with _client(faulty) as c:
        r = c.get(PATH, params=P, headers=X402)
        assert r.status_code == 402
        with pytest.raises(X402ProtocolError):
            parse_challenge(r.headers, r.content)
        # Only one: the next challenge is fine again.
        assert parse_challenge(*_challenge_parts(c.get(PATH, params=P, headers=X402))).accepts


def _challenge_parts(r: httpx.Response) -> tuple:
    return r.headers, r.content


def test_oversized_challenge(faulty: SandboxServer) -> None:
    faulty.set_faults(oversized_challenge=True)
    with _client(faulty) as c:
        r = c.get(PATH, params=P, headers=X402)
        assert r.status_code == 402
        size = len(r.headers["payment-required"]) if faulty.x402_version == 2 else len(r.content)
        assert size > 20 * 1024
        with pytest.raises(X402ProtocolError, match="KB limit"):
            parse_challenge(r.headers, r.content)
        # `True` means every challenge, not just the next one.
        assert len(c.get(PATH, params=P, headers=X402).content) > (20 * 1024 if faulty.x402_version == 1 else 0)


def test_drop_after_settle(faulty: SandboxServer) -> None:
    w = fresh_wallet(faulty)
    faulty.set_faults(drop_after_settle=1)
    with _client(faulty) as c:
        p = sign(w, get_challenge(c, PATH, P))
        before = snapshot(faulty, w.address)
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            c.get(PATH, params=P, headers=headers_for(p))
        # The money moved even though no answer came back.
        after = snapshot(faulty, w.address)
        assert after[(w.address, "usdc")] == before[(w.address, "usdc")] - 17000
        assert after["settlements"] == before["settlements"] + 1
        s = faulty.settlements()[-1]
        assert s["nonce"] == p.authorization.nonce and s["payer"] == w.address
        # Re-sending the same header cannot pay twice.
        r = c.get(PATH, params=P, headers=headers_for(p))
        assert r.status_code == 402
        err = decode_header(r.headers["payment-required"])["error"] if faulty.x402_version == 2 else r.json()["error"]
        assert err == "invalid_exact_evm_nonce_already_used"
    assert faulty.stats()["dropped"] == 1


def test_faults_admin_endpoint(faulty: SandboxServer) -> None:
    with _client(faulty) as c:
        r = c.post("/sandbox/faults", json={"burst_429": 1, "latency_ms": 0})
        assert r.status_code == 200 and r.json()["faults"]["burst_429"] == 1
        assert c.get("/sandbox/faults").json()["faults"]["burst_429"] == 1
        assert c.get("/v2/tokens", headers=key_headers(faulty)).status_code == 429
        assert c.get("/v2/tokens", headers=key_headers(faulty)).status_code == 200
        bad = c.post("/sandbox/faults", json={"no_such_fault": 1})
        assert bad.status_code == 400 and "no_such_fault" in bad.json()["message"]
        bad = c.post("/sandbox/faults", json={"error_5xx_rate": 3})
        assert bad.status_code == 400 and "error_5xx_rate" in bad.json()["message"]
        assert c.post("/sandbox/faults", content=b"{nope").status_code == 400
        assert c.post("/sandbox/faults", json={}).json()["faults"] == Faults().to_json()


def test_faults_from_serve_argument() -> None:
    with serve(faults=Faults(burst_429=1), fund=False) as server, _client(server) as c:
        assert c.get("/v2/tokens", headers=key_headers(server)).status_code == 429


def test_faults_from_cli_flags() -> None:
    args = build_parser().parse_args(
        [
            "--latency-ms",
            "5",
            "--burst-429",
            "2",
            "--error-5xx-rate",
            "0.1",
            "--error-5xx-next",
            "1",
            "--settle-failure",
            "--slow-settle",
            "--malformed-challenge",
            "--oversized-challenge",
            "--drop-after-settle",
            "--settle-pending",
            "--settle-pending-reads",
            "0",
            "--x402-version",
            "2",
            "--network",
            "base",
            "--seed",
            "9",
            "--port",
            "0",
        ]
    )
    cfg = config_from_args(args)
    f = cfg.faults
    assert (f.latency_ms, f.burst_429, f.error_5xx_rate, f.error_5xx_next) == (5, 2, 0.1, 1)
    assert f.settle_failure == f.slow_settle_past_valid_before == f.malformed_challenge == -1
    assert f.oversized_challenge == f.drop_after_settle == f.settle_pending == -1
    assert f.settle_pending_reads == 0
    assert (cfg.x402_version, cfg.network, cfg.seed) == (2, "base", 9)


def test_faults_validation() -> None:
    with pytest.raises(ValueError):
        Faults(latency_ms=-1)
    with pytest.raises(ValueError):
        Faults(burst_429=-5)
    assert Faults(settle_failure=True).settle_failure == -1
    assert Faults(settle_failure=False).settle_failure == 0
    for bad in (-1, 1001, True, "2"):
        with pytest.raises(ValueError, match="settle_pending_reads"):
            Faults(settle_pending_reads=bad)
    assert Faults.from_json({"settle_pending": 2, "settle_pending_reads": 3}).settle_pending == 2


def test_failed_receipt_is_a_settlement_response(faulty: SandboxServer) -> None:
    faulty.set_faults(settle_failure=1, settle_failure_reason="insufficient_funds")
    w = fresh_wallet(faulty)
    with _client(faulty) as c:
        p = sign(w, get_challenge(c, PATH, P))
        r = c.get(PATH, params=P, headers=headers_for(p))
    name = "X-PAYMENT-RESPONSE" if faulty.x402_version == 1 else "PAYMENT-RESPONSE"
    receipt = SettlementResponse.decode(r.headers[name])
    assert receipt.to_json()["errorReason"] == "insufficient_funds"
