"""A real IPython shell for tests (jupysql's TestingShell pattern): a failing cell raises."""

from __future__ import annotations

from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

from tm402_nb.notebook.magics import TMMagics


class TestingShell(InteractiveShell):
    """``run_cell`` re-raises the cell's error, so tests see failures as exceptions."""

    def run_cell(self, raw_cell, store_history=False, silent=False, shell_futures=True, cell_id=None):
        result = super().run_cell(
            raw_cell, store_history=store_history, silent=silent, shell_futures=shell_futures, cell_id=cell_id
        )
        result.raise_error()
        return result


def make_shell() -> TestingShell:
    config = Config()
    config.HistoryAccessor.enabled = False  # no SQLite history: avoids "too many open files"
    shell = TestingShell.instance(config=config)
    shell.displayhook.flush = lambda: None  # avoids a gc hang at exit
    return shell


#: Every %config setting of the magics, as the class declares them (one list: the magics' own).
SETTINGS = tuple(TMMagics.class_trait_names(config=True))


def reset_magics(shell: TestingShell) -> None:
    """Back to default settings: traits, the record of explicit choices, and %config's memory."""
    magics = shell.magics_manager.registry.get("TMMagics")
    shell.config.pop("TMMagics", None)
    if magics is not None:
        for name in SETTINGS:
            magics.set_trait(name, magics.trait_defaults(name))
        magics._explicit.clear()
    from tm402_nb.session import CONFIGURED

    CONFIGURED.clear()  # what %config handed to connect() for the next session
