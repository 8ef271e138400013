"""What ``%tm ledger`` and ``tm402-nb ledger`` show: the ledger, readable.

The ledger itself (:class:`~tm402_nb.ledger.Ledger`) keeps every column, for every session
that ever wrote to the file. A view picks the rows a person asked about (this session,
today, everything, or one session by id), the columns they can read (seconds, not
nanoseconds; amounts with their asset; networks named as the footer names them; a short tx,
the full one on hover), and ends with one summary line: how many, what was spent per asset,
what is reserved or of unknown outcome. ``--by endpoint|day|cell`` sums instead.

The view is a :class:`LedgerFrame`, a real DataFrame (filter it, ``.to_csv()`` it) whose
columns are the same whatever the rows; only its display leaves out columns with nothing to
say (all empty, or one value for every row, which the summary line names instead) and fits
a terminal's 100 columns. ``--csv`` writes the ledger's own frame for the same rows, every
column (payer, nonce, exact atomic amounts, ...), for a spreadsheet or a script.
"""

from __future__ import annotations

import html
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar

import pandas as pd

from ..ledger import Ledger
from ..ledger.chaincheck import ChainCheck, resolution_summary
from ..money import format_amount, plain, to_display
from ..status import COUNTED, PaymentStatus, may_settle_until
from ..tokenmetrics.cost import CallCost, Cost, free_kind
from ..x402.networks import NETWORKS

#: Which rows: this session's (a notebook's default), today's (UTC, as the daily cap counts), or all.
SCOPES = ("session", "today", "all")
#: What ``--by`` sums over.
GROUPS = ("endpoint", "day", "cell")
#: Terminal width a text view fits.
WIDTH = 100

#: The columns of a payments view, in order (the frame always has them all).
PAYMENT_COLUMNS = (
    "time",
    "status",
    "reserved",
    "endpoint",
    "amount",
    "asset",
    "network",
    "tx",
    "cell",
    "session",
    "mode",
    "error",
    "discrepancy",
)
#: The columns of a calls view (``--calls``).
CALL_COLUMNS = (
    "time",
    "endpoint",
    "kind",
    "http",
    "ms",
    "amount",
    "asset",
    "cell",
    "session",
    "mode",
    "error",
)
#: Shown only when they differ between rows (one value for all is said in the summary line).
_CONSTANT_HIDDEN = frozenset({"session", "mode", "network", "asset"})
#: Shown only when at least one row has something in them.
_EMPTY_HIDDEN = frozenset(
    {"reserved", "tx", "cell", "error", "discrepancy", "amount", "asset", "session", "mode", "network"}
)
#: Merged into another column in the display.
_MERGED = frozenset({"asset", "reserved"})
#: How a table is made to fit, step by step until it does: cut a column's cells to a width
#: (with '…'), or leave a column out (the text then says which; ``--csv`` has them all).
_FIT_STEPS: tuple[tuple[str, int], ...] = (
    ("error", 32),
    ("discrepancy", 24),
    ("discrepancy", 0),
    ("mode", 0),
    ("cell", 0),
    ("error", 16),
    ("network", 0),
    ("endpoint", 14),
    ("kind", 14),
    ("error", 12),
    ("error", 0),
    ("session", 0),
    ("ms", 0),
)

_RESERVED_TITLE = (
    "refused by the server, nothing spent; its signed authorization may still settle until {until}, "
    "so it counts against your caps until then"
)


@dataclass
class LedgerQuery:
    """What a person asked to see."""

    scope: str = "session"
    session_id: str | None = None
    by: str | None = None
    calls: bool = False
    #: The asking notebook's own session (its rows are "this session"), if it has one.
    current_session: str | None = None

    def __post_init__(self) -> None:
        if self.scope not in SCOPES:
            raise ValueError(f"scope must be one of {', '.join(SCOPES)}, got {self.scope!r}")
        if self.by is not None and self.by not in GROUPS:
            raise ValueError(f"by must be one of {', '.join(GROUPS)}, got {self.by!r}")


