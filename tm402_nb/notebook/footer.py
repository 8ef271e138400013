"""The per-cell cost footer: one line under every cell that made or reused calls.

A ``pre_run_cell`` hook starts a fresh :class:`~tm402_nb.tokenmetrics.cost.Cost`
and listens to every call of every session (magics, ``df.tm``, plain client
code alike); ``post_run_cell`` shows the footer *below* the cell's result (or
under ``df = %tm ...``, which has no result) and nothing for cells without calls.
HTML for JupyterLab, plain text for nbconvert and logs.

Money is told apart three ways: *spent* (settled, or perhaps settled with no answer
saying so: "not settled, outcome unknown"), *reserved* (a payment the server refused,
e.g. a paid request answered 404 "Data not found": nothing spent, but its signed
authorization could still be settled until it expires, so it stays counted until then)
and *released* (such an authorization once expired: never spent, no longer counted).
"""

from __future__ import annotations

import html
import time
import uuid
from typing import Any

from ..cells import current_cell_id, current_cell_run
from ..tokenmetrics.cost import GLOBAL_LISTENERS, CallCost, Cost
from ..tokenmetrics.modes import Mode

# Colours come from the JupyterLab theme (light, dark, or a user's own), so the footer reads as
# well as the text around it. Fallbacks where no theme defines them (classic Notebook, VS Code,
# an nbconvert page): the host's own text colour (currentColor) and a grey rule that works on
# white and on black. Contrast (WCAG AA, >= 4.5:1): --jp-ui-font-color1 is the theme's body text
# (16:1 on light, 13:1 on dark); the badge is black on --jp-warn-color0 (orange-900 on light,
# 5.5:1; orange-700 on dark, 7.8:1; the fallback #e65100 is orange-900). Text is >= 12 px.
_BADGE = (
    "display:inline-block;padding:0 6px;margin-right:6px;border-radius:3px;"
    "background:var(--jp-warn-color0,#e65100);color:#000;font-weight:600;font-size:12px;"
    "line-height:1.5;letter-spacing:.05em"
)
_BOX = (
    "font-family:var(--jp-ui-font-family,system-ui,sans-serif);"
    "font-size:max(12px,var(--jp-ui-font-size1,13px));line-height:1.5;"
    "color:var(--jp-ui-font-color1,currentColor);"
    "border-top:1px solid var(--jp-border-color2,rgba(128,128,128,.4));padding-top:3px;margin-top:2px"
)
#: Receipt ids: the theme's code font, same colour as the text (no grey-on-grey box).
_CODE = "font-family:var(--jp-code-font-family,monospace);font-size:inherit;color:inherit;background:none"


#: What the reserved and released parts mean (the HTML form shows it on hover).
_RESERVED_TITLE = (
    "The server refused this payment (nothing was spent), but the signed authorization could still "
    "be settled by whoever holds it until it expires: it counts against your caps until then, and is "
    "released after."
)
_RELEASED_TITLE = "The server refused this payment and its authorization has expired: never spent, no longer counted."


def _now() -> float:
    return time.time()


def _short(tx: str) -> str:
    return tx[:10] + "…" + tx[-4:] if len(tx) > 16 else tx


