"""``%tm feed``: the session's payments as they happen, in one display that updates itself.

The notebook's answer to the Composer Feed: each signed payment appears at once
(``pending``), then turns ``settled`` with its transaction or ``failed`` with
the server's reason, wherever in the notebook the call was made.
"""

from __future__ import annotations

import html
import threading
import time
from collections import deque
from typing import Any

from ..x402.auth import PaymentEvent

_STATUS_COLOR = {
    "settled": "#15803d",
    "pending": "#a16207",
    "signed": "#a16207",
    "failed": "#b91c1c",
    "unknown": "#7c3aed",
}


class PaymentFeed:
    """A live table of payments; attach it to a session's payment layer and display it once."""

    def __init__(self, session: Any, *, limit: int = 20) -> None:
        self.session = session
        self.rows: deque[dict[str, Any]] = deque(maxlen=limit)
        self._by_id: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._handle: Any = None
        if session.ledger is not None:
            for r in session.ledger.payment_rows(session_id=session.id)[-limit:]:
                self._add(
                    r["id"],
                    r["created_at"],
                    r["endpoint"],
                    r["amount"],
                    r["decimals"],
                    r["asset_symbol"],
                    r["status"],
                    r["tx"],
                    r["error"],
                )

    def _add(
        self,
        pid: str,
        at: float,
        endpoint: str | None,
        amount: Any,
        decimals: int,
        symbol: str,
        status: str,
        tx: str | None,
        reason: str | None,
    ) -> None:
        from ..money import format_amount

        row = {
            "time": time.strftime("%H:%M:%S", time.localtime(at)),
            "endpoint": endpoint or "",
            "amount": format_amount(int(amount), int(decimals or 0), symbol or ""),
            "status": status,
            "tx": tx or "",
            "reason": reason or "",
        }
        with self._lock:
            if pid in self._by_id:
                self._by_id[pid].update(status=status, tx=tx or self._by_id[pid]["tx"], reason=reason or "")
            else:
                self._by_id[pid] = row
                self.rows.append(row)

    def on_event(self, event: PaymentEvent) -> None:
        rec = event.payment.record
        status = "pending" if event.kind == "signed" else event.kind
        self._add(
            rec.id,
            rec.created_at,
            rec.endpoint,
            rec.amount,
            rec.decimals,
            rec.asset_symbol,
            status,
            rec.tx,
            event.reason,
        )
        if self._handle is not None:
            self._handle.update(self)

    def show(self) -> PaymentFeed:
        """Display once and keep updating that display; returns self."""
        from IPython.display import display

        auth = getattr(self.session, "auth", None)
        if auth is not None and self.on_event not in auth.listeners:
            auth.listeners.append(self.on_event)
        self._handle = display(self, display_id=True)
        return self

    def stop(self) -> None:
        auth = getattr(self.session, "auth", None)
        if auth is not None and self.on_event in auth.listeners:
            auth.listeners.remove(self.on_event)

    def __repr__(self) -> str:
        with self._lock:
            rows = list(self.rows)
        if not rows:
            return "tm402 feed: no payments yet — they will appear here as they happen"
        lines = ["tm402 feed"]
        for r in rows:
            tx = f" {r['tx'][:12]}…" if r["tx"] else ""
            why = f" ({r['reason']})" if r["reason"] and r["status"] != "settled" else ""
            lines.append(f"  {r['time']}  {r['endpoint']:<24} {r['amount']:>16}  {r['status']:<8}{tx}{why}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        with self._lock:
            rows = list(self.rows)
        head = "<b>tm402 feed</b> · payments of this session, newest last"
        if not rows:
            return f"<div>{head}<br><i>no payments yet — they will appear here as they happen</i></div>"
        body = "".join(
            "<tr>"
            + "".join(f"<td>{html.escape(str(v))}</td>" for v in (r["time"], r["endpoint"], r["amount"]))
            + f'<td style="color:{_STATUS_COLOR.get(r["status"], "#333")}">{html.escape(r["status"])}</td>'
            f'<td><code title="{html.escape(r["tx"])}">{html.escape(r["tx"][:12])}</code></td>'
            f"<td>{html.escape(r['reason'] if r['status'] != 'settled' else '')}</td></tr>"
            for r in rows
        )
        return (
            f"<div>{head}<table><thead><tr><th>time</th><th>endpoint</th><th>amount</th><th>status</th>"
            f"<th>tx</th><th>reason</th></tr></thead><tbody>{body}</tbody></table></div>"
        )


class StatusLine:
    """One updating status line for multi-request work (never stacked bars, never clear_output)."""

    def __init__(self) -> None:
        self._handle: Any = None

    def __call__(self, done: int, total: int, stage: str) -> None:
        from IPython.display import HTML, display

        text = "" if stage == "done" else f"tm402 · fetching {done} of {total} calls…"
        obj = HTML(f'<span style="font-size:11px;color:#666">{html.escape(text)}</span>') if text else HTML("")
        if self._handle is None:
            if text:
                self._handle = display(obj, display_id=True)
        else:
            self._handle.update(obj)
