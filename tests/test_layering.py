"""The package's layering holds in its import graph.

    top: tm402_nb/__init__.py, cli.py, demo.py, estimate.py, __main__.py   (may import anything)
    notebook  >  session  >  tokenmetrics  >  {x402, ledger}      (each imports only layers below)
    sandbox: only the x402 protocol modules (messages, encoding, networks, money, eip3009, permit2, wallet,
             identifier); started by the session (sandbox mode), the notebook layer or the top, never by the client
    bottom: tm402_nb/errors.py and tm402_nb/status.py             (anyone may import them; they import no layer)

x402 and ledger sit side by side and never import each other: the payment protocol records through
an interface the ledger implements, and the ledger stores amounts without knowing the protocol.

The check is an ast walk over every module, so it sees what a grep for module-level imports misses:
imports inside functions (lazy imports), under ``if TYPE_CHECKING:`` (a type-only import is still a
dependency on that layer), and ``from .. import name`` where ``name`` is a module.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "tm402_nb"

TOP = {PACKAGE, f"{PACKAGE}.cli", f"{PACKAGE}.demo", f"{PACKAGE}.estimate", f"{PACKAGE}.__main__"}
BOTTOM = {f"{PACKAGE}.cells", f"{PACKAGE}.errors", f"{PACKAGE}.status", f"{PACKAGE}.money", f"{PACKAGE}._lazy"}
# Higher imports lower; equal ranks (x402 and ledger) do not import each other.
RANK = {"x402": 0, "ledger": 0, "tokenmetrics": 1, "session": 2, "notebook": 3}
SANDBOX_MAY_IMPORT = {
    f"{PACKAGE}.x402.{name}"
    for name in ("messages", "encoding", "networks", "money", "eip3009", "permit2", "wallet", "identifier")
}
SANDBOX_IMPORTED_BY = {"session", "notebook", "top"}

# Violations that exist today and are being removed: a NEW violation fails
# test_no_new_layering_violations, and an entry here that no longer happens fails
# test_known_violations_are_still_real. Empty since the code-health refactor (issue 10).
KNOWN_VIOLATIONS: set[tuple[str, str]] = set()


# -- the checker ----------------------------------------------------------------------------------------------------


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(name: str, root: Path) -> bool:
    base = root.joinpath(*name.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def imports_of(path: Path, root: Path) -> set[str]:
    """Every tm402_nb module ``path`` imports, wherever the import statement is."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                # `from pkg import mod` depends on pkg.mod; `from pkg import name` on pkg.
                sub = f"{base}.{alias.name}"
                found.add(sub if _is_module(sub, root) else base)
    return {m for m in found if m == PACKAGE or m.startswith(PACKAGE + ".")}


def component(module: str) -> str:
    if module in TOP:
        return "top"
    if module in BOTTOM:
        return "bottom"
    return module.split(".")[1]


def why_not(importer: str, imported: str) -> str | None:
    """The rule ``importer -> imported`` breaks, or None if the import is allowed."""
    src, dst = component(importer), component(imported)
    if src == dst or src == "top":
        return None
    if dst == "top":
        return "nothing imports the top of the package"
    if src == "bottom":
        return "errors.py and status.py are the bottom: they import no layer"
    if dst == "bottom":
        return None
    if src == "sandbox":
        if imported in SANDBOX_MAY_IMPORT:
            return None
        return "the sandbox imports only the x402 protocol modules, never the client side"
    if dst == "sandbox":
        return None if src in SANDBOX_IMPORTED_BY else f"{src} must not depend on the sandbox"
    if src not in RANK or dst not in RANK:
        return f"{src} or {dst} is not in the layer map (add it to tests/test_layering.py)"
    if RANK[src] > RANK[dst]:
        return None
    if RANK[src] == RANK[dst]:
        return f"{src} and {dst} are side by side and never import each other"
    return f"upward import: {src} is below {dst}"


def violations(root: Path) -> dict[tuple[str, str], str]:
    """(importer, imported) -> reason, over every module of the package under ``root``."""
    out = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        importer = module_name(path, root)
        for imported in sorted(imports_of(path, root)):
            reason = why_not(importer, imported)
            if reason:
                out[(importer, imported)] = reason
    return out


# -- the package ----------------------------------------------------------------------------------------------------


def test_no_new_layering_violations() -> None:
    new = {edge: why for edge, why in violations(ROOT).items() if edge not in KNOWN_VIOLATIONS}
    assert not new, "\n".join(f"{a} imports {b}: {why}" for (a, b), why in sorted(new.items()))


