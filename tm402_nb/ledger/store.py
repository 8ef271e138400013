"""The ledger: every payment (write-ahead), every call, and the response cache, in SQLite.

Payments are written *before* the signed header leaves the machine (status
``pending``) and updated with the outcome afterwards (``settled``, ``failed``,
``unknown``). A row left ``pending`` by a process that died is turned into
``unknown`` on the next open and keeps counting against budgets: it may have
settled, and we never pretend otherwise.

WAL mode and ``BEGIN IMMEDIATE`` transactions make it safe for several kernels
to write at once; cross-process caps (the daily cap) are checked and the
pending row inserted inside one such transaction, so two processes cannot
both spend the last cent.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import threading
import time
import uuid
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal, Protocol

from ..errors import LedgerError
from ..money import to_display
from ..status import COUNTED, EXPIRY_MARGIN_SECONDS, PaymentStatus, may_settle_until
from .chaincheck import CHECKED_STATUSES, OPEN_STATUSES, RECEIPT_LOST, ChainCheck, NonceReader, check_payments

if TYPE_CHECKING:
    import pandas as pd  # loaded on first use: the ledger must stay cheap to import

_fcntl: ModuleType | None
try:
    import fcntl as _fcntl
except ImportError:  # Windows: no flock; rows fall back to the host + PID rule
    _fcntl = None

ENV_HOME = "TM402_HOME"
LEDGER_FILENAME = "ledger.sqlite3"

#: ``status IN (...)`` over the statuses that count as spent (``status.COUNTED``): a pending or
#: unknown payment may have settled, so it is counted until proven failed. Bound, never spliced.
_COUNTED = tuple(sorted(COUNTED))
# A refused (failed) payment whose authorization has not expired is reserved: whoever holds
# the signature can still settle it, so it counts until ``valid_before`` plus the margin.
_COUNTED_SQL = (
    f"(status IN ({','.join('?' * len(_COUNTED))}) OR (status = ? AND valid_before + {EXPIRY_MARGIN_SECONDS} > ?))"
)


def _counted_args(now: float) -> list[Any]:
    return [*_COUNTED, PaymentStatus.FAILED, now]


_MIGRATIONS: list[str] = [
    # v1. A migration is history: its CHECK spells the PaymentStatus values as they were then,
    # and a new status would need a new migration.
    """
    CREATE TABLE payments (
        id TEXT PRIMARY KEY,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending','settled','failed','unknown')),
        method TEXT,
        url TEXT,
        endpoint TEXT,
        x402_version INTEGER,
        scheme TEXT,
        network TEXT,
        asset TEXT,
        asset_symbol TEXT,
        decimals INTEGER,
        amount TEXT NOT NULL,
        pay_to TEXT,
        payer TEXT,
        nonce TEXT,
        valid_before INTEGER,
        tx TEXT,
        error TEXT,
        session_id TEXT,
        cell_id TEXT,
        pid INTEGER,
        host TEXT
    );
    CREATE INDEX payments_created ON payments(created_at);
    CREATE INDEX payments_status ON payments(status);
    CREATE TABLE calls (
        id TEXT PRIMARY KEY,
        created_at REAL NOT NULL,
        session_id TEXT,
        mode TEXT,
        method TEXT,
        url TEXT,
        endpoint TEXT,
        params TEXT,
        status_code INTEGER,
        bytes INTEGER,
        elapsed_ms REAL,
        cache_hit INTEGER NOT NULL DEFAULT 0,
        paid INTEGER NOT NULL DEFAULT 0,
        payment_id TEXT,
        cell_id TEXT,
        error TEXT
    );
    CREATE INDEX calls_created ON calls(created_at);
    CREATE TABLE cache (
        key TEXT PRIMARY KEY,
        scope TEXT NOT NULL,
        endpoint TEXT,
        created_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        status_code INTEGER NOT NULL,
        body BLOB NOT NULL,
        meta TEXT
    );
    CREATE INDEX cache_expires ON cache(expires_at);
    """,
    # v2. Who wrote a payment: the id of the writer lock its Ledger held (see _WriterLock).
    # Rows from v1 keep NULL and are judged by host + pid, as they were.
    """
    ALTER TABLE payments ADD COLUMN writer TEXT;
    """,
    # v3: what a receipt said that disagrees with what was signed (kept apart, never merged).
    """
    ALTER TABLE payments ADD COLUMN discrepancy TEXT;
    """,
    # v4: what a payment was worth in micro-dollars when signed (caps count every asset in USD).
    # Older rows keep NULL: a 6-decimal row counts at par, as it did.
    """
    ALTER TABLE payments ADD COLUMN usd TEXT;
    """,
    # v5: symbol → token id as a server said it, and when, so a symbol is looked up (and, where
    # the server charges for lookups, paid for) once a week at most, not once per session.
    """
    CREATE TABLE symbols (
        scope TEXT NOT NULL,
        symbol TEXT NOT NULL,
        token_id INTEGER NOT NULL,
        learned_at REAL NOT NULL,
        PRIMARY KEY (scope, symbol)
    );
    """,
    # v6: x402 as it stands in 2026. A broadcast settlement not yet confirmed is its own status
    # (``settlement_pending``), so the CHECK is rebuilt with the table. New columns: how the
    # transfer was authorised (``eip3009`` or ``permit2``; NULL rows are EIP-3009), the
    # payment-identifier sent with it, and for ``upto`` the amount actually settled (NULL: the
    # signed amount).
    """
    CREATE TABLE payments_v6 (
        id TEXT PRIMARY KEY,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        status TEXT NOT NULL
            CHECK (status IN ('pending','settled','failed','unknown','settlement_pending')),
        method TEXT,
        url TEXT,
        endpoint TEXT,
        x402_version INTEGER,
        scheme TEXT,
        network TEXT,
        asset TEXT,
        asset_symbol TEXT,
        decimals INTEGER,
        amount TEXT NOT NULL,
        pay_to TEXT,
        payer TEXT,
        nonce TEXT,
        valid_before INTEGER,
        tx TEXT,
        error TEXT,
        session_id TEXT,
        cell_id TEXT,
        pid INTEGER,
        host TEXT,
        writer TEXT,
        discrepancy TEXT,
        usd TEXT,
        transfer TEXT,
        identifier TEXT,
        settled_amount TEXT
    );
    INSERT INTO payments_v6 (id, created_at, updated_at, status, method, url, endpoint, x402_version, scheme, network, asset, asset_symbol, decimals, amount, pay_to, payer, nonce, valid_before, tx, error, session_id, cell_id, pid, host, writer, discrepancy, usd) SELECT id, created_at, updated_at, status, method, url, endpoint, x402_version, scheme, network, asset, asset_symbol, decimals, amount, pay_to, payer, nonce, valid_before, tx, error, session_id, cell_id, pid, host, writer, discrepancy, usd FROM payments;
    DROP TABLE payments;
    ALTER TABLE payments_v6 RENAME TO payments;
    CREATE INDEX payments_created ON payments(created_at);
    CREATE INDEX payments_status ON payments(status);
    CREATE INDEX payments_identifier ON payments(identifier);
    """,
]
SCHEMA_VERSION = len(_MIGRATIONS)


def default_home() -> Path:
    """``$TM402_HOME`` if set, else the platform's user data dir for tm402-nb."""
    env = os.environ.get(ENV_HOME)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("tm402-nb", appauthor=False))


