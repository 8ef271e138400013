from __future__ import annotations

import pytest

import tm402_nb as tm
from tests.notebook.shell import make_shell, reset_magics


@pytest.fixture(scope="module")
def ip():
    """A real IPython shell with the extension loaded (unloaded after the module)."""
    shell = make_shell()
    shell.run_line_magic("load_ext", "tm402_nb")
    yield shell
    shell.run_line_magic("unload_ext", "tm402_nb")


#: Notebook variables the tests' cells create, removed after each test that used ``s``.
CELL_VARIABLES = ("df", "grades", "q", "p", "syms", "out", "x")


@pytest.fixture
def s(ip, tmp_path, monkeypatch):
    """A fresh sandbox session per test, run from an empty folder; settings and the cells'
    variables back to defaults afterwards."""
    monkeypatch.chdir(tmp_path)
    session = tm.connect(mode="sandbox")
    ip.user_ns["s"] = session  # cells refer to it as `s`
    yield session
    session.close()
    reset_magics(ip)
    for name in CELL_VARIABLES:
        ip.user_ns.pop(name, None)


@pytest.fixture
def lost_answer(ip, s, capsys):
    """A cell whose paid answer is lost: a client named ``impatient`` in the shell (0.3 s timeout, no
    retry) learns the price on BTC, then ``impatient.frame("tm-grade", token_id=3306)`` pays and times
    out while the sandbox holds its answer for a second. Yields that cell's source for re-running."""
    from tm402_nb.errors import PaymentOutcomeUnknown
    from tm402_nb.tokenmetrics.client import Client, RetryPolicy

    ip.user_ns["impatient"] = Client(
        mode="sandbox",
        base_url=s.sandbox.api_url,
        auth=s.auth,
        ledger=s.ledger,
        cost=s.cost,
        timeout=0.3,
        retry=RetryPolicy(attempts=1, base=0.01),
        progress=False,
    )
    ip.run_cell('impatient.frame("tm-grade", symbol="BTC")')  # learn the price: the next call is pre-paid
    capsys.readouterr()  # the test reads what the lost answer's cell printed, from here on
    cell = 'impatient.frame("tm-grade", token_id=3306)'
    s.sandbox.set_faults(latency_ms=1000)
    try:
        with pytest.raises(PaymentOutcomeUnknown):
            ip.run_cell(cell)
    finally:
        s.sandbox.set_faults()
    yield cell
    ip.user_ns.pop("impatient", None)