def test_known_violations_are_still_real() -> None:
    """A fixed violation leaves the list, so it cannot come back unnoticed."""
    gone = KNOWN_VIOLATIONS - set(violations(ROOT))
    assert not gone, f"fixed: remove {sorted(gone)} from KNOWN_VIOLATIONS in tests/test_layering.py"


def test_every_module_is_in_the_map() -> None:
    for path in (ROOT / PACKAGE).rglob("*.py"):
        name = module_name(path, ROOT)
        assert component(name) in {"top", "bottom", "sandbox", *RANK}, f"{name} belongs to no layer"


def test_importing_the_sandbox_loads_no_client_side_module() -> None:
    """The import graph holds at run time too: package __init__ files load lazily, so starting a
    sandbox server does not drag in the client, the session or the ledger."""
    code = "import sys, tm402_nb.sandbox\nprint('\\n'.join(m for m in sys.modules if m.startswith('tm402_nb.')))\n"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, timeout=120
    ).stdout.split()
    # tm402_nb.session itself is the light face the top package binds `tm.session` from (standard
    # library only); its submodules are the session proper.
    # Likewise the catalogue (endpoint facts, standard library only) that df.tm reads at import.
    forbidden = ("tm402_nb.tokenmetrics", "tm402_nb.session.", "tm402_nb.ledger")
    light = {"tm402_nb.tokenmetrics", "tm402_nb.tokenmetrics.catalogue"}
    client_side = {"tm402_nb.x402.auth", "tm402_nb.x402.client", "tm402_nb.x402.policy", "tm402_nb.x402.transport"}
    loaded = sorted(m for m in out if (m.startswith(forbidden) and m not in light) or m in client_side)
    assert not loaded, f"importing tm402_nb.sandbox loaded {loaded}"


# -- the checker catches what it must ------------------------------------------------------------------------------


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in {
        "tm402_nb/__init__.py": "",
        "tm402_nb/errors.py": "",
        "tm402_nb/x402/__init__.py": "",
        "tm402_nb/x402/messages.py": "",
        "tm402_nb/x402/auth.py": "",
        "tm402_nb/ledger/__init__.py": "",
        "tm402_nb/tokenmetrics/__init__.py": "",
        "tm402_nb/tokenmetrics/client.py": "",
        "tm402_nb/session/__init__.py": "",
        "tm402_nb/sandbox/__init__.py": "",
        **files,
    }.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


@pytest.mark.parametrize(
    ("rel", "text", "edge"),
    [
        # a lazy upward import inside a function
        (
            "tm402_nb/x402/signer.py",
            "def f():\n    from ..tokenmetrics import client\n",
            ("tm402_nb.x402.signer", "tm402_nb.tokenmetrics.client"),
        ),
        # an absolute upward import under TYPE_CHECKING
        (
            "tm402_nb/tokenmetrics/frames.py",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import tm402_nb.session\n",
            ("tm402_nb.tokenmetrics.frames", "tm402_nb.session"),
        ),
        # side by side: x402 and the ledger
        ("tm402_nb/x402/pay.py", "from ..ledger import Ledger\n", ("tm402_nb.x402.pay", "tm402_nb.ledger")),
        # the sandbox reaching for the client side, through `from .. import module`
        ("tm402_nb/sandbox/app.py", "from ..x402 import auth\n", ("tm402_nb.sandbox.app", "tm402_nb.x402.auth")),
        # the client depending on the sandbox
        (
            "tm402_nb/tokenmetrics/modes.py",
            "from tm402_nb.sandbox import serve\n",
            ("tm402_nb.tokenmetrics.modes", "tm402_nb.sandbox"),
        ),
        # a bottom module importing a layer
        ("tm402_nb/status.py", "from .x402 import messages\n", ("tm402_nb.status", "tm402_nb.x402.messages")),
    ],
)
def test_the_checker_catches(tmp_path: Path, rel: str, text: str, edge: tuple[str, str]) -> None:
    assert edge in violations(_tree(tmp_path, {rel: text}))


def test_the_checker_allows_what_the_layers_allow(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "tm402_nb/session/__init__.py": "from ..tokenmetrics import client\nfrom .. import errors\n"
            "def sandbox_mode():\n    from ..sandbox import serve\n",
            "tm402_nb/sandbox/paywall.py": "from ..x402.messages import parse\nfrom ..errors import X\n",
            "tm402_nb/cli.py": "from .session import connect\nfrom .sandbox import serve\n",
        },
    )
    assert violations(root) == {}
