"""The key never shows: not in reprs, logs, exceptions, the ledger file or CLI output."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.toyserver import ToyConfig, ToyX402, serve_app
from tm402_nb.errors import TM402Error
from tm402_nb.ledger import Ledger
from tm402_nb.x402 import SpendPolicy, Wallet, X402Auth, paying_client

# A fixed, public test key: never funded anywhere; it exists so the scans know what to look for.
KEY = "0x8da4ef21b864d2cc526dbdb2a120bd2874c36c9d0a1fb7f8c63d7f7a8b41de8f"
NEEDLES = (KEY[2:], KEY[2:].upper(), KEY[2:34])  # the key, upper-cased, and its first half
ROOT = Path(__file__).resolve().parents[1]


def assert_clean(text: str | bytes, where: str) -> None:
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    for needle in NEEDLES:
        assert needle not in text, f"private key material found in {where}"


@pytest.mark.parametrize("version", [1, 2])
def test_paying_flows_leak_nothing(tmp_path, caplog, monkeypatch, version):
    monkeypatch.setenv("TM402_PRIVATE_KEY", KEY)
    wallet = Wallet.from_env(network="base-sepolia")
    ledger = Ledger(tmp_path / "l.sqlite3")
    toy = ToyX402(ToyConfig(version=version))
    errors = []
    with caplog.at_level(logging.DEBUG), serve_app(toy.app) as url:
        with paying_client(wallet, SpendPolicy(), ledger=ledger) as client:
            client.get(url + "/data")
            client.get(url + "/data")
            toy.config.balance = 0
            for policy_change in (None, "cap"):
                try:
                    if policy_change == "cap":
                        client.auth.policy.set_max_per_call("0.001")
                    client.get(url + "/data")
                except TM402Error as exc:
                    errors.append(exc)
        for bad in ("0x12", KEY[:-1] + "z"):
            try:
                Wallet.from_key(bad)
            except TM402Error as exc:
                errors.append(exc)
    ledger.close()
    assert len(errors) == 4
    for exc in errors:
        assert_clean(str(exc) + repr(exc) + "".join(exc._render_traceback_()), "an exception")
    assert_clean(caplog.text, "the logs")
    assert_clean(repr(wallet) + str(X402Auth(wallet)), "a repr")
    for f in tmp_path.rglob("*"):
        if f.is_file():
            assert_clean(f.read_bytes(), f"file {f.name}")


def test_cli_ledger_output_is_clean(tmp_path, monkeypatch):
    monkeypatch.setenv("TM402_PRIVATE_KEY", KEY)
    ledger_path = tmp_path / "l.sqlite3"
    toy = ToyX402(ToyConfig(version=1))
    with (
        serve_app(toy.app) as url,
        Ledger(ledger_path) as ledger,
        httpx.Client(auth=X402Auth(Wallet.from_env(), ledger=ledger)) as client,
    ):
        client.get(url + "/data")
    for extra in ([], ["--csv"], ["--calls"]):
        out = subprocess.run(
            [sys.executable, "-m", "tm402_nb", "ledger", "--path", str(ledger_path), *extra],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        assert_clean(out.stdout + out.stderr, f"tm402-nb ledger {' '.join(extra)}")
    assert (
        "settled"
        in subprocess.run(
            [sys.executable, "-m", "tm402_nb", "ledger", "--path", str(ledger_path)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
        ).stdout
    )


def test_the_approval_leaks_nothing(tmp_path, caplog, capsys, monkeypatch):
    """The one-time approval to Permit2 signs a transaction with the key: its preview, receipt,
    refusals (with every local of their frames, as locals-capturing tools read them), logs and the
    sandbox chain's file show none of it."""
    import io
    import traceback

    from tm402_nb.session import confirm
    from tm402_nb.session.core import Session

    monkeypatch.setenv("TM402_PRIVATE_KEY", KEY)
    db = tmp_path / "chain.sqlite3"
    shown: list[str] = []

    def declining(prompt: str = "") -> str:
        shown.append(prompt)
        return "n"

    with caplog.at_level(logging.DEBUG):
        s = Session("sandbox", wallet=Wallet.from_env(), progress=False, sandbox_options={"db_path": str(db)})
        with s:
            for attempt in ("no eth", "no one to ask", "declined"):
                if attempt == "no one to ask":
                    s.sandbox.fund(s.wallet.address, "eth", "0.01")
                    monkeypatch.setattr("sys.stdin", io.StringIO())
                if attempt == "declined":
                    monkeypatch.setattr(confirm, "_in_kernel", lambda: True)
                    monkeypatch.setattr("builtins.input", declining)
                try:
                    s.approve_permit2("tmai", "5")
                except TM402Error as exc:
                    te = traceback.TracebackException.from_exception(exc, capture_locals=True)
                    shown += [str(exc), repr(exc), "".join(exc._render_traceback_()), "".join(te.format())]
            done = s.approve_permit2("tmai", "unlimited", yes=True)
            shown += [repr(done), done._repr_html_(), repr(done.plan), repr(done.result), str(s.allowance())]
    assert len(shown) == 3 * 4 + 1 + 5
    assert_clean("\n".join(shown), "the approval's output and refusals")
    captured = capsys.readouterr()
    assert_clean(captured.out + captured.err + caplog.text, "stdout, stderr and the logs")
    assert_clean(db.read_bytes() if db.exists() else b"", "the sandbox chain")
