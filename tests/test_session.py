"""connect() / session(): modes from the environment, the embedded sandbox, wallet view, scopes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import warnings
from decimal import Decimal

import httpx
import pytest

import tm402_nb as tm
from tm402_nb.errors import BudgetExceeded, ConfigurationError, WalletError
from tm402_nb.session.modes import mode_from_env
from tm402_nb.tokenmetrics.client import AsyncClient
from tm402_nb.tokenmetrics.modes import Mode

# The public example key from the eth-account documentation: a test vector, never a real wallet.
KEY = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"


@pytest.mark.parametrize(
    "env, mode",
    [
        ({}, "sandbox"),
        ({"TM402_PRIVATE_KEY": KEY}, "x402"),
        ({"TM_API_KEY": "tm-123"}, "api-key"),
        ({"TM402_PRIVATE_KEY": KEY, "TM402_MODE": "sandbox"}, "sandbox"),
    ],
)
def test_mode_from_environment(monkeypatch, env, mode):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert mode_from_env() == mode


def test_bad_mode_in_environment(monkeypatch):
    monkeypatch.setenv("TM402_MODE", "live")
    with pytest.raises(ConfigurationError, match="TM402_MODE"):
        mode_from_env()


def test_sandbox_session_end_to_end():
    with tm.connect(mode="sandbox", budget="1.00") as s:
        assert s.mode == "sandbox" and s.network == "base-sepolia" and s.sandbox.url.startswith("http://127.0.0.1:")
        assert tm.session() is s and tm.current_session() is s
        df = s.client.frame("tm-grade", symbol=["BTC", "ETH"])
        assert df.attrs["tm402"]["paid"] == 1
        assert s.spent == Decimal("0.017") and "0.017 USD of 1.00 USD" in s.budget_text()
        payments = s.ledger.payments()
        assert payments["status"].tolist() == ["settled"] and payments["session_id"].tolist() == [s.id]
        bal = s.balances()
        assert bal["USDC"] == Decimal("99.983") and bal["TMAI"] == Decimal("10000")
        url = s.sandbox.url
    assert s.closed and tm.current_session() is None
    with pytest.raises(httpx.HTTPError):
        httpx.get(url + "/v2/tokens", timeout=2)  # the sandbox stopped with the session


def test_connect_closes_the_previous_session():
    first = tm.connect(mode="sandbox")
    second = tm.connect(mode="sandbox")
    try:
        assert first.closed and not second.closed and tm.session() is second
    finally:
        second.close()


def test_pay_with_tmai_in_the_sandbox():
    with tm.connect(mode="sandbox", pay_with="tmai") as s:
        df = s.client.frame("quantmetrics", symbol="BTC")
        assert df.attrs["tm402"]["amount"] == {"TMAI": "6.12"}  # 0.068 USD − 10 %, at $0.01 a TMAI
        assert s.ledger.payments()["asset_symbol"].tolist() == ["TMAI"]


def test_scope_counts_and_caps():
    with tm.connect(mode="sandbox") as s:
        with s.scope("analysis") as cost:
            s.client.frame("tm-grade", symbol="BTC")
            s.client.frame("tm-grade", symbol="BTC")  # cached
        assert (cost.n_paid, cost.n_cached) == (1, 1)
        with s.scope("cell", max_cost="0.02"):
            s.client.frame("tm-grade", symbol="ETH")
            with pytest.raises(BudgetExceeded, match="cell cap"):
                s.client.frame("ai-reports", symbol="ETH")


def test_pay_with_setter_changes_the_session_default():
    with tm.connect(mode="sandbox") as s:
        assert s.pay_with == "usdc"
        s.pay_with = "TMAI"
        assert s.pay_with == s.policy.pay_with == s.client.pay_with == "tmai"
        assert s.client.frame("tm-grade", symbol="BTC").attrs["tm402"]["amount"] == {"TMAI": "1.53"}
        with pytest.raises(ConfigurationError, match="usdc or tmai"):
            s.pay_with = "eth"
        assert s.pay_with == "tmai"


def test_budget_setter_and_refusal():
    with tm.connect(mode="sandbox") as s:
        assert s.budget == Decimal("1.00")  # every session has one
        s.budget = "0.02"
        assert s.budget == Decimal("0.02")
        s.client.frame("tm-grade", symbol="BTC")
        with pytest.raises(BudgetExceeded, match="session budget"):
            s.client.frame("tm-grade", symbol="ETH")
        assert len(s.ledger.payments()) == 1


def test_low_balance_warns():
    with tm.connect(mode="sandbox", low_balance="500") as s:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            s.balances()
        assert any("low USDC balance" in str(w.message) for w in caught)


def test_x402_mode_needs_a_wallet():
    with pytest.raises(WalletError, match="no wallet configured"):
        tm.connect(mode="x402", network="base")


def test_x402_mode_with_api_key_is_refused(monkeypatch):
    monkeypatch.setenv("TM402_PRIVATE_KEY", KEY)
    with pytest.raises(ConfigurationError, match="API key"):
        tm.connect(mode="x402", api_key="tm-123")


def test_x402_mode_on_a_named_testnet_and_the_real_api(monkeypatch):
    """x402 mode has no default network (issue 13: tests/test_going_live.py); base-sepolia stays
    available for other x402 servers."""
    monkeypatch.setenv("TM402_PRIVATE_KEY", KEY)
    with tm.connect(mode="x402", network="base-sepolia") as s:  # nothing is contacted until a call is made
        assert s.network == "base-sepolia" and s.base_url == "https://api.tokenmetrics.com/v2"
        assert s.policy.networks == ("eip155:84532",) and s.wallet.address.startswith("0x")
        assert s.client.headers["x-coinbase-402"] == "true" and "x-api-key" not in s.client.headers
        with pytest.raises(ConfigurationError, match="RPC"):
            s.balances()


def test_api_key_mode_against_the_sandbox():
    from tm402_nb.sandbox import serve

    with serve() as sb, tm.connect(mode="api-key", api_key=sb.api_key, base_url=sb.api_url) as s:
        assert s.wallet is None and s.policy is None
        df = s.client.frame("tm-grade", symbol="BTC")
        assert df.attrs["tm402"]["paid"] == 0 and s.ledger.payments().empty


def test_session_is_thread_safe_to_read():
    with tm.connect(mode="sandbox") as s:
        seen = []
        threads = [threading.Thread(target=lambda: seen.append(tm.session())) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert all(x is s for x in seen)


# -- tm.session is the function, whatever was imported first ------------------------------------
IMPORT_ORDERS = {
    "the package, then the subpackage": (
        "import tm402_nb as tm\nfirst = tm.session()\nimport tm402_nb.session\nassert tm.session() is first\n"
    ),
    "the subpackage first": "import tm402_nb.session\nimport tm402_nb as tm\nfirst = tm.session()\n",
    "a from-import first": (
        "from tm402_nb.session import connect\nimport tm402_nb as tm\nfirst = tm.session()\nassert connect is tm.connect\n"
    ),
}


@pytest.mark.parametrize("imports", list(IMPORT_ORDERS.values()), ids=list(IMPORT_ORDERS))
def test_tm_session_is_the_function_in_any_import_order(imports, tmp_path):
    # A fresh interpreter each: the order of the imports is the thing under test.
    code = imports + "assert first.mode == 'sandbox' and tm.current_session() is first\nfirst.close()\nprint('ok')\n"
    env = {**os.environ, "TM402_MODE": "sandbox", "TM402_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


# -- one constructor per mode -----------------------------------------------------------------
def test_a_refused_option_stops_the_sandbox_it_started(monkeypatch):
    import tm402_nb.sandbox as sandbox_module

    started = []
    real_serve = sandbox_module.serve

    def serve(**kwargs):
        started.append(real_serve(**kwargs))
        return started[-1]

    monkeypatch.setattr(sandbox_module, "serve", serve)
    with pytest.raises(ConfigurationError, match="pay_with"):
        tm.connect(mode="sandbox", pay_with="eth")  # refused by the spend policy, made after the sandbox
    assert len(started) == 1
    with pytest.raises(httpx.HTTPError):
        httpx.get(started[0].url + "/v2/tokens", timeout=2)  # stopped with the failed session
    assert tm.current_session() is None


def test_session_mode_is_a_mode_and_a_plain_string():
    with tm.connect(mode="sandbox") as s:
        assert s.mode is Mode.SANDBOX and s.mode == "sandbox" and f"{s.mode}" == "sandbox"
    with pytest.raises(ConfigurationError, match="mode must be sandbox, x402 or api-key"):
        tm.connect(mode="live")


# -- closing the async client --------------------------------------------------------------------
def test_close_closes_the_async_client():
    s = tm.connect(mode="sandbox")
    aclient = s.async_client()
    frame = asyncio.run(aclient.frame("tm-grade", symbol="BTC"))  # leaves a pooled connection behind
    assert frame.attrs["tm402"]["paid"] == 1
    s.close()  # plain code: no loop is running
    assert aclient._http.is_closed and s.closed


def test_aclose_awaits_the_async_client_close():
    async def main() -> AsyncClient:
        s = tm.connect(mode="sandbox")
        aclient = s.async_client()
        await aclient.frame("tm-grade", symbol="BTC")
        await s.aclose()
        assert s.closed and tm.current_session() is None
        return aclient

    aclient = asyncio.run(main())
    assert aclient._http.is_closed and aclient._bare.is_closed


def test_close_in_a_running_loop_closes_the_async_client():
    # As in a Jupyter cell: the cell's code runs inside the kernel's loop, which keeps running after it.
    kernel_loop = asyncio.new_event_loop()

    async def cell() -> AsyncClient:
        s = tm.connect(mode="sandbox")
        aclient = s.async_client()
        await aclient.frame("tm-grade", symbol="BTC")
        s.close()
        assert s.closed and tm.current_session() is None
        return aclient

    async def next_cells() -> None:
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        await asyncio.gather(*pending)

    try:
        aclient = kernel_loop.run_until_complete(cell())
        kernel_loop.run_until_complete(next_cells())
    finally:
        kernel_loop.close()
    assert aclient._http.is_closed and aclient._bare.is_closed


def test_budget_text_shows_refused_payments_that_may_still_settle_apart():
    """A refused payment stays counted until its authorization expires: the session says how much."""
    with tm.connect(mode="sandbox", budget="1.00") as s:
        s.sandbox.set_faults(settle_failure=1)
        with pytest.raises(Exception, match="settlement failed"):
            s.client.frame("tm-grade", symbol="BTC")
        assert "0.00 USD + 0.017 USD reserved of 1.00 USD budget" in s.budget_text()
        s.client.frame("tm-grade", symbol="ETH")
        assert "0.017 USD + 0.017 USD reserved of 1.00 USD budget" in s.budget_text()


# -- sandbox mode pays only the sandbox (issue 12) -----------------------------------------------------------


@pytest.mark.parametrize("argument", ["base_url", "rpc_url"])
def test_sandbox_mode_refuses_a_url_that_would_pay_elsewhere(argument):
    with pytest.raises(ConfigurationError, match="pays only its embedded sandbox"):
        tm.connect(mode="sandbox", **{argument: "http://127.0.0.1:9/v2"})
    assert tm.current_session() is None or tm.current_session().closed


def test_sandbox_mode_ignores_the_live_urls_in_the_environment_and_says_so(monkeypatch):
    monkeypatch.setenv("TM402_BASE_URL", "http://127.0.0.1:9/v2")  # nothing listens there
    monkeypatch.setenv("TM402_RPC_URL", "http://127.0.0.1:9/rpc")
    with pytest.warns(UserWarning, match=r"\$TM402_BASE_URL and \$TM402_RPC_URL ignored"):
        s = tm.connect(mode="sandbox")
    with s:
        df = s.client.frame("tm-grade", symbol="BTC")
        assert s.client.base_url == s.sandbox.api_url
        assert df.attrs["tm402"]["paid"] == 1
        assert len(s.sandbox.settlements(payer=s.wallet.address)) == 1  # the sandbox was paid, nobody else


@pytest.mark.parametrize("mode", ["sandbox", "x402"])
def test_every_session_has_a_budget_unless_turned_off_explicitly(mode, monkeypatch):
    """1.00 USD by default, in every mode that pays (issue 12); budget=None turns it off."""
    from tm402_nb.x402 import Wallet

    wallet = Wallet.create() if mode == "x402" else None
    net = {"network": "base"} if mode == "x402" else {}  # x402 names its network (issue 13): the live one
    with tm.connect(mode=mode, wallet=wallet, **net) as s:
        assert s.budget == Decimal("1.00") and "of 1.00 USD budget" in s.budget_text()
    with tm.connect(mode=mode, wallet=wallet, budget=None, **net) as s:
        assert s.budget is None and "no budget set" in s.budget_text()


# -- TMAI by Permit2 (issue 14) ------------------------------------------------------------------------------------


def _grade_stats(s: tm.Session) -> dict[str, int]:
    got = s.sandbox.stats()["paths"].get("/v2/tm-grade", {})
    return {k: got.get(k, 0) for k in ("challenges", "payment_headers", "paid")}


def test_sandbox_session_pays_tmai_by_permit2() -> None:
    """Out of the box: the sandbox's throwaway wallet has approved Permit2, the payment is a Permit2
    witness transfer, its nonce is consumed on chain, the warm call is one round trip, and a lost
    answer's replay re-sends the same permit, which settles once."""
    from tm402_nb.errors import PaymentOutcomeUnknown
    from tm402_nb.x402.chain import ChainReader

    with tm.connect(mode="sandbox", pay_with="tmai", sandbox_options={"tmai_transfer": "permit2"}) as s:
        df = s.client.frame("tm-grade", symbol="BTC")
        assert df.attrs["tm402"]["amount"] == {"TMAI": "1.53"}
        [row] = s.ledger.payment_rows()
        assert (row["status"], row["transfer"], row["asset_symbol"]) == ("settled", "permit2", "TMAI")
        reader = ChainReader(s.sandbox.rpc_url)
        assert reader.permit2_nonce_used(s.wallet.address, int(row["nonce"], 16))
        assert s.sandbox.settlements()[-1]["nonce"] == row["nonce"]
        # Warm: signed against the remembered challenge, one request, no second allowance read needed.
        before = _grade_stats(s)
        s.client.frame("tm-grade", symbol="ETH")
        assert _grade_stats(s) == {k: v + (k != "challenges") for k, v in before.items()}
        # The answer is lost after settling: the replay carries the same permit and is refused as used.
        s.sandbox.set_faults(drop_after_settle=1)
        before = _grade_stats(s)
        with pytest.raises(PaymentOutcomeUnknown) as info:
            s.client.frame("tm-grade", symbol="SOL")
        after = _grade_stats(s)
        assert (after["payment_headers"] - before["payment_headers"], after["paid"] - before["paid"]) == (2, 1)
        payment = info.value.payment  # type: ignore[attr-defined]
        assert payment.record.transfer == "permit2"
        assert len([x for x in s.sandbox.settlements() if x["nonce"] == payment.record.nonce]) == 1
        assert s.auth.resolve(payment) == "settled"  # decided from Permit2's nonce bitmap
        assert [r["transfer"] for r in s.ledger.payment_rows()] == ["permit2"] * 3


