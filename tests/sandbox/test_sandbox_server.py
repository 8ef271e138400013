"""Starting and stopping: no leaked threads or ports; the CLI; prices; in-process use."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from tm402_nb.sandbox import (
    ENDPOINT_TIER,
    ENDPOINTS,
    SANDBOX_TMAI_BASE_SEPOLIA_ADDRESS,
    SandboxConfig,
    create_app,
    serve,
)
from tm402_nb.sandbox.catalogue import TMAI
from tm402_nb.sandbox.pricing import PriceList
from tm402_nb.x402.networks import TMAI_BASE, USDC_BASE

ROOT = Path(__file__).resolve().parents[2]


def _port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _accepts(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _sandbox_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("tm402-sandbox")]


def test_start_stop_leaves_nothing_behind() -> None:
    threads_before = set(threading.enumerate())
    server = serve()
    port = server.port
    assert server.url == f"http://127.0.0.1:{port}" and server.api_url.endswith("/v2")
    assert _accepts(port) and server.running
    db = server.state.db_path
    assert os.path.exists(db)
    assert httpx.get(server.url + "/sandbox").status_code == 200
    server.stop()
    assert not server.running
    assert set(threading.enumerate()) <= threads_before
    assert not _accepts(port) and _port_is_free(port)
    assert not os.path.exists(db)  # the temporary database is removed
    server.stop()  # idempotent
    with pytest.raises(RuntimeError, match="stopped"):
        server.balance(server.wallet.address)


def test_context_manager_and_many_servers() -> None:
    baseline = set(_sandbox_threads())
    with serve() as a, serve(x402_version=2, network="base") as b:
        assert a.port != b.port
        assert httpx.get(b.url + "/sandbox").json()["network"] == "base"
        assert len(set(_sandbox_threads()) - baseline) == 2
    assert set(_sandbox_threads()) <= baseline
    assert not _accepts(a.port) and not _accepts(b.port)


def test_repeated_start_stop_leaves_nothing_behind() -> None:
    """Five servers in a row: each one's thread, listening socket and temporary database are gone
    once it stops. (How long a start/stop takes is a row of ``python bench/sandbox_throughput.py``.)"""
    baseline = set(_sandbox_threads())
    servers = []
    for _ in range(5):
        with serve(fund=False) as s:
            assert httpx.get(s.url + "/sandbox").status_code == 200
            servers.append((s, s.state.db_path))
    assert set(_sandbox_threads()) <= baseline
    for s, db in servers:
        # The server's own socket is closed: checked on the object, since another test process may
        # legitimately bind the same port number as soon as it is free.
        assert s._sock.fileno() == -1 and not s.running
        assert not os.path.exists(db)


def test_funded_wallet_and_helpers() -> None:
    with serve() as s:
        assert s.balance(s.wallet.address, "usdc") == 100 * 10**6
        assert s.balance(s.wallet.address, "tmai") == 10_000 * 10**18
        s.fund(s.wallet.address, "usdc", "0.5")
        assert s.balance(s.wallet.address) == 100_500_000
        assert "PrivateKey" not in repr(s) and s.wallet.address in repr(s)
    with serve(fund={"usdc": "1"}) as s:
        assert s.balance(s.wallet.address, "usdc") == 10**6 and s.balance(s.wallet.address, "tmai") == 0


def test_port_in_use_is_an_error() -> None:
    with serve(fund=False) as s:
        before = set(threading.enumerate())
        with pytest.raises(OSError):
            serve(port=s.port, fund=False)
        assert set(threading.enumerate()) <= before


def test_base_network_uses_mainnet_assets() -> None:
    with serve(network="base", x402_version=2, fund=False) as s:
        assert s.assets["usdc"].address == USDC_BASE.address and s.assets["usdc"].eip712_name == "USD Coin"
        assert s.assets["tmai"].address.lower() == TMAI_BASE.address.lower()
    with serve(fund=False) as s:
        assert s.assets["tmai"].address == SANDBOX_TMAI_BASE_SEPOLIA_ADDRESS


def test_create_app_in_process() -> None:
    app = create_app(SandboxConfig(x402_version=2, seed=5))
    with TestClient(app) as c:
        r = c.get("/v2/tm-grade", params={"symbol": "BTC"}, headers={"x-coinbase-402": "true"})
        assert r.status_code == 402 and "payment-required" in r.headers
        assert r.headers["x-tm402-sandbox"] == "true"
    with pytest.raises(ValueError, match="x402_version must be one of 1, 2"):
        SandboxConfig(x402_version=3)
    with pytest.raises(ValueError, match="solana"):
        SandboxConfig(network="solana")


def test_price_table() -> None:
    assert {e.name for e in ENDPOINTS} | {TMAI.name} == set(ENDPOINT_TIER)
    free = {n for n, t in ENDPOINT_TIER.items() if t == 0}
    assert free == {"tokens", "price", "top-market-cap-tokens"}
    assert {n for n, t in ENDPOINT_TIER.items() if t == 1} == {
        "trading-signals",
        "daily-ohlcv",
        "hourly-ohlcv",
        "tm-grade",
        "technology-grade",
        "fundamental-grade",
    }
    assert {n for n, t in ENDPOINT_TIER.items() if t == 3} == {
        "correlation",
        "ai-reports",
        "quantmetrics",
        "crypto-investors",
        "price-prediction",
        "tmai",  # the AI agent: no published price, so the top tier
    }
    prices = PriceList()  # classic
    assert prices.atomic("daily-ohlcv", "usdc", 6) == 17_000
    assert prices.atomic("indices", "usdc", 6) == 34_000
    assert prices.atomic("ai-reports", "usdc", 6) == 68_000
    for name in ENDPOINT_TIER:
        assert prices.usd(name, "tmai") == prices.usd(name, "usdc") * Decimal("0.9")
    assert prices.atomic("ai-reports", "tmai", 18) == 6_120_000_000_000_000_000  # 6.12 TMAI at $0.01


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_runs_the_sandbox() -> None:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tm402_nb.sandbox",
            "--port",
            str(port),
            "--x402-version",
            "2",
            "--seed",
            "11",
            "--log-level",
            "warning",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        info = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                info = httpx.get(f"http://127.0.0.1:{port}/sandbox", timeout=1).json()
                break
            except httpx.TransportError:
                time.sleep(0.05)
        assert info is not None, "the CLI sandbox did not come up"
        assert info["x402_version"] == 2 and info["seed"] == 11
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=15)
    assert "SYNTHETIC DATA" in out and f"http://127.0.0.1:{port}/v2" in out
    assert proc.returncode in (0, -15)


def test_cli_help_and_bad_flags() -> None:
    from tm402_nb.sandbox import cli_main

    with pytest.raises(SystemExit) as e:
        cli_main(["--help"])
    assert e.value.code == 0
    assert cli_main(["--x402-version", "3"]) == 2  # refused by the profile, naming the valid values
    assert cli_main(["--error-5xx-rate", "7"]) == 2


CLIENT_SIDE = (
    "tm402_nb.x402.auth",
    "tm402_nb.x402.policy",
    "tm402_nb.x402.client",
    "tm402_nb.x402.transport",
    "tm402_nb.tokenmetrics",
    "tm402_nb.session",
    "tm402_nb.notebook.",
    "tm402_nb.ledger",
)
#: `import tm402_nb` registers df.tm (the accessor module, pandas only, and its package init) and binds
#: tm.session through the session layer's light face (standard library only); these may load.
ALLOWED_NOTEBOOK = (
    "tm402_nb.notebook",
    "tm402_nb.notebook.accessor",
    "tm402_nb.session",
    # Endpoint facts df.tm reads at import: standard library only, no client.
    "tm402_nb.tokenmetrics",
    "tm402_nb.tokenmetrics.catalogue",
)


def test_sandbox_code_imports_only_the_message_layer() -> None:
    """Static check: every import in tm402_nb/sandbox names the x402 message layer, errors, or itself."""
    import ast

    allowed = {
        "tm402_nb.x402.messages",
        "tm402_nb.x402.networks",
        "tm402_nb.x402.encoding",
        "tm402_nb.x402.eip3009",
        "tm402_nb.x402.permit2",
        "tm402_nb.x402.identifier",  # the payment-identifier extension's wire format
        "tm402_nb.x402.wallet",
        "tm402_nb.x402.money",
        "tm402_nb.money",  # the bottom module x402.money re-exports
        "tm402_nb.errors",
    }
    pkg = ROOT / "tm402_nb" / "sandbox"
    for path in sorted(pkg.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom):
                if node.level == 0:
                    names = [node.module or ""]
                elif node.level == 2:  # from ..x402.messages import ...
                    names = [f"tm402_nb.{node.module}"]
                elif node.level == 1:
                    continue  # inside the sandbox package
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                if name.startswith("tm402_nb"):
                    assert name in allowed, f"{path.name} imports {name}"


def test_importing_the_sandbox_loads_no_client_module() -> None:
    code = (
        "import sys, tm402_nb.sandbox, tm402_nb.sandbox.cli, tm402_nb.sandbox.server;"
        f"bad=[m for m in sys.modules if m.startswith({CLIENT_SIDE!r}) and m not in {ALLOWED_NOTEBOOK!r}];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
