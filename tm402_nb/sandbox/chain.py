"""The sandbox's pretend chain: token balances, allowances, nonces and settlements, in SQLite.

It stands in for the token contracts' storage (``balanceOf``, ``allowance``,
``authorizationState``, ``transferWithAuthorization``), Permit2's nonce bitmap, native ETH
balances (under :data:`NATIVE`) and the one kind of transaction a wallet sends it: an
ERC-20 ``approve`` (its sender's nonce, the gas it burned, its receipt).
Permit2 nonces live in the same ``nonces`` table as EIP-3009 ones, under the Permit2
contract's address (they are per owner, not per token), as 0x + 64 hex digits. Amounts are integers in atomic units, stored
as decimal text (18-decimal balances overflow SQLite's 64-bit integers).

Nonces are reserved atomically when a payment is verified, so that of many
parallel requests carrying the same payment exactly one gets past verification;
the reservation turns into "used" at settlement, or is released when the paid
handler fails. Every write is one ``BEGIN IMMEDIATE`` transaction, so two
processes sharing one database file cannot double-spend either.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import UTC, datetime
from typing import Any

from ..x402.permit2 import PERMIT2_ADDRESS
from ..x402.wallet import to_checksum

_SCHEMA = """
CREATE TABLE IF NOT EXISTS balances (
    asset   TEXT NOT NULL,
    address TEXT NOT NULL,
    amount  TEXT NOT NULL,
    PRIMARY KEY (asset, address)
);
CREATE TABLE IF NOT EXISTS nonces (
    asset   TEXT NOT NULL,
    payer   TEXT NOT NULL,
    nonce   TEXT NOT NULL,
    state   TEXT NOT NULL CHECK (state IN ('reserved', 'used')),
    at      REAL NOT NULL,
    PRIMARY KEY (asset, payer, nonce)
);
CREATE TABLE IF NOT EXISTS settlements (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    tx           TEXT NOT NULL UNIQUE,
    network      TEXT NOT NULL,
    asset        TEXT NOT NULL,
    payer        TEXT NOT NULL,
    pay_to       TEXT NOT NULL,
    amount       TEXT NOT NULL,
    nonce        TEXT NOT NULL,
    path         TEXT,
    x402_version INTEGER,
    block        INTEGER NOT NULL,
    at           REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS allowances (
    asset   TEXT NOT NULL,
    owner   TEXT NOT NULL,
    spender TEXT NOT NULL,
    amount  TEXT NOT NULL,
    PRIMARY KEY (asset, owner, spender)
);
CREATE TABLE IF NOT EXISTS mempool (
    tx           TEXT PRIMARY KEY,
    network      TEXT NOT NULL,
    asset        TEXT NOT NULL,
    payer        TEXT NOT NULL,
    pay_to       TEXT NOT NULL,
    amount       TEXT NOT NULL,
    nonce        TEXT NOT NULL,
    valid_before INTEGER NOT NULL,
    path         TEXT,
    x402_version INTEGER,
    reads_left   INTEGER NOT NULL,
    at           REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
-- Transactions a wallet sent (approvals), mined at once.
CREATE TABLE IF NOT EXISTS transactions (
    hash      TEXT PRIMARY KEY,
    sender    TEXT NOT NULL,
    nonce     INTEGER NOT NULL,
    target    TEXT NOT NULL,
    spender   TEXT NOT NULL,
    amount    TEXT NOT NULL,
    gas_used  INTEGER NOT NULL,
    gas_price TEXT NOT NULL,
    block     INTEGER NOT NULL,
    at        REAL NOT NULL,
    UNIQUE (sender, nonce)
);
"""

#: Where native ETH balances are kept in ``balances`` (the usual "native token" pseudo-address).
NATIVE = "0xeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"

#: The sandbox chain's first block number (a Base-like height).
GENESIS_BLOCK = 20_000_000
#: Reservations older than this at start-up are from a crashed server and are dropped.
STALE_RESERVATION_S = 600
#: Gas a sponsored ``approve`` is recorded as using (as the JSON-RPC's mined approvals). A real
#: facilitator funds the payer's account with that gas before it broadcasts the payer's signed
#: transaction; here it is simply not charged to the payer.
SPONSORED_APPROVE_GAS = 46_000


class Chain:
    def __init__(self, path: str) -> None:
        self.path = path
        #: Addresses the token refuses to move funds from or to (USDC's Blacklistable), lower-case.
        self.blacklist: set[str] = set()
        #: Tokens (address, lower-case) whose transfers are paused (USDC's Pausable).
        self.paused: dict[str, bool] = {}
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=10000")
        with self._lock:
            self._db.executescript(_SCHEMA)
            # A reservation lives as long as one request; an old one is left over from a crash.
            # (Recent ones may belong to another process sharing this file, so they stay.)
            self._db.execute(
                "DELETE FROM nonces WHERE state = 'reserved' AND at < ?", (time.time() - STALE_RESERVATION_S,)
            )
        self._closed = False

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._db.close()

    # -- transactions ----------------------------------------------------------------------
    def _tx(self) -> _Tx:
        return _Tx(self)

    def _check(self) -> None:
        if self._closed:
            raise RuntimeError("the sandbox chain is closed (the server was stopped)")

    def _balance(self, asset: str, address: str) -> int:
        row = self._db.execute(
            "SELECT amount FROM balances WHERE asset = ? AND address = ?", (asset.lower(), address.lower())
        ).fetchone()
        return int(row[0]) if row else 0

    def _set_balance(self, asset: str, address: str, amount: int) -> None:
        self._db.execute(
            "INSERT INTO balances (asset, address, amount) VALUES (?, ?, ?) "
            "ON CONFLICT (asset, address) DO UPDATE SET amount = excluded.amount",
            (asset.lower(), address.lower(), str(amount)),
        )

    def _next_block(self) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'block'").fetchone()
        block = (int(row[0]) if row else GENESIS_BLOCK) + 1
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES ('block', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (str(block),),
        )
        return block

    # -- reads ------------------------------------------------------------------------------------
    def balance(self, asset: str, address: str) -> int:
        with self._lock:
            self._check()
            return self._balance(asset, address)

    def nonce_state(self, asset: str, payer: str, nonce: str) -> str | None:
        with self._lock:
            self._check()
            return self._nonce_state((asset.lower(), payer.lower(), nonce.lower()))

    def _nonce_state(self, key: tuple[str, str, str]) -> str | None:
        """``reserved``, ``used`` or None for (asset, payer, nonce), lower-case."""
        row = self._db.execute("SELECT state FROM nonces WHERE asset = ? AND payer = ? AND nonce = ?", key).fetchone()
        return row[0] if row else None

    def _use_nonce(self, key: tuple[str, str, str]) -> None:
        self._db.execute(
            "INSERT INTO nonces (asset, payer, nonce, state, at) VALUES (?, ?, ?, 'used', ?) "
            "ON CONFLICT (asset, payer, nonce) DO UPDATE SET state = 'used', at = excluded.at",
            (*key, time.time()),
        )

    def _known_transaction(self, tx_hash: str) -> bool:
        return self._db.execute("SELECT 1 FROM transactions WHERE hash = ?", (tx_hash.lower(),)).fetchone() is not None

    def _record_approval(
        self,
        tx_hash: str,
        sender: str,
        nonce: int,
        token: str,
        spender: str,
        amount: int,
        gas_used: int,
        gas_price: int,
    ) -> None:
        """An ``approve`` transaction's row, in a new block (inside the caller's transaction)."""
        self._db.execute(
            "INSERT INTO transactions (hash, sender, nonce, target, spender, amount, gas_used, gas_price, block, at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                tx_hash.lower(),
                sender.lower(),
                nonce,
                token.lower(),
                spender.lower(),
                str(amount),
                gas_used,
                str(gas_price),
                self._next_block(),
                time.time(),
            ),
        )

    def allowance(self, asset: str, owner: str, spender: str) -> int:
        """ERC-20 ``allowance(owner, spender)`` of ``asset`` in atomic units."""
        with self._lock:
            self._check()
            return self._allowance(asset, owner, spender)

    def _allowance(self, asset: str, owner: str, spender: str) -> int:
        row = self._db.execute(
            "SELECT amount FROM allowances WHERE asset = ? AND owner = ? AND spender = ?",
            (asset.lower(), owner.lower(), spender.lower()),
        ).fetchone()
        return int(row[0]) if row else 0

    def _set_allowance(self, asset: str, owner: str, spender: str, amount: int) -> None:
        self._db.execute(
            "INSERT INTO allowances (asset, owner, spender, amount) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (asset, owner, spender) DO UPDATE SET amount = excluded.amount",
            (asset.lower(), owner.lower(), spender.lower(), str(amount)),
        )

    def permit2_bitmap(self, owner: str, word: int) -> int:
        """Permit2's ``nonceBitmap(owner, word)``: bit ``n & 0xff`` set for each used nonce ``n`` in the word."""
        with self._lock:
            self._check()
            rows = self._db.execute(
                "SELECT nonce FROM nonces WHERE asset = ? AND payer = ? AND state = 'used'",
                (PERMIT2_ADDRESS.lower(), owner.lower()),
            ).fetchall()
        bitmap = 0
        for (nonce,) in rows:
            n = int(nonce, 16)
            if n >> 8 == word:
                bitmap |= 1 << (n & 0xFF)
        return bitmap

    def block_number(self) -> int:
        with self._lock:
            self._check()
            row = self._db.execute("SELECT value FROM meta WHERE key = 'block'").fetchone()
            return int(row[0]) if row else GENESIS_BLOCK

    def transaction_count(self, sender: str) -> int:
        """The next nonce of ``sender``: how many transactions it has had mined here."""
        with self._lock:
            self._check()
            return self._tx_count(sender)

    def _tx_count(self, sender: str) -> int:
        row = self._db.execute("SELECT COUNT(*) FROM transactions WHERE sender = ?", (sender.lower(),)).fetchone()
        return int(row[0])

    def transaction(self, tx_hash: str) -> dict[str, Any] | None:
        """A mined approval transaction by hash, or None."""
        with self._lock:
            self._check()
            row = self._db.execute(
                "SELECT hash, sender, nonce, target, spender, amount, gas_used, gas_price, block FROM transactions"
                " WHERE hash = ?",
                (tx_hash.lower(),),
            ).fetchone()
        if row is None:
            return None
        keys = ("hash", "sender", "nonce", "target", "spender", "amount", "gas_used", "gas_price", "block")
        return dict(zip(keys, row, strict=True))

    def settlements(self, *, payer: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        sql = "SELECT id, tx, network, asset, payer, pay_to, amount, nonce, path, x402_version, block, at FROM settlements"
        args: list[Any] = []
        if payer:
            sql += " WHERE payer = ?"
            args.append(payer.lower())
        sql += " ORDER BY id"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        with self._lock:
            self._check()
            rows = self._db.execute(sql, args).fetchall()
        out = []
        for id_, tx, network, asset, payer_, pay_to, amount, nonce, path, version, block, at in rows:
            out.append(
                {
                    "id": id_,
                    "tx": tx,
                    "network": network,
                    "asset": to_checksum(asset),
                    "payer": to_checksum(payer_),
                    "pay_to": to_checksum(pay_to),
                    "amount": amount,
                    "nonce": nonce,
                    "path": path,
                    "x402_version": version,
                    "block": block,
                    "settled_at": datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds"),
                }
            )
        return out

    def settlement_by_tx(self, tx: str) -> dict[str, Any] | None:
        with self._lock:
            self._check()
            row = self._db.execute(
                "SELECT tx, asset, payer, pay_to, amount, block FROM settlements WHERE tx = ?", (tx.lower(),)
            ).fetchone()
        if row is None:
            return None
        return dict(zip(("transaction", "asset", "payer", "pay_to", "amount", "block"), row, strict=False))

    # -- writes ---------------------------------------------------------------------------------------
    def credit(self, asset: str, address: str, amount: int) -> int:
        """Mint ``amount`` to ``address`` (the faucet); returns the new balance."""
        if amount < 0:
            raise ValueError("amount must be >= 0")
        with self._tx():
            new = self._balance(asset, address) + amount
            self._set_balance(asset, address, new)
            self._next_block()
            return new

    def approve(self, asset: str, owner: str, spender: str, amount: int) -> None:
        """ERC-20 ``approve``: set (not add to) ``owner``'s allowance to ``spender``."""
        if not 0 <= amount < 2**256:
            raise ValueError("an allowance is a uint256")
        with self._tx():
            self._set_allowance(asset, owner, spender, amount)
            self._next_block()

    def mine_approval(
        self,
        *,
        tx_hash: str,
        sender: str,
        nonce: int,
        token: str,
        spender: str,
        amount: int,
        upfront: int,
        gas_used: int,
        gas_price: int,
    ) -> str | None:
        """Execute a signed ``approve`` in one transaction: check the sender's nonce and that its
        ETH covers ``upfront`` (gas limit × max fee, as a node checks before it includes a
        transaction), burn ``gas_used × gas_price`` of ETH, set the allowance, record the
        transaction in a new block. None on success, else a node's error message."""
        if not 0 <= amount < 2**256:
            return "invalid approve amount"
        with self._tx() as t:
            if self._known_transaction(tx_hash):
                t.rollback()
                return "already known"
            expected = self._tx_count(sender)
            if nonce != expected:
                t.rollback()
                return f"nonce too {'low' if nonce < expected else 'high'}: next nonce {expected}, tx nonce {nonce}"
            eth = self._balance(NATIVE, sender)
            if eth < upfront:
                t.rollback()
                return f"insufficient funds for gas * price + value: have {eth} want {upfront}"
            self._set_balance(NATIVE, sender, eth - gas_used * gas_price)
            self._set_allowance(token, sender, spender, amount)
            self._record_approval(tx_hash, sender, nonce, token, spender, amount, gas_used, gas_price)
            return None

    def reserve_nonce(self, asset: str, payer: str, nonce: str) -> bool:
        """Claim a nonce for an in-flight payment; False if it is reserved or used already."""
        with self._tx():
            cur = self._db.execute(
                "INSERT OR IGNORE INTO nonces (asset, payer, nonce, state, at) VALUES (?, ?, ?, 'reserved', ?)",
                (asset.lower(), payer.lower(), nonce.lower(), time.time()),
            )
            return cur.rowcount == 1

    def release_nonce(self, asset: str, payer: str, nonce: str) -> None:
        """Give back a reservation (the paid handler failed, or settlement did)."""
        with self._tx():
            self._db.execute(
                "DELETE FROM nonces WHERE asset = ? AND payer = ? AND nonce = ? AND state = 'reserved'",
                (asset.lower(), payer.lower(), nonce.lower()),
            )

    def revert_reason(self, asset: str, payer: str, pay_to: str) -> str | None:
        """Why the token contract would revert a transfer between these parties, or None."""
        if _is_zero(payer) or _is_zero(pay_to):
            return TRANSACTION_FAILED  # "ERC20: transfer from/to the zero address"
        if self.paused.get(asset.lower(), False):
            return TRANSACTION_FAILED  # "Pausable: paused"
        if {payer.lower(), pay_to.lower()} & self.blacklist:
            return TRANSACTION_FAILED  # "Blacklistable: account is blacklisted"
        return None

    def transfer_with_authorization(
        self,
        *,
        asset: str,
        payer: str,
        pay_to: str,
        amount: int,
        nonce: str,
        tx: str,
        network: str,
        path: str | None,
        x402_version: int | None,
        reserved: bool,
    ) -> str | None:
        """Move ``amount`` and burn the nonce in one transaction; None on success, else the reason.

        Refuses what FiatToken (USDC) reverts on: a transfer from or to the zero address, a
        blacklisted party (``blacklist``), a paused token (``paused``), a used nonce, a short
        balance. A revert the x402 SDK has no code for is ``transaction_failed``, as it maps it.
        """
        key = (asset.lower(), payer.lower(), nonce.lower())
        revert = self.revert_reason(asset, payer, pay_to)
        if revert is not None:
            return revert
        with self._tx() as t:
            state = self._nonce_state(key)
            if state == "used" or (state == "reserved" and not reserved):
                t.rollback()
                return "invalid_exact_evm_nonce_already_used"
            balance = self._balance(asset, payer)
            if balance < amount:
                t.rollback()
                return "insufficient_funds"
            self._set_balance(asset, payer, balance - amount)
            self._set_balance(asset, pay_to, self._balance(asset, pay_to) + amount)
            self._use_nonce(key)
            self._record_settlement(tx, network, asset, payer, pay_to, amount, nonce, path, x402_version)
            return None

    def _record_settlement(
        self,
        tx: str,
        network: str,
        asset: str,
        payer: str,
        pay_to: str,
        amount: int,
        nonce: str,
        path: str | None,
        x402_version: int | None,
    ) -> None:
        """The settlement row of a transfer, in a new block (inside the caller's transaction)."""
        block = self._next_block()
        self._db.execute(
            "INSERT INTO settlements (tx, network, asset, payer, pay_to, amount, nonce, path, x402_version, block, at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                tx.lower(),
                network,
                asset.lower(),
                payer.lower(),
                pay_to.lower(),
                str(amount),
                nonce.lower(),
                path,
                x402_version,
                block,
                time.time(),
            ),
        )

    def permit_witness_transfer(
        self,
        *,
        token: str,
        payer: str,
        pay_to: str,
        amount: int,
        nonce: str,
        tx: str,
        network: str,
        path: str | None,
        x402_version: int | None,
        reserved: bool,
        approval: Any = None,
    ) -> str | None:
        """Permit2's ``permitWitnessTransferFrom`` through the x402 proxy, in one transaction: burn the
        owner's Permit2 nonce (0x + 64 hex), spend ``amount`` of the owner's allowance to Permit2
        (an unlimited one, 2**256 - 1, is left as it is, as ERC-20s do) and move the tokens.
        None on success, else the reason the SDKs map the revert to.

        ``approval`` (a :class:`.sponsoring.SponsoredApproval`): the payer's signed ``approve``
        mined first, in the same chain transaction, its gas paid by the facilitator (the payer's
        ETH is not touched): all of it happens or none of it.
        """
        key = (PERMIT2_ADDRESS.lower(), payer.lower(), nonce.lower())
        revert = self.revert_reason(token, payer, pay_to)
        if revert is not None:
            return revert
        with self._tx() as t:
            if approval is not None:
                if self._known_transaction(approval.tx_hash):
                    t.rollback()
                    return "erc20_approval_broadcast_failed"  # already known
                if approval.nonce != self._tx_count(approval.sender):
                    t.rollback()
                    return "erc20_approval_broadcast_failed"  # nonce too low/high
                self._set_allowance(token, approval.sender, PERMIT2_ADDRESS, approval.amount)
                self._record_approval(
                    approval.tx_hash,
                    approval.sender,
                    approval.nonce,
                    token,
                    PERMIT2_ADDRESS,
                    approval.amount,
                    SPONSORED_APPROVE_GAS,
                    approval.gas_price,
                )
            state = self._nonce_state(key)
            if state == "used" or (state == "reserved" and not reserved):
                t.rollback()
                return PERMIT2_INVALID_NONCE  # Permit2 reverts InvalidNonce
            allowance = self._allowance(token, payer, PERMIT2_ADDRESS)
            if allowance < amount:
                t.rollback()
                return PERMIT2_ALLOWANCE_REQUIRED  # the token's transferFrom reverts: allowance exceeded
            balance = self._balance(token, payer)
            if balance < amount:
                t.rollback()
                return PERMIT2_INSUFFICIENT_BALANCE
            if allowance != UINT256_MAX:
                self._set_allowance(token, payer, PERMIT2_ADDRESS, allowance - amount)
            self._set_balance(token, payer, balance - amount)
            self._set_balance(token, pay_to, self._balance(token, pay_to) + amount)
            self._use_nonce(key)
            self._record_settlement(tx, network, token, payer, pay_to, amount, nonce, path, x402_version)
            return None


class Mempool:
    """Broadcast transfers not mined yet: how the sandbox plays x402's ``settlement_pending``.

    A broadcast keeps its nonce ``reserved`` (no other payment can take it) and is mined
    later: after ``reads`` JSON-RPC requests (each one stands for time passing), or at once
    with :meth:`mine`. Mining executes the transfer as the token would, at the time it is
    mined: one whose ``validBefore`` has passed by then reverts and its nonce stays unused.
    """

    def __init__(self, chain: Chain, clock: Any = time.time) -> None:
        self.chain = chain
        self.clock = clock

    def broadcast(
        self,
        *,
        tx: str,
        network: str,
        asset: str,
        payer: str,
        pay_to: str,
        amount: int,
        nonce: str,
        valid_before: int,
        path: str | None,
        x402_version: int | None,
        reads: int,
    ) -> None:
        with self.chain._tx():
            self.chain._db.execute(
                "INSERT OR IGNORE INTO mempool (tx, network, asset, payer, pay_to, amount, nonce, valid_before, path,"
                " x402_version, reads_left, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    tx.lower(),
                    network,
                    asset.lower(),
                    payer.lower(),
                    pay_to.lower(),
                    str(amount),
                    nonce.lower(),
                    valid_before,
                    path,
                    x402_version,
                    int(reads) if int(reads) > 0 else -1,  # -1: mined only by mine()
                    time.time(),
                ),
            )

    def has(self, tx: str) -> bool:
        with self.chain._lock:
            self.chain._check()
            row = self.chain._db.execute("SELECT 1 FROM mempool WHERE tx = ?", (tx.lower(),)).fetchone()
        return row is not None

    def size(self) -> int:
        with self.chain._lock:
            self.chain._check()
            return int(self.chain._db.execute("SELECT COUNT(*) FROM mempool").fetchone()[0])

    def tick(self) -> list[str]:
        """Time passes (a JSON-RPC request): count down; mine what is due. The mined txs."""
        with self.chain._tx():
            self.chain._db.execute("UPDATE mempool SET reads_left = reads_left - 1 WHERE reads_left > 0")
            due = [r[0] for r in self.chain._db.execute("SELECT tx FROM mempool WHERE reads_left = 0")]
        return [tx for tx in due if self._mine_one(tx, drop=False) is not None]

    def mine(self, *, drop: bool = False) -> dict[str, str]:
        """Mine (or, with ``drop``, discard) every broadcast transfer now: ``{tx: outcome}``."""
        with self.chain._lock:
            self.chain._check()
            txs = [r[0] for r in self.chain._db.execute("SELECT tx FROM mempool ORDER BY at")]
        out = {}
        for tx in txs:
            outcome = self._mine_one(tx, drop=drop)
            if outcome is not None:
                out[tx] = outcome
        return out

    def _mine_one(self, tx: str, *, drop: bool) -> str | None:
        chain = self.chain
        with chain._lock:
            chain._check()
            row = chain._db.execute(
                "SELECT network, asset, payer, pay_to, amount, nonce, valid_before, path, x402_version FROM mempool"
                " WHERE tx = ?",
                (tx,),
            ).fetchone()
            if row is None:
                return None
            network, asset, payer, pay_to, amount, nonce, valid_before, path, version = row
            with chain._tx():
                chain._db.execute("DELETE FROM mempool WHERE tx = ?", (tx,))
            if drop or self.clock() >= valid_before:
                chain.release_nonce(asset, payer, nonce)
                return "dropped" if drop else "reverted: authorization expired before it was mined"
            reason = chain.transfer_with_authorization(
                asset=asset,
                payer=payer,
                pay_to=pay_to,
                amount=int(amount),
                nonce=nonce,
                tx=tx,
                network=network,
                path=path,
                x402_version=version,
                reserved=True,
            )
            if reason is not None:
                chain.release_nonce(asset, payer, nonce)
                return f"reverted: {reason}"
            return "mined"


