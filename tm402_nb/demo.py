"""``tm402-nb demo``: start the sandbox, make paid calls, show what each one cost.

Needs no wallet: the sandbox funds a throwaway one. The figures printed are
the ledger's, so what you see is what was recorded.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


def _steps(s: Any) -> list[tuple[str, Callable[[], Any]]]:
    c = s.client
    return [
        ('frame("tm-grade", symbol=["BTC", "ETH"])', lambda: c.frame("tm-grade", symbol=["BTC", "ETH"])),
        ('frame("tm-grade", symbol=["BTC", "ETH"])  # again', lambda: c.frame("tm-grade", symbol=["BTC", "ETH"])),
        ('quote("ai-reports", symbol="BTC")', lambda: c.quote("ai-reports", symbol="BTC")),
        (
            'frame("trading-signals", symbol="BTC", start=…, end=…)',
            lambda: c.frame("trading-signals", symbol="BTC", start="2026-07-01", end="2026-10-31"),
        ),
        ('frame("price-prediction", symbol="ETH")', lambda: c.frame("price-prediction", symbol="ETH")),
        ('frame("tokens", symbol="SOL")', lambda: c.frame("tokens", symbol="SOL")),
    ]


SECRETS = ("TM402_PRIVATE_KEY", "TM402_KEY_FILE", "TM_API_KEY")


def execute_in_sandbox(
    nb: Any,
    *,
    cwd: Path,
    timeout: int = 120,
    home: str | None = None,
    on_cell_execute: Callable[..., Any] | None = None,
) -> None:
    """Run every cell of ``nb`` in a kernel in sandbox mode: a throwaway home, no key in sight.

    Raises nbclient's CellExecutionError at the first failing cell. ``make demo``, the
    tutorials' builder (``make notebooks``) and ``tm402-nb estimate`` run notebooks this way.
    Each cell's id reaches the kernel as it does from JupyterLab, so ledger rows name their
    cell. ``on_cell_execute(cell=, cell_index=)`` is called just before each code cell is sent.
    Without ``home``, the run's home (its ledger and cache) is a temporary folder removed when
    the run ends; the kernel removes its sandbox's own temporary files as it exits.
    """
    if home is None:
        with tempfile.TemporaryDirectory(prefix="tm402-demo-", ignore_cleanup_errors=True) as tmp:
            execute_in_sandbox(nb, cwd=cwd, timeout=timeout, home=tmp, on_cell_execute=on_cell_execute)
        return

    import os

    from traitlets.config import Config

    from .tokenmetrics.modes import Mode

    env = {"TM402_MODE": Mode.SANDBOX.value, "TM402_HOME": home}
    saved = {k: os.environ.get(k) for k in (*env, *SECRETS, "MPLBACKEND")}
    os.environ.update(env)
    for k in (*SECRETS, "MPLBACKEND"):  # no key; the kernel's inline backend draws the figures
        os.environ.pop(k, None)
    # The kernel talks only to this process: over Unix sockets in a private (0700) temporary
    # folder rather than plain TCP on 127.0.0.1, which any local user could connect to (and which
    # ipykernel warns about). The path is absolute because the kernel runs in the notebook's folder.
    # Windows has no IPC transport in ZeroMQ: it keeps the default.
    sockets = tempfile.TemporaryDirectory(prefix="tm402-kernel-")
    ipc = {"transport": "ipc", "ip": os.path.join(sockets.name, "kernel")} if os.name == "posix" else {}
    try:
        _client_class()(
            nb,
            timeout=timeout,
            kernel_name="python3",
            resources={"metadata": {"path": str(cwd)}},
            config=Config({"KernelManager": ipc}),
            on_cell_execute=on_cell_execute,
        ).execute()
    finally:
        sockets.cleanup()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _client_class() -> type:
    """nbclient's NotebookClient, telling the kernel which cell it runs as JupyterLab does.

    JupyterLab sends each cell's id in the ``execute_request``'s metadata (``cellId``);
    ipykernel hands it to IPython, whose ``pre_run_cell`` hooks see it as
    ``ExecutionInfo.cell_id``, and the notebook extension stamps every ledger row with it.
    nbclient (0.10, 0.11) sends no metadata, so a headless run would leave every row
    without its cell. The id is added to the request's metadata only, never to the notebook.
    """
    from nbclient import NotebookClient

    class SandboxNotebookClient(NotebookClient):
        _running_cell_id: str | None = None

        async def async_execute_cell(self, cell: Any, cell_index: int, *args: Any, **kw: Any) -> Any:
            cell_id = cell.get("id")
            self._running_cell_id = cell_id if isinstance(cell_id, str) and cell_id else None
            try:
                return await super().async_execute_cell(cell, cell_index, *args, **kw)
            finally:
                self._running_cell_id = None

        async def async_start_new_kernel_client(self) -> Any:
            kc = await super().async_start_new_kernel_client()
            build = kc.session.msg

            def msg(
                msg_type: str, content: Any = None, parent: Any = None, header: Any = None, metadata: Any = None
            ) -> Any:
                if msg_type == "execute_request" and self._running_cell_id:
                    metadata = {**(metadata or {}), "cellId": self._running_cell_id}
                return build(msg_type, content, parent, header, metadata)

            kc.session.msg = msg
            return kc

    return SandboxNotebookClient


def run_notebook(path: Path, out_dir: Path, home: Path | None = None) -> int:
    """Execute ``path`` headless in sandbox mode, print each cell's cost line, write HTML.

    The run's ledger and cache live in ``home`` (kept), else in a temporary folder removed at the end.
    """
    import nbformat
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    print(f"running {path.name} headless against the sandbox (synthetic data, no real money)\n")
    failed = None
    started = time.perf_counter()
    try:
        execute_in_sandbox(nb, cwd=path.parent, home=_home_dir(home))
    except CellExecutionError as exc:
        failed = exc
    for n, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
        first = cell.source.strip().splitlines()[0] if cell.source.strip() else ""
        costs = [
            o.data["text/plain"]
            for o in cell.get("outputs", [])
            if o.get("output_type") == "display_data" and o.get("data", {}).get("text/plain", "").startswith("tm402 · ")
        ]
        status = "  " if cell.execution_count else "✗ "
        line = f"{status}[{n + 1:>2}] {first[:58]:<58}"
        print(line + (f"  {costs[0].removeprefix('tm402 · ')}" if costs else ""))
    from nbconvert import HTMLExporter

    out_dir.mkdir(parents=True, exist_ok=True)
    html_path = out_dir / f"{path.stem}.html"
    body, _ = HTMLExporter().from_notebook_node(nb)
    html_path.write_text(body)
    print(f"\n{time.perf_counter() - started:.1f} s · HTML written to {html_path}")
    if home is not None:
        print(f"ledger and cache kept in {home}")
    if failed is not None:
        print(f"\nFAILED: {str(failed).strip().splitlines()[-1][:300]}")
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tm402-nb demo", description=__doc__)
    parser.add_argument("--x402-version", type=int, choices=(1, 2), default=1)
    parser.add_argument("--budget", default="1.00")
    parser.add_argument(
        "--notebook", default="notebooks/00_quickstart.ipynb", help="notebook to run headless (default: the quickstart)"
    )
    parser.add_argument("--out", default="build", help="folder for the HTML rendering")
    parser.add_argument("--script", action="store_true", help="run the scripted demo instead of the notebook")
    parser.add_argument(
        "--home",
        type=Path,
        help="keep the run's ledger and cache in this folder (default: a temporary folder, removed at the end)",
    )
    args = parser.parse_args(argv)
    notebook = Path(args.notebook)
    if not args.script and notebook.is_file():
        return run_notebook(notebook, Path(args.out), home=args.home)
    if args.home is not None:
        args.home.mkdir(parents=True, exist_ok=True)
        return _script(args, args.home.resolve(), kept=True)
    with tempfile.TemporaryDirectory(prefix="tm402-demo-", ignore_cleanup_errors=True) as tmp:
        return _script(args, Path(tmp), kept=False)


def _home_dir(home: Path | None) -> str | None:
    """``home`` created if need be, as the absolute path a kernel's environment takes; None stays None."""
    if home is None:
        return None
    home.mkdir(parents=True, exist_ok=True)
    return str(home.resolve())


