"""The official JavaScript x402 client (``@x402/fetch`` + ``@x402/evm`` + ``viem``, from the npm
registry) pays the sandbox, in x402 v2 and v1.

``@x402/fetch`` 2.x wraps ``fetch``: ``wrapFetchWithPaymentFromConfig(fetch, {schemes: [{network,
client: new ExactEvmScheme(account)}]})`` for v2, and ``{network: "base-sepolia", client: new
ExactEvmSchemeV1(account), x402Version: 1}`` (``@x402/evm/v1``) for v1; receipts decode with
``decodePaymentResponseHeader`` (per the package README). The legacy ``x402-fetch`` 1.x is v1-only.

Skipped, with the reason, when node/npm are missing or the install fails (no registry access).
The wallet key reaches node only through the subprocess's environment.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tm402_nb.sandbox import serve
from tm402_nb.x402 import Wallet

pytestmark = [pytest.mark.slow, pytest.mark.interop]

PACKAGES = ["@x402/fetch@^2", "@x402/evm@^2", "viem@^2"]

SCRIPT = r"""
import { wrapFetchWithPaymentFromConfig, decodePaymentResponseHeader } from "@x402/fetch";
import { ExactEvmScheme } from "@x402/evm";
import { ExactEvmSchemeV1 } from "@x402/evm/v1";
import { privateKeyToAccount } from "viem/accounts";

const account = privateKeyToAccount(process.env.X402_TEST_KEY);
const [url, version] = process.argv.slice(2);
const schemes = version === "1"
  ? [{ network: "base-sepolia", client: new ExactEvmSchemeV1(account), x402Version: 1 }]
  : [{ network: "eip155:84532", client: new ExactEvmScheme(account) }];
const pay = wrapFetchWithPaymentFromConfig(fetch, { schemes });
try {
  const r = await pay(url, { headers: { "x-coinbase-402": "true" } });
  const raw = r.headers.get("PAYMENT-RESPONSE") || r.headers.get("X-PAYMENT-RESPONSE");
  const body = await r.json();
  console.log(JSON.stringify({
    status: r.status,
    receiptHeader: r.headers.has("PAYMENT-RESPONSE") ? "PAYMENT-RESPONSE" : (raw ? "X-PAYMENT-RESPONSE" : null),
    receipt: raw ? decodePaymentResponseHeader(raw) : null,
    rows: Array.isArray(body.data) ? body.data.length : null,
    payer: account.address,
  }));
} catch (e) {
  console.log(JSON.stringify({ error: String((e && e.message) || e) }));
  process.exit(3);
}
"""


@pytest.fixture(scope="module")
def js_client(tmp_path_factory) -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip("node and npm are not both on PATH: the JavaScript interop check needs them")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    if not version.startswith("v") or int(version[1:].split(".")[0]) < 18:
        pytest.skip(f"node {version} has no global fetch (needs node >= 18)")
    where = tmp_path_factory.mktemp("x402-js")
    (where / "package.json").write_text(
        json.dumps({"name": "tm402-js-interop", "version": "0.0.0", "private": True, "type": "module"})
    )
    try:
        # Few, short retries: without registry access this should skip in seconds, not minutes.
        out = subprocess.run(
            [
                npm,
                "install",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
                "--prefer-offline",
                "--fetch-retries=1",
                "--fetch-retry-mintimeout=1000",
                "--fetch-retry-maxtimeout=3000",
                "--fetch-timeout=20000",
                *PACKAGES,
            ],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=180,
        )
    except subprocess.TimeoutExpired:
        pytest.skip("npm install of the official x402 JS client timed out (no registry access?)")
    if out.returncode != 0:
        pytest.skip(f"npm install of the official x402 JS client failed (no registry access?): {out.stderr[-300:]}")
    readme = where / "node_modules" / "@x402" / "fetch" / "README.md"
    assert "wrapFetchWithPaymentFromConfig" in readme.read_text(), "the @x402/fetch API changed: read its README"
    (where / "pay.mjs").write_text(SCRIPT)
    return where


@pytest.mark.parametrize("version", [2, 1], ids=["v2", "v1"])
def test_official_js_fetch_client_pays_the_sandbox(js_client, version):
    installed = json.loads((js_client / "node_modules" / "@x402" / "fetch" / "package.json").read_text())["version"]
    with serve(x402_version=version, fund=False) as sb:
        wallet = Wallet.create()
        sb.fund(wallet.address, "usdc", "5")
        env = {**os.environ, "X402_TEST_KEY": wallet._export_key_hex()}  # node's environment only
        out = subprocess.run(
            ["node", "pay.mjs", sb.api_url + "/tm-grade?token_id=3375", str(version)],
            cwd=js_client,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        settlements = sb.settlements(payer=wallet.address)
        balance = sb.balance(wallet.address, "usdc")
    assert out.returncode == 0, f"@x402/fetch {installed}: {out.stdout[-500:]} {out.stderr[-1500:]}"
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["status"] == 200, result
    assert result["payer"] == wallet.address and result["rows"] == 1
    receipt = result["receipt"]
    assert receipt and receipt["success"] is True
    assert result["receiptHeader"] == ("X-PAYMENT-RESPONSE" if version == 1 else "PAYMENT-RESPONSE")
    assert receipt["network"] == ("base-sepolia" if version == 1 else "eip155:84532")
    assert [s["tx"] for s in settlements] == [receipt["transaction"]]  # exactly one settlement: the receipt's
    assert balance == 5_000_000 - 17_000
