from __future__ import annotations

import pytest

from tests.notebook.shell import make_shell


@pytest.fixture(scope="module")
def ip():
    """A real IPython shell with the extension loaded (unloaded after the module)."""
    shell = make_shell()
    shell.run_line_magic("load_ext", "tm402_nb")
    yield shell
    shell.run_line_magic("unload_ext", "tm402_nb")
