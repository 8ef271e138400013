"""A ``pending`` row whose writer is gone becomes ``unknown``; one whose writer lives stays ``pending``.

The writer of a row is the Ledger that inserted it, not a PID: after a restart (a
JupyterHub pod, a container) the same host can have the old PID alive again in an
unrelated process, and a row trusted on host+PID would stay pending forever. Each test
synchronises with its subprocesses through pipes; nothing waits on a clock.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tm402_nb.ledger import SCHEMA_VERSION, Ledger
from tm402_nb.ledger import store as ledger_store
from tm402_nb.status import PaymentStatus

ROOT = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _writer(path: Path, then: str) -> tuple[subprocess.Popen[str], str]:
    """A subprocess that writes one pending row to ``path``; returns it and the row id once committed."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.ledger._worker", "pending", str(path), then],
        cwd=ROOT,
        env=_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    payment_id = proc.stdout.readline().strip()
    assert payment_id, "the writer wrote nothing"
    if then != "hold":
        assert proc.wait(timeout=60) == 0
    return proc, payment_id


def _release(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.close()
    assert proc.wait(timeout=60) == 0


@contextmanager
def _live_process() -> Iterator[int]:
    """The PID of an unrelated live process (it reads stdin until we close it)."""
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        yield proc.pid
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=60)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", ""])
    proc.wait(timeout=60)
    return proc.pid


def _set_pid(path: Path, payment_id: str, pid: int) -> None:
    con = sqlite3.connect(path)
    with con:
        con.execute("UPDATE payments SET pid=? WHERE id=?", (pid, payment_id))
    con.close()


def _status(path: Path, payment_id: str) -> str:
    with Ledger(path) as led:
        row = led.payment(payment_id)
    assert row is not None
    return row["status"]


@pytest.mark.parametrize("then", ["exit", "close"])
def test_a_row_whose_writer_exited_is_unknown_on_the_next_open(tmp_path, then):
    path = tmp_path / "l.sqlite3"
    _, payment_id = _writer(path, then)
    with Ledger(path) as led:
        row = led.payment(payment_id)
        assert row is not None and row["status"] == PaymentStatus.UNKNOWN
        assert "ended" in row["error"]
        assert led.spent("0xa", "eip155:84532") == 17_000  # still counted: it may have settled


@pytest.mark.parametrize("who", ["this test's own pid", "a live child's pid"])
def test_a_reused_pid_does_not_keep_a_dead_writers_row_pending(tmp_path, who):
    """The restarted-pod case: the row's PID is alive again, in a process that never wrote it."""
    path = tmp_path / "l.sqlite3"
    _, payment_id = _writer(path, "exit")
    with _live_process() as child:
        _set_pid(path, payment_id, os.getpid() if who.startswith("this") else child)
        assert _status(path, payment_id) == PaymentStatus.UNKNOWN


def test_a_live_writers_row_stays_pending_whatever_its_pid_says(tmp_path):
    path = tmp_path / "l.sqlite3"
    proc, payment_id = _writer(path, "hold")
    try:
        assert _status(path, payment_id) == PaymentStatus.PENDING
        # The writer is identified by the lock it holds, not its PID: a PID that looks dead
        # (another PID namespace sharing the volume) does not orphan a live writer's payment.
        _set_pid(path, payment_id, _dead_pid())
        with Ledger(path) as led:
            assert led.reconcile() == 0
            assert led.payment(payment_id)["status"] == PaymentStatus.PENDING  # type: ignore[index]
    finally:
        _release(proc)
    assert _status(path, payment_id) == PaymentStatus.UNKNOWN  # and once it has ended, it is orphaned


def test_rows_of_this_process_and_of_another_open_ledger_in_it_stay_pending(tmp_path):
    from tm402_nb.x402.recorder import PaymentRecord

    path = tmp_path / "l.sqlite3"
    with Ledger(path) as first:
        rec = PaymentRecord(17_000, "0xa", "eip155:84532", "0xb", "0xc", "0x1", 2**40)
        first.record_payment(rec)
        with Ledger(path) as second:  # same process, its own writer: the first still holds its lock
            assert second.payment(rec.id)["status"] == PaymentStatus.PENDING  # type: ignore[index]
        assert first.reconcile() == 0
    assert _status(path, rec.id) == PaymentStatus.UNKNOWN  # the first closed with it unanswered


