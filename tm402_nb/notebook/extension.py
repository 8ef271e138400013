"""Loading and unloading the IPython extension."""

from __future__ import annotations

import contextlib
import difflib
import os
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from traitlets import TraitError

from ..errors import ConfigurationError

PYPROJECT_TABLE = "tm402"


def project_settings(start: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """``[tool.tm402]`` of the nearest ``pyproject.toml`` at or above ``start`` (the notebook's folder)."""
    import tomllib

    here = Path(start or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            try:
                data = tomllib.loads(candidate.read_text())
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise ConfigurationError(f"cannot read {candidate.name}: {exc}") from None
            return dict(data.get("tool", {}).get(PYPROJECT_TABLE, {}))
    return {}


def apply_settings(magics: Any, settings: dict[str, Any]) -> None:
    names = set(magics.trait_names(config=True))
    for key, value in settings.items():
        name = key.replace("-", "_")
        if name not in names:
            close = difflib.get_close_matches(name, sorted(names), n=1)
            warnings.warn(
                f"[tool.{PYPROJECT_TABLE}] has an unknown setting {key!r}"
                + (f"; did you mean {close[0]!r}?" if close else ""),
                stacklevel=3,
            )
            continue
        if name in magics._explicit and name in (magics.config.get("TMMagics", {}) or {}):
            continue  # %config / IPython config beats the project file
        try:
            setattr(magics, name, value)
        except TraitError as exc:
            raise ConfigurationError(f"[tool.{PYPROJECT_TABLE}] {key} = {value!r}: {exc}") from None


def load(ip: Any, state: dict[str, Any]) -> None:
    if state.get("shell") is ip and state.get("magics") is not None:
        return  # loading twice is harmless
    if state.get("shell") is not None:
        unload(state["shell"], state)
    from . import accessor  # noqa: F401 - importing it registers df.tm
    from .completion import install as install_completion
    from .footer import CellTracker
    from .magics import TMMagics

    magics = TMMagics(shell=ip)
    apply_settings(magics, project_settings())
    ip.register_magics(magics)
    if magics not in ip.configurables:
        ip.configurables.append(magics)
    tracker = CellTracker(magics)
    ip.events.register("pre_run_cell", tracker.pre_run_cell)
    ip.events.register("post_run_cell", tracker.post_run_cell)
    # Tab completion and ?/Shift-Tab help for %tm lines and %%tm cells (the kernel answers both).
    state.update(shell=ip, magics=magics, tracker=tracker, completion=install_completion(ip))
    # The cell running %load_ext started before these hooks existed: track it from here, so its
    # own %tm calls get a footer, a cell id in the ledger and the per-cell cap.
    tracker.pre_run_cell(SimpleNamespace(cell_id=_running_cell_id(ip)))


def _running_cell_id(ip: Any) -> str | None:
    """The id of the cell the kernel is running now (JupyterLab sends it), else None."""
    kernel = getattr(ip, "kernel", None)
    try:
        parent = kernel.get_parent() if kernel is not None else None
    except Exception:  # an older kernel without get_parent(): no id, tracking still starts
        return None
    cell_id = (parent or {}).get("metadata", {}).get("cellId")
    return cell_id if isinstance(cell_id, str) else None


def unload(ip: Any, state: dict[str, Any]) -> None:
    installed = state.pop("completion", None)
    if installed is not None:
        from .completion import uninstall

        uninstall(ip, installed)
    tracker = state.pop("tracker", None)
    if tracker is not None:
        for event, fn in (("pre_run_cell", tracker.pre_run_cell), ("post_run_cell", tracker.post_run_cell)):
            with contextlib.suppress(ValueError):
                ip.events.unregister(event, fn)
        tracker.close()
    magics = state.pop("magics", None)
    if magics is not None:
        for kind in ("line", "cell"):
            ip.magics_manager.magics[kind].pop("tm", None)
        if magics in ip.configurables:
            ip.configurables.remove(magics)
    state.pop("shell", None)
