"""Going live on Base mainnet, explicitly (issue 13): the README's path, rehearsed on 127.0.0.1.

Token Metrics takes x402 payments on Base mainnet. x402 mode has no default network: without
one (``network=`` or ``$TM402_NETWORK``) it refuses before anything is opened or signed, showing
the line that chooses mainnet; ``network="base"`` works with the default budget and caps, and
``base-sepolia`` stays for other x402 servers. A key or challenge for another network is a clear
refusal. The README's "Going live" code runs here against a sandbox that plays Base mainnet.
"""

from __future__ import annotations

import os
import re
from decimal import Decimal
from pathlib import Path

import pytest

import tm402_nb as tm
from tm402_nb.errors import ConfigurationError, PaymentRefused
from tm402_nb.sandbox import serve
from tm402_nb.session.modes import MAINNET_LINE
from tm402_nb.x402 import Wallet

README = Path(__file__).resolve().parents[1] / "README.md"
#: A key made for this module alone (never a real wallet); funded in each test's own sandbox.
KEY = "0x" + os.urandom(32).hex()


@pytest.fixture(scope="module")
def base_sandbox():
    """A sandbox playing Base mainnet (its USDC is Base's, its network ``base``)."""
    with serve(network="base", fund=False, rate_limit=10_000, rate_burst=10_000) as sb:
        sb.fund(Wallet.from_key(KEY).address, "usdc", "5")
        yield sb


@pytest.fixture
def live_env(monkeypatch, base_sandbox):
    """The environment of a user who followed the README, pointed at the mainnet sandbox."""
    monkeypatch.setenv("TM402_PRIVATE_KEY", KEY)
    monkeypatch.setenv("TM402_BASE_URL", base_sandbox.api_url)
    monkeypatch.setenv("TM402_RPC_URL", base_sandbox.rpc_url)
    monkeypatch.delenv("TM402_NETWORK", raising=False)
    return base_sandbox


def _home() -> Path:
    return Path(os.environ["TM402_HOME"])


# -- no network, no session ----------------------------------------------------------------------------
def test_x402_without_a_network_refuses_before_anything_is_opened(monkeypatch):
    monkeypatch.setenv("TM402_PRIVATE_KEY", KEY)
    monkeypatch.delenv("TM402_NETWORK", raising=False)
    with pytest.raises(ConfigurationError) as info:
        tm.connect(mode="x402")
    text = str(info.value)
    assert "Token Metrics takes x402 payments on Base mainnet" in text
    assert MAINNET_LINE == 'tm.connect(mode="x402", network="base", budget="1.00")' and MAINNET_LINE in text
    assert "TM402_NETWORK" in text and "base-sepolia" in text
    assert not _home().exists() or not any(_home().rglob("*.sqlite3"))  # no ledger was opened
    assert tm.current_session() is None


def test_x402_mode_from_the_environment_needs_a_network_too(monkeypatch):
    monkeypatch.setenv("TM402_PRIVATE_KEY", KEY)  # selects x402 mode
    monkeypatch.delenv("TM402_NETWORK", raising=False)
    with pytest.raises(ConfigurationError, match="needs a network"):
        tm.connect()


def test_an_unknown_network_is_refused_naming_the_choices(monkeypatch):
    monkeypatch.setenv("TM402_PRIVATE_KEY", KEY)
    with pytest.raises(ConfigurationError, match="unknown network 'mainnet'") as info:
        tm.connect(mode="x402", network="mainnet")
    assert MAINNET_LINE in info.value.hint


def test_tm402_network_chooses_mainnet_with_the_default_caps(monkeypatch):
    monkeypatch.setenv("TM402_PRIVATE_KEY", KEY)
    monkeypatch.setenv("TM402_NETWORK", "base")
    with tm.connect(mode="x402") as s:  # nothing is contacted until a call is made
        assert s.network == "base" and s.policy.networks == ("eip155:8453",)
        assert s.budget == Decimal("1.00") and s.policy.max_per_call == 100_000  # 0.10 USD
        assert s.wallet.address == Wallet.from_key(KEY).address


# -- base works; base-sepolia stays --------------------------------------------------------------------------
def test_base_pays_with_the_default_budget_and_caps(live_env):
    with tm.connect(mode="x402", network="base", progress=False) as s:
        q = s.client.quote("tm-grade", symbol="BTC")
        assert q.network == "base" and q.asset == "USDC" and q.refused is None
        df = s.client.frame("tm-grade", symbol="BTC")
        assert df.attrs["tm402"]["paid"] == 1
        (row,) = s.ledger.payments().itertuples()
        assert row.status == "settled" and row.network == "eip155:8453"
        assert "0.017 USD of 1.00 USD budget" in s.budget_text()


def test_base_sepolia_stays_for_other_x402_servers(monkeypatch):
    with serve(fund=False) as sb:
        sb.fund(Wallet.from_key(KEY).address, "usdc", "1")
        monkeypatch.setenv("TM402_PRIVATE_KEY", KEY)
        with tm.connect(mode="x402", network="base-sepolia", base_url=sb.api_url, progress=False) as s:
            assert s.client.frame("tm-grade", token_id=3375).attrs["tm402"]["paid"] == 1
            assert s.ledger.payments()["network"].tolist() == ["eip155:84532"]


# -- a key or a challenge for another network --------------------------------------------------------------------
def test_a_mainnet_session_refuses_a_testnet_challenge_before_signing(monkeypatch):
    with serve(fund=False) as testnet:  # the server asks for Base Sepolia
        monkeypatch.setenv("TM402_PRIVATE_KEY", KEY)
        with tm.connect(mode="x402", network="base", base_url=testnet.api_url, progress=False) as s:
            with pytest.raises(PaymentRefused) as info:
                s.client.frame("tm-grade", token_id=3375)
            assert s.ledger.payments().empty and testnet.settlements() == []
    text = str(info.value)
    assert "network base-sepolia is not allowed (this session pays on base" in text
    assert "network='base-sepolia'" in text and "nothing was signed" in text