def test_a_ledger_dropped_without_close_releases_its_rows(tmp_path):
    import gc

    from tm402_nb.x402.recorder import PaymentRecord

    path = tmp_path / "l.sqlite3"
    led = Ledger(path)
    rec = PaymentRecord(17_000, "0xa", "eip155:84532", "0xb", "0xc", "0x1", 2**40)
    led.record_payment(rec)
    del led
    gc.collect()
    assert _status(path, rec.id) == PaymentStatus.UNKNOWN  # nothing is left to answer it


def test_writer_lock_files_do_not_accumulate(tmp_path):
    path = tmp_path / "l.sqlite3"
    writers = Path(f"{path}-writers")
    with Ledger(path):
        assert len(list(writers.glob("*.lock"))) == 1  # this ledger's own
    assert list(writers.glob("*.lock")) == []  # removed on close
    _writer(path, "exit")  # a writer that died leaves its file behind...
    assert len(list(writers.glob("*.lock"))) == 1
    with Ledger(path):
        assert len(list(writers.glob("*.lock"))) == 1  # ...which the next open removes (this one is ours)
    assert list(writers.glob("*.lock")) == []


def test_without_file_locks_the_host_and_pid_decide(tmp_path, monkeypatch):
    """Where flock is unavailable (Windows), rows carry no writer and the old rule applies."""
    monkeypatch.setattr(ledger_store, "_fcntl", None)
    path = tmp_path / "l.sqlite3"
    with Ledger(path) as led:
        from tm402_nb.x402.recorder import PaymentRecord

        rec = PaymentRecord(17_000, "0xa", "eip155:84532", "0xb", "0xc", "0x1", 2**40)
        led.record_payment(rec)
        assert led.payment(rec.id)["writer"] is None  # type: ignore[index]
    assert not Path(f"{path}-writers").exists()
    assert _status(path, rec.id) == PaymentStatus.PENDING  # this pid is alive: pending, as before
    _set_pid(path, rec.id, _dead_pid())
    assert _status(path, rec.id) == PaymentStatus.UNKNOWN


def _v1_database(path: Path) -> None:
    """A ledger as tm402-nb wrote it at schema v1 (the v1 migration is history, kept verbatim)."""
    con = sqlite3.connect(path)
    con.executescript(ledger_store._MIGRATIONS[0])
    con.execute("PRAGMA user_version=1")
    con.commit()
    con.close()


def test_a_v1_ledger_upgrades_with_its_rows_intact(tmp_path):
    path = tmp_path / "v1.sqlite3"
    _v1_database(path)
    host = socket.gethostname()
    con = sqlite3.connect(path)
    cols = "id, created_at, updated_at, status, network, asset, decimals, amount, payer, nonce, valid_before, pid, host"
    with _live_process() as live:
        rows = [
            ("settled", 1.0, 1.0, "settled", "eip155:84532", "0xa", 6, "17000", "0xp", "0x1", 10, 1, host),
            ("failed", 2.0, 2.0, "failed", "eip155:84532", "0xa", 6, "34000", "0xp", "0x2", 10, 1, host),
            ("live", 3.0, 3.0, "pending", "eip155:84532", "0xa", 6, "51000", "0xp", "0x3", 2**40, live, host),
            (
                "dead",
                4.0,
                4.0,
                "pending",
                "eip155:84532",
                "0xa",
                18,
                str(10**30),
                "0xp",
                "0x4",
                2**40,
                _dead_pid(),
                host,
            ),
        ]
        with con:
            con.executemany(f"INSERT INTO payments ({cols}) VALUES ({','.join('?' * 13)})", rows)
            con.execute(
                "INSERT INTO calls (id, created_at, url, paid, payment_id) VALUES ('c', 1.0, 'u', 1, 'settled')"
            )
            con.execute(
                "INSERT INTO cache (key, scope, created_at, expires_at, status_code, body) VALUES ('k','s',1,2e10,200,x'7b7d')"
            )
        con.close()

        with Ledger(path) as led:
            assert led.schema_version == SCHEMA_VERSION >= 2
            got = {r["id"]: r for r in led.payment_rows()}
            assert list(got) == ["settled", "failed", "live", "dead"]
            for row in rows:
                assert got[row[0]]["amount"] == row[7] and got[row[0]]["nonce"] == row[9]
                assert got[row[0]]["writer"] is None  # written before writers were recorded
            # v1 rows keep the v1 rule (host + pid): a live pid stays pending, a dead one is orphaned.
            assert [got[i]["status"] for i in got] == ["settled", "failed", "pending", "unknown"]
            assert led.spent("0xa", "eip155:84532") == 17_000 + 51_000 + 10**30
            assert len(led.call_rows()) == 1 and led.cache_get("k", "s") == (200, b"{}", {})
