"""Build the tutorial notebooks from their sources and execute them against the sandbox.

    python notebooks/build.py            # every notebook
    python notebooks/build.py 00 03      # the ones whose name starts with these

Sources live in ``notebooks/src/*.py`` in the "percent" format: ``# %%`` starts a
code cell, ``# %% [markdown]`` a markdown cell (its lines start with ``# ``), and
``# %% tags=["raises-exception"]`` tags a cell. Each notebook is executed fresh
with nbclient in sandbox mode (no wallet, no network beyond 127.0.0.1) and
written with its outputs, so it renders on GitHub and nbviewer.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
SRC = HERE / "src"
_HEADER = re.compile(r"^# %%(?P<md> \[markdown\])?(?:\s+tags=(?P<tags>\[.*\]))?\s*$")


def parse_percent(text: str) -> nbformat.NotebookNode:
    """Percent-format source → a notebook (no outputs)."""
    cells: list[nbformat.NotebookNode] = []
    kind, tags, lines = None, [], []

    def flush() -> None:
        if kind is None:
            return
        body = "\n".join(lines).strip("\n")
        if kind == "markdown":
            body = "\n".join(ln[2:] if ln.startswith("# ") else ln.lstrip("#") for ln in body.splitlines())
            cell = nbformat.v4.new_markdown_cell(body)
        else:
            cell = nbformat.v4.new_code_cell(body)
        if tags:
            cell.metadata["tags"] = tags
        cells.append(cell)

    for line in text.splitlines():
        m = _HEADER.match(line)
        if m:
            flush()
            kind = "markdown" if m.group("md") else "code"
            tags = ast.literal_eval(m.group("tags")) if m.group("tags") else []
            lines = []
        elif kind is not None:
            lines.append(line)
    flush()
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata.update(notebook_metadata())
    return nb


def notebook_metadata() -> dict:
    """The ``kernelspec`` and ``language_info`` JupyterLab writes when it opens a notebook on the
    ``python3`` kernel, so a tutorial opens without the unsaved-changes dot.

    JupyterLab copies the kernelspec's ``display_name`` ("Python 3 (ipykernel)", as ipykernel
    installs it) and the kernel's ``language_info`` (ipykernel's, with the running Python's
    version) into the notebook: a notebook saved with anything else is changed, hence dirty, as
    soon as its kernel starts. The version is this interpreter's (the kernel the build ran);
    a reader on another Python version still sees the dot, as with any notebook.
    """
    from ipykernel.ipkernel import IPythonKernel
    from ipykernel.kernelspec import get_kernel_dict

    spec = get_kernel_dict()
    return {
        "kernelspec": {"display_name": spec["display_name"], "language": spec["language"], "name": "python3"},
        "language_info": json.loads(json.dumps(IPythonKernel.language_info)),
    }


def execute(nb: nbformat.NotebookNode, *, timeout: int = 120) -> nbformat.NotebookNode:
    """Run every cell in sandbox mode, in a throwaway home (ledger, cache), from notebooks/."""
    from tm402_nb.demo import execute_in_sandbox

    with tempfile.TemporaryDirectory(prefix="tm402-nb-", ignore_cleanup_errors=True) as home:
        execute_in_sandbox(nb, cwd=HERE, timeout=timeout, home=home)
    return nb


def scrub(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Keep outputs reproducible and free of machine paths: drop the temp home from any text.

    The notebook's metadata is set again (nbclient rewrote ``language_info``) and the cells lose
    nbclient's timing (``metadata.execution``), which JupyterLab does not record either: building
    twice writes the same metadata.
    """
    nb.metadata.update(notebook_metadata())
    pattern = re.compile(r"(/tmp|/var/folders)[^\s'\"<>]*")
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        for out in cell.get("outputs", []):
            if "text" in out:
                out["text"] = pattern.sub("<tmp>", out["text"])
            for key, value in list(out.get("data", {}).items()):
                if isinstance(value, str):
                    out["data"][key] = pattern.sub("<tmp>", value)
    return nb


def build(names: list[str]) -> int:
    sources = sorted(SRC.glob("*.py"))
    if names:
        sources = [p for p in sources if any(p.stem.startswith(n) for n in names)]
    failed = 0
    for src in sources:
        target = HERE / f"{src.stem}.ipynb"
        nb = parse_percent(src.read_text())
        try:
            execute(nb)
        except Exception as exc:
            print(f"FAILED {target.name}: {type(exc).__name__}: {str(exc)[:500]}")
            failed += 1
            continue
        nbformat.write(scrub(nb), target)
        # The notebook is what users read and what `make test` lints, so it is
        # formatted as committed; the percent source keeps the author's layout.
        subprocess.run([sys.executable, "-m", "ruff", "check", "--fix", "--quiet", str(target)], check=False)
        subprocess.run([sys.executable, "-m", "ruff", "format", "--quiet", str(target)], check=True)
        print(f"built  {target.name}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(build(sys.argv[1:]))