def default_path() -> Path:
    return default_home() / LEDGER_FILENAME


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


_WRITER_ID = re.compile(r"[0-9a-f]{32}")
_WriterState = Literal["alive", "gone", "unknown"]


class _WriterLock:
    """The identity of one open Ledger as a writer: a lock file it holds while it is open.

    A ``pending`` row is orphaned when the Ledger that wrote it can no longer answer it.
    Host + PID cannot say so: after a restart (a JupyterHub pod, a container) the same
    hostname comes back and PID 7 is alive again in a process that never wrote the row,
    which then stayed pending forever. So each Ledger holds ``flock(LOCK_EX)`` on
    ``<ledger>-writers/<uuid>.lock`` for as long as it is open, and records the uuid in
    every row it writes; a row whose writer's lock someone else can take is orphaned.

    Why flock, over the process start time in ``/proc/<pid>/stat`` plus the boot id:
    the kernel itself releases the lock when its holder dies (kill -9 and OOM included),
    so there is no PID, clock or tick arithmetic to get wrong; it does not depend on PID
    namespaces (two containers sharing the volume each have a PID 7, and may share a
    hostname, yet see each other's locks); it works on macOS and the BSDs, which have no
    ``/proc``; and it is per open file, not per process (unlike ``fcntl``/``lockf`` record
    locks), so two Ledgers in one process, or a closed one, are told apart. Where flock is
    unavailable (Windows) or a filesystem refuses it, no writer is recorded and the host +
    PID rule applies, as it did before. Rows from other hosts are still judged by the clock
    alone: a network filesystem mounted without lock support keeps locks host-local, and
    another host's lock would then look free.

    The file is created under a temporary name, locked, then renamed into place, so a
    reconciler never sees an unlocked ``.lock`` of a live writer and deletes it.
    """

    def __init__(self, directory: Path, writer: str, fd: int) -> None:
        self.directory = directory
        self.id = writer
        self._fd: int | None = fd
        self._owner = os.getpid()

    @classmethod
    def acquire(cls, directory: Path) -> _WriterLock | None:
        """A new held writer lock in ``directory``, or None where locks are unavailable."""
        if _fcntl is None:
            return None
        writer = uuid.uuid4().hex
        tmp = directory / f"{writer}.tmp"
        fd = -1
        try:
            directory.mkdir(parents=True, exist_ok=True)
            # Readable by all: other users sharing the ledger probe the lock (flock needs only read access).
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)  # O_CLOEXEC: not inherited by exec'd children
            _fcntl.flock(fd, _fcntl.LOCK_EX | _fcntl.LOCK_NB)
            os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
            os.replace(tmp, directory / f"{writer}.lock")
        except OSError:  # read-only folder, a filesystem without locks: fall back, never fail the open
            if fd >= 0:
                os.close(fd)
            with suppress(OSError):
                tmp.unlink()
            return None
        return cls(directory, writer, fd)

    @staticmethod
    def release_if_held(lock: _WriterLock | None) -> None:
        if lock is not None:
            lock.release()

    def release(self) -> None:
        if self._fd is None:
            return
        # A forked child closing an inherited Ledger must not delete the parent's file.
        if os.getpid() == self._owner:
            with suppress(OSError):
                (self.directory / f"{self.id}.lock").unlink()
        os.close(self._fd)
        self._fd = None

    @staticmethod
    def state(directory: Path, writer: str) -> _WriterState:
        """Whether the Ledger that holds (held) ``writer``'s lock is still open.

        ``gone`` removes its file. ``unknown`` when this platform or filesystem cannot
        tell (the caller then falls back to host + PID).
        """
        if _fcntl is None or not _WRITER_ID.fullmatch(writer):
            return "unknown"
        return _probe(directory / f"{writer}.lock")

    @staticmethod
    def sweep(directory: Path, keep: str | None) -> None:
        """Remove the files of writers that are gone (a killed process leaves its file behind)."""
        if _fcntl is None:
            return
        try:
            # Not ``.tmp`` files: one may be a writer between creating and locking its file.
            names = [p for p in directory.iterdir() if p.suffix == ".lock" and p.stem != keep]
        except OSError:
            return
        for path in names:
            _probe(path)