@dataclass
class _View:
    """How a LedgerFrame displays: what it is, its summary line, how each column reads."""

    title: str
    summary: str
    cells: dict[str, Callable[[Any, pd.Series], str]] = field(default_factory=dict)
    titles: dict[str, Callable[[Any, pd.Series], str | None]] = field(default_factory=dict)
    right: frozenset[str] = frozenset()
    code: frozenset[str] = frozenset()
    #: Counts shown only when some row's is not 0.
    zero_hidden: frozenset[str] = frozenset()
    #: Column headers other than the column's name (the time column's says the day or year).
    headers: dict[str, str] = field(default_factory=dict)


class LedgerFrame(pd.DataFrame):
    """A ledger view: a DataFrame that displays readably (summary line, short tx, fits 100 columns).

    Frames derived from it (a filter, a column) are plain DataFrames.
    """

    _metadata: ClassVar[list[str]] = ["_view"]
    _view: _View | None

    @property
    def _constructor(self) -> Callable[..., pd.DataFrame]:
        return pd.DataFrame

    # -- display ----------------------------------------------------------------------
    def _shown(self) -> list[str]:
        shown = []
        for name in self.columns:
            if name in _MERGED:
                continue
            values = self[name]
            if name in _EMPTY_HIDDEN and not any(_filled(v) for v in values):
                continue
            if name in _CONSTANT_HIDDEN and len(self) > 0 and values.astype(str).nunique(dropna=False) <= 1:
                continue
            if self._view is not None and name in self._view.zero_hidden and not values.astype(bool).any():
                continue
            shown.append(str(name))
        return shown

    def _headers(self) -> dict[str, str]:
        return dict(self._view.headers) if self._view is not None else {}

    def _cell(self, name: str, row: pd.Series) -> str:
        view = self._view
        value = row[name]
        if view is not None and name in view.cells:
            return view.cells[name](value, row)
        return "" if not _filled(value) else str(value)

    def to_text(self, width: int = WIDTH) -> str:
        """The plain-text form: a table no wider than ``width``, then the summary line."""
        view = self._view
        summary = view.summary if view is not None else f"{len(self)} rows"
        lines: list[str] = []
        if len(self):
            names = self._shown()
            columns = [(name, [self._cell(name, row) for _, row in self.iterrows()]) for name in names]
            right = view.right if view is not None else frozenset()
            lines.extend(_fit_table(columns, right, width, self._headers()))
        lines.extend(textwrap.wrap(summary, width=width, subsequent_indent="  ") or [summary])
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.to_text()

    def _repr_html_(self) -> str:
        view = self._view
        summary = html.escape(view.summary if view is not None else f"{len(self)} rows")
        box = (
            "font-family:var(--jp-ui-font-family,system-ui,sans-serif);font-size:13px;"
            "font-size:max(12px,var(--jp-ui-font-size1,13px));color:var(--jp-ui-font-color1,currentColor)"
        )
        out = [f'<div class="tm402-ledger" style="{box}">']
        if len(self):
            names = self._shown()
            right = view.right if view is not None else frozenset()
            code = view.code if view is not None else frozenset()
            out.append('<table class="dataframe"><thead><tr>')
            headers = self._headers()
            out.extend(
                f'<th style="text-align:{"right" if n in right else "left"}">{html.escape(headers.get(n, n))}</th>'
                for n in names
            )
            out.append("</tr></thead><tbody>")
            for _, row in self.iterrows():
                out.append("<tr>")
                for name in names:
                    text = html.escape(self._cell(name, row))
                    hover = view.titles[name](row[name], row) if view is not None and name in view.titles else None
                    if name in code and text:
                        text = f'<code style="font-size:inherit;color:inherit;background:none">{text}</code>'
                    if hover:
                        text = f'<span title="{html.escape(hover)}">{text}</span>'
                    align = "right" if name in right else "left"
                    out.append(f'<td style="text-align:{align}">{text}</td>')
                out.append("</tr>")
            out.append("</tbody></table>")
        out.append(f'<div style="margin-top:4px">{summary}</div></div>')
        return "".join(out)


