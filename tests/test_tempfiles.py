"""Whatever the toolkit creates in the temporary folder, it removes: on close, and at exit for a
session nobody closed (a script's end, a kernel shut down). ``make demo`` removes its home unless
asked to keep it (``--home DIR``)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def tmpdir_env(tmp_path, monkeypatch):
    """A private temporary folder for this process and every process it starts."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() caches: read TMPDIR again
    return folder


def _left(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_a_session_never_closed_leaves_nothing_at_exit(tmpdir_env, tmp_path):
    code = (
        "import tempfile, os\n"
        "import tm402_nb as tm\n"
        "s = tm.connect(mode='sandbox')\n"
        "s.client.frame('tm-grade', symbol='BTC')\n"  # a paid call: the sandbox's database has been written
        "print(sorted(os.listdir(tempfile.gettempdir())))\n"  # ... and no s.close()
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TM402_HOME": str(tmp_path / "home")}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "tm402-sandbox-" in done.stdout  # there was a file while it ran
    assert _left(tmpdir_env) == []


def test_close_removes_the_sandbox_files(tmpdir_env):
    import tm402_nb as tm

    s = tm.connect(mode="sandbox")
    assert any(name.startswith("tm402-sandbox-") for name in _left(tmpdir_env))
    s.close()
    assert _left(tmpdir_env) == []


def test_the_scripted_demo_removes_its_home(tmpdir_env, capsys):
    from tm402_nb.demo import main

    assert main(["--script"]) == 0
    assert "temporary: --home DIR keeps it" in capsys.readouterr().out
    assert _left(tmpdir_env) == []


def test_the_scripted_demo_keeps_a_home_it_was_given(tmpdir_env, tmp_path, capsys):
    from tm402_nb.demo import main

    home = tmp_path / "kept"
    assert main(["--script", "--home", str(home)]) == 0
    assert (home / "ledger.sqlite3").is_file()
    assert f"in {home.resolve() / 'ledger.sqlite3'}\n" in capsys.readouterr().out
    assert _left(tmpdir_env) == []


@pytest.mark.slow
def test_a_headless_run_removes_its_home_and_its_kernel_files(tmpdir_env, tmp_path):
    """``make demo`` runs a notebook this way: its home, the kernel's sockets and the kernel's
    sandbox (left open by the notebook) are all gone when it returns."""
    from tm402_nb.demo import execute_in_sandbox

    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                "import os, tempfile\nimport tm402_nb as tm\ns = tm.connect()\n"
                "s.client.frame('tm-grade', symbol='BTC')\nprint(sorted(os.listdir(tempfile.gettempdir())))"
            )
        ]
    )
    env_path = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env_path) if p)
    try:
        execute_in_sandbox(nb, cwd=tmp_path, timeout=120)
    finally:
        if env_path is None:
            os.environ.pop("PYTHONPATH")
        else:
            os.environ["PYTHONPATH"] = env_path
    seen = nb.cells[0].outputs[0]["text"]
    assert "tm402-demo-" in seen and "tm402-sandbox-" in seen  # all there while the kernel ran
    assert _left(tmpdir_env) == []
