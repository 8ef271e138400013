"""The cell that runs ``%load_ext tm402_nb`` is tracked like any other: it started before the
extension's hooks existed, so loading starts them for it (footer, cell id, per-cell cap)."""

from __future__ import annotations

import pytest

import tm402_nb as tm
from tests.notebook.shell import reset_magics
from tm402_nb.errors import BudgetExceeded
from tm402_nb.session import CONFIGURED


@pytest.fixture
def fresh(ip):
    """The module's shell with the extension unloaded, as before a notebook's first cell."""
    ip.run_line_magic("unload_ext", "tm402_nb")
    yield ip
    tm.session().close()
    reset_magics(ip)
    CONFIGURED.clear()
    ip.run_line_magic("load_ext", "tm402_nb")


def test_the_loading_cell_gets_its_footer(fresh, capsys):
    fresh.run_cell("%load_ext tm402_nb\n%tm connect sandbox\n%tm grade BTC")
    footers = [line for line in capsys.readouterr().out.splitlines() if line.startswith("tm402 · ")]
    assert len(footers) == 1 and "1 paid" in footers[0]


def test_max_per_cell_holds_in_the_cell_that_loads_and_connects(fresh, capsys):
    cell = "%config TMMagics.max_per_cell = 0.02\n%load_ext tm402_nb\n%tm connect sandbox\n%tm grade BTC\n%tm grade ETH"
    with pytest.raises(BudgetExceeded, match="per-cell cap") as info:
        fresh.run_cell(cell)
    assert "TMMagics.max_per_cell = 0.04" in info.value.hint  # what this cell spent plus the refused call
    assert len(tm.session().ledger.payments()) == 1
