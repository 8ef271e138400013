"""Printing benchmark results as one aligned table."""

from __future__ import annotations

import platform
from datetime import UTC, datetime


def machine() -> str:
    import os

    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


def render(title: str, rows: list[tuple[str, str, str, str]]) -> str:
    """rows: (metric, ours, reference, ratio/goal)."""
    head = ("metric", "tm402-nb", "reference x402 SDK", "ratio / goal")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(4)]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + " |"  # noqa: E731
    out = [
        f"### {title}",
        "",
        f"{machine()}; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        line(head),
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    out += [line(r) for r in rows]
    return "\n".join(out)