def _script(args: argparse.Namespace, home: Path, *, kept: bool) -> int:
    """The scripted demo: six calls against the sandbox, each with what it cost."""
    from .session.core import Session
    from .tokenmetrics.modes import Mode

    with Session(
        Mode.SANDBOX, budget=args.budget, x402_version=args.x402_version, ledger=home / "ledger.sqlite3", progress=False
    ) as s:
        assert s.sandbox is not None and s.wallet is not None  # a sandbox session has both
        print(f"SANDBOX  {s.sandbox.url}  (x402 v{args.x402_version}, {s.network}, synthetic data, no real money)")
        print(f"wallet   {s.wallet.address}  (throwaway, funded by the sandbox)\n")
        for label, step in _steps(s):
            with s.scope(label) as cost:
                started = time.perf_counter()
                result = step()
                ms = (time.perf_counter() - started) * 1000
            what = f"{len(result):>3} rows" if hasattr(result, "columns") else repr(result)
            print(f"» {label}\n    {what} in {ms:.0f} ms — {cost.summary()}")
            if cost.receipts:
                print(f"    receipt {cost.receipts[-1][:18]}…")
        payments = s.ledger.payments()
        counts = ", ".join(f"{k} {v}" for k, v in payments["status"].value_counts().items()) or "none"
        print(f"\nsession  {s.cost.total.summary()}; {s.budget_text()}")
        where = s.ledger.path if kept else f"{s.ledger.path} (temporary: --home DIR keeps it)"
        print(f"ledger   {len(payments)} payments ({counts}) in {where}")
    return 0