# -- building views ---------------------------------------------------------------------------------------
def ledger_csv(ledger: Ledger, query: LedgerQuery, *, now: float | None = None) -> pd.DataFrame:
    """What ``--csv`` writes: the ledger's own frame for the rows ``query`` asks for, every column
    (``Ledger.payments()`` or ``Ledger.calls()``), or the sums of ``--by``."""
    now = time.time() if now is None else now
    if query.by:
        return pd.DataFrame(ledger_view(ledger, query, now=now))
    session = query.session_id if query.scope == "session" else None
    since = _midnight(now) if query.scope == "today" else None
    if query.calls:
        return ledger.calls(session_id=session, since=since)
    return ledger.payments(session_id=session, since=since)


def ledger_view(ledger: Ledger, query: LedgerQuery, *, now: float | None = None) -> LedgerFrame:
    """The rows ``query`` asks for, as a :class:`LedgerFrame` (payments, calls, or sums ``--by``)."""
    now = time.time() if now is None else now
    session = query.session_id if query.scope == "session" else None
    since = _midnight(now) if query.scope == "today" else None
    payments = ledger.payment_rows(session_id=session, since=since)
    modes = ledger.session_modes()
    if not query.by and not query.calls:
        return _payments_view(payments, modes, _where(query, ledger, payments, modes, now), now)
    calls = ledger.call_rows(session_id=session, since=since)
    where = _where(query, ledger, [*calls, *payments], modes, now)
    if query.by:
        return _by_view(query.by, calls, payments, where, now)
    return _calls_view(calls, payments, modes, where)


def _midnight(now: float) -> float:
    """UTC midnight before ``now``: "today" as the daily cap counts it."""
    return datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def _where(query: LedgerQuery, ledger: Ledger, rows: list[dict[str, Any]], modes: dict[str, str], now: float) -> str:
    """The summary line's last words: which rows these are, and from which file."""
    if query.scope == "session":
        mode = modes.get(query.session_id or "")
        which = "this session" if query.session_id == query.current_session else "session"
        what = f"{which} ({query.session_id}{', ' + mode if mode else ''})"
    elif query.scope == "today":
        day = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")
        what = f"today ({day} UTC, {_sessions(rows)})"
    else:
        what = f"all sessions ({_sessions(rows)})"
    return f"{what} · {ledger.path}"


def _sessions(rows: list[dict[str, Any]]) -> str:
    n = len({r.get("session_id") for r in rows})
    return f"{n} session{'s' if n != 1 else ''}"


def _network(name: str | None) -> str | None:
    """``eip155:84532`` as the footer writes it: ``base-sepolia``."""
    if not name:
        return name
    known = NETWORKS.get(name)
    return known.v1_name if known is not None else name


def _amount(atomic: int, decimals: int) -> Decimal:
    return Decimal(plain(to_display(atomic, decimals)))


def _is_reserved(row: dict[str, Any], now: float) -> bool:
    return row["status"] == PaymentStatus.FAILED and may_settle_until(row["valid_before"] or 0) > now


def _time_cells(times: Sequence[Any]) -> tuple[Callable[[Any, pd.Series], str], str]:
    """How times read, to the second, and the column's header: the day is said once, in the
    header, when every row is on one day (the year, when on one year)."""
    stamps = [t for t in times if not pd.isna(t)]
    days = {t.strftime("%Y-%m-%d") for t in stamps}
    years = {t.strftime("%Y") for t in stamps}
    if len(days) == 1:
        fmt, header = "%H:%M:%S", f"{days.pop()} UTC"
    elif len(years) == 1:
        fmt, header = "%m-%d %H:%M:%S", f"{years.pop()} UTC"
    else:
        fmt, header = "%Y-%m-%d %H:%M:%S", "time UTC"
    return (lambda t, _row: "" if pd.isna(t) else t.strftime(fmt)), header