def _probe(path: Path) -> _WriterState:
    """Try the lock on ``path``: taken by someone (``alive``), free or missing (``gone``, file removed)."""
    assert _fcntl is not None
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return "gone"  # its Ledger closed (or a reconciler already found it gone)
    except OSError:
        return "unknown"
    try:
        try:
            _fcntl.flock(fd, _fcntl.LOCK_EX | _fcntl.LOCK_NB)
        except BlockingIOError:
            return "alive"
        except OSError:  # e.g. ENOLCK: this filesystem cannot tell
            return "unknown"
        with suppress(OSError):
            path.unlink()  # under our lock: its writer is gone for good
        return "gone"
    finally:
        os.close(fd)


class PaymentRow(Protocol):
    """A payment as the ledger stores it: any object with these attributes.

    The x402 layer's ``PaymentRecord`` is the one the toolkit writes; the ledger
    names only the attributes it reads, so it imports nothing from x402.
    ``amount`` is in atomic units of ``asset``.
    """

    id: str
    created_at: float
    status: PaymentStatus
    method: str
    url: str
    endpoint: str | None
    x402_version: int
    scheme: str
    network: str
    asset: str
    asset_symbol: str
    decimals: int
    amount: int
    pay_to: str
    payer: str
    nonce: str
    valid_before: int
    tx: str | None
    error: str | None
    session_id: str | None
    cell_id: str | None
    #: Micro-dollars the payment was worth when signed (None: unknown).
    usd: int | None
    #: How the transfer was authorised: ``eip3009`` or ``permit2``.
    transfer: str
    #: The x402 ``payment-identifier`` sent with it (None: the server did not advertise it).
    identifier: str | None


@dataclass
class CallRecord:
    """One request the toolkit made or served from cache."""

    url: str
    method: str = "GET"
    endpoint: str | None = None
    params: dict[str, Any] | None = None
    status_code: int | None = None
    bytes: int = 0
    elapsed_ms: float = 0.0
    cache_hit: bool = False
    paid: bool = False
    payment_id: str | None = None
    session_id: str | None = None
    mode: str | None = None
    cell_id: str | None = None
    error: str | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created_at: float = field(default_factory=time.time)


