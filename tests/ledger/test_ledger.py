"""The ledger keeps every record: write-ahead rows, killed processes, two writers at once."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.toyserver import ToyConfig, ToyX402, serve_app
from tm402_nb.errors import LedgerError
from tm402_nb.ledger import SCHEMA_VERSION, CallRecord, Ledger, default_path
from tm402_nb.status import PaymentStatus
from tm402_nb.x402.recorder import PaymentRecord

ROOT = Path(__file__).resolve().parents[2]


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_default_path_follows_tm402_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TM402_HOME", str(tmp_path / "h"))
    assert default_path() == tmp_path / "h" / "ledger.sqlite3"
    with Ledger() as led:
        assert led.path.exists()


def test_wal_mode_and_schema_version(ledger):
    assert ledger.schema_version == SCHEMA_VERSION
    mode = sqlite3.connect(ledger.path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "l.sqlite3"
    Ledger(path).close()
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    con.close()
    with pytest.raises(LedgerError, match="newer"):
        Ledger(path)


def test_reopening_keeps_rows(tmp_path):
    path = tmp_path / "l.sqlite3"
    with Ledger(path) as led:
        rec = PaymentRecord(17_000, "0xa", "eip155:84532", "0xb", "0xc", "0x1", 0, asset_symbol="USDC")
        led.record_payment(rec)
        led.update_payment(rec.id, PaymentStatus.SETTLED, tx="0xt")
        led.record_call(CallRecord(url="u", endpoint="tm-grade", params={"symbol": "BTC"}, paid=True))
    with Ledger(path) as led:
        assert led.payments()["status"].tolist() == ["settled"]
        calls = led.calls()
        assert calls["endpoint"].tolist() == ["tm-grade"] and calls["paid"].tolist() == [True]


def test_frames_have_display_amounts(ledger):
    ledger.record_payment(
        PaymentRecord(68_000, "0xa", "eip155:84532", "0xb", "0xc", "0x1", 0, decimals=6, asset_symbol="USDC")
    )
    ledger.record_payment(
        PaymentRecord(15 * 10**17, "0xt", "eip155:84532", "0xb", "0xc", "0x2", 0, decimals=18, asset_symbol="TMAI")
    )
    frame = ledger.payments()
    assert frame["amount"].tolist() == [0.068, 1.5]
    assert frame["amount_atomic"].tolist() == [68_000, 15 * 10**17]  # exact, beyond int64 too
    assert str(frame["created_at"].dtype).startswith("datetime64")
    assert ledger.frame is not None and ledger.frame().equals(frame)


def test_empty_frames_are_typed(ledger):
    assert ledger.payments().empty and "amount" in ledger.payments().columns
    assert ledger.calls().empty


def test_cache_roundtrip_and_expiry(ledger):
    ledger.cache_put("k", "wallet-a", b'{"x":1}', ttl=60, endpoint="tm-grade")
    assert ledger.cache_get("k", "wallet-a")[1] == b'{"x":1}'
    assert ledger.cache_get("k", "wallet-b") is None  # never shared across scopes
    import time

    assert ledger.cache_get("k", "wallet-a", now=time.time() + 61) is None


def test_threads_write_without_losing_rows(ledger):
    def worker(k):
        for i in range(50):
            ledger.record_call(CallRecord(url=f"http://x/{k}/{i}"))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ledger.calls()) == 200


@pytest.mark.slow
def test_two_processes_share_a_daily_cap(tmp_path):
    path = tmp_path / "shared.sqlite3"
    Ledger(path).close()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.ledger._worker", "spend", str(path), "40", "0.50"],
            cwd=ROOT,
            env=_env(),
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    allowed = [int(p.communicate(timeout=120)[0].strip()) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    with Ledger(path) as led:
        payments = led.payments()
        assert len(payments) == sum(allowed) == 29  # floor(0.50 / 0.017): never more, across both
        assert len(led.calls()) == 80  # every call row from both processes


@pytest.mark.slow
def test_killed_process_leaves_a_recoverable_ledger(tmp_path):
    toy = ToyX402(ToyConfig(version=1))
    sent = threading.Event()
    toy.on_paid = lambda payload: sent.set()
    toy.config.slow_next_paid = 60.0
    path = tmp_path / "crash.sqlite3"
    with serve_app(toy.app) as url:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.ledger._worker", "hang", str(path), url + "/data"], cwd=ROOT, env=_env()
        )
        try:
            assert sent.wait(timeout=60), "the worker never sent its payment"
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
    with Ledger(path) as led:  # the next start reconciles
        rows = led.payments()
        assert rows["status"].tolist() == ["unknown"]
        assert "ended" in rows["error"].iloc[0]
        row = rows.iloc[0]
        assert led.spent(row["asset"], row["network"]) == 17_000  # still counted against budgets