def _times(epochs: Sequence[float]) -> pd.Series:
    return pd.Series(pd.to_datetime(list(epochs), unit="s", utc=True), dtype="datetime64[ns, UTC]").dt.floor("s")


def _payments_view(rows: list[dict[str, Any]], modes: dict[str, str], where: str, now: float) -> LedgerFrame:
    data = {
        "time": _times([r["created_at"] for r in rows]),
        "status": [r["status"] for r in rows],
        "reserved": [_is_reserved(r, now) for r in rows],
        "endpoint": [r["endpoint"] for r in rows],
        "amount": [_amount(int(r["amount"]), int(r["decimals"] or 0)) for r in rows],
        "asset": [r["asset_symbol"] for r in rows],
        "network": [_network(r["network"]) for r in rows],
        "tx": [r["tx"] for r in rows],
        "cell": [r["cell_id"] for r in rows],
        "session": [r["session_id"] for r in rows],
        "mode": [modes.get(r["session_id"] or "") for r in rows],
        "error": [r["error"] for r in rows],
        "discrepancy": [r["discrepancy"] for r in rows],
    }
    frame = LedgerFrame({name: pd.Series(data[name], dtype=_dtype(name)) for name in PAYMENT_COLUMNS})
    times, time_header = _time_cells(list(frame["time"]))
    frame._view = _View(
        title="payments",
        summary=_payments_summary(rows, where, now),
        headers={"time": time_header},
        cells={
            "time": times,
            "status": lambda s, row: "reserved" if row["reserved"] else str(s),
            "amount": lambda a, row: _amount_text(a, row["asset"]),
            "tx": lambda tx, _row: _short(tx) if _filled(tx) else "",
            "cell": lambda c, _row: _short_cell(c),
        },
        titles={
            "tx": lambda tx, _row: str(tx) if _filled(tx) else None,
            "cell": lambda c, _row: str(c) if _filled(c) else None,
            "status": lambda _s, row: _reserved_title(rows, row) if row["reserved"] else None,
        },
        right=frozenset({"amount"}),
        code=frozenset({"tx"}),
    )
    return frame


def _dtype(name: str) -> str:
    if name == "time":
        return "datetime64[ns, UTC]"
    if name == "reserved":
        return "bool"
    if name in ("calls", "paid", "cached", "refused", "free"):
        return "int64"
    return "object"


def _amount_text(amount: Any, asset: Any) -> str:
    """``0.017 USDC``, as the footer writes amounts (at least two decimals, every digit kept)."""
    if not _filled(amount) or not _filled(asset):
        return ""
    text = plain(Decimal(amount))
    if "." not in text:
        text += ".00"
    elif len(text.split(".")[1]) < 2:
        text += "0"
    return f"{text} {asset}"


def _reserved_title(rows: list[dict[str, Any]], row: pd.Series) -> str:
    index = int(row.name) if isinstance(row.name, (int, float)) else -1
    until = may_settle_until(rows[index]["valid_before"] or 0) if 0 <= index < len(rows) else 0
    return _RESERVED_TITLE.format(until=_clock(until))


def _clock(epoch: float) -> str:
    return time.strftime("%H:%M UTC", time.gmtime(epoch))


def _sums(rows: list[dict[str, Any]]) -> str:
    """``0.051 USDC + 1.53 TMAI`` (amounts per asset, exact)."""
    totals: dict[tuple[str, int], int] = {}
    for r in rows:
        key = (r["asset_symbol"] or "?", int(r["decimals"] or 0))
        totals[key] = totals.get(key, 0) + int(r["amount"])
    return " + ".join(format_amount(v, dec, sym) for (sym, dec), v in sorted(totals.items()))


