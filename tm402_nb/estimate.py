"""``tm402-nb estimate NOTEBOOK.ipynb``: what "Run All" would pay, cell by cell, with nothing real paid.

The notebook runs in a kernel against the embedded sandbox, in a throwaway home with its own
ledger, as ``make demo`` runs the tutorials (:func:`tm402_nb.demo.execute_in_sandbox`: sandbox
mode, no key in the kernel's environment). The file on disk is never written. What each cell
paid is read back from that ledger afterwards, so the figures are what was recorded.

Which cell made a call. A ledger row names its cell when the notebook extension was loaded
before the cell ran: its ``pre_run_cell`` hook sets
:data:`~tm402_nb.cells.current_cell_id` from ``ExecutionInfo.cell_id``, the id the
frontend sent with the cell (``execute_in_sandbox`` sends it as JupyterLab does; nbclient alone
does not). Rows without one (the cell that runs ``%load_ext tm402_nb``, or a notebook that only
imports the package) are matched by execution order: just before each cell is sent to the
kernel the ledger's last row number is read, so a row belongs to the last cell that started
before it was written.

The sandbox's data is synthetic: how many rows, and so how many pages, a request returns there
is an estimate of the real API's. ``live=True`` prices the same paid calls at the real API's
current prices, read from one unpaid 402 probe per endpoint: no wallet, nothing signed.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigurationError, TM402Error, X402ProtocolError
from .money import format_amount, plain, to_display
from .status import COUNTED

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "Amount",
    "CellEstimate",
    "CellFailure",
    "Estimate",
    "EstimateFailed",
    "LiveCost",
    "LivePrice",
    "PaidCalls",
    "Total",
    "estimate_notebook",
    "format_text",
    "price_live",
]

#: Seconds each cell may run (nbclient's per-cell timeout).
DEFAULT_CELL_TIMEOUT = 120.0
#: Seconds one live 402 probe may take: it is one small unpaid request.
DEFAULT_PROBE_TIMEOUT = 5.0
#: A 402 challenge is small (the parser refuses one over 16 KB); nothing more is read.
_PROBE_READ_LIMIT = 64 * 1024
_FIRST_LINE_WIDTH = 40
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

SANDBOX_SENTENCE = (
    "The sandbox's row counts (and so its page counts, and how many calls were paid) are an estimate of "
    "the real API's, and in sandbox mode nothing real was paid."
)


# -- what an estimate holds ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Amount:
    """An exact amount of one asset: ``atomic`` units with the asset's ``decimals``."""

    asset: str
    decimals: int
    atomic: int

    @property
    def value(self) -> Decimal:
        """In display units, exact: ``Decimal("0.051")``."""
        return Decimal(plain(to_display(self.atomic, self.decimals)))

    @property
    def text(self) -> str:
        """``0.051 USDC``."""
        return format_amount(self.atomic, self.decimals, self.asset)

    def times(self, n: int) -> Amount:
        return Amount(self.asset, self.decimals, self.atomic * n)


def sum_amounts(amounts: Iterable[Amount]) -> tuple[Amount, ...]:
    """Amounts added per asset, in asset order (never across assets)."""
    sums: dict[tuple[str, int], int] = {}
    for a in amounts:
        sums[(a.asset, a.decimals)] = sums.get((a.asset, a.decimals), 0) + a.atomic
    return tuple(Amount(asset, dec, atomic) for (asset, dec), atomic in sorted(sums.items()))


def amounts_text(amounts: Iterable[Amount], empty: str = "nothing paid") -> str:
    return " + ".join(a.text for a in amounts) or empty


