"""Which notebook cell is running: set by the notebook layer, read below it.

The ledger names the cell a payment came from (``current_cell_id``, the cell's
id as Jupyter gives it), and the spend policy holds each *run* of a cell to the
per-cell cap (``current_cell_run``: a fresh id every time a cell runs, so a cell
run twice gets its cap twice). Both are context variables: code outside a
notebook sees None, and threads a call starts inherit them.
"""

from __future__ import annotations

import contextvars

__all__ = ["current_cell_id", "current_cell_run"]

#: The running cell's id (Jupyter's), or None outside a notebook.
current_cell_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("tm402_cell_id", default=None)
#: A fresh id for each run of a cell, or None outside a notebook.
current_cell_run: contextvars.ContextVar[str | None] = contextvars.ContextVar("tm402_cell_run", default=None)