def _payments_summary(rows: list[dict[str, Any]], where: str, now: float) -> str:
    if not rows:
        return f"no payments · {where}"
    counted = [r for r in rows if r["status"] in COUNTED]
    reserved = [r for r in rows if _is_reserved(r, now)]
    released = [r for r in rows if r["status"] == PaymentStatus.FAILED and not _is_reserved(r, now)]
    unknown = [r for r in rows if r["status"] == PaymentStatus.UNKNOWN]
    pending = [r for r in rows if r["status"] == PaymentStatus.PENDING]
    word = "payment" if len(rows) == 1 else "payments"
    networks = {_network(r["network"]) for r in rows}
    on = f" on {networks.pop()}" if len(networks) == 1 else ""
    parts = [f"{len(rows)} {word}{on}", f"spent {_sums(counted) or '0.00'}"]
    if unknown:
        parts.append(f"{len(unknown)} unknown ({_sums(unknown)}, counted as spent: may have settled)")
    if pending:
        parts.append(f"{len(pending)} pending ({_sums(pending)})")
    if reserved:
        until = max(may_settle_until(r["valid_before"] or 0) for r in reserved)
        parts.append(f"reserved {_sums(reserved)} (refused, not spent; may still settle until {_clock(until)})")
    if released:
        parts.append(f"{len(released)} refused, released ({_sums(released)}, never spent)")
    return " · ".join([*parts, where])


def _call_costs(
    calls: list[dict[str, Any]], payments: list[dict[str, Any]]
) -> list[tuple[dict[str, Any], CallCost, dict[str, Any] | None]]:
    """Each call row as the footer counted it (its payment joined by id)."""
    by_id = {p["id"]: p for p in payments}
    out = []
    for c in calls:
        pay = by_id.get(c["payment_id"]) if c["payment_id"] else None
        cost = CallCost(
            endpoint=c["endpoint"],
            url=c["url"] or "",
            params=None,
            status=c["status_code"],
            cached=bool(c["cache_hit"]),
            paid=bool(c["paid"]),
            amount=int(pay["amount"]) if pay and c["paid"] else 0,
            asset=pay["asset_symbol"] if pay else None,
            decimals=int(pay["decimals"] or 0) if pay else 6,
            payment_status=pay["status"] if pay else None,
        )
        out.append((c, cost, pay))
    return out


def _kind(call: CallCost) -> str:
    if call.cached:
        return "cached"
    if call.paid:
        return "paid"
    if call.payment_status == PaymentStatus.FAILED:
        return "refused"
    return f"free: {free_kind(call)}"


def _calls_view(
    calls: list[dict[str, Any]], payments: list[dict[str, Any]], modes: dict[str, str], where: str
) -> LedgerFrame:
    joined = _call_costs(calls, payments)
    data = {
        "time": _times([c["created_at"] for c, _, _ in joined]),
        "endpoint": [c["endpoint"] for c, _, _ in joined],
        "kind": [_kind(cost) for _, cost, _ in joined],
        "http": [c["status_code"] for c, _, _ in joined],
        "ms": [round(c["elapsed_ms"] or 0) for c, _, _ in joined],
        "amount": [_amount(cost.amount, cost.decimals) if cost.paid else None for _, cost, _ in joined],
        "asset": [cost.asset if cost.paid else None for _, cost, _ in joined],
        "cell": [c["cell_id"] for c, _, _ in joined],
        "session": [c["session_id"] for c, _, _ in joined],
        "mode": [c["mode"] or modes.get(c["session_id"] or "") for c, _, _ in joined],
        "error": [c["error"] for c, _, _ in joined],
    }
    frame = LedgerFrame({name: pd.Series(data[name], dtype=_dtype(name)) for name in CALL_COLUMNS})
    total = Cost("view", [cost for _, cost, _ in joined])
    summary = f"{total.summary()} · {where}" if joined else f"no calls · {where}"
    times, time_header = _time_cells(list(frame["time"]))
    frame._view = _View(
        title="calls",
        summary=summary,
        headers={"time": time_header},
        cells={
            "time": times,
            "amount": lambda a, row: _amount_text(a, row["asset"]),
            "http": lambda h, _row: str(int(h)) if _filled(h) else "",
            "cell": lambda c, _row: _short_cell(c),
        },
        titles={"cell": lambda c, _row: str(c) if _filled(c) else None},
        right=frozenset({"amount", "http", "ms"}),
    )
    return frame