class _Tx:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` under the chain's thread lock; rollback on error."""

    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self.done = False

    def __enter__(self) -> _Tx:
        self.chain._lock.acquire()
        try:
            self.chain._check()
            self.chain._db.execute("BEGIN IMMEDIATE")
        except BaseException:
            self.chain._lock.release()
            raise
        return self

    def rollback(self) -> None:
        if not self.done:
            self.chain._db.execute("ROLLBACK")
            self.done = True

    def __exit__(self, exc_type: object, exc: object, _tb: object) -> None:
        try:
            if not self.done:
                self.chain._db.execute("ROLLBACK" if exc_type else "COMMIT")
                self.done = True
        finally:
            self.chain._lock.release()


#: The x402 SDK's code for a settlement transaction that reverted for another reason.
TRANSACTION_FAILED = "transaction_failed"
#: Permit2 settlement failures, as the x402 SDKs name them.
PERMIT2_INVALID_NONCE = "permit2_invalid_nonce"
PERMIT2_ALLOWANCE_REQUIRED = "permit2_allowance_required"
PERMIT2_INSUFFICIENT_BALANCE = "permit2_insufficient_balance"
#: An ERC-20 allowance this large is unlimited: transfers do not decrease it.
UINT256_MAX = 2**256 - 1


def _is_zero(address: str) -> bool:
    try:
        return int(address, 16) == 0
    except ValueError:
        return False