class LedgerTransaction:
    """An open ``BEGIN IMMEDIATE`` transaction: reads see a stable total, writes are atomic."""

    def __init__(self, ledger: Ledger, conn: sqlite3.Connection) -> None:
        self._ledger = ledger
        self._conn = conn

    def spent(self, asset: str, network: str, *, since: float | None = None, payer: str | None = None) -> int:
        return self._ledger._spent(self._conn, asset, network, since=since, payer=payer)

    def spent_usd(self, *, since: float | None = None) -> int:
        return self._ledger._spent_usd(self._conn, since=since)

    def insert_payment(self, record: PaymentRow) -> str:
        self._ledger._insert_payment(self._conn, record)
        return record.id


class Ledger:
    """Payments, calls and cache in one SQLite file.

    >>> import tempfile, os
    >>> led = Ledger(os.path.join(tempfile.mkdtemp(), "l.sqlite3"))
    >>> led.payments().empty
    True
    """

    def __init__(
        self, path: str | os.PathLike[str] | None = None, *, reconcile: bool = True, timeout: float = 30.0
    ) -> None:
        self.path = Path(path) if path is not None else default_path()
        self._lock = threading.RLock()
        self._pid = os.getpid()
        self._host = socket.gethostname()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(str(self.path), timeout=timeout, isolation_level=None, check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
            self._migrate()
        except sqlite3.Error as exc:
            raise LedgerError(
                f"cannot open the ledger at {self.path.name}: {exc}", hint=f"set ${ENV_HOME} to a writable folder"
            ) from None
        #: Where reconcile_chain and resolve_open check nonces (the session wires a ChainReader in).
        self.chain: NonceReader | None = None
        self._chain_networks: tuple[str, ...] = ()
        self._chain_session: str | None = None
        self._writers = self.path.with_name(self.path.name + "-writers")
        self._writer = _WriterLock.acquire(self._writers)
        # A Ledger dropped without close() releases its lock when collected, or at exit: its
        # pending rows can no longer be answered, so they must not look alive until the process ends.
        self._release_writer = weakref.finalize(self, _WriterLock.release_if_held, self._writer)
        if reconcile:
            try:
                self.reconcile()
            except BaseException:
                self.close()
                raise

    # -- schema ----------------------------------------------------------------
    def _migrate(self) -> None:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                version = self._conn.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise LedgerError(
                        f"the ledger {self.path.name} has schema v{version}, newer than this tm402-nb (v{SCHEMA_VERSION})",
                        hint="upgrade tm402-nb, or point $TM402_HOME elsewhere",
                    )
                for v in range(version, SCHEMA_VERSION):
                    for statement in _MIGRATIONS[v].split(";"):
                        if statement.strip():
                            self._conn.execute(statement)
                self._conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    @property
    def schema_version(self) -> int:
        with self._lock:
            return self._conn.execute("PRAGMA user_version").fetchone()[0]

    # -- transactions ------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[LedgerTransaction]:
        """``BEGIN IMMEDIATE`` … ``COMMIT``: other writers wait, readers see the old state."""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise LedgerError(f"the ledger is locked or unwritable: {exc}") from None
            try:
                yield LedgerTransaction(self, self._conn)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")

    # -- payments ------------------------------------------------------------------
    def _insert_payment(self, conn: sqlite3.Connection, r: PaymentRow) -> None:
        now = time.time()
        conn.execute(
            """INSERT INTO payments (id, created_at, updated_at, status, method, url, endpoint, x402_version,
               scheme, network, asset, asset_symbol, decimals, amount, pay_to, payer, nonce, valid_before, tx,
               error, session_id, cell_id, pid, host, writer, usd, transfer, identifier)
               VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)""",
            (
                r.id,
                r.created_at,
                now,
                r.status,
                r.method,
                r.url,
                r.endpoint,
                r.x402_version,
                r.scheme,
                r.network,
                r.asset.lower(),
                r.asset_symbol,
                r.decimals,
                str(int(r.amount)),
                r.pay_to,
                r.payer,
                r.nonce,
                r.valid_before,
                r.tx,
                r.error,
                r.session_id,
                r.cell_id,
                self._pid,
                self._host,
                self._writer.id if self._writer else None,
                None if r.usd is None else str(int(r.usd)),
                r.transfer,
                r.identifier,
            ),
        )

    def record_payment(self, record: PaymentRow) -> str:
        """Insert a payment row outside a caller-held transaction."""
        with self.transaction() as tx:
            tx.insert_payment(record)
        return record.id

    def update_payment(
        self,
        payment_id: str,
        status: PaymentStatus | str,
        *,
        tx: str | None = None,
        error: str | None = None,
        discrepancy: str | None = None,
        settled_amount: int | None = None,
    ) -> None:
        """Record an outcome. What was signed (payer, amount, network...) is never rewritten:
        a receipt that disagrees lands in ``discrepancy``, beside it. ``settled_amount`` is what
        an ``upto`` payment actually moved (at most the signed ceiling); spend counts it."""
        try:
            status = PaymentStatus(status)
        except ValueError:
            raise ValueError(f"unknown payment status {status!r}") from None
        with self._lock:
            self._conn.execute(
                """UPDATE payments SET status=?, updated_at=?, tx=COALESCE(?, tx), error=?,
                   discrepancy=COALESCE(?, discrepancy), settled_amount=COALESCE(?, settled_amount) WHERE id=?""",
                (
                    status,
                    time.time(),
                    tx,
                    error,
                    discrepancy,
                    None if settled_amount is None else str(int(settled_amount)),
                    payment_id,
                ),
            )

    def _spent(
        self, conn: sqlite3.Connection, asset: str, network: str, *, since: float | None, payer: str | None
    ) -> int:
        # An upto payment counts what it settled once known, its signed ceiling until then; one
        # settled at 0 left its permit unused, so it counts the ceiling until that can expire.
        sql = (
            f"SELECT CASE WHEN settled_amount = '0' AND valid_before + {EXPIRY_MARGIN_SECONDS} > ? THEN amount "
            f"ELSE COALESCE(settled_amount, amount) END FROM payments WHERE asset=? AND network=? AND {_COUNTED_SQL}"
        )
        now = time.time()
        args: list[Any] = [now, asset.lower(), network, *_counted_args(now)]
        if since is not None:
            sql += " AND created_at >= ?"
            args.append(since)
        if payer is not None:
            sql += " AND payer = ?"
            args.append(payer)
        return sum(int(row[0]) for row in conn.execute(sql, args))

    def _spent_usd(self, conn: sqlite3.Connection, *, since: float | None) -> int:
        sql = f"SELECT usd, amount, decimals, settled_amount, valid_before FROM payments WHERE {_COUNTED_SQL}"
        now = time.time()
        args: list[Any] = _counted_args(now)
        if since is not None:
            sql += " AND created_at >= ?"
            args.append(since)
        total = 0
        for usd, amount, decimals, settled, valid_before in conn.execute(sql, args):
            if settled is not None and int(settled) == 0 and may_settle_until(valid_before or 0) > now:
                settled = None  # an upto settled at 0: its unused permit can still settle the ceiling
            if usd is not None:
                # An upto payment that settled less than its ceiling is worth that share of it.
                total += int(usd) if settled is None or not int(amount) else -(-int(usd) * int(settled) // int(amount))
            elif decimals == 6:  # a row from before v4: a 6-decimal stablecoin, counted at par
                total += int(amount)
        return total

    def spent_usd(self, *, since: float | None = None) -> int:
        """Micro-dollars counted since ``since`` across assets (what a USD daily cap reads)."""
        with self._lock:
            return self._spent_usd(self._conn, since=since)

    def spent(self, asset: str, network: str, *, since: float | None = None, payer: str | None = None) -> int:
        """Atomic units of ``asset`` counted since ``since``: pending, settled or unknown, and
        refused ones whose authorization could still settle (reserved)."""
        with self._lock:
            return self._spent(self._conn, asset, network, since=since, payer=payer)

    def payment(self, payment_id: str) -> dict[str, Any] | None:
        rows = self._query("SELECT * FROM payments WHERE id=?", (payment_id,))
        return rows[0] if rows else None

    def reconcile(self) -> int:
        """Turn ``pending`` rows whose writer is gone into ``unknown``; returns how many.

        Such a payment was signed and maybe sent; it may have settled. It keeps
        counting against budgets, and shows up as ``unknown`` for the user to check.
        """
        now = time.time()
        changed = 0
        with self.transaction():
            rows = self._conn.execute(
                "SELECT id, pid, host, valid_before, writer FROM payments WHERE status=?", (PaymentStatus.PENDING,)
            ).fetchall()
            for pid_id, pid, host, valid_before, writer in rows:
                if self._orphaned(pid, host, valid_before, writer, now):
                    self._conn.execute(
                        "UPDATE payments SET status=?, updated_at=?, error=? WHERE id=?",
                        (
                            PaymentStatus.UNKNOWN,
                            now,
                            "the process that sent this payment ended before its answer arrived",
                            pid_id,
                        ),
                    )
                    changed += 1
        _WriterLock.sweep(self._writers, self._writer.id if self._writer else None)
        return changed

    def _orphaned(
        self, pid: int | None, host: str | None, valid_before: int | None, writer: str | None, now: float
    ) -> bool:
        if host != self._host:  # another machine sharing the file: only trust the clock (see _WriterLock)
            return valid_before is not None and valid_before + 60 < now
        if writer is not None:
            if self._writer is not None and writer == self._writer.id:
                return False  # ours, and we are open
            state = _WriterLock.state(self._writers, writer)
            if state != "unknown":
                return state == "gone"
        # A v1 row, a row written where locks were unavailable, or a lock this filesystem cannot
        # check: host + PID, which a reused PID can fool (the reason rows now carry a writer).
        return pid != self._pid and not _pid_alive(int(pid or 0))

    # -- calls ------------------------------------------------------------------------
    def record_call(self, c: CallRecord) -> str:
        with self._lock:
            self._conn.execute(
                """INSERT INTO calls (id, created_at, session_id, mode, method, url, endpoint, params, status_code,
                   bytes, elapsed_ms, cache_hit, paid, payment_id, cell_id, error)
                   VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)""",
                (
                    c.id,
                    c.created_at,
                    c.session_id,
                    c.mode,
                    c.method,
                    c.url,
                    c.endpoint,
                    json.dumps(c.params, sort_keys=True, default=str) if c.params is not None else None,
                    c.status_code,
                    c.bytes,
                    c.elapsed_ms,
                    int(c.cache_hit),
                    int(c.paid),
                    c.payment_id,
                    c.cell_id,
                    c.error,
                ),
            )
        return c.id

    # -- cache --------------------------------------------------------------------------
    def cache_get(self, key: str, scope: str, *, now: float | None = None) -> tuple[int, bytes, dict[str, Any]] | None:
        """A fresh cached response ``(status, body, meta)`` for ``key`` in ``scope``, else None."""
        now = time.time() if now is None else now
        with self._lock:
            row = self._conn.execute(
                "SELECT status_code, body, meta FROM cache WHERE key=? AND scope=? AND expires_at > ?",
                (key, scope, now),
            ).fetchone()
        if row is None:
            return None
        return int(row[0]), bytes(row[1]), json.loads(row[2]) if row[2] else {}

    def cache_put(
        self,
        key: str,
        scope: str,
        body: bytes,
        *,
        ttl: float,
        status_code: int = 200,
        endpoint: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        now = time.time()
        with self._lock:
            self._conn.execute(
                """INSERT OR REPLACE INTO cache (key, scope, endpoint, created_at, expires_at, status_code, body, meta)
                   VALUES (?,?,?,?,?,?,?,?)""",
                (key, scope, endpoint, now, now + ttl, status_code, body, json.dumps(meta or {})),
            )

    # -- symbols ------------------------------------------------------------------------------
    def symbols_get(
        self, scope: str, symbols: Sequence[str], *, max_age: float, now: float | None = None
    ) -> dict[str, int]:
        """Symbol → token id for those of ``symbols`` learned in ``scope`` less than ``max_age`` seconds ago."""
        if not symbols:
            return {}
        since = (time.time() if now is None else now) - max_age
        found: dict[str, int] = {}
        wanted = list(dict.fromkeys(symbols))
        with self._lock:
            for i in range(0, len(wanted), 500):  # SQLite's bound on host parameters
                chunk = wanted[i : i + 500]
                rows = self._conn.execute(
                    f"SELECT symbol, token_id FROM symbols WHERE scope=? AND learned_at > ? "
                    f"AND symbol IN ({','.join('?' * len(chunk))})",
                    (scope, since, *chunk),
                ).fetchall()
                found.update({str(sym): int(tid) for sym, tid in rows})
        return found

    def symbols_put(self, scope: str, ids: Mapping[str, int], *, now: float | None = None) -> None:
        """Remember ``ids`` (symbol → token id) as learned in ``scope`` now."""
        if not ids:
            return
        learned = time.time() if now is None else now
        with self._lock:
            self._conn.executemany(
                "INSERT OR REPLACE INTO symbols (scope, symbol, token_id, learned_at) VALUES (?,?,?,?)",
                [(scope, sym, int(tid), learned) for sym, tid in ids.items()],
            )

    # -- reading ------------------------------------------------------------------------------
    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._lock:
            cur = self._conn.execute(sql, args)
            cols = [d[0] for d in cur.description]
            return [dict(zip(cols, row, strict=False)) for row in cur.fetchall()]

    def payment_rows(
        self, *, session_id: str | None = None, status: str | None = None, since: float | None = None
    ) -> list[dict[str, Any]]:
        """Payments, oldest first; of one session, one status, and from ``since`` (epoch s) on, when given."""
        sql, args = "SELECT * FROM payments WHERE 1=1", list[Any]()
        if session_id is not None:
            sql += " AND session_id=?"
            args.append(session_id)
        if status is not None:
            sql += " AND status=?"
            args.append(status)
        if since is not None:
            sql += " AND created_at >= ?"
            args.append(since)
        return self._query(sql + " ORDER BY created_at, rowid", args)

    def call_rows(self, *, session_id: str | None = None, since: float | None = None) -> list[dict[str, Any]]:
        """Calls, oldest first; of one session and from ``since`` (epoch s) on, when given."""
        sql, args = "SELECT * FROM calls WHERE 1=1", list[Any]()
        if session_id is not None:
            sql += " AND session_id=?"
            args.append(session_id)
        if since is not None:
            sql += " AND created_at >= ?"
            args.append(since)
        return self._query(sql + " ORDER BY created_at, rowid", args)

    def session_modes(self) -> dict[str, str]:
        """Each session id the calls name, with its mode (``sandbox``, ``x402``, ``api-key``).

        Payments carry no mode of their own; their session's calls say which it was.
        """
        with self._lock:
            found = self._conn.execute(
                "SELECT session_id, mode FROM calls WHERE session_id IS NOT NULL AND mode IS NOT NULL "
                "GROUP BY session_id, mode"
            ).fetchall()
        return dict(found)

    def payments(
        self, *, session_id: str | None = None, status: str | None = None, since: float | None = None
    ) -> pd.DataFrame:
        """Every payment as a DataFrame; ``amount`` in display units, ``amount_atomic`` exact.

        An ``upto`` payment's ``amount`` is its signed ceiling and ``settled`` (display units) what
        its receipt says moved, NaN when unknown; spending totals count ``settled`` where it is known."""
        import pandas as pd

        rows = self.payment_rows(session_id=session_id, status=status, since=since)
        cols = [
            "id",
            "created_at",
            "status",
            "endpoint",
            "method",
            "url",
            "network",
            "asset_symbol",
            "amount",
            "amount_atomic",
            "scheme",
            "settled",
            "asset",
            "pay_to",
            "payer",
            "tx",
            "error",
            "discrepancy",
            "reserved",
            "nonce",
            "valid_before",
            "x402_version",
            "session_id",
            "cell_id",
            "transfer",
            "identifier",
        ]
        if not rows:
            frame = pd.DataFrame({c: pd.Series(dtype="object") for c in cols})
            frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
            frame["amount"] = frame["amount"].astype("float64")
            frame["settled"] = frame["settled"].astype("float64")
            return frame
        now = time.time()
        for r in rows:
            # Refused, but its authorization can still settle: counted apart from what was spent.
            r["reserved"] = r["status"] == PaymentStatus.FAILED and may_settle_until(r["valid_before"] or 0) > now
            r["amount_atomic"] = int(r["amount"])
            r["amount"] = float(to_display(int(r["amount"]), int(r["decimals"] or 0)))
            settled = r.get("settled_amount")
            r["settled"] = float("nan") if settled is None else float(to_display(int(settled), int(r["decimals"] or 0)))
        frame = pd.DataFrame(rows)[cols]
        frame["created_at"] = pd.to_datetime(frame["created_at"], unit="s", utc=True)
        return frame

    frame = payments

    def calls(self, *, session_id: str | None = None, since: float | None = None) -> pd.DataFrame:
        """Every call (paid, free or cached) as a DataFrame."""
        import pandas as pd

        rows = self.call_rows(session_id=session_id, since=since)
        cols = [
            "id",
            "created_at",
            "endpoint",
            "method",
            "url",
            "params",
            "status_code",
            "bytes",
            "elapsed_ms",
            "cache_hit",
            "paid",
            "payment_id",
            "mode",
            "session_id",
            "cell_id",
            "error",
        ]
        frame = pd.DataFrame(rows, columns=cols)
        frame["created_at"] = pd.to_datetime(frame["created_at"], unit="s", utc=True)
        frame["cache_hit"] = frame["cache_hit"].astype(bool)
        frame["paid"] = frame["paid"].astype(bool)
        return frame

    # -- the chain ------------------------------------------------------------------------------
    def attach_chain(
        self, reader: NonceReader | None, *, networks: Sequence[str] = (), session_id: str | None = None
    ) -> None:
        """Where :meth:`reconcile_chain` and :meth:`resolve_open` ask by default.

        ``networks``: the names of the chain ``reader`` reads (rows on another network are not
        checked). ``session_id``: only that session's rows can be on it (a sandbox chain lives
        as long as its session; rows of earlier sandboxes are not checked against a new one).
        """
        self.chain = reader
        self._chain_networks = tuple(networks)
        self._chain_session = session_id

    def _chain_checks(
        self, statuses: Sequence[str], reader: NonceReader | None, session_id: str | None, now: float | None
    ) -> list[ChainCheck]:
        explicit = reader is not None
        reader = reader if explicit else self.chain
        rows = [r for r in self.payment_rows(session_id=session_id) if r["status"] in statuses]
        skip: dict[str, str] = {}
        if not explicit:
            for r in rows:
                if self._chain_networks and r["network"] not in self._chain_networks:
                    skip[r["id"]] = f"on {r['network']}; this session's RPC reads {self._chain_networks[0]}"
                elif self._chain_session is not None and r["session_id"] != self._chain_session:
                    skip[r["id"]] = "paid to an earlier sandbox, whose chain is gone with it"
        ids = [r["id"] for r in rows]
        calls: dict[str, list[Mapping[str, Any]]] = {}
        for i in range(0, len(ids), 500):  # SQLite's bound on host parameters
            chunk = ids[i : i + 500]
            for c in self._query(
                f"SELECT payment_id, status_code FROM calls WHERE payment_id IN ({','.join('?' * len(chunk))})", chunk
            ):
                calls.setdefault(c["payment_id"], []).append(c)
        return check_payments(rows, reader, calls_by_payment=calls, now=now, skip=skip)

    def _apply(self, checks: list[ChainCheck]) -> None:
        for c in checks:
            if c.new_status == PaymentStatus.SETTLED:
                self.update_payment(c.id, c.new_status, error=f"executed on chain (checked by nonce); {RECEIPT_LOST}")
            elif c.new_status is not None:
                self.update_payment(c.id, c.new_status, error="expired unexecuted (checked on chain)")

    def resolve_open(
        self, reader: NonceReader | None = None, *, session_id: str | None = None, now: float | None = None
    ) -> list[ChainCheck]:
        """Decide every ``unknown`` and ``settlement_pending`` payment from the chain, and record it.

        A used nonce makes the row ``settled``; an unused one whose authorization has expired
        makes it ``failed`` (it can never settle); one that can still settle stays as it is.
        ``reader`` defaults to the chain the session attached; ``session_id`` limits the rows.
        """
        checks = self._chain_checks(OPEN_STATUSES, reader, session_id, now)
        self._apply(checks)
        return checks

    def reconcile_chain(
        self,
        reader: NonceReader | None = None,
        *,
        update: bool = False,
        session_id: str | None = None,
        now: float | None = None,
    ) -> pd.DataFrame:
        """Check every settled, unknown and settlement_pending payment against the chain by its nonce.

        One row per payment with a ``verdict``: ``settled``; ``never settled`` (nonce unused and
        expired, whatever the row says); ``settled but not delivered`` (nonce used, but the call
        that paid got no data: evidence for a refund); ``not settled yet`` (unused, can still
        settle); ``unchecked`` (no chain, another network, or the node failed: ``detail`` says).
        The evidence columns follow: tx, nonce, payer, pay_to, asset, amount, network, endpoint,
        url, when.

        Read-only unless ``update=True``: then open rows are recorded as the chain decided them
        (``settled``, or ``failed`` once expired unexecuted); a settled row is never rewritten.
        """
        import pandas as pd

        checks = self._chain_checks(CHECKED_STATUSES, reader, session_id, now)
        if update:
            self._apply(checks)
        cols = [
            "id",
            "verdict",
            "status",
            "nonce_used",
            "delivered",
            "detail",
            "tx",
            "nonce",
            "transfer",
            "payer",
            "pay_to",
            "asset",
            "asset_symbol",
            "amount",
            "amount_atomic",
            "network",
            "endpoint",
            "url",
            "identifier",
            "when",
            "valid_before",
        ]
        out = []
        for c in checks:
            r = c.row
            out.append(
                {
                    "id": r["id"],
                    "verdict": c.verdict,
                    "status": r["status"],
                    "nonce_used": c.used,
                    "delivered": c.delivered,
                    "detail": c.detail,
                    "tx": r["tx"],
                    "nonce": r["nonce"],
                    "transfer": r.get("transfer") or "eip3009",
                    "payer": r["payer"],
                    "pay_to": r["pay_to"],
                    "asset": r["asset"],
                    "asset_symbol": r["asset_symbol"],
                    "amount": float(to_display(int(r["amount"]), int(r["decimals"] or 0))),
                    "amount_atomic": int(r["amount"]),
                    "network": r["network"],
                    "endpoint": r["endpoint"],
                    "url": r["url"],
                    "identifier": r.get("identifier"),
                    "when": r["created_at"],
                    "valid_before": r["valid_before"],
                }
            )
        frame = pd.DataFrame(out, columns=cols)
        frame["when"] = pd.to_datetime(frame["when"], unit="s", utc=True)
        return frame

    # -- lifecycle ----------------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            with suppress(sqlite3.Error):
                self._conn.close()
            # After the connection: a pending row of ours is orphaned from now on, not before.
            self._release_writer()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Ledger({self.path})"