def test_sandbox_session_without_the_permit2_approval_is_refused_before_signing() -> None:
    from tm402_nb.errors import Permit2AllowanceRequired

    options = {"tmai_transfer": "permit2", "approve_permit2": False}
    with tm.connect(mode="sandbox", pay_with="tmai", sandbox_options=options) as s:
        with pytest.raises(Permit2AllowanceRequired, match="permit2_allowance_required") as info:
            s.client.frame("tm-grade", symbol="BTC")
        assert 's.approve_permit2("tmai", N)' in info.value.hint
        assert s.ledger.payment_rows() == [] and s.sandbox.settlements() == []
        assert _grade_stats(s)["payment_headers"] == 0
        # USDC is still EIP-3009: it pays.
        assert s.client.frame("tm-grade", symbol="BTC", pay_with="usdc").attrs["tm402"]["paid"] == 1
        assert [r["transfer"] for r in s.ledger.payment_rows()] == ["eip3009"]


def test_sandbox_session_pays_tmai_with_a_sponsored_approval() -> None:
    """gas_sponsoring=erc20: a wallet with no allowance and no ETH pays TMAI by Permit2; the approval
    (exactly the price) is signed into the payment and mined by the facilitator with the transfer."""
    from tm402_nb.x402.approval import ERC20_APPROVAL_GAS_SPONSORING
    from tm402_nb.x402.chain import ChainReader
    from tm402_nb.x402.permit2 import PERMIT2_ADDRESS

    options = {"tmai_transfer": "permit2", "approve_permit2": False, "x402_version": 2, "gas_sponsoring": "erc20"}
    with tm.connect(mode="sandbox", pay_with="tmai", sandbox_options=options) as s:
        events: list[tm.x402.PaymentEvent] = []
        s.auth.listeners.append(events.append)
        reader = ChainReader(s.sandbox.rpc_url)
        token = s.sandbox.state.asset("tmai").address
        assert reader.allowance(token, s.wallet.address, PERMIT2_ADDRESS) == 0
        eth_before = reader.native_balance(s.wallet.address)
        df = s.client.frame("tm-grade", symbol="BTC")
        assert df.attrs["tm402"]["amount"] == {"TMAI": "1.53"}
        [row] = s.ledger.payment_rows()
        assert (row["status"], row["transfer"]) == ("settled", "permit2")
        assert len(s.sandbox.settlements()) == 1
        assert reader.native_balance(s.wallet.address) == eth_before  # the facilitator paid the gas
        assert reader.transaction_count(s.wallet.address) == 1  # the approval was mined from the wallet
        [signed] = [e for e in events if e.kind == "signed"]
        assert "server sponsors the gas" in (signed.reason or "")
        assert signed.payment.payload.extensions[ERC20_APPROVAL_GAS_SPONSORING]["info"]["amount"] == str(row["amount"])