class CostFooter:
    """What a cell cost. ``repr()`` is the plain-text form, ``_repr_html_`` the notebook form."""

    def __init__(self, cost: Cost, session: Any = None) -> None:
        self.cost = cost
        self.mode = getattr(session, "mode", None)
        self.network = getattr(session, "network", None) or (cost.networks[0] if cost.networks else None)
        self.budget = session.budget_text() if session is not None and getattr(session, "policy", None) else None
        self.unknown = cost.unknown
        self.settlement_pending = cost.settlement_pending
        # As the cell ends, like the budget: a refused payment whose authorization expired while
        # a long cell ran is released, one that may still settle is reserved.
        now = _now()
        self.reserved = cost.reserved_text(now)
        self.released = cost.released_text(now)
        self.discrepancies = cost.discrepancies

    @property
    def sandbox(self) -> bool:
        return self.mode == Mode.SANDBOX

    def _titled_parts(self) -> list[tuple[str, str | None]]:
        """Each part of the footer, with what it means where that needs saying."""
        parts: list[tuple[str, str | None]] = [(self.cost.summary(), None)]
        if self.unknown:
            parts.append((f"{len(self.unknown)} payment(s) not settled, outcome unknown — see %tm ledger", None))
        if self.settlement_pending:
            parts.append(
                (
                    f"{len(self.settlement_pending)} paid (settlement pending: see %tm ledger --resolve)",
                    "the transfer was broadcast but not confirmed yet; it counts against the budget",
                )
            )
        if self.reserved:
            parts.append((self.reserved, _RESERVED_TITLE))
        if self.released:
            parts.append((self.released, _RELEASED_TITLE))
        if self.discrepancies:
            n = len(self.discrepancies)
            parts.append((f"⚠ {n} receipt(s) disagree with what was signed — see %tm ledger", None))
        if self.budget:
            parts.append((f"session {self.budget}", None))
        if self.network:
            parts.append((self.network, None))
        return parts

    def _parts(self) -> list[str]:
        return [text for text, _ in self._titled_parts()]

    def __repr__(self) -> str:
        parts = self._parts()
        receipts = self.cost.receipts
        if receipts:
            parts.insert(1, "tx " + ", ".join(_short(t) for t in receipts[:3]) + (" …" if len(receipts) > 3 else ""))
        prefix = "tm402 · SANDBOX" if self.sandbox else f"tm402 · {self.mode or Mode.X402}"
        return f"{prefix} · " + " · ".join(parts)

    def _repr_html_(self) -> str:
        badge = f'<span style="{_BADGE}" title="synthetic data, no real money">SANDBOX</span>' if self.sandbox else ""
        bits = [
            f'<span title="{html.escape(title)}">{html.escape(text)}</span>' if title else html.escape(text)
            for text, title in self._titled_parts()
        ]
        receipts = self.cost.receipts
        if receipts:
            txs = ", ".join(
                f'<code style="{_CODE}" title="{html.escape(t)}">{html.escape(_short(t))}</code>' for t in receipts[:3]
            )
            more = f" +{len(receipts) - 3}" if len(receipts) > 3 else ""
            bits.insert(1, f"tx {txs}{more}")
        return f'<div class="tm402-footer" style="{_BOX}">{badge}tm402 · ' + " · ".join(bits) + "</div>"


class CellTracker:
    """Registered on ``pre_run_cell`` / ``post_run_cell`` by the extension."""

    def __init__(self, magics: Any) -> None:
        self.magics = magics
        self.cost: Cost | None = None
        self._token: Any = None
        self._run_token: Any = None

    def _on_call(self, call: CallCost) -> None:
        if self.cost is not None:
            self.cost.add(call)

    def pre_run_cell(self, info: Any = None) -> None:
        self.cost = Cost("cell")
        if self._on_call not in GLOBAL_LISTENERS:
            GLOBAL_LISTENERS.append(self._on_call)
        self._token = current_cell_id.set(getattr(info, "cell_id", None))
        # A fresh run id: the per-cell cap (the session's policy counts by it) holds per run of a
        # cell, including the run that opens the session.
        self._run_token = current_cell_run.set(uuid.uuid4().hex)

    def post_run_cell(self, result: Any = None) -> None:
        if self._on_call in GLOBAL_LISTENERS:
            GLOBAL_LISTENERS.remove(self._on_call)
        if self._token is not None:
            try:
                current_cell_id.reset(self._token)
            except ValueError:  # reset from another context: just clear it
                current_cell_id.set(None)
            self._token = None
        if self._run_token is not None:
            try:
                current_cell_run.reset(self._run_token)
            except ValueError:
                current_cell_run.set(None)
            self._run_token = None
        cost, self.cost = self.cost, None
        if cost is None or not cost.n_calls:
            return  # no footer for cells that made no calls
        if self.magics is not None and (not self.magics.show_footer or self.magics.feedback < 1):
            return
        from IPython.display import display

        from ..session import current_session

        display(CostFooter(cost, current_session()))

    def close(self) -> None:
        if self._on_call in GLOBAL_LISTENERS:
            GLOBAL_LISTENERS.remove(self._on_call)