@dataclass(frozen=True)
class PaidCalls:
    """The paid calls one cell made to one endpoint in one asset, and what they cost in the sandbox."""

    endpoint: str
    calls: int
    amount: Amount
    network: str | None
    #: The wire parameters of the first such call: the live probe sends the same request.
    params: tuple[tuple[str, str], ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class LivePrice:
    """One unpaid 402 probe of the live API: what one call to ``endpoint`` costs there now, or why unknown."""

    endpoint: str
    #: The asset the sandbox run paid in; the probe asks for an offer in it.
    asset: str
    url: str
    #: The price of one call (None: not priced, see ``problem``).
    amount: Amount | None = None
    network: str | None = None
    #: Why the endpoint could not be priced: a free answer, an HTTP error, no answer, an unknown asset.
    problem: str | None = None
    #: Something to know about a price that was found (e.g. offered in another asset).
    note: str | None = None

    @property
    def priced(self) -> bool:
        return self.amount is not None

    @property
    def text(self) -> str:
        if self.amount is None:
            return f"not priced: {self.problem}"
        return f"{self.amount.text} on {self.network}" + (f" ({self.note})" if self.note else "")


@dataclass(frozen=True)
class LiveCost:
    """Paid calls × the live price of their endpoint; calls whose endpoint could not be priced, apart."""

    amounts: tuple[Amount, ...] = ()
    priced: int = 0
    #: (endpoint, paid calls) that could not be priced.
    unpriced: tuple[tuple[str, int], ...] = ()
    networks: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """``0.04 USDC``, ``0.02 USDC + 1 unpriced (quantmetrics)``, ``not priced (tm-grade)`` or ``—``."""
        if not self.priced and not self.unpriced:
            return "—"
        names = ", ".join(endpoint for endpoint, _ in self.unpriced[:2]) + (", …" if len(self.unpriced) > 2 else "")
        if not self.priced:
            return f"not priced ({names})"
        n = sum(calls for _, calls in self.unpriced)
        return amounts_text(self.amounts) + (f" + {n} unpriced ({names})" if n else "")


@dataclass(frozen=True)
class CellEstimate:
    """What one code cell's calls were and cost in the sandbox run."""

    #: 1-based position among all the notebook's cells (markdown included), as the notebook shows them.
    number: int
    cell_id: str | None
    first_line: str
    calls: int
    paid: int
    cached: int
    free: int
    amounts: tuple[Amount, ...]
    paid_calls: tuple[PaidCalls, ...]
    networks: tuple[str, ...]
    #: Calls whose ledger row named no cell, matched to this one by execution order.
    by_order: int = 0
    live: LiveCost | None = None

    @property
    def amount_text(self) -> str:
        return amounts_text(self.amounts)


@dataclass(frozen=True)
class Total:
    """Every cell's calls added up (amounts per asset, never across assets)."""

    cells: int
    calls: int
    paid: int
    cached: int
    free: int
    amounts: tuple[Amount, ...]
    networks: tuple[str, ...]
    live: LiveCost | None = None

    @property
    def amount_text(self) -> str:
        return amounts_text(self.amounts)


@dataclass(frozen=True)
class CellFailure:
    """The cell that stopped the run: the cells after it did not run."""

    number: int
    cell_id: str | None
    first_line: str
    error: str
    message: str
    #: The kernel's traceback for errors that are not the toolkit's own (those are one line by design).
    traceback: str | None = None

    @property
    def text(self) -> str:
        return f"cell {self.number} ({self.first_line}) failed: {self.error}: {self.message}"


@dataclass(frozen=True)
class Estimate:
    """What running every cell of ``notebook`` would pay, per cell, from a sandbox run."""

    notebook: str
    cells: tuple[CellEstimate, ...]
    failure: CellFailure | None = None
    notes: tuple[str, ...] = ()
    #: With live prices: the API root the probes went to, and one probe per (endpoint, asset).
    live_url: str | None = None
    probes: tuple[LivePrice, ...] = ()

    @property
    def complete(self) -> bool:
        """False when a cell failed: the cells after it did not run and are not counted."""
        return self.failure is None

    @property
    def total(self) -> Total:
        live = None
        if self.live_url is not None:
            live = _add_live(c.live for c in self.cells if c.live is not None)
        return Total(
            cells=len(self.cells),
            calls=sum(c.calls for c in self.cells),
            paid=sum(c.paid for c in self.cells),
            cached=sum(c.cached for c in self.cells),
            free=sum(c.free for c in self.cells),
            amounts=sum_amounts(a for c in self.cells for a in c.amounts),
            networks=tuple(sorted({n for c in self.cells for n in c.networks})),
            live=live,
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per cell that made calls, indexed by cell number; amounts exact (Decimal) per asset."""
        import pandas as pd

        assets = sorted({a.asset for c in self.cells for a in c.amounts})
        rows = []
        for c in self.cells:
            row: dict[str, Any] = {
                "cell": c.number,
                "cell_id": c.cell_id,
                "first_line": c.first_line,
                "calls": c.calls,
                "paid": c.paid,
                "cached": c.cached,
                "free": c.free,
                "amount": c.amount_text,
            }
            held = {a.asset: a.value for a in c.amounts}
            row.update({f"amount_{asset}": held.get(asset, Decimal(0)) for asset in assets})
            row["by_order"] = c.by_order
            if self.live_url is not None:
                row["live"] = c.live.text if c.live else "—"
            rows.append(row)
        frame = pd.DataFrame(rows, columns=None if rows else ["cell", "first_line", "calls", "paid", "amount"])
        return frame.set_index("cell")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types; amounts as exact decimal strings (``"0.051"``) with their atomic units."""
        total = self.total
        out: dict[str, Any] = {
            "notebook": self.notebook,
            "mode": "sandbox",
            "complete": self.complete,
            "cells": [_cell_dict(c) for c in self.cells],
            "total": {
                "cells": total.cells,
                "calls": total.calls,
                "paid": total.paid,
                "cached": total.cached,
                "free": total.free,
                "amount": _amounts_dict(total.amounts),
                "networks": list(total.networks),
            },
            "failure": None,
            "notes": [*self.notes, SANDBOX_SENTENCE],
        }
        if self.failure is not None:
            f = self.failure
            out["failure"] = {
                "cell": f.number,
                "cell_id": f.cell_id,
                "first_line": f.first_line,
                "error": f.error,
                "message": f.message,
            }
        if self.live_url is not None:
            out["total"]["live"] = _live_dict(total.live)
            out["live"] = {
                "url": self.live_url,
                "probes": [
                    {
                        "endpoint": p.endpoint,
                        "asset": p.asset,
                        "url": p.url,
                        "priced": p.priced,
                        "price": _amounts_dict((p.amount,)) if p.amount else None,
                        "network": p.network,
                        "problem": p.problem,
                        "note": p.note,
                    }
                    for p in self.probes
                ],
            }
        return out

    def __str__(self) -> str:
        return format_text(self)


class EstimateFailed(TM402Error):
    """A cell failed: the run stopped there. ``estimate`` holds what the cells before it (and it) paid."""

    def __init__(self, estimate: Estimate) -> None:
        assert estimate.failure is not None
        super().__init__(
            estimate.failure.text,
            hint="the cells after it did not run; the estimate so far is on this error's .estimate",
        )
        self.estimate = estimate


# -- running the notebook ------------------------------------------------------------------------------------------
def estimate_notebook(
    path: str | os.PathLike[str],
    *,
    live: bool = False,
    live_url: str | None = None,
    timeout: float = DEFAULT_CELL_TIMEOUT,
    probe_timeout: float = DEFAULT_PROBE_TIMEOUT,
    home: str | os.PathLike[str] | None = None,
) -> Estimate:
    """Run every cell of the notebook at ``path`` against the sandbox and say what each cell paid.

    Nothing real is paid and the file is not written. ``timeout`` is how long each cell may run.
    ``live=True`` (or a ``live_url``) also prices the paid calls at the live API's current prices
    from unpaid 402 probes (see :func:`price_live`). ``home`` keeps the run's ledger in that
    (new or empty) folder instead of a throwaway one.

    Raises :class:`EstimateFailed` when a cell fails; its ``.estimate`` covers the cells that ran.
    """
    nb_path = Path(path)
    nb = _read_notebook(nb_path)
    root = _live_root(live_url) if live or live_url is not None else None  # a bad URL fails before any cell runs
    with _home(home) as run_home:
        watch = _LedgerWatch(run_home)
        crash = _execute(nb, nb_path, run_home, watch, timeout)
        cells, notes = _attribute(nb, watch)
    failure = _failure(nb, watch, crash) if crash is not None else None
    estimate = Estimate(str(nb_path), cells, failure, notes)
    if root is not None:
        estimate = price_live(estimate, live_url=root, timeout=probe_timeout)
    if failure is not None:
        raise EstimateFailed(estimate)
    return estimate


def _read_notebook(path: Path) -> Any:
    try:
        import nbformat
    except ImportError:
        raise ConfigurationError(
            "estimating a notebook needs nbformat, nbclient and ipykernel", hint="pip install 'tm402-nb[demo]'"
        ) from None
    if not path.is_file():
        raise ConfigurationError(f"no notebook at {path}")
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:  # nbformat raises several kinds (JSON, validation, version)
        raise ConfigurationError(f"{path.name} is not a readable notebook: {str(exc)[:200]}") from None
    # In memory only: cells without an id (nbformat < 4.5) or sharing one get their own, so the
    # kernel can tell them apart. The file is never written.
    seen: set[str] = set()
    for index, cell in enumerate(nb.cells):
        cell_id = cell.get("id")
        if not isinstance(cell_id, str) or not cell_id or cell_id in seen:
            cell["id"] = cell_id = f"tm402-estimate-{index}"
        seen.add(cell_id)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb


@contextmanager
def _home(home: str | os.PathLike[str] | None) -> Iterator[Path]:
    """The run's TM402_HOME: a throwaway folder, or ``home`` if it is new or empty (never a ledger in use)."""
    if home is None:
        with tempfile.TemporaryDirectory(prefix="tm402-estimate-", ignore_cleanup_errors=True) as tmp:
            yield Path(tmp)
        return
    folder = Path(home)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ConfigurationError(
            f"home={folder} is not an empty folder",
            hint="the estimate writes its own sandbox ledger: give a new or empty folder, never a ledger in use",
        )
    folder.mkdir(parents=True, exist_ok=True)
    yield folder


class _LedgerWatch:
    """Which ledger rows were written before each cell started: the execution order of the run.

    ``on_cell_execute`` is nbclient's hook, called just before a code cell is sent to the
    kernel (which is idle then). It reads, for every ledger file in the run's home, the last
    row of the ``calls`` table; a row written later belongs to that cell or to a later one.
    """

    def __init__(self, home: Path) -> None:
        self.home = home
        #: (cell index, {ledger file: last call row, None if unreadable}), in execution order.
        self.started: list[tuple[int, dict[Path, int | None]]] = []

    def ledgers(self) -> list[Path]:
        return sorted(p for p in self.home.rglob("*.sqlite3") if p.is_file())

    def on_cell_execute(self, cell: Any = None, cell_index: int = 0, **_: Any) -> None:
        self.started.append((cell_index, {path: _last_call_row(path) for path in self.ledgers()}))

    def cell_of_row(self, ledger: Path, rowid: int) -> int:
        """The index of the last cell that started before row ``rowid`` of ``ledger`` was written."""
        found = self.started[0][0]
        for index, last_rows in self.started:
            last = last_rows.get(ledger, 0)  # absent: the file did not exist yet
            if last is not None and last < rowid:
                found = index
        return found

    def unreadable(self) -> list[int]:
        """Indices of the cells before which a ledger could not be read."""
        return [index for index, last_rows in self.started if None in last_rows.values()]


def _read_only(path: Path) -> sqlite3.Connection:
    # Read-only: the estimate never writes the ledger it reads (WAL lets it read while the kernel writes).
    return sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, timeout=10)


def _last_call_row(path: Path) -> int | None:
    try:
        conn = _read_only(path)
        try:
            row = conn.execute("SELECT max(rowid) FROM calls").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return 0 if "no such table" in str(exc) else None
    return int(row[0] or 0)


def _execute(nb: Any, path: Path, home: Path, watch: _LedgerWatch, timeout: float) -> Exception | None:
    """Run every cell in the sandbox; the exception that stopped the run at a cell, or None."""
    try:
        import ipykernel  # noqa: F401  (the kernel nbclient starts)
        import nbclient  # noqa: F401

        from .demo import execute_in_sandbox
    except ImportError:
        raise ConfigurationError(
            "estimating a notebook needs nbclient and ipykernel", hint="pip install 'tm402-nb[demo]'"
        ) from None
    try:
        execute_in_sandbox(
            nb,
            cwd=path.resolve().parent,
            timeout=max(1, int(-(-timeout // 1))),  # whole seconds, rounded up
            home=str(home),
            on_cell_execute=watch.on_cell_execute,
        )
    except Exception as exc:  # a cell's error, a timeout, a dead kernel: the run stopped at a cell
        if not watch.started:
            raise TM402Error(
                f"could not run {path.name}: {type(exc).__name__}: {_clean(str(exc))[:300]}",
                hint="the estimate starts a python3 kernel: check that ipykernel is installed in this environment",
            ) from None
        return exc
    return None


def _clean(text: str) -> str:
    return _ANSI.sub("", text).strip()


def _first_line(source: str) -> str:
    line = next((ln.strip() for ln in source.splitlines() if ln.strip()), "")
    return line if len(line) <= _FIRST_LINE_WIDTH else line[: _FIRST_LINE_WIDTH - 1] + "…"


def _failure(nb: Any, watch: _LedgerWatch, exc: Exception) -> CellFailure:
    """The cell that was running when the run stopped, and why: its error output, else the exception."""
    index = watch.started[-1][0]
    cell = nb.cells[index]
    shown = next((o for o in cell.get("outputs", []) if o.get("output_type") == "error"), None)
    if shown is not None:
        error, message = str(shown.get("ename", "")), _clean(str(shown.get("evalue", "")))
        traceback = _clean("\n".join(shown.get("traceback") or []))
    else:  # a timeout or a dead kernel: nbclient's first line says which
        error, message, traceback = type(exc).__name__, (_clean(str(exc)).splitlines() or [""])[0], ""
    return CellFailure(
        index + 1,
        cell.get("id"),
        _first_line(cell.source),
        error or type(exc).__name__,
        " ".join(message.split())[:500],
        # The toolkit's errors render as one line in a kernel (their _render_traceback_): nothing more to show.
        traceback if len(traceback.splitlines()) > 1 else None,
    )


# -- reading the run's ledger --------------------------------------------------------------------------------------
@dataclass
class _Tally:
    calls: int = 0
    paid: int = 0
    cached: int = 0
    free: int = 0
    by_order: int = 0
    #: (endpoint, asset, decimals, network) -> [paid calls, atomic units, params of the first]
    groups: dict[tuple[str, str, int, str | None], list[Any]] = field(default_factory=dict)


def _network_name(network: str | None) -> str | None:
    from .x402.networks import get_network

    if not network:
        return None
    try:
        return get_network(network).v1_name
    except X402ProtocolError:
        return network


def _params(raw: str | None) -> tuple[tuple[str, str], ...]:
    try:
        params = json.loads(raw) if raw else {}
    except ValueError:
        return ()
    return tuple((str(k), str(v)) for k, v in params.items()) if isinstance(params, dict) else ()


def _dicts(conn: sqlite3.Connection, sql: str) -> list[dict[str, Any]]:
    cursor = conn.execute(sql)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _read_ledger(path: Path) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """The calls (in the order they were written) and the payments of one ledger file."""
    try:
        conn = _read_only(path)
        try:
            tables = {r["name"] for r in _dicts(conn, "SELECT name FROM sqlite_master WHERE type='table'")}
            if "calls" not in tables:
                return [], {}
            calls = _dicts(
                conn,
                "SELECT rowid AS rowid, url, endpoint, params, cache_hit, paid, payment_id, cell_id, mode"
                " FROM calls ORDER BY rowid",
            )
            payments = _dicts(conn, "SELECT id, amount, asset_symbol, decimals, network, status FROM payments")
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise TM402Error(f"could not read the sandbox run's ledger {path.name}: {exc}") from None
    return calls, {p["id"]: p for p in payments}


def _attribute(nb: Any, watch: _LedgerWatch) -> tuple[tuple[CellEstimate, ...], tuple[str, ...]]:
    """Each ledger row added to its cell: by the cell id it carries, else by execution order."""
    code_ids = {cell["id"]: i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"}
    tallies: dict[int, _Tally] = {}
    other_modes: dict[str, int] = {}
    no_payment_row = 0
    for ledger in watch.ledgers() if watch.started else []:
        calls, payments = _read_ledger(ledger)
        for row in calls:
            index = code_ids.get(row["cell_id"]) if row["cell_id"] else None
            tally = tallies.setdefault(
                index if index is not None else watch.cell_of_row(ledger, row["rowid"]), _Tally()
            )
            tally.by_order += index is None
            tally.calls += 1
            if row["mode"] and row["mode"] != "sandbox":
                other_modes[row["mode"]] = other_modes.get(row["mode"], 0) + 1
            if row["cache_hit"]:
                tally.cached += 1
                continue
            if not row["paid"]:
                tally.free += 1
                continue
            tally.paid += 1
            pay = payments.get(row["payment_id"] or "")
            if pay is None or not pay["asset_symbol"] or pay["status"] not in COUNTED:
                no_payment_row += 1
                continue
            key = (
                row["endpoint"] or row["url"],
                pay["asset_symbol"],
                int(pay["decimals"]),
                _network_name(pay["network"]),
            )
            group = tally.groups.setdefault(key, [0, 0, _params(row["params"])])
            group[0] += 1
            group[1] += int(pay["amount"])
    cells = tuple(_cell_estimate(nb, index, tallies[index]) for index in sorted(tallies))
    return cells, _notes(nb, watch, cells, other_modes, no_payment_row)


def _cell_estimate(nb: Any, index: int, t: _Tally) -> CellEstimate:
    cell = nb.cells[index]
    paid_calls = tuple(
        PaidCalls(endpoint, n, Amount(asset, decimals, atomic), network, params)
        for (endpoint, asset, decimals, network), (n, atomic, params) in sorted(
            t.groups.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][3] or "")
        )
    )
    return CellEstimate(
        number=index + 1,
        cell_id=None if str(cell.get("id", "")).startswith("tm402-estimate-") else cell.get("id"),
        first_line=_first_line(cell.source),
        calls=t.calls,
        paid=t.paid,
        cached=t.cached,
        free=t.free,
        amounts=sum_amounts(g.amount for g in paid_calls),
        paid_calls=paid_calls,
        networks=tuple(sorted({g.network for g in paid_calls if g.network})),
        by_order=t.by_order,
    )


def _notes(
    nb: Any, watch: _LedgerWatch, cells: tuple[CellEstimate, ...], other_modes: dict[str, int], no_payment_row: int
) -> tuple[str, ...]:
    notes = []
    ordered = sum(c.by_order for c in cells)
    if ordered:
        total = sum(c.calls for c in cells)
        where = ", ".join(str(c.number) for c in cells if c.by_order)
        notes.append(
            f"{ordered} of {total} calls (cell {where}) carried no cell id in the ledger: they were made before "
            "`%load_ext tm402_nb` took effect, or without the extension, and were matched to their cell by "
            "execution order."
        )
    unreadable = watch.unreadable()
    if unreadable:
        where = ", ".join(str(i + 1) for i in unreadable)
        notes.append(
            f"The ledger could not be read before cell {where}: calls without a cell id may be counted "
            "under the cell before."
        )
    if other_modes:
        modes = ", ".join(f"{n} in {mode} mode" for mode, n in sorted(other_modes.items()))
        notes.append(f"Some calls were not made in sandbox mode ({modes}): the notebook chose its mode itself.")
    if no_payment_row:
        notes.append(
            f"{no_payment_row} paid call(s) have no counted payment in the ledger: their amount is not included."
        )
    return tuple(notes)


# -- live prices -----------------------------------------------------------------------------------------------------
def price_live(estimate: Estimate, *, live_url: str | None = None, timeout: float = DEFAULT_PROBE_TIMEOUT) -> Estimate:
    """``estimate`` with each cell's paid calls priced at the live API's current prices.

    One unpaid GET per (endpoint, asset) the estimate paid for, to ``live_url`` (default
    ``$TM402_BASE_URL``, else the real Token Metrics API) with ``x-coinbase-402: true`` and the
    parameters of the first such call: the 402 challenge says the price. No wallet is involved:
    nothing is signed or paid. An endpoint that cannot be priced (a free answer, an HTTP error,
    no answer within ``timeout`` seconds, an unknown asset) is reported on its probe, never raised.
    """
    root = _live_root(live_url)
    wanted: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {}
    for cell in estimate.cells:
        for group in cell.paid_calls:
            wanted.setdefault((group.endpoint, group.amount.asset), group.params)
    probes = _probe_all(root, wanted, timeout)
    by_key = {(p.endpoint, p.asset): p for p in probes}
    cells = tuple(replace(c, live=_live_cost(c.paid_calls, by_key)) for c in estimate.cells)
    return replace(estimate, cells=cells, live_url=root, probes=probes)


def _live_root(live_url: str | None) -> str:
    import httpx

    if live_url is None:
        from .session import ENV_BASE_URL
        from .tokenmetrics.client import DEFAULT_BASE_URL

        live_url = os.environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL
    try:
        url = httpx.URL(live_url)
    except (httpx.InvalidURL, TypeError):
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host:
        raise ConfigurationError(f"live URL {str(live_url)[:80]!r} is not an http(s) URL")
    return str(live_url).rstrip("/")


def _probe_all(
    root: str, wanted: Mapping[tuple[str, str], tuple[tuple[str, str], ...]], timeout: float
) -> tuple[LivePrice, ...]:
    if not wanted:
        return ()
    import httpx

    # No auth on this client, ever: a 402 is read, never answered.
    with (
        httpx.Client(timeout=timeout, follow_redirects=False) as client,
        ThreadPoolExecutor(max_workers=min(4, len(wanted))) as pool,
    ):
        futures = [
            pool.submit(_probe, client, root, endpoint, asset, params, timeout)
            for (endpoint, asset), params in wanted.items()
        ]
        return tuple(f.result() for f in futures)


def _probe(
    client: Any, root: str, endpoint: str, asset: str, params: tuple[tuple[str, str], ...], timeout: float
) -> LivePrice:
    import httpx

    from .tokenmetrics.catalogue import CATALOGUE
    from .tokenmetrics.headers import request_headers, shared_headers
    from .tokenmetrics.modes import Mode
    from .tokenmetrics.options import PAYMENT_TOKENS

    known = CATALOGUE.get(endpoint)
    if known is None and ("/" in endpoint or ":" in endpoint):
        return LivePrice(endpoint, asset, endpoint, problem="not a Token Metrics endpoint (a request to another URL)")
    url = root + (known.path if known else f"/{endpoint}")
    headers = shared_headers(Mode.X402, None)
    if asset.lower() in PAYMENT_TOKENS:
        headers.update(request_headers(Mode.X402, asset.lower()))
    base = LivePrice(endpoint, asset, url)
    try:
        with client.stream("GET", url, params=dict(params), headers=headers) as response:
            body = b""
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > _PROBE_READ_LIMIT:
                    break
            status = response.status_code
            response_headers = response.headers
    except httpx.TimeoutException:
        return replace(base, problem=f"probe failed: no answer within {timeout:g} s")
    except httpx.HTTPError as exc:
        return replace(base, problem=f"probe failed: {type(exc).__name__}: {_clean(str(exc))[:160]}")
    if status == 402:
        from .x402.messages import parse_challenge

        try:
            required = parse_challenge(response_headers, body)
        except X402ProtocolError as exc:
            return replace(base, problem=f"malformed 402 challenge: {exc.message}")
        return _price_from(base, required)
    if 200 <= status < 300:
        return replace(base, problem=f"HTTP {status} without a payment challenge (free there?)")
    return replace(base, problem=f"HTTP {status}{_api_message(body)}")


def _api_message(body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    message = data.get("message") or data.get("error") if isinstance(data, dict) else None
    text = message if isinstance(message, str) else body.decode("utf-8", "replace")
    text = " ".join(_clean(text).split())[:160]
    return f": {text}" if text else ""


def _price_from(base: LivePrice, required: Any) -> LivePrice:
    """The price of one call from a challenge: the offer in the asset the sandbox paid in, else any known asset."""
    from .x402.networks import find_asset, get_network

    known = []
    for offer in required.accepts:
        try:
            network = get_network(offer.network)
        except X402ProtocolError:
            continue
        asset = find_asset(network, offer.asset)
        if asset is not None:
            known.append((offer, network, asset))
    if not known:
        offered = ", ".join(f"{o.asset[:12]}… on {o.network}" for o in required.accepts[:3])
        return replace(base, problem=f"unknown asset in every offer ({offered})")
    same = [k for k in known if k[2].symbol == base.asset]
    offer, network, asset = (same or known)[0]
    note = None if same else f"no {base.asset} offer: priced in {asset.symbol}"
    return replace(base, amount=Amount(asset.symbol, asset.decimals, offer.amount), network=network.v1_name, note=note)


def _live_cost(paid_calls: Iterable[PaidCalls], probes: Mapping[tuple[str, str], LivePrice]) -> LiveCost:
    amounts: list[Amount] = []
    priced = 0
    unpriced: dict[str, int] = {}
    networks: set[str] = set()
    for group in paid_calls:
        probe = probes.get((group.endpoint, group.amount.asset))
        if probe is not None and probe.amount is not None:
            amounts.append(probe.amount.times(group.calls))
            priced += group.calls
            if probe.network:
                networks.add(probe.network)
        else:
            unpriced[group.endpoint] = unpriced.get(group.endpoint, 0) + group.calls
    return LiveCost(sum_amounts(amounts), priced, tuple(sorted(unpriced.items())), tuple(sorted(networks)))


def _add_live(costs: Iterable[LiveCost]) -> LiveCost:
    amounts: list[Amount] = []
    priced = 0
    unpriced: dict[str, int] = {}
    networks: set[str] = set()
    for cost in costs:
        amounts.extend(cost.amounts)
        priced += cost.priced
        for endpoint, n in cost.unpriced:
            unpriced[endpoint] = unpriced.get(endpoint, 0) + n
        networks.update(cost.networks)
    return LiveCost(sum_amounts(amounts), priced, tuple(sorted(unpriced.items())), tuple(sorted(networks)))


# -- output -----------------------------------------------------------------------------------------------------------
def _amounts_dict(amounts: Iterable[Amount]) -> dict[str, dict[str, Any]]:
    return {a.asset: {"amount": plain(a.value), "atomic": str(a.atomic), "decimals": a.decimals} for a in amounts}


def _live_dict(live: LiveCost | None) -> dict[str, Any] | None:
    if live is None:
        return None
    return {
        "amount": _amounts_dict(live.amounts),
        "priced_calls": live.priced,
        "unpriced": [{"endpoint": e, "calls": n} for e, n in live.unpriced],
        "networks": list(live.networks),
    }


def _cell_dict(c: CellEstimate) -> dict[str, Any]:
    out: dict[str, Any] = {
        "cell": c.number,
        "cell_id": c.cell_id,
        "first_line": c.first_line,
        "calls": c.calls,
        "paid": c.paid,
        "cached": c.cached,
        "free": c.free,
        "amount": _amounts_dict(c.amounts),
        "networks": list(c.networks),
        "paid_calls": [
            {"endpoint": g.endpoint, "calls": g.calls, "amount": _amounts_dict((g.amount,)), "network": g.network}
            for g in c.paid_calls
        ],
        "matched_by_order": c.by_order,
    }
    if c.live is not None:
        out["live"] = _live_dict(c.live)
    return out


def _free_cached(free: int, cached: int) -> str:
    parts = [f"{free} free"] if free else []
    if cached:
        parts.append(f"{cached} cached")
    return ", ".join(parts) or "—"


def _live_total_text(live: LiveCost | None) -> str:
    if live is None:
        return "—"
    return live.text + (f" on {', '.join(live.networks)}" if live.priced and live.networks else "")


def format_text(e: Estimate) -> str:
    """The table ``tm402-nb estimate`` prints: one row per cell that made calls, the total, what to know."""
    total = e.total
    live = e.live_url is not None
    where = f" on {', '.join(total.networks)}" if total.networks else ""
    lines = [f"{Path(e.notebook).name}: what Run All would pay · sandbox run{where}, nothing real paid", ""]
    if e.cells:
        header = ["cell", "first line", "paid", "amount", "free/cached", *(["at live prices"] if live else [])]
        rows = [
            [
                str(c.number),
                c.first_line,
                str(c.paid),
                c.amount_text if c.paid else "—",
                _free_cached(c.free, c.cached),
                *([c.live.text if c.live else "—"] if live else []),
            ]
            for c in e.cells
        ]
        word = "cell" if total.cells == 1 else "cells"
        rows.append(
            [
                "total",
                f"{total.cells} {word} with calls",
                str(total.paid),
                total.amount_text,
                _free_cached(total.free, total.cached),
                *([_live_total_text(total.live)] if live else []),
            ]
        )
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        right = {0, 2}  # numbers
        for r in [header, *rows]:
            cells = [v.rjust(w) if i in right else v.ljust(w) for i, (v, w) in enumerate(zip(r, widths, strict=True))]
            lines.append("  ".join(cells).rstrip())
    else:
        lines.append("No cell made a call to the Token Metrics API.")
    if e.failure is not None:
        f = e.failure
        lines += [
            "",
            f"Stopped at cell {f.number}, which failed ({f.error}): the cells after it did not run and are not counted.",
        ]
    if live:
        lines += ["", f"Live prices from unpaid 402 probes of {e.live_url} (nothing signed, nothing paid):"]
        if not e.probes:
            lines.append("  (no paid calls to price)")
        width = max((len(p.endpoint) for p in e.probes), default=0)
        lines += [f"  {p.endpoint.ljust(width)}  {p.text}" for p in e.probes]
        if total.live is not None and total.live.unpriced:
            which = ", ".join(f"{endpoint} ×{n}" for endpoint, n in total.live.unpriced)
            lines.append(f"  Not priced: {which}; the live total leaves them out.")
    lines += ["", *(f"Note: {n}" for n in e.notes), SANDBOX_SENTENCE]
    return "\n".join(lines)