def _group_key(by: str, row: dict[str, Any]) -> str:
    if by == "endpoint":
        return row["endpoint"] or "(none)"
    if by == "day":
        return datetime.fromtimestamp(row["created_at"], UTC).strftime("%Y-%m-%d")
    return row["cell_id"] or "(no cell)"


def _by_view(
    by: str, calls: list[dict[str, Any]], payments: list[dict[str, Any]], where: str, now: float
) -> LedgerFrame:
    """Spend per endpoint, day or cell: calls (paid, cached, free), spent and reserved per asset."""
    keys: dict[str, None] = {}
    costs: dict[str, Cost] = {}
    for c, cost, _ in _call_costs(calls, payments):
        key = _group_key(by, c)
        keys.setdefault(key)
        costs.setdefault(key, Cost(key)).add(cost)
    spent: dict[str, list[dict[str, Any]]] = {}
    held: dict[str, list[dict[str, Any]]] = {}
    for p in payments:
        key = _group_key(by, p)
        keys.setdefault(key)
        if p["status"] in COUNTED:
            spent.setdefault(key, []).append(p)
        elif _is_reserved(p, now):
            held.setdefault(key, []).append(p)
    order = sorted(keys) if by == "day" else list(keys)
    empty = Cost("none")
    calls_per_key = [costs.get(k, empty).n_calls for k in order]
    data: dict[str, list[Any]] = {
        by: order,
        "calls": calls_per_key,
        "paid": [costs.get(k, empty).n_paid for k in order],
        "cached": [costs.get(k, empty).n_cached for k in order],
        "refused": [costs.get(k, empty).n_refused for k in order],
        "free": [costs.get(k, empty).n_free for k in order],
        "spent": [_sums(spent.get(k, [])) or "0.00" for k in order],
        "reserved": [_sums(held.get(k, [])) or None for k in order],
    }
    frame = LedgerFrame({name: pd.Series(values, dtype=_dtype(name)) for name, values in data.items()})
    counted = [p for p in payments if p["status"] in COUNTED]
    reserved = [p for p in payments if _is_reserved(p, now)]
    n = len(order)
    parts = [
        f"{n} {by}{'s' if n != 1 else ''}",
        f"{sum(calls_per_key)} calls",
        f"spent {_sums(counted) or '0.00'}",
    ]
    if reserved:
        parts.append(f"reserved {_sums(reserved)} (refused, may still settle)")
    frame._view = _View(
        title=f"by {by}",
        summary=" · ".join([*parts, where]),
        cells={"cell": lambda c, _row: _short_cell(c)} if by == "cell" else {},
        titles={"cell": lambda c, _row: str(c)} if by == "cell" else {},
        right=frozenset({"calls", "paid", "cached", "refused", "free", "spent", "reserved"}),
        zero_hidden=frozenset({"refused"}),
    )
    return frame


# -- text layout ----------------------------------------------------------------------------------------------
def _filled(value: Any) -> bool:
    if value is None or value is False:
        return False
    try:
        if pd.isna(value):
            return False
    except (TypeError, ValueError):
        pass
    return str(value) != ""


def _short(tx: Any) -> str:
    text = str(tx)
    return text[:10] + "…" + text[-4:] if len(text) > 16 else text


