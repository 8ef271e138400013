"""notebooks/build.py writes the metadata JupyterLab would write, so a tutorial opens without the
unsaved-changes dot, and the same metadata on every build."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import nbformat
import pytest
from ipykernel.ipkernel import IPythonKernel

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "notebooks" / "src").glob("*.py"))
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _build_module():
    spec = importlib.util.spec_from_file_location("tm402_notebooks_build", ROOT / "notebooks" / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = _build_module()


def _as_executed(src: Path, run: int) -> nbformat.NotebookNode:
    """What a build has in hand after nbclient ran the notebook: its language_info, its timings."""
    nb = build.parse_percent(src.read_text())
    nb.metadata["language_info"] = {"name": "python", "version": f"3.0.{run}"}
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.metadata["execution"] = {"iopub.execute_input": f"2026-01-0{run + 1}T00:00:00Z"}
    return build.scrub(nb)


def _metadata(text: str) -> str:
    nb = json.loads(text)
    return json.dumps([nb["metadata"], [c["metadata"] for c in nb["cells"]]], sort_keys=True)


def test_the_kernelspec_is_the_one_jupyterlab_writes():
    nb = build.parse_percent(SOURCES[0].read_text())
    assert nb.metadata["kernelspec"] == {
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
        "name": "python3",
    }
    assert nb.metadata["language_info"] == IPythonKernel.language_info  # what the kernel reports on start


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_building_twice_writes_the_same_metadata(src):
    first, second = (nbformat.writes(_as_executed(src, run)) for run in (0, 1))
    assert _metadata(first) == _metadata(second)
    nb = json.loads(first)
    assert nb["metadata"] == build.notebook_metadata()
    assert not any("execution" in c["metadata"] for c in nb["cells"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_tutorials_open_clean(path):
    metadata = nbformat.read(path, as_version=4).metadata
    assert metadata["kernelspec"] == build.notebook_metadata()["kernelspec"]