def test_a_testnet_session_refuses_a_mainnet_challenge_before_signing(live_env):
    before = len(live_env.settlements(payer=Wallet.from_key(KEY).address))
    with tm.connect(mode="x402", network="base-sepolia", progress=False) as s:
        with pytest.raises(PaymentRefused, match=r"Base mainnet is not allowed .*network='base'"):
            s.client.frame("tm-grade", token_id=3375)
        assert s.ledger.payments().empty
    assert len(live_env.settlements(payer=Wallet.from_key(KEY).address)) == before


def test_a_wallet_loaded_for_another_network_is_refused_at_connect(live_env):
    wallet = Wallet.from_key(KEY, network="base-sepolia")
    with pytest.raises(ConfigurationError, match="loaded for base-sepolia but this session pays on base") as info:
        tm.connect(mode="x402", network="base", wallet=wallet)
    assert "nothing was signed" in info.value.hint
    assert tm.current_session() is None


def test_a_quote_says_a_wrong_network_would_be_refused(monkeypatch):
    with serve(fund=False) as testnet:
        monkeypatch.setenv("TM402_PRIVATE_KEY", KEY)
        with tm.connect(mode="x402", network="base", base_url=testnet.api_url, progress=False) as s:
            q = s.client.quote("tm-grade", token_id=3375)
            assert "network base-sepolia is not allowed" in (q.refused or "")


# -- connect() options that reach the client ----------------------------------------------------------------------
def test_window_days_and_symbol_overrides_reach_the_clients():
    with tm.connect(mode="sandbox", window_days=10, symbol_overrides={"btc": 3375}, progress=False) as s:
        assert s.client.window_days == 10 and s.async_client().window_days == 10
        assert s.client.symbol_overrides == {"BTC": 3375}
        q = s.client.quote("daily-ohlcv", symbol="BTC", start="2026-01-01", end="2026-01-30")
        assert q.calls == q.requests == 3 and q.lookups == 0  # 30 days in windows of 10; BTC known
    with pytest.raises(ConfigurationError, match="window_days"):
        tm.connect(mode="sandbox", window_days=0)


# -- the README's "Going live" section, run as written --------------------------------------------------------------
def _going_live_code() -> str:
    text = README.read_text()
    section = text.split("## Going live", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, re.S)
    return code


@pytest.mark.parametrize("profile", ["classic", "docs-2026"])
def test_the_readme_going_live_code_runs_against_a_mainnet_sandbox(profile, monkeypatch, capsys):
    """The section's code, unchanged, with the environment its step 1 sets up, against a sandbox on
    Base mainnet: today's behaviour (``classic`` on ``network="base"``) and the strictest reading of
    the 2026 docs (``docs-2026``: lowercase fields, paid "free" endpoints, one asset per challenge,
    29-day truncation). Only the data call and, where the server charges for it, the symbol lookup
    are paid; the doctor and the quote pay nothing."""
    code = _going_live_code()
    assert 'tm.connect(mode="x402", network="base", budget="1.00")' in code and "s.doctor()" in code
    payer = Wallet.from_key(KEY).address
    with serve(profile=profile, network="base", fund=False) as sb:
        sb.fund(payer, "usdc", "5")
        monkeypatch.setenv("TM402_PRIVATE_KEY", KEY)
        monkeypatch.setenv("TM402_BASE_URL", sb.api_url)
        monkeypatch.setenv("TM402_RPC_URL", sb.rpc_url)
        monkeypatch.delenv("TM402_NETWORK", raising=False)
        namespace: dict = {}
        try:
            exec(compile(code, str(README), "exec"), namespace)
            s, q, df = namespace["s"], namespace["q"], namespace["df"]
            assert s.network == "base" and s.mode == "x402" and len(df) == 1
            report = s.doctor()  # what the README's doctor line showed: every check passes
            assert report.ok, str(report)
            rows = s.ledger.payments()
            assert set(rows["status"]) == {"settled"} and set(rows["network"]) == {"eip155:8453"}
            data = rows[rows["endpoint"] == "tm-grade"]
            assert len(data) == 1 and data["amount"].tolist() == [0.017]  # one paid data call
            assert int(rows["amount_atomic"].astype(int).sum()) <= q.total  # never past the quote
            if profile == "docs-2026":  # /tokens charges: the lookup was quoted, then paid
                assert q.lookup_calls > 0 and (rows["endpoint"] == "tokens").any()
            else:
                assert q.lookup_calls == 0 and len(rows) == 1
            settled = sb.settlements(payer=payer)
            assert len(settled) == len(rows)
        finally:
            if "s" in namespace:
                namespace["s"].close()
    shown = capsys.readouterr().out
    assert repr(q) in shown and "USD of 1.00 USD budget" in shown


def test_the_doctor_names_the_missing_network(monkeypatch, capsys):
    from tm402_nb.cli import main

    monkeypatch.setenv("TM402_PRIVATE_KEY", KEY)
    monkeypatch.delenv("TM402_NETWORK", raising=False)
    assert main(["doctor", "--mode", "x402", "--json"]) == 1
    import json

    (check,) = json.loads(capsys.readouterr().out)["checks"]
    assert check["name"] == "network" and check["status"] == "fail"
    assert "Base mainnet" in check["found"] and MAINNET_LINE in check["fix"]
