"""Names a package exports without importing the modules that define them until first use.

``import tm402_nb`` must stay cheap (no httpx client, no FastAPI, no ledger) while
``tm.Client`` or ``tm402_nb.x402.X402Auth`` still just work: each package maps its
public names to the submodule that defines them and lets this PEP 562 hook load it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, names: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module ``__getattr__`` and ``__dir__`` for ``package``.

    ``names`` maps each public name to its module, relative to ``package`` (``"auth"``,
    ``"x402.auth"``). A name is imported once, then kept in ``namespace`` (the package's
    ``globals()``) so later lookups are plain attribute reads.
    """

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(f".{module}", package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(names))

    return __getattr__, __dir__