def _short_cell(cell: Any) -> str:
    """A cell id's first 8 characters (JupyterLab's are UUIDs; the full one is on hover)."""
    if not _filled(cell):
        return ""
    text = str(cell)
    return text if text.startswith("(") else text[:8]


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def _fit_table(
    columns: list[tuple[str, list[str]]], right: frozenset[str], width: int, headers: dict[str, str]
) -> list[str]:
    """Rows of fixed-width text no wider than ``width``: long cells cut with '…', then
    columns left out (and said so) if cutting is not enough."""
    gap = 2
    cols = [(name, [c.replace("\n", " ") for c in cells]) for name, cells in columns]
    widths = {name: max([len(headers.get(name, name)), *(len(c) for c in cells)]) for name, cells in cols}
    dropped: list[str] = []

    def total() -> int:
        return sum(widths[n] for n, _ in cols) + gap * (len(cols) - 1)

    for name, keep in _FIT_STEPS:
        if total() <= width:
            break
        if name not in widths:
            continue
        if keep:  # cut, never below what the header and the step allow
            widths[name] = min(widths[name], max(len(headers.get(name, name)), keep, widths[name] - (total() - width)))
        else:
            cols = [(n, cells) for n, cells in cols if n != name]
            del widths[name]
            dropped.append(name)
    lines = []
    header = [(n, headers.get(n, n)) for n, _ in cols]
    rows = list(zip(*[cells for _, cells in cols], strict=True)) if cols else []
    for cells in [tuple(h for _, h in header), *rows]:
        parts = []
        for (name, _), cell in zip(cols, cells, strict=True):
            text = _cut(cell, widths[name])
            parts.append(text.rjust(widths[name]) if name in right else text.ljust(widths[name]))
        lines.append((" " * gap).join(parts).rstrip()[:width])
    if dropped:
        lines.append(f"(not shown to fit {width} columns: {', '.join(dropped)}; --csv has every column)")
    return lines


# -- %tm ledger --resolve ------------------------------------------------------------------------------


@dataclass
class ResolveReport:
    """What ``%tm ledger --resolve`` found: one line per payment checked on chain, then a summary."""

    checks: list[ChainCheck]
    #: Where the chain was read ("the sandbox's /rpc", an RPC URL), for the first line.
    source: str = ""

    @property
    def summary(self) -> str:
        return resolution_summary(self.checks)

    def lines(self) -> list[str]:
        out = []
        for c in self.checks:
            r = c.row
            amount = _amount_text(_amount(int(r["amount"]), int(r["decimals"] or 0)), r["asset_symbol"])
            was = str(r["status"])
            now = str(c.new_status) if c.new_status is not None else was
            change = f"{was} → {now}" if now != was else f"still {was}"
            when = _clock(float(r["created_at"]))
            nonce = str(r["nonce"] or "")
            out.append(
                f"{str(r['id'])[:8]}  {when}  {r['endpoint'] or '-'}  {amount}  nonce {_short(nonce)}: "
                f"{change} ({c.detail})"
            )
        return out

    def to_text(self) -> str:
        head = [f"checked on chain via {self.source}"] if self.source and self.checks else []
        return "\n".join([*head, *self.lines(), self.summary])

    def __repr__(self) -> str:
        return self.to_text()

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(self.to_text())}</pre>"


def resolve_open_payments(
    ledger: Ledger, *, auth: Any = None, session_id: str | None = None, source: str = ""
) -> ResolveReport:
    """Decide every ``unknown`` and ``settlement_pending`` row of ``ledger`` from its attached chain.

    Every row the ledger holds, not only this process's payments; ``auth`` (the session's
    X402Auth) then brings the payments it still holds in memory up to date.
    """
    checks = ledger.resolve_open(session_id=session_id)
    if auth is not None and getattr(auth, "chain", None) is not None:
        auth.resolve_unknown()
    return ResolveReport(checks, source)
