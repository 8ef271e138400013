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
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import LedgerError
from ..money import to_display
from ..status import COUNTED, EXPIRY_MARGIN_SECONDS, PaymentStatus

if TYPE_CHECKING:
    import pandas as pd  # loaded on first use: the ledger must stay cheap to import

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
    # v2: what a receipt said that disagrees with what was signed (kept apart, never merged).
    """
    ALTER TABLE payments ADD COLUMN discrepancy TEXT;
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
        if reconcile:
            self.reconcile()

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
               error, session_id, cell_id, pid, host)
               VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)""",
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
    ) -> None:
        """Record an outcome. What was signed (payer, amount, network...) is never rewritten:
        a receipt that disagrees lands in ``discrepancy``, beside it."""
        try:
            status = PaymentStatus(status)
        except ValueError:
            raise ValueError(f"unknown payment status {status!r}") from None
        with self._lock:
            self._conn.execute(
                """UPDATE payments SET status=?, updated_at=?, tx=COALESCE(?, tx), error=?,
                   discrepancy=COALESCE(?, discrepancy) WHERE id=?""",
                (status, time.time(), tx, error, discrepancy, payment_id),
            )

    def _spent(
        self, conn: sqlite3.Connection, asset: str, network: str, *, since: float | None, payer: str | None
    ) -> int:
        sql = f"SELECT amount FROM payments WHERE asset=? AND network=? AND {_COUNTED_SQL}"
        args: list[Any] = [asset.lower(), network, *_counted_args(time.time())]
        if since is not None:
            sql += " AND created_at >= ?"
            args.append(since)
        if payer is not None:
            sql += " AND payer = ?"
            args.append(payer)
        return sum(int(row[0]) for row in conn.execute(sql, args))

    def spent(self, asset: str, network: str, *, since: float | None = None, payer: str | None = None) -> int:
        """Atomic units of ``asset`` counted since ``since``: pending, settled or unknown, and
        refused ones whose authorization could still settle (reserved)."""
        with self._lock:
            return self._spent(self._conn, asset, network, since=since, payer=payer)

    def payment(self, payment_id: str) -> dict[str, Any] | None:
        rows = self._query("SELECT * FROM payments WHERE id=?", (payment_id,))
        return rows[0] if rows else None

    def reconcile(self) -> int:
        """Turn ``pending`` rows whose process is gone into ``unknown``; returns how many.

        Such a payment was signed and maybe sent; it may have settled. It keeps
        counting against budgets, and shows up as ``unknown`` for the user to check.
        """
        now = time.time()
        changed = 0
        with self.transaction():
            rows = self._conn.execute(
                "SELECT id, pid, host, valid_before FROM payments WHERE status=?", (PaymentStatus.PENDING,)
            ).fetchall()
            for pid_id, pid, host, valid_before in rows:
                if host == self._host:
                    orphan = pid != self._pid and not _pid_alive(int(pid or 0))
                else:  # another machine sharing the file: only trust the clock
                    orphan = valid_before is not None and valid_before + 60 < now
                if orphan:
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
        return changed

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

    # -- reading ------------------------------------------------------------------------------
    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._lock:
            cur = self._conn.execute(sql, args)
            cols = [d[0] for d in cur.description]
            return [dict(zip(cols, row, strict=False)) for row in cur.fetchall()]

    def payment_rows(self, *, session_id: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
        sql, args = "SELECT * FROM payments WHERE 1=1", []
        if session_id is not None:
            sql += " AND session_id=?"
            args.append(session_id)
        if status is not None:
            sql += " AND status=?"
            args.append(status)
        return self._query(sql + " ORDER BY created_at, rowid", args)

    def call_rows(self, *, session_id: str | None = None) -> list[dict[str, Any]]:
        sql, args = "SELECT * FROM calls", []
        if session_id is not None:
            sql += " WHERE session_id=?"
            args.append(session_id)
        return self._query(sql + " ORDER BY created_at, rowid", args)

    def payments(self, *, session_id: str | None = None, status: str | None = None) -> pd.DataFrame:
        """Every payment as a DataFrame; ``amount`` in display units, ``amount_atomic`` exact."""
        import pandas as pd

        rows = self.payment_rows(session_id=session_id, status=status)
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
        ]
        if not rows:
            frame = pd.DataFrame({c: pd.Series(dtype="object") for c in cols})
            frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
            frame["amount"] = frame["amount"].astype("float64")
            return frame
        now = time.time()
        for r in rows:
            # Refused, but its authorization can still settle: counted apart from what was spent.
            r["reserved"] = (
                r["status"] == PaymentStatus.FAILED and (r["valid_before"] or 0) + EXPIRY_MARGIN_SECONDS > now
            )
            r["amount_atomic"] = int(r["amount"])
            r["amount"] = float(to_display(int(r["amount"]), int(r["decimals"] or 0)))
        frame = pd.DataFrame(rows)[cols]
        frame["created_at"] = pd.to_datetime(frame["created_at"], unit="s", utc=True)
        return frame

    frame = payments

    def calls(self, *, session_id: str | None = None) -> pd.DataFrame:
        """Every call (paid, free or cached) as a DataFrame."""
        import pandas as pd

        rows = self.call_rows(session_id=session_id)
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

    # -- lifecycle ----------------------------------------------------------------------------
    def close(self) -> None:
        with self._lock, suppress(sqlite3.Error):
            self._conn.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Ledger({self.path})"
