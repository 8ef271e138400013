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
