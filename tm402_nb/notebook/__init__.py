"""The notebook layer: ``%tm`` / ``%%tm`` magics, the ``df.tm`` accessor, the per-cell cost
footer, plots and the payment feed.

``%load_ext tm402_nb`` registers the magics and the footer hook; importing
``tm402_nb`` registers ``df.tm``.
"""

from __future__ import annotations

from typing import Any

_state: dict[str, Any] = {}


def load_ipython_extension(ip: Any) -> None:
    """Register ``%tm``/``%%tm``, ``%config TMMagics``, the footer hook. Loading twice is harmless."""
    from .extension import load

    load(ip, _state)


def unload_ipython_extension(ip: Any) -> None:
    """Remove the footer hook and the magics cleanly."""
    from .extension import unload

    unload(ip, _state)
