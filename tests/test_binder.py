"""Binder: a fresh virtual environment installed from binder/requirements.txt runs the quickstart."""

from __future__ import annotations

import os
import subprocess
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_binder_files_select_the_sandbox():
    assert (ROOT / "binder" / "runtime.txt").read_text().strip().startswith("python-3.1")
    start = (ROOT / "binder" / "start").read_text()
    assert "TM402_MODE=sandbox" in start and start.rstrip().endswith('exec "$@"')
    assert os.access(ROOT / "binder" / "start", os.X_OK)


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_fresh_binder_environment_runs_the_quickstart(tmp_path):
    env_dir = tmp_path / "binder-venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    # Exactly what Binder does: install binder/requirements.txt from the repository root.
    install = subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "-r", "binder/requirements.txt"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert install.returncode == 0, install.stderr[-2000:]
    kernel = subprocess.run(
        [str(py), "-m", "ipykernel", "install", "--prefix", str(env_dir), "--name", "python3"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert kernel.returncode == 0, kernel.stderr[-1000:]
    env = {k: v for k, v in os.environ.items() if k not in ("TM402_PRIVATE_KEY", "TM402_KEY_FILE", "TM_API_KEY")}
    env.update(
        {
            "TM402_HOME": str(tmp_path / "home"),
            "JUPYTER_PATH": str(env_dir / "share" / "jupyter"),
            "PATH": f"{env_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        }
    )
    env.pop("PYTHONPATH", None)
    run = subprocess.run(
        [
            "bash",
            "binder/start",
            str(py),
            "-m",
            "jupyter",
            "nbconvert",
            "--to",
            "notebook",
            "--execute",
            "--output-dir",
            str(tmp_path),
            "--ExecutePreprocessor.timeout=120",
            "notebooks/00_quickstart.ipynb",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    executed = (tmp_path / "00_quickstart.ipynb").read_text()
    assert "tm402 · SANDBOX" in executed and '"output_type": "error"' not in executed
